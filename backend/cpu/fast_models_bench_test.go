package cpu_test

import (
	"context"
	"math/rand/v2"
	"os"
	"strconv"
	"strings"
	"testing"

	"github.com/tfc-compiler/tfc/backend/cpu"
	"github.com/tfc-compiler/tfc/frontend/onnx"
	"github.com/tfc-compiler/tfc/ir"
)

// BenchmarkModel runs one whole encoder on the CPU backend, for profiling
// with -cpuprofile. The model is named by env TFC_BENCH_MODEL (an ONNX file,
// best one already optimized with `tfc compile -O2`, since this package
// cannot run passes); TFC_BENCH_BATCH and TFC_BENCH_SEQ give the shape
// (default 1 and 128), TFC_BENCH_THREADS the threads (default 2). Inputs
// are made like `tfc bench` makes them: token ids in range, masks of ones,
// token types zero.
//
//	tfc compile ~/.cache/tfc/models/all-minilm-l6-v2/model.onnx -o /tmp/minilm.onnx
//	TFC_BENCH_MODEL=/tmp/minilm.onnx go test ./backend/cpu -run '^$' -bench Model -cpuprofile cpu.out
func BenchmarkModel(b *testing.B) {
	path := os.Getenv("TFC_BENCH_MODEL")
	if path == "" {
		b.Skip("set TFC_BENCH_MODEL to an ONNX encoder to run this benchmark")
	}
	envInt := func(name string, def int) int {
		if v, err := strconv.Atoi(os.Getenv(name)); err == nil && v > 0 {
			return v
		}
		return def
	}
	batch, seq := envInt("TFC_BENCH_BATCH", 1), envInt("TFC_BENCH_SEQ", 128)
	m, _, err := onnx.DecodeFile(path, onnx.DecodeOptions{})
	if err != nil {
		b.Fatal(err)
	}
	defer m.Close()
	exe, err := cpu.Compile(m, cpu.Options{Threads: envInt("TFC_BENCH_THREADS", 2)})
	if err != nil {
		b.Fatal(err)
	}
	feeds := map[string]*cpu.Tensor{}
	r := rand.New(rand.NewPCG(1, 2))
	for _, v := range m.Graph.Inputs {
		if v.Const != nil {
			continue
		}
		shape := make([]int, len(v.Type.Shape))
		for i, d := range v.Type.Shape {
			switch {
			case d.IsKnown():
				shape[i] = int(d.Size)
			case i == 0:
				shape[i] = batch
			default:
				shape[i] = seq
			}
		}
		t, err := cpu.NewTensor(v.Type.Elem, shape)
		if err != nil {
			b.Fatal(err)
		}
		name := strings.ToLower(v.Name)
		switch d := t.Data.(type) {
		case []int64:
			for i := range d {
				switch {
				case strings.Contains(name, "mask"):
					d[i] = 1
				case strings.Contains(name, "type"):
					d[i] = 0
				default:
					d[i] = int64(r.IntN(1000))
				}
			}
		case []float32:
			for i := range d {
				d[i] = float32(r.NormFloat64())
			}
		default:
			if v.Type.Elem != ir.Bool {
				b.Fatalf("input %q: cannot make %v", v.Name, v.Type.Elem)
			}
		}
		feeds[v.Name] = t
	}
	ctx := context.Background()
	if _, err := exe.Run(ctx, feeds); err != nil {
		b.Fatal(err)
	}
	b.ResetTimer()
	for b.Loop() {
		if _, err := exe.Run(ctx, feeds); err != nil {
			b.Fatal(err)
		}
	}
}
