package ir

import "flag"

// -update regenerates generated files (docs/shape-inference.md here); every
// test package defines it so that `go test ./... -update` works across the
// module.
var _ = flag.Bool("update", false, "rewrite generated files (docs/shape-inference.md)")
