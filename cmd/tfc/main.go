// Command tfc is the command-line front end of the tfc compiler: inspect
// ONNX models, compile them through tfc's pass pipelines, and (as the
// backends land) run and benchmark them.
//
// Exit codes: 0 success, 1 a check failed (e.g. a numerical mismatch), 2 bad
// usage or bad input. Errors are one sentence naming the file, node or flag;
// --debug adds detail.
package main

import (
	"errors"
	"fmt"
	"io"
	"os"

	"github.com/spf13/cobra"
)

// Exit codes of the CLI contract (DESIGN.md).
const (
	exitOK          = 0
	exitCheckFailed = 1
	exitBadInput    = 2
)

// checkFailedError marks a failure that is a finding (a mismatch), not a
// usage or input problem: it exits 1.
type checkFailedError struct{ msg string }

func (e *checkFailedError) Error() string { return e.msg }

func main() {
	os.Exit(run(os.Args[1:], os.Stdout, os.Stderr))
}

// run executes the CLI with args and returns the exit code; tests call it
// directly.
func run(args []string, stdout, stderr io.Writer) int {
	root := newRootCmd(stdout, stderr)
	root.SetArgs(args)
	err := root.Execute()
	if err == nil {
		return exitOK
	}
	fmt.Fprintf(stderr, "tfc: %s\n", err)
	var cf *checkFailedError
	if errors.As(err, &cf) {
		return exitCheckFailed
	}
	return exitBadInput
}

var debug bool

func newRootCmd(stdout, stderr io.Writer) *cobra.Command {
	root := &cobra.Command{
		Use:   "tfc",
		Short: "tfc compiles ONNX transformer models into smaller, faster ones",
		Long: `tfc reads an ONNX model, lowers it into its own IR, runs a pipeline of
passes over it, and writes an optimized ONNX model (or, as the backends land,
runs it on the CPU).

Start with:
  tfc inspect model.onnx            what is in the model
  tfc compile model.onnx -o out.onnx -O0
                                    decode, verify and re-encode losslessly

Exit codes: 0 success, 1 a check failed, 2 bad usage or bad input.`,
		SilenceErrors: true,
		SilenceUsage:  true,
	}
	root.SetOut(stdout)
	root.SetErr(stderr)
	root.PersistentFlags().BoolVar(&debug, "debug", false, "print more detail with errors")
	// Flag parsing errors are usage errors: say which flag and how to get help.
	root.SetFlagErrorFunc(func(cmd *cobra.Command, err error) error {
		return fmt.Errorf("%s (see 'tfc %s --help')", err, cmd.Name())
	})
	root.AddCommand(newInspectCmd(), newCompileCmd(), newRunCmd(), newBenchCmd(), newPassesCmd(), newVersionCmd())
	return root
}

// exactArgs is cobra.ExactArgs with an error that teaches.
func exactArgs(n int, what string) cobra.PositionalArgs {
	return func(cmd *cobra.Command, args []string) error {
		if len(args) != n {
			return fmt.Errorf("%s expects %s, got %d arguments (see 'tfc %s --help')", cmd.CommandPath(), what, len(args), cmd.Name())
		}
		return nil
	}
}
