// Package tfc is the embedded API of the tfc compiler: load an ONNX model,
// run a pass pipeline over it, and write the result. It is a thin layer
// over ir (the graph), frontend/onnx (the file format) and passes (the
// pipeline); only this package and cmd/tfc tie them together.
//
//	m, info, err := tfc.Load("model.onnx")
//	res, err := tfc.Compile(ctx, m, tfc.Options{Level: 2})
//	err = tfc.Save(res.Model, "model.opt.onnx")
package tfc

import (
	"context"
	"fmt"
	"io"

	"github.com/tfc-compiler/tfc/frontend/onnx"
	"github.com/tfc-compiler/tfc/ir"
	"github.com/tfc-compiler/tfc/passes"
)

// Version is tfc's release version, printed by `tfc version`.
const Version = "0.1.0-dev"

// Load decodes an ONNX model file. Model-local functions are inlined.
// Weights stay memory-mapped: call Close on the model when done.
func Load(path string) (*ir.Model, *onnx.Info, error) {
	return onnx.DecodeFile(path, onnx.DecodeOptions{})
}

// Save writes a model to path atomically (temporary file, then rename);
// tensors move to an external data file only when the model would not fit
// in one protobuf message (2 GiB).
func Save(m *ir.Model, path string) error {
	return onnx.EncodeFile(m, path, onnx.EncodeOptions{})
}

// Options select what Compile does.
type Options struct {
	// Level is the optimization level, 0 to 3 (see DESIGN.md and
	// docs/passes.md): 0 decodes, verifies and encodes only.
	Level int
	// Passes, when not empty, replaces the level's pipeline with an
	// explicit one: pass names separated by commas, options in braces,
	// e.g. "canonicalize{cse=false},infer-shapes" (docs/passes.md).
	Passes string
	// VerifyEach runs ir.Verify after every pass (Compile always verifies
	// its input and its result).
	VerifyEach bool
	// Explain collects, for every pattern that reached its anchor but did
	// not match, the first failing condition (Report.Explain).
	Explain bool
	// PrintIRAfter ("all" or a pass name) writes the IR text after that
	// pass to PrintIRTo.
	PrintIRAfter string
	PrintIRTo    io.Writer
	// Target is what the written model is for: "onnx" (default; tfc ops
	// stay, tfc runs them) or "ort" (every tfc op is lowered to ops ONNX
	// Runtime runs, by the export-ort pass at the end of the pipeline).
	Target string
}

// Result is the outcome of Compile.
type Result struct {
	Model  *ir.Model
	Report *Report
}

// Report says what Compile did: the pipeline report (per-pass timing,
// node counts, rewrites by rule, fused-op counts, explanations) plus the
// level and the whole run's node counts.
type Report struct {
	Level       int `json:"level"`
	NodesBefore int `json:"nodes_before"`
	NodesAfter  int `json:"nodes_after"`
	*passes.Report
}

// Compile verifies m, runs the pipeline of the requested level (or the
// explicit Passes) over it in place, and verifies the result. The returned
// Result holds the same model.
func Compile(ctx context.Context, m *ir.Model, opts Options) (*Result, error) {
	var (
		pipe *passes.Pipeline
		err  error
	)
	if opts.Passes != "" {
		pipe, err = passes.ParseSpec(opts.Passes)
	} else {
		if opts.Level < 0 || opts.Level > 3 {
			return nil, fmt.Errorf("optimization level %d is out of range 0..3", opts.Level)
		}
		pipe, err = passes.ForLevel(opts.Level)
	}
	if err != nil {
		return nil, err
	}
	if err := passes.AppendTarget(pipe, opts.Target); err != nil {
		return nil, err
	}
	pipe.VerifyEach = opts.VerifyEach
	pipe.PrintIRAfter, pipe.PrintIRTo = opts.PrintIRAfter, opts.PrintIRTo
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	if err := ir.Verify(m); err != nil {
		return nil, fmt.Errorf("input model does not verify: %w", err)
	}
	pctx := &passes.Context{Ctx: ctx}
	if opts.Explain {
		pctx.Explain = &passes.Explanations{}
	}
	rep := &Report{Level: opts.Level, NodesBefore: countNodes(m.Graph)}
	rep.Report, err = pipe.Run(pctx, m)
	if err != nil {
		return nil, err
	}
	if err := ir.Verify(m); err != nil {
		return nil, fmt.Errorf("compiled model does not verify (a tfc bug; please report it with this model): %w", err)
	}
	rep.NodesAfter = countNodes(m.Graph)
	return &Result{Model: m, Report: rep}, nil
}

// countNodes counts the nodes of g and its nested graphs.
func countNodes(g *ir.Graph) int {
	n := 0
	g.Walk(func(*ir.Node) { n++ })
	return n
}
