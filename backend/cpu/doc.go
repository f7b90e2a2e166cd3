// Package cpu is tfc's CPU backend. It owns the runtime tensor type
// (tensors of every storage type, sequences and optionals), the
// compilation of an ir.Graph into an executable plan (schedule, per-node
// kernel selection by op and element type, buffer release and reuse by
// liveness), the kernels themselves (a plain-Go reference for each), the
// table of ops the backend claims (table.go), and the generator of
// docs/ops.md from that table.
//
// It imports only ir. It must not know about protobuf, files on disk,
// passes or other backends; tests may use frontend/onnx to load the ONNX
// node tests and the corpus.
//
// Plan and memory: the schedule is the graph's node order; shapes are
// resolved at run time, so one Executable serves any batch and sequence
// length. Buffers are counted by reference and returned to a pool keyed
// by element type and length once their last reader has run (liveness
// from the schedule); RunStats reports the peak the run reached. A static
// memory planner that assigns offsets ahead of time is future work.
// Kernels compute float16 and bfloat16 in float32; reference kernels
// that are not on the hot path compute in float64.
package cpu
