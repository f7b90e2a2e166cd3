package main

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"

	"github.com/spf13/cobra"
	"github.com/tfc-compiler/tfc"
	"github.com/tfc-compiler/tfc/frontend/onnx"
)

func newCompileCmd() *cobra.Command {
	var (
		out           string
		level         int
		reportPath    string
		verifyEach    bool
		keepFunctions bool
		externalData  string
	)
	cmd := &cobra.Command{
		Use:   "compile MODEL -o OUT",
		Short: "Optimize an ONNX model and write the result",
		Long: `compile decodes MODEL into tfc's IR, verifies it, runs the pass pipeline of
the chosen level, verifies the result, and writes it to OUT as ONNX.

Levels:
  -O0  decode, verify, encode: lossless (re-decoding OUT gives the same IR)
  -O1  + canonicalize, infer-shapes         (passes land with issue 5)
  -O2  + fusions (default)                  (passes land with issue 5)
  -O3  + padding removal                    (lands with issue 6)
Today every level runs an empty pipeline, so OUT equals MODEL's IR.

OUT is written to a temporary file next to it and renamed into place, so a
failure never leaves a half-written file. Tensors go to an external data file
(OUT.data) only when the model would exceed protobuf's 2 GiB limit, unless
--external-data says otherwise.`,
		Example: `  tfc compile model.onnx -o model.opt.onnx -O0
  tfc compile model.onnx -o out.onnx --report report.json`,
		Args: exactArgs(1, "one model file"),
		RunE: func(cmd *cobra.Command, args []string) error {
			if out == "" {
				return fmt.Errorf("compile needs an output file: -o OUT (see 'tfc compile --help')")
			}
			if level < 0 || level > 3 {
				return fmt.Errorf("-O%d is not a level: use -O0, -O1, -O2 or -O3", level)
			}
			switch externalData {
			case "auto", "always", "never":
			default:
				return fmt.Errorf("--external-data %q is not one of auto, always, never", externalData)
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
			res, err := tfc.Compile(cmd.Context(), m, tfc.Options{Level: level, VerifyEach: verifyEach})
			if err != nil {
				return fmt.Errorf("%s: %w", args[0], err)
			}
			prog.step("writing %s", out)
			mode := externalData
			if mode == "auto" {
				mode = ""
			}
			if err := onnx.EncodeFile(res.Model, out, onnx.EncodeOptions{ExternalData: mode}); err != nil {
				return err
			}
			if reportPath != "" {
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
	f.StringVar(&reportPath, "report", "", "write a JSON report of what each pass did to this file")
	f.BoolVar(&verifyEach, "verify-each", false, "verify the IR after every pass")
	f.BoolVar(&keepFunctions, "keep-functions", false, "keep model-local functions instead of inlining them")
	f.StringVar(&externalData, "external-data", "auto", "where tensors go: auto (external only above 2 GiB), always, never")
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
	tmp, err := os.CreateTemp(filepath.Dir(path), "."+filepath.Base(path)+".tmp*")
	if err != nil {
		return fmt.Errorf("cannot write %s: %w", path, err)
	}
	defer os.Remove(tmp.Name())
	if _, err := tmp.Write(append(data, '\n')); err != nil {
		tmp.Close()
		return fmt.Errorf("cannot write %s: %w", path, err)
	}
	if err := tmp.Close(); err != nil {
		return fmt.Errorf("cannot write %s: %w", path, err)
	}
	if err := os.Rename(tmp.Name(), path); err != nil {
		return fmt.Errorf("cannot write %s: %w", path, err)
	}
	return nil
}
