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
	"time"

	"github.com/tfc-compiler/tfc/frontend/onnx"
	"github.com/tfc-compiler/tfc/ir"
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
	// Level is the optimization level, 0 to 3 (see DESIGN.md): 0 decodes,
	// verifies and encodes only.
	Level int
	// VerifyEach runs ir.Verify after every pass (Compile always verifies
	// its input and its result).
	VerifyEach bool
}

// Result is the outcome of Compile.
type Result struct {
	Model  *ir.Model
	Report *Report
}

// Report says what Compile did.
type Report struct {
	Level       int          `json:"level"`
	NodesBefore int          `json:"nodes_before"`
	NodesAfter  int          `json:"nodes_after"`
	Passes      []PassReport `json:"passes"`
	TotalMS     float64      `json:"total_ms"`
}

// PassReport is one pass's line in a Report.
type PassReport struct {
	Name        string         `json:"name"`
	MS          float64        `json:"ms"`
	NodesBefore int            `json:"nodes_before"`
	NodesAfter  int            `json:"nodes_after"`
	Rewrites    map[string]int `json:"rewrites"`
}

// Compile verifies m and runs the pipeline of the requested level over it,
// in place; the returned Result holds the same model. At this stage of tfc
// every level's pipeline is empty (the passes land with issue 5), so
// Compile verifies and reports; levels above 0 are accepted and say so in
// the report by listing no passes.
func Compile(ctx context.Context, m *ir.Model, opts Options) (*Result, error) {
	if opts.Level < 0 || opts.Level > 3 {
		return nil, fmt.Errorf("optimization level %d is out of range 0..3", opts.Level)
	}
	start := time.Now()
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	if err := ir.Verify(m); err != nil {
		return nil, fmt.Errorf("input model does not verify: %w", err)
	}
	rep := &Report{Level: opts.Level, NodesBefore: countNodes(m.Graph), Passes: []PassReport{}}
	rep.NodesAfter = countNodes(m.Graph)
	rep.TotalMS = float64(time.Since(start).Microseconds()) / 1000
	return &Result{Model: m, Report: rep}, nil
}

// countNodes counts the nodes of g and its nested graphs.
func countNodes(g *ir.Graph) int {
	n := 0
	g.Walk(func(*ir.Node) { n++ })
	return n
}
