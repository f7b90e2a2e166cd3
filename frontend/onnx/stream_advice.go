package onnx

// Why advice: decoding a memory-mapped model touches only the protobuf
// field headers (weights are skipped, see shadow.go), yet every page fault
// made the kernel read ahead up to its readahead window (128 KiB or more)
// of weights nobody looks at, so a cold 1.3 GB model took seconds to
// inspect. The mapping is advised random while the wire format is walked,
// then back to normal for whoever reads the weights; the streaming encoder
// asks for the next tensor's pages ahead of writing it.

// access is a hint about how memory will be read (madvise's advice).
type access uint8

const (
	accessNormal     access = iota // default readahead
	accessRandom                   // no readahead: only the faulted page
	accessSequential               // aggressive readahead, pages dropped sooner
	accessWillNeed                 // start reading the range now
)
