// Package ir is tfc's intermediate representation: models, graphs, SSA
// values with use lists and symbolic shapes, nodes with domain, op type and
// attributes, nested graphs, and constants that are zero-copy views of the
// loaded file. It also owns the op table (arity, attributes, type and shape
// rules), the verifier, a builder for tests, and the deterministic text
// form with its parser.
//
// ir imports nothing else of tfc's; everything else imports ir. It must not
// know about protobuf, files on disk, passes or backends.
package ir
