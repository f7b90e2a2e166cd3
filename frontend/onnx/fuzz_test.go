package onnx

import (
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/tfc-compiler/tfc/ir"
)

// FuzzDecode feeds arbitrary bytes to the decoder. It must never panic (a
// recovered panic surfaces as an "internal error"), and whatever it
// accepts must verify, re-encode, and decode again to the same IR text.
//
//	go test -run='^$' -fuzz=FuzzDecode -fuzztime=10m ./frontend/onnx
func FuzzDecode(f *testing.F) {
	var seeds []string
	seeds, _ = filepath.Glob(filepath.Join("..", "..", "testdata", "models", "*", "model.onnx"))
	dir := os.Getenv("TFC_ONNX_NODE_TESTS")
	if dir == "" {
		dir = filepath.Join("..", "..", "..", "shared", "onnx-node")
	}
	nodeSeeds, _ := filepath.Glob(filepath.Join(dir, "*", "model.onnx"))
	seeds = append(seeds, nodeSeeds...)
	for _, p := range seeds {
		if data, err := os.ReadFile(p); err == nil {
			f.Add(data)
		}
	}
	f.Add(marshal(f, functionModel()))
	f.Add(marshal(f, everythingModel()))
	f.Add(marshal(f, model(nestedIf(3))))
	f.Fuzz(func(t *testing.T, data []byte) {
		// Run the check with a watchdog: an input that takes this long on
		// a model of fuzz size is a hang, reported with the stacks.
		result := make(chan string, 1)
		go func() { result <- checkDecodeRoundTrip(data) }()
		select {
		case msg := <-result:
			if msg != "" {
				t.Fatal(msg)
			}
		case <-time.After(fuzzHangLimit):
			buf := make([]byte, 1<<20)
			n := runtime.Stack(buf, true)
			t.Fatalf("decode/encode of a %d-byte input took over %v (a hang):\n%s", len(data), fuzzHangLimit, buf[:n])
		}
	})
}

const fuzzHangLimit = 20 * time.Second

// checkDecodeRoundTrip returns "" or what went wrong.
func checkDecodeRoundTrip(data []byte) string {
	for _, keep := range []bool{false, true} {
		opts := DecodeOptions{KeepFunctions: keep}
		m, _, err := Decode(data, opts)
		if err != nil {
			if strings.Contains(err.Error(), "internal error") {
				return fmt.Sprintf("decoder panicked: %v", err)
			}
			continue
		}
		if err := ir.Verify(m); err != nil {
			return fmt.Sprintf("KeepFunctions=%v: decoded model does not verify: %v", keep, err)
		}
		enc, err := Encode(m)
		if err != nil {
			if strings.Contains(err.Error(), "over protobuf's 2 GiB limit") {
				continue
			}
			return fmt.Sprintf("KeepFunctions=%v: decoded model does not re-encode: %v", keep, err)
		}
		m2, _, err := Decode(enc, opts)
		if err != nil {
			return fmt.Sprintf("KeepFunctions=%v: re-encoded model does not decode: %v", keep, err)
		}
		if p1, p2 := ir.Print(m), ir.Print(m2); p1 != p2 {
			return fmt.Sprintf("KeepFunctions=%v: round trip changes the IR text:\n%s", keep, firstDiff(p1, p2))
		}
	}
	return ""
}
