// Package refdata owns reference data sets in the ONNX test layout
// (test_data_set_N/input_K.pb and output_K.pb next to a model): reading
// them, matching input files to a graph's inputs, running them on the CPU
// backend, and comparing computed outputs with the stored references
// under one rtol/atol rule.
//
// Tests and the CLI (`tfc run --check`) use it so that every place that
// says "matches the references" means the same thing. It is not a test
// framework: it returns values and errors, and callers choose their own
// tolerances and what to do with a mismatch.
package refdata
