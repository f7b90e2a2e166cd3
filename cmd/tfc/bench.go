package main

import (
	"encoding/json"
	"fmt"
	"math"
	"math/rand/v2"
	"os"
	"runtime/pprof"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/spf13/cobra"
	"github.com/tfc-compiler/tfc/backend/cpu"
	"github.com/tfc-compiler/tfc/ir"
)

func newBenchCmd() *cobra.Command {
	var (
		batch, seq, past int
		lengths          string
		warmup, iters    int
		asJSON           bool
		level, threads   int
		seed             uint64
		cpuProfile       string
		showPlan         bool
	)
	cmd := &cobra.Command{
		Use:   "bench MODEL [--batch N --seq L] [--lengths uniform:a-b]",
		Short: "Measure a model's latency on the CPU backend with synthetic inputs",
		Long: `bench compiles MODEL (at -O2 unless -O says otherwise) for the CPU backend,
makes inputs from the model's input types, runs --warmup untimed and --iters
timed iterations, and reports the median and 90th-percentile latency, the
throughput in valid tokens per second, the peak bytes of buffers a run
held (measured), and the static memory plan evaluated at the benchmarked
sizes (planned peak, slots; --memory-plan lists them).

Inputs are made from their names and types: token ids (int) are drawn in
range (the vocabulary is read from the embedding table the ids index), an
input named like *mask* gets 1 on each sequence's valid tokens and 0 on its
padding (right padding), token_type_ids get 0, position_ids 0..L-1, inputs
named past_* get --past positions, other float inputs are small random
normals. Dimension symbols containing "batch" take --batch, those containing
"past" take --past, the others take --seq.

--lengths uniform:A-B draws each sequence's valid length uniformly from
[A, B] (fixed seed); --lengths list:L1,L2,... gives each sequence's length
(one per --batch, e.g. to replay a measured distribution); without it every
sequence has --seq valid tokens.`,
		Example: `  tfc bench testdata/models/bert-ts-eager-op17/model.onnx --batch 8 --seq 128
  tfc bench model.onnx --batch 32 --seq 128 --lengths uniform:8-128 --json`,
		Args: exactArgs(1, "one model file"),
		RunE: func(cmd *cobra.Command, args []string) error {
			if batch < 1 || seq < 1 || past < 0 || iters < 1 || warmup < 0 {
				return fmt.Errorf("--batch, --seq and --iters must be at least 1, --past and --warmup at least 0")
			}
			lens, err := parseLengths(lengths, batch, seq, seed)
			if err != nil {
				return err
			}
			exe, m, err := loadForCPU(cmd, args[0], level, threads)
			if err != nil {
				return err
			}
			defer m.Close()
			feeds, err := synthesizeInputs(m.Graph, batch, seq, past, lens, seed)
			if err != nil {
				return fmt.Errorf("%s: %w", args[0], err)
			}
			for i := 0; i < warmup; i++ {
				if _, err := exe.Run(cmd.Context(), feeds); err != nil {
					return fmt.Errorf("%s: %w", args[0], err)
				}
			}
			if cpuProfile != "" {
				stop, err := startCPUProfile(cpuProfile)
				if err != nil {
					return err
				}
				defer stop()
			}
			times := make([]float64, iters)
			var peak int64
			for i := range times {
				t0 := time.Now()
				if _, err := exe.Run(cmd.Context(), feeds); err != nil {
					return fmt.Errorf("%s: %w", args[0], err)
				}
				times[i] = float64(time.Since(t0).Microseconds()) / 1000
				peak = max(peak, exe.Stats().PeakBytes)
			}
			sort.Float64s(times)
			med := percentile(times, 0.5)
			// The static memory plan evaluated at the sizes the last run saw
			// (data-dependent ones such as the packed token count included).
			st := exe.Stats()
			planned, planErr := exe.PlannedPeakBytes(st.Symbols)
			plan := exe.MemoryPlan()
			slots := len(plan.Slots)
			valid := 0
			for _, l := range lens {
				valid += l
			}
			res := map[string]any{
				"model": args[0], "batch": batch, "seq": seq, "past": past, "threads": threads,
				"valid_tokens": valid, "valid_fraction": float64(valid) / float64(batch*seq),
				"iters": iters, "median_ms": med, "p90_ms": percentile(times, 0.9),
				"min_ms": times[0], "tokens_per_s": float64(valid) / (med / 1000), "peak_bytes": peak,
				"planned_peak_bytes": planned, "planned_slots": slots, "placed_bytes": st.PlannedBytes,
				"arena_bytes": st.ArenaBytes, "copied_outputs": st.CopiedOutputs, "dynamic_outputs": st.DynamicOutputs,
			}
			if planErr != nil {
				res["planned_peak_error"] = planErr.Error()
			}
			w := cmd.OutOrStdout()
			if showPlan && asJSON {
				res["memory_plan"] = map[string]any{"slots": plan.Slots, "planned_peak_bytes_expr": plan.PeakBytesExpr()}
			}
			if asJSON {
				enc := json.NewEncoder(w)
				enc.SetIndent("", "  ")
				return enc.Encode(res)
			}
			fmt.Fprintf(w, "%s  batch %d  seq %d  valid tokens %d (%.0f%%)\n", args[0], batch, seq, valid, 100*float64(valid)/float64(batch*seq))
			fmt.Fprintf(w, "median %.3f ms  p90 %.3f ms  min %.3f ms  over %d runs\n", med, percentile(times, 0.9), times[0], iters)
			fmt.Fprintf(w, "throughput %.0f tokens/s  peak buffers %s (measured)\n", res["tokens_per_s"], humanBytes(peak))
			plannedText := humanBytes(planned)
			if planErr != nil {
				plannedText = "unknown (" + planErr.Error() + ")"
			}
			fmt.Fprintf(w, "memory plan: %d slots, planned peak %s, placed %s, arena %s\n", slots, plannedText, humanBytes(st.PlannedBytes), humanBytes(st.ArenaBytes))
			if showPlan {
				fmt.Fprint(w, plan)
			}
			return nil
		},
	}
	f := cmd.Flags()
	f.IntVar(&batch, "batch", 1, "sequences per batch")
	f.IntVar(&seq, "seq", 128, "sequence length (padded)")
	f.IntVar(&past, "past", 0, "past length for decoders with past key/value inputs")
	f.StringVar(&lengths, "lengths", "", "valid lengths per sequence: uniform:A-B or list:L1,L2,... (default: all --seq)")
	f.IntVar(&warmup, "warmup", 3, "untimed runs first")
	f.IntVar(&iters, "iters", 20, "timed runs")
	f.BoolVar(&asJSON, "json", false, "print results as JSON (keys median_ms, p90_ms, tokens_per_s, peak_bytes, planned_peak_bytes, ...)")
	f.IntVarP(&level, "opt-level", "O", 2, "optimization level before running, 0..3")
	f.IntVar(&threads, "threads", 0, "threads for kernels (0: GOMAXPROCS)")
	f.Uint64Var(&seed, "seed", 1, "seed for synthetic inputs and lengths")
	f.BoolVar(&showPlan, "memory-plan", false, "print the static memory plan: each slot's size expression and the values it serves")
	f.StringVar(&cpuProfile, "cpuprofile", "", "write a Go CPU profile of the timed runs to this file (read it with `go tool pprof`)")
	return cmd
}

// startCPUProfile starts a pprof CPU profile into path and returns the
// function that stops it and closes the file.
func startCPUProfile(path string) (func(), error) {
	f, err := os.Create(path)
	if err != nil {
		return nil, fmt.Errorf("--cpuprofile: %w", err)
	}
	if err := pprof.StartCPUProfile(f); err != nil {
		f.Close()
		return nil, fmt.Errorf("--cpuprofile: %w", err)
	}
	return func() {
		pprof.StopCPUProfile()
		f.Close()
	}, nil
}

func humanBytes(n int64) string {
	switch {
	case n >= 1<<30:
		return fmt.Sprintf("%.2f GiB", float64(n)/(1<<30))
	case n >= 1<<20:
		return fmt.Sprintf("%.1f MiB", float64(n)/(1<<20))
	case n >= 1<<10:
		return fmt.Sprintf("%.1f KiB", float64(n)/(1<<10))
	}
	return fmt.Sprintf("%d B", n)
}

// percentile of sorted values, nearest rank.
func percentile(sorted []float64, p float64) float64 {
	i := int(math.Ceil(p*float64(len(sorted)))) - 1
	return sorted[max(0, min(i, len(sorted)-1))]
}

// parseLengths turns --lengths into one valid length per sequence.
func parseLengths(spec string, batch, seq int, seed uint64) ([]int, error) {
	lens := make([]int, batch)
	if spec == "" {
		for i := range lens {
			lens[i] = seq
		}
		return lens, nil
	}
	if list, ok := strings.CutPrefix(spec, "list:"); ok {
		parts := strings.Split(list, ",")
		if len(parts) != batch {
			return nil, fmt.Errorf("--lengths list: gives %d lengths for --batch %d", len(parts), batch)
		}
		for i, p := range parts {
			n, err := strconv.Atoi(strings.TrimSpace(p))
			if err != nil || n < 1 || n > seq {
				return nil, fmt.Errorf("--lengths list: %q is not a length in 1..--seq (%d)", p, seq)
			}
			lens[i] = n
		}
		return lens, nil
	}
	kind, rng, ok := strings.Cut(spec, ":")
	lo, hi, ok2 := strings.Cut(rng, "-")
	a, err1 := strconv.Atoi(lo)
	b, err2 := strconv.Atoi(hi)
	if !ok || !ok2 || kind != "uniform" || err1 != nil || err2 != nil || a < 1 || b < a || b > seq {
		return nil, fmt.Errorf("--lengths %q: want uniform:A-B with 1 <= A <= B <= --seq (%d), or list:L1,L2,... with one length per sequence", spec, seq)
	}
	r := rand.New(rand.NewPCG(seed, 7))
	for i := range lens {
		lens[i] = a + r.IntN(b-a+1)
	}
	return lens, nil
}

// synthesizeInputs makes one tensor per model input from its name and type.
func synthesizeInputs(g *ir.Graph, batch, seq, past int, lens []int, seed uint64) (map[string]*cpu.Tensor, error) {
	r := rand.New(rand.NewPCG(seed, 11))
	feeds := map[string]*cpu.Tensor{}
	for _, v := range modelInputs(g) {
		if v.Type.Kind != ir.KindTensor || !v.Type.HasShape {
			return nil, fmt.Errorf("input %q has type %v: bench can only make tensors of known rank", v.Name, v.Type)
		}
		name := strings.ToLower(v.Name)
		shape := make([]int, len(v.Type.Shape))
		for i, d := range v.Type.Shape {
			switch {
			case d.IsKnown():
				shape[i] = int(d.Size)
			case strings.Contains(strings.ToLower(d.Sym), "batch") || (d.Sym == "" && i == 0):
				shape[i] = batch
			case strings.Contains(strings.ToLower(d.Sym), "past") || (strings.Contains(name, "past") && i == len(shape)-2):
				shape[i] = past
			case strings.Contains(strings.ToLower(d.Sym), "total") || strings.Contains(strings.ToLower(d.Sym), "+"):
				shape[i] = past + seq
			default:
				shape[i] = seq
			}
		}
		t, err := cpu.NewTensor(v.Type.Elem, shape)
		if err != nil {
			return nil, fmt.Errorf("input %q: %w", v.Name, err)
		}
		n := t.NumElements()
		last := 1
		if len(shape) > 0 {
			last = shape[len(shape)-1]
		}
		// value(i) gives the element at flat index i.
		var value func(i int) float64
		switch {
		case strings.Contains(name, "mask"):
			value = func(i int) float64 {
				b, pos := (i/max(last, 1))%max(batch, 1), i%max(last, 1)
				if b < len(lens) && pos >= past+lens[b] {
					return 0
				}
				return 1
			}
		case strings.Contains(name, "token_type"):
			value = func(int) float64 { return 0 }
		case strings.Contains(name, "position"):
			value = func(i int) float64 { return float64(past + i%max(last, 1)) }
		case v.Type.Elem.IsInteger():
			vocab := vocabulary(v)
			value = func(int) float64 { return float64(r.IntN(vocab)) }
		case v.Type.Elem == ir.Bool:
			value = func(int) float64 { return 1 }
		default:
			value = func(int) float64 { return r.NormFloat64() * 0.1 }
		}
		if err := fill(t, n, value); err != nil {
			return nil, fmt.Errorf("input %q: %w", v.Name, err)
		}
		feeds[v.Name] = t
	}
	return feeds, nil
}

// vocabulary guesses the range of token ids from the first dimension of a
// constant table that a Gather indexes with v; 100 when there is none.
func vocabulary(v *ir.Value) int {
	for _, u := range v.Uses() {
		if u.Node.Op == "Gather" && u.Index == 1 {
			if tbl := u.Node.Inputs[0]; tbl != nil && tbl.Const != nil && len(tbl.Const.Dims) > 0 {
				return int(tbl.Const.Dims[0])
			}
		}
	}
	return 100
}

func fill(t *cpu.Tensor, n int, value func(int) float64) error {
	switch d := t.Data.(type) {
	case []float32:
		for i := 0; i < n; i++ {
			d[i] = float32(value(i))
		}
	case []float64:
		for i := 0; i < n; i++ {
			d[i] = value(i)
		}
	case []int64:
		for i := 0; i < n; i++ {
			d[i] = int64(value(i))
		}
	case []int32:
		for i := 0; i < n; i++ {
			d[i] = int32(value(i))
		}
	case []bool:
		for i := 0; i < n; i++ {
			d[i] = value(i) != 0
		}
	default:
		return fmt.Errorf("bench cannot make %v inputs", t.DType)
	}
	return nil
}
