package main

import (
	"encoding/json"
	"fmt"

	"github.com/spf13/cobra"
	"github.com/tfc-compiler/tfc"
	"github.com/tfc-compiler/tfc/frontend/onnx"
)

func newInspectCmd() *cobra.Command {
	var asJSON bool
	cmd := &cobra.Command{
		Use:   "inspect MODEL",
		Short: "Summarize an ONNX model: inputs, outputs, ops, parameters",
		Long: `inspect decodes MODEL and prints its producer, IR version, opset imports,
inputs and outputs with their (symbolic) shapes, the op histogram by domain,
the parameter count and bytes by element type, external-data files, and
warnings (ops tfc does not know, opsets newer than tfc knows).

Counts are of the file as stored: model-local functions are not inlined, so
node_count is the number of nodes in the main graph of the file.

With --json the same facts are printed as one JSON object with at least the
keys ir_version, opsets, inputs, outputs, node_count, op_counts (keyed
"domain::Op", empty domain for ai.onnx), parameters and parameter_bytes.`,
		Example: `  tfc inspect testdata/models/bert-ts-eager-op17/model.onnx
  tfc inspect model.onnx --json | jq .op_counts`,
		Args: exactArgs(1, "one model file"),
		RunE: func(cmd *cobra.Command, args []string) error {
			m, info, err := onnx.DecodeFile(args[0], onnx.DecodeOptions{KeepFunctions: true})
			if err != nil {
				return err
			}
			defer m.Close()
			s := tfc.Inspect(m, info)
			if asJSON {
				enc := json.NewEncoder(cmd.OutOrStdout())
				enc.SetIndent("", "  ")
				return enc.Encode(s)
			}
			s.WriteText(cmd.OutOrStdout())
			return nil
		},
	}
	cmd.Flags().BoolVar(&asJSON, "json", false, "print the summary as JSON")
	return cmd
}

func newVersionCmd() *cobra.Command {
	return &cobra.Command{
		Use:   "version",
		Short: "Print tfc's version",
		Args:  exactArgs(0, "no arguments"),
		RunE: func(cmd *cobra.Command, args []string) error {
			_, err := fmt.Fprintf(cmd.OutOrStdout(), "tfc %s\n", tfc.Version)
			return err
		},
	}
}
