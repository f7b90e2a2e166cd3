package tfc_test

import (
	"context"
	"os"
	"testing"

	"github.com/tfc-compiler/tfc"
)

// BenchmarkLoadAndCompileO2 measures what ONNX Runtime's transformer
// optimizer does when it optimizes a model: load the file and run the -O2
// pipeline (writing the result is not included, as optimize_model's time
// does not include save_model_to_file). The model comes from
// TFC_BENCH_MODEL (e.g. a BERT-base-size export made by
// tools/bigmodel/make_bert.py); without it the benchmark is skipped.
//
//	TFC_BENCH_MODEL=/tmp/bert-base.onnx go test -run '^$' -bench LoadAndCompileO2 -benchtime 10x .
func BenchmarkLoadAndCompileO2(b *testing.B) {
	path := os.Getenv("TFC_BENCH_MODEL")
	if path == "" {
		b.Skip("set TFC_BENCH_MODEL to an ONNX file to benchmark compilation")
	}
	for b.Loop() {
		m, _, err := tfc.Load(path)
		if err != nil {
			b.Fatal(err)
		}
		if _, err := tfc.Compile(context.Background(), m, tfc.Options{Level: 2}); err != nil {
			b.Fatal(err)
		}
		m.Close()
	}
}
