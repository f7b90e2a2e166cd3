package main

import (
	"encoding/json"
	"fmt"
	"io"
	"math"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"

	"github.com/spf13/cobra"
	"github.com/tfc-compiler/tfc"
	"github.com/tfc-compiler/tfc/backend/cpu"
	"github.com/tfc-compiler/tfc/frontend/onnx"
	"github.com/tfc-compiler/tfc/internal/refdata"
	"github.com/tfc-compiler/tfc/ir"
)

func newRunCmd() *cobra.Command {
	var (
		dataDirs  []string
		check     bool
		rtol      float64
		atol      float64
		asJSON    bool
		level     int
		threads   int
		outDir    string
		validOnly bool
	)
	cmd := &cobra.Command{
		Use:   "run MODEL [--data DIR ...] [--check]",
		Short: "Run a model on the CPU backend with inputs in the ONNX test layout",
		Long: `run compiles MODEL (at -O2 unless -O says otherwise) for the CPU backend and
runs it on each data set: a folder holding input_0.pb, input_1.pb, ...
(serialized TensorProtos, as in the ONNX backend tests and tfc's corpus).
Without --data it uses every test_data_set_* folder next to MODEL.

Inputs are matched to graph inputs by the tensor's name when it names one,
else by position. With --check, each output_N.pb in the data set is
compared with the computed output: an element passes when
|got - want| <= atol + rtol * |want| (NaN matches NaN); a mismatch prints
the worst element and exits 1. --out DIR writes the computed outputs as
output_N.pb files.

-O3 removes padding and writes zeros at padded positions of per-token
outputs, where the original model computes values nobody should read; with
--valid-only, --check compares only the positions an attention-mask input
(an input named *mask* of shape [batch, seq]) marks valid.`,
		Example: `  tfc run testdata/models/bert-ts-eager-op17/model.onnx --check
  tfc run model.onnx --data my_inputs --out my_outputs
  tfc run model.onnx --check --json -O0`,
		Args: exactArgs(1, "one model file"),
		RunE: func(cmd *cobra.Command, args []string) error {
			if rtol < 0 || atol < 0 || math.IsNaN(rtol) || math.IsNaN(atol) {
				return fmt.Errorf("--rtol and --atol must be non-negative numbers")
			}
			if len(dataDirs) == 0 {
				found, _ := filepath.Glob(filepath.Join(filepath.Dir(args[0]), "test_data_set_*"))
				sort.Slice(found, func(i, j int) bool { return dataSetIndex(found[i]) < dataSetIndex(found[j]) })
				dataDirs = found
				if len(dataDirs) == 0 {
					return fmt.Errorf("no --data given and no test_data_set_* folder next to %s", args[0])
				}
			}
			exe, m, err := loadForCPU(cmd, args[0], level, threads)
			if err != nil {
				return err
			}
			defer m.Close()
			var results []dataSetResult
			failed := false
			for i, dir := range dataDirs {
				res, err := runDataSet(cmd, exe, m.Graph, dir, check, validOnly, rtol, atol)
				if err != nil {
					return err
				}
				if outDir != "" {
					if err := writeOutputs(filepath.Join(outDir, fmt.Sprintf("test_data_set_%d", i)), m.Graph, res.outputs); err != nil {
						return err
					}
				}
				failed = failed || !res.OK
				results = append(results, res)
			}
			w := cmd.OutOrStdout()
			if asJSON {
				enc := json.NewEncoder(w)
				enc.SetIndent("", "  ")
				if err := enc.Encode(map[string]any{"model": args[0], "ok": !failed, "data_sets": results}); err != nil {
					return err
				}
			} else {
				for _, r := range results {
					r.writeText(w, check)
				}
			}
			if failed {
				return &checkFailedError{fmt.Sprintf("%s: outputs differ from the references beyond rtol %g, atol %g", args[0], rtol, atol)}
			}
			return nil
		},
	}
	f := cmd.Flags()
	f.StringArrayVar(&dataDirs, "data", nil, "a data set folder with input_N.pb files (repeatable)")
	f.BoolVar(&check, "check", false, "compare with the data set's output_N.pb files; exit 1 on a mismatch")
	f.Float64Var(&rtol, "rtol", 1e-3, "relative tolerance for --check")
	f.Float64Var(&atol, "atol", 1e-4, "absolute tolerance for --check")
	f.BoolVar(&asJSON, "json", false, "print results as JSON")
	f.IntVarP(&level, "opt-level", "O", 2, "optimization level before running, 0..3")
	f.IntVar(&threads, "threads", 0, "threads for kernels (0: GOMAXPROCS)")
	f.StringVar(&outDir, "out", "", "write computed outputs to DIR/test_data_set_N/output_K.pb")
	f.BoolVar(&validOnly, "valid-only", false, "with --check, ignore padded positions of per-token outputs (see -O3)")
	return cmd
}

func dataSetIndex(dir string) int {
	n, err := strconv.Atoi(strings.TrimPrefix(filepath.Base(dir), "test_data_set_"))
	if err != nil {
		return math.MaxInt
	}
	return n
}

// loadForCPU decodes, compiles at level and prepares an executable.
func loadForCPU(cmd *cobra.Command, path string, level, threads int) (*cpu.Executable, *ir.Model, error) {
	if level < 0 || level > 3 {
		return nil, nil, fmt.Errorf("-O%d is not a level: use -O0, -O1, -O2 or -O3", level)
	}
	if threads < 0 {
		return nil, nil, fmt.Errorf("--threads %d: use 0 (all cores) or a positive count", threads)
	}
	m, _, err := onnx.DecodeFile(path, onnx.DecodeOptions{})
	if err != nil {
		return nil, nil, err
	}
	if _, err := tfc.Compile(cmd.Context(), m, tfc.Options{Level: level}); err != nil {
		m.Close()
		return nil, nil, fmt.Errorf("%s: %w", path, err)
	}
	exe, err := cpu.Compile(m, cpu.Options{Threads: threads})
	if err != nil {
		m.Close()
		return nil, nil, fmt.Errorf("%s: %w", path, err)
	}
	return exe, m, nil
}

// modelInputs are the graph inputs a caller must feed (inputs with a
// default are optional and come last in ONNX's convention).
func modelInputs(g *ir.Graph) []*ir.Value {
	var out []*ir.Value
	for _, v := range g.Inputs {
		if v.Const == nil {
			out = append(out, v)
		}
	}
	return out
}

type outputResult struct {
	Name        string  `json:"name"`
	Shape       []int   `json:"shape"`
	Checked     bool    `json:"checked"`
	OK          bool    `json:"ok"`
	MaxAbsErr   float64 `json:"max_abs_err"`
	WorstIndex  int     `json:"worst_index"`
	WorstGot    float64 `json:"worst_got"`
	WorstWant   float64 `json:"worst_want"`
	Mismatches  int     `json:"mismatches"`
	Description string  `json:"problem,omitempty"`
}

type dataSetResult struct {
	Dir     string         `json:"data_set"`
	OK      bool           `json:"ok"`
	Outputs []outputResult `json:"outputs"`
	outputs map[string]*cpu.Tensor
}

func (r dataSetResult) writeText(w io.Writer, check bool) {
	status := "ran"
	if check {
		status = "ok"
		if !r.OK {
			status = "MISMATCH"
		}
	}
	fmt.Fprintf(w, "%s: %s\n", r.Dir, status)
	for _, o := range r.Outputs {
		fmt.Fprintf(w, "  %-28s %v", o.Name, o.Shape)
		if o.Checked {
			fmt.Fprintf(w, "  max |err| %.3g", o.MaxAbsErr)
			if !o.OK {
				if o.Description != "" {
					fmt.Fprintf(w, "  %s", o.Description)
				} else {
					fmt.Fprintf(w, "  %d elements off; worst at flat index %d: got %g, want %g", o.Mismatches, o.WorstIndex, o.WorstGot, o.WorstWant)
				}
			}
		}
		fmt.Fprintln(w)
	}
}

func runDataSet(cmd *cobra.Command, exe *cpu.Executable, g *ir.Graph, dir string, check, validOnly bool, rtol, atol float64) (dataSetResult, error) {
	res := dataSetResult{Dir: dir, OK: true}
	feeds, err := refdata.LoadInputs(g, dir)
	if err != nil {
		return res, err
	}
	if len(feeds) == 0 {
		return res, fmt.Errorf("%s holds no input_0.pb", dir)
	}
	outs, err := exe.Run(cmd.Context(), feeds)
	if err != nil {
		return res, fmt.Errorf("%s: %w", dir, err)
	}
	res.outputs = outs
	var refs []*cpu.Tensor
	if check {
		if refs, err = refdata.LoadOutputs(g, dir); err != nil {
			return res, err
		}
	}
	for i, v := range g.Outputs {
		got := outs[v.Name]
		o := outputResult{Name: v.Name, OK: true}
		if got != nil {
			o.Shape = got.Shape
		}
		if check && refs[i] != nil {
			o.Checked = true
			if validOnly {
				got = ignorePadding(got, refs[i], feeds)
			}
			compareOutput(&o, got, refs[i], rtol, atol)
			res.OK = res.OK && o.OK
		}
		res.Outputs = append(res.Outputs, o)
	}
	return res, nil
}

// ignorePadding returns got with the reference's values copied into the
// positions a [B, S] attention-mask input marks as padding (0), for a
// float32 output whose shape starts with [B, S]; other outputs come back
// unchanged. It makes --valid-only compare valid tokens only.
func ignorePadding(got, want *cpu.Tensor, feeds map[string]*cpu.Tensor) *cpu.Tensor {
	var mask []int64
	var b, s int
	for name, t := range feeds {
		if strings.Contains(strings.ToLower(name), "mask") && len(t.Shape) == 2 {
			if m, ok := t.Data.([]int64); ok {
				mask, b, s = m, t.Shape[0], t.Shape[1]
			}
		}
	}
	g, ok1 := got.Data.([]float32)
	w, ok2 := want.Data.([]float32)
	if mask == nil || !ok1 || !ok2 || len(got.Shape) < 2 || got.Shape[0] != b || got.Shape[1] != s || len(g) != len(w) {
		return got
	}
	c := got.Clone()
	cg := c.Data.([]float32)
	inner := len(cg) / (b * s)
	for i, m := range mask {
		if m == 0 {
			copy(cg[i*inner:(i+1)*inner], w[i*inner:(i+1)*inner])
		}
	}
	return c
}

// compareOutput fills o with the comparison of got against the reference.
func compareOutput(o *outputResult, got, want *cpu.Tensor, rtol, atol float64) {
	m := refdata.Compare(got, want, rtol, atol)
	o.OK, o.Description, o.MaxAbsErr = m.OK(), m.Problem, m.MaxAbsErr
	if m.Problem == "" && m.Count > 0 {
		o.Mismatches = m.Count
		o.WorstIndex, o.WorstGot, o.WorstWant = m.Worst.Index, m.Worst.Got, m.Worst.Want
	}
	if math.IsInf(o.MaxAbsErr, 1) {
		o.MaxAbsErr = math.MaxFloat64 // JSON has no infinity
	}
}

func writeOutputs(dir string, g *ir.Graph, outs map[string]*cpu.Tensor) error {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	for i, v := range g.Outputs {
		t := outs[v.Name]
		if t == nil {
			continue
		}
		it, err := cpu.ToIR(t)
		if err != nil {
			return fmt.Errorf("output %q: %w", v.Name, err)
		}
		if err := onnx.WriteTensorFile(filepath.Join(dir, fmt.Sprintf("output_%d.pb", i)), it, v.Name); err != nil {
			return err
		}
	}
	return nil
}
