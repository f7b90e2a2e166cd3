package passes

import "github.com/tfc-compiler/tfc/ir"

func init() {
	register(&Pass{
		Name:      "infer-shapes",
		Summary:   "infer element types and symbolic shapes of every value with ir.InferShapes, merged with the declared ones",
		Semantics: Exact,
		// Inference rewrites nothing, so it reports no rewrite counts;
		// ir.InferStats is for the CLI's inspect command.
		Run: func(_ *Context, m *ir.Model, _ Values) (Stats, error) {
			_, err := ir.InferShapes(m)
			return Stats{}, err
		},
	})
}
