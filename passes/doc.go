// Package passes owns tfc's graph transformations: the pass registry (passes
// as data, with typed options and checked ordering constraints), the
// pipelines -O0 to -O3 and the --passes spec parser, the pipeline runner
// (verification after each pass, timing, rewrite counts, IR printing and
// crash reproducers), the pattern engine that fusions are written in, and
// one file per pass.
//
// passes imports ir only. It must not know about protobuf, files of models
// or backends; a pass that has to execute a model receives a runner from its
// caller through Context.
package passes
