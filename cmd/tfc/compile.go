package main

import (
	"encoding/json"
	"fmt"
	"io"
	"os"
	"strings"

	"github.com/spf13/cobra"
	"github.com/tfc-compiler/tfc"
	"github.com/tfc-compiler/tfc/frontend/onnx"
	"github.com/tfc-compiler/tfc/internal/atomicfile"
	"github.com/tfc-compiler/tfc/ir"
	"github.com/tfc-compiler/tfc/report"
)

func newCompileCmd() *cobra.Command {
	var (
		out           string
		level         int
		reportPath    string
		verifyEach    bool
		keepFunctions bool
		externalData  string
		passSpec      string
		explain       bool
		printIRAfter  string
		target        string
	)
	cmd := &cobra.Command{
		Use:   "compile MODEL -o OUT",
		Short: "Optimize an ONNX model and write the result",
		Long: `compile decodes MODEL into tfc's IR, verifies it, runs the pass pipeline of
the chosen level, verifies the result, and writes it to OUT as ONNX.

Levels (see 'tfc passes' for what each pass does):
  -O0  decode, verify, encode: lossless (re-decoding OUT gives the same IR)
  -O1  canonicalize, infer-shapes
  -O2  -O1 + the fusions that are registered (default)
  -O3  -O2 + padding removal (remove-padding: encoders, and decoder prefill
       without past key/values, that take a padding mask)
--passes replaces the level's pipeline with an explicit list, options in
braces: --passes 'canonicalize{cse=false},infer-shapes'.

--explain prints, for each pattern that reached its anchor node (e.g. a
Softmax) but did not match, the first condition that failed and the nodes
involved. --print-ir-after PASS|all prints the IR text after that pass to
stdout. --report FILE.json writes per-pass timing, node counts, rewrites by
rule and fused-op counts; --report FILE.html writes one self-contained page
with the same tables and the graph before and after, fused regions
highlighted.

--target ort lowers every tfc op to ops ONNX Runtime runs: opset-23
Attention/RMSNormalization where the model's opset allows, else
com.microsoft MultiHeadAttention/SkipLayerNormalization/BiasGelu/FastGelu,
else standard ops (docs/fusion.md, "Export to ONNX Runtime").

OUT is written to a temporary file next to it and renamed into place, so a
failure never leaves a half-written file. Tensors go to an external data file
(OUT.data) only when the model would exceed protobuf's 2 GiB limit, unless
--external-data says otherwise.`,
		Example: `  tfc compile model.onnx -o model.opt.onnx -O0
  tfc compile model.onnx -o out.onnx --report report.json
  tfc compile model.onnx -o out.onnx --explain
  tfc compile model.onnx -o out.ort.onnx --target ort --report report.html
  tfc compile model.onnx -o out.onnx --passes canonicalize,infer-shapes --print-ir-after all`,
		Args: exactArgs(1, "one model file"),
		RunE: func(cmd *cobra.Command, args []string) error {
			if out == "" {
				return fmt.Errorf("compile needs an output file: -o OUT (see 'tfc compile --help')")
			}
			if passSpec != "" && cmd.Flags().Changed("opt-level") {
				return fmt.Errorf("-O and --passes exclude each other: --passes names the whole pipeline")
			}
			if level < 0 || level > 3 {
				return fmt.Errorf("-O%d is not a level: use -O0, -O1, -O2 or -O3", level)
			}
			switch externalData {
			case "auto", "always", "never":
			default:
				return fmt.Errorf("--external-data %q is not one of auto, always, never", externalData)
			}
			switch target {
			case "onnx", "ort", "cpu":
			case "cuda":
				return fmt.Errorf("--target cuda: the CUDA backend is not built yet; use onnx, ort or cpu")
			default:
				return fmt.Errorf("--target %q is not one of onnx, ort, cpu", target)
			}
			if same, _ := sameFile(args[0], out); same {
				return fmt.Errorf("output %s is the input model: choose another -o", out)
			}
			prog := newProgress(cmd.ErrOrStderr())
			prog.step("decoding %s", args[0])
			m, _, err := onnx.DecodeFile(args[0], onnx.DecodeOptions{KeepFunctions: keepFunctions})
			if err != nil {
				return err
			}
			defer m.Close()
			prog.step("running -O%d", level)
			opts := tfc.Options{Level: level, Passes: passSpec, VerifyEach: verifyEach, Explain: explain, Target: target}
			var before *ir.Model
			if strings.HasSuffix(strings.ToLower(reportPath), ".html") {
				before = m.CloneStructure() // shares the weights; the page shows the graph before and after
			}
			if printIRAfter != "" {
				opts.PrintIRAfter, opts.PrintIRTo = printIRAfter, cmd.OutOrStdout()
			}
			res, err := tfc.Compile(cmd.Context(), m, opts)
			if err != nil {
				return fmt.Errorf("%s: %w", args[0], err)
			}
			if explain {
				printExplanations(cmd.OutOrStdout(), res.Report)
			}
			prog.step("writing %s", out)
			mode := externalData
			if mode == "auto" {
				mode = ""
			}
			if err := onnx.EncodeFile(res.Model, out, onnx.EncodeOptions{ExternalData: mode}); err != nil {
				return err
			}
			switch {
			case reportPath == "":
			case before != nil:
				if err := report.WriteHTMLFile(reportPath, before, res.Model, res.Report.Report); err != nil {
					return err
				}
			default:
				if err := writeJSONFile(reportPath, res.Report); err != nil {
					return err
				}
			}
			prog.done()
			return nil
		},
	}
	f := cmd.Flags()
	f.StringVarP(&out, "output", "o", "", "where to write the compiled model (required)")
	f.IntVarP(&level, "opt-level", "O", 2, "optimization level 0..3 (write -O0 ... -O3)")
	f.StringVar(&reportPath, "report", "", "write a report of what each pass did: FILE.json, or FILE.html (one self-contained page with the graph before and after)")
	f.StringVar(&target, "target", "onnx", "what OUT is for: onnx (tfc ops; tfc runs them), ort (only ops ONNX Runtime runs), cpu (as onnx)")
	f.BoolVar(&verifyEach, "verify-each", false, "verify the IR after every pass")
	f.BoolVar(&keepFunctions, "keep-functions", false, "keep model-local functions instead of inlining them")
	f.StringVar(&externalData, "external-data", "auto", "where tensors go: auto (external only above 2 GiB), always, never")
	f.StringVar(&passSpec, "passes", "", "run these passes instead of the level's pipeline, e.g. 'canonicalize,infer-shapes'")
	f.BoolVar(&explain, "explain", false, "say why each pattern that reached its anchor did not match")
	f.StringVar(&printIRAfter, "print-ir-after", "", "print the IR text after this pass ('all' for every pass) to stdout")
	return cmd
}

// sameFile reports whether two paths name the same existing file.
func sameFile(a, b string) (bool, error) {
	sa, err := os.Stat(a)
	if err != nil {
		return false, err
	}
	sb, err := os.Stat(b)
	if err != nil {
		return false, err
	}
	return os.SameFile(sa, sb), nil
}

// writeJSONFile writes v as indented JSON through a temporary file and a
// rename, like every file tfc writes.
func writeJSONFile(path string, v any) error {
	data, err := json.MarshalIndent(v, "", "  ")
	if err != nil {
		return err
	}
	return atomicfile.Write(path, func(w io.Writer) error {
		_, err := w.Write(append(data, '\n'))
		return err
	})
}

// printExplanations lists why patterns did not match, one line each.
func printExplanations(w io.Writer, rep *tfc.Report) {
	if rep == nil || rep.Report == nil || len(rep.Explain) == 0 {
		fmt.Fprintln(w, "explain: every pattern that reached its anchor matched")
		return
	}
	for _, e := range rep.Explain {
		fmt.Fprintf(w, "explain: %s\n", e)
	}
}
