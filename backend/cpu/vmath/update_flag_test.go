package vmath

import "flag"

// Defined so that `go test ./... -update` works across the module; this
// package has no generated files.
var _ = flag.Bool("update", false, "no generated files in this package")
