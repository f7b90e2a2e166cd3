package passes

import (
	"fmt"
	"slices"
	"sort"
)

// registry is the table of passes, filled by register calls in each pass's
// file. Order in the table does not matter; pipelines and constraints do.
var registry = map[string]*Pass{}

// register adds a pass at init time. A duplicate name or a bad option
// default is a programming error caught by every test run.
func register(p *Pass) {
	if _, dup := registry[p.Name]; dup {
		panic(fmt.Sprintf("passes: pass %q registered twice", p.Name))
	}
	for _, o := range p.Options {
		if err := o.checkDefault(); err != nil {
			panic(fmt.Sprintf("passes: pass %q: %v", p.Name, err))
		}
	}
	registry[p.Name] = p
}

// Lookup returns a registered pass by name.
func Lookup(name string) (*Pass, bool) {
	p, ok := registry[name]
	return p, ok
}

// All returns the registered passes sorted by name.
func All() []*Pass {
	out := make([]*Pass, 0, len(registry))
	for _, p := range registry {
		out = append(out, p)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Name < out[j].Name })
	return out
}

// Constraint says that, when both passes are in a pipeline, the first
// occurrence of Before must come before the first occurrence of After.
type Constraint struct {
	Before, After string
	Reason        string
}

// Constraints are checked whenever a pipeline is built. They may name
// planned passes (see Planned), so that the order is settled before the
// pass exists.
var Constraints = []Constraint{
	{"infer-shapes", "fuse-layernorm", "fusion predicates read shapes (the normalized axis must be the last one)"},
	{"infer-shapes", "fuse-gelu", "fusion predicates read element types and shapes"},
	{"infer-shapes", "fuse-attention", "fusion predicates read head counts and sequence dimensions from shapes"},
	{"fuse-layernorm", "fuse-skip-layernorm", "SkipLayerNorm is built from a fused LayerNorm and the residual Add before it"},
	{"fuse-gelu", "fuse-bias", "BiasGelu is built from a fused Gelu and the bias Add before it"},
	{"fuse-attention", "remove-padding", "padding removal packs tokens around fused Attention, which takes per-sequence lengths"},
}

// PlannedPass names a pass that pipelines will include once it exists.
type PlannedPass struct {
	Name    string
	Level   int // the -O level whose pipeline will include it; 0 means only by name
	Summary string
}

// Planned lists passes of issue 5 and DESIGN.md that are not written yet.
// They are documented but appear in no pipeline until registered.
var Planned = []PlannedPass{
	{"drop-attention", 0, "LLM-Drop: drop the k most redundant attention blocks (changes the model)"},
	{"sink-cache", 0, "StreamingLLM sink + window KV cache (changes the model)"},
}

// checkConstraintNames reports constraints naming passes that are neither
// registered nor planned, which would silently never be checked.
func checkConstraintNames() error {
	known := func(name string) bool {
		if _, ok := registry[name]; ok {
			return true
		}
		return slices.ContainsFunc(Planned, func(p PlannedPass) bool { return p.Name == name })
	}
	for _, c := range Constraints {
		for _, name := range []string{c.Before, c.After} {
			if !known(name) {
				return fmt.Errorf("ordering constraint %s before %s names unknown pass %q", c.Before, c.After, name)
			}
		}
	}
	return nil
}

// checkOrder checks a list of pass names against Constraints.
func checkOrder(names []string) error {
	for _, c := range Constraints {
		b, a := slices.Index(names, c.Before), slices.Index(names, c.After)
		if b >= 0 && a >= 0 && b > a {
			return fmt.Errorf("pass %q must run before %q: %s", c.Before, c.After, c.Reason)
		}
	}
	return nil
}

// levels are the pipelines of -O0 to -O3, registered passes only (see
// Planned for what each level will gain). Each is a short list with a
// reason per step.
var levels = [][]string{
	0: {}, // decode, verify, encode only
	1: {
		"canonicalize", // fold constants and shape arithmetic, drop no-ops, DCE, CSE
		"infer-shapes", // symbolic shapes for every value, needed by later passes and backends
	},
	2: {
		"canonicalize",
		"infer-shapes",
		"fuse-layernorm",      // LayerNorm/RMSNorm (standard and decomposed) into tfc ops
		"fuse-gelu",           // Gelu (erf and tanh forms) into tfc.Gelu
		"fuse-skip-layernorm", // residual Add + LayerNorm into tfc.SkipLayerNorm
		"fuse-bias",           // bias Add into BiasGelu and SkipLayerNorm
		"fuse-attention",      // scaled dot-product attention into tfc.Attention
		"canonicalize",        // drop the head transposes and shape arithmetic the fusions left dead
	},
	3: {
		"canonicalize",
		"infer-shapes",
		"fuse-layernorm",
		"fuse-gelu",
		"fuse-skip-layernorm",
		"fuse-bias",
		"fuse-attention",
		"canonicalize",
		"remove-padding", // pack valid tokens once after the embeddings, unpack at the outputs
		"canonicalize",   // drop the padded shape arithmetic the packing left dead
	},
}

// LevelPasses returns the names of the passes of -O<level>.
func LevelPasses(level int) ([]string, error) {
	if level < 0 || level >= len(levels) {
		return nil, fmt.Errorf("optimization level -O%d does not exist (use -O0 to -O%d)", level, len(levels)-1)
	}
	return slices.Clone(levels[level]), nil
}
