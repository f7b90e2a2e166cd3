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
// length. Memory is planned at Compile (memplan.go): values of the main
// graph get liveness intervals from the schedule, views share their
// input's buffer, and intervals are coloured into slots whose sizes are
// symbolic in the graph's dimensions (PlannedPeakBytes evaluates them).
// Each Run takes an arena of slot buffers that is kept for later Runs.
// Graph outputs, nested bodies and values the plan cannot size use a
// per-Run pool keyed by element type and length, with reference counts.
// docs/cpu-backend.md describes both.
// Kernels compute float16 and bfloat16 in float32; reference kernels
// that are not on the hot path compute in float64.
package cpu
