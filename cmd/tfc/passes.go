package main

import (
	"fmt"
	"strings"

	"github.com/spf13/cobra"
	"github.com/tfc-compiler/tfc/passes"
)

func newPassesCmd() *cobra.Command {
	var markdown bool
	cmd := &cobra.Command{
		Use:   "passes",
		Short: "List the passes, their options and the -O pipelines",
		Long: `passes prints every registered pass with its summary, whether it keeps the
model's semantics, and its options with defaults, then the pass list of each
-O level. The same table drives --passes and docs/passes.md.`,
		Args: exactArgs(0, "no arguments"),
		RunE: func(cmd *cobra.Command, args []string) error {
			w := cmd.OutOrStdout()
			if markdown {
				_, err := fmt.Fprint(w, passes.Markdown())
				return err
			}
			for _, p := range passes.All() {
				fmt.Fprintf(w, "%s  (%s)\n    %s\n", p.Name, p.Semantics, p.Summary)
				for _, o := range p.Options {
					fmt.Fprintf(w, "    %-16s %-6s default %-8v %s\n", o.Name, o.Kind, o.Default, o.Help)
				}
			}
			fmt.Fprintln(w)
			for level := 0; ; level++ {
				names, err := passes.LevelPasses(level)
				if err != nil {
					break
				}
				list := strings.Join(names, ", ")
				if list == "" {
					list = "(none: decode, verify, encode)"
				}
				fmt.Fprintf(w, "-O%d  %s\n", level, list)
			}
			return nil
		},
	}
	cmd.Flags().BoolVar(&markdown, "markdown", false, "print the reference as Markdown (docs/passes.md)")
	return cmd
}
