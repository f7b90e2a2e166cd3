package cpu

import (
	"flag"
	"github.com/tfc-compiler/tfc/ir"
	"os"
	"testing"
)

// TestMain turns on poisonOverwrite for every test of the package (unit,
// conformance and corpus tests alike): buffers from allocOverwrite are
// filled with NaN / -1 / true, so a kernel that claims to write every
// element but leaves some unwritten produces garbage and fails its
// comparison with the reference. Benchmarks (-bench) run without it, so
// the fill is not part of what they time; TFC_NO_POISON=1 turns it off
// for tests too.
func TestMain(m *testing.M) {
	flag.Parse()
	bench := flag.Lookup("test.bench")
	poisonOverwrite = os.Getenv("TFC_NO_POISON") == "" && (bench == nil || bench.Value.String() == "")
	os.Exit(m.Run())
}

// TestAllocOverwriteSkipsClearing: alloc always hands out zeros, while
// allocOverwrite leaves a reused buffer as it was (or poisons it under
// test), which is what makes poisoning catch kernels relying on zeros.
func TestAllocOverwriteSkipsClearing(t *testing.T) {
	defer func(p bool) { poisonOverwrite = p }(poisonOverwrite)
	for _, poison := range []bool{false, true} {
		poisonOverwrite = poison
		r := testState(1)
		a := r.mustAlloc(ir.Float, []int{4})
		copy(f32(a), []float32{1, 2, 3, 4})
		r.retain(a)
		r.release(a)
		b := r.mustAllocOverwrite(ir.Float, []int{4})
		got := f32(b)
		for i, v := range got {
			switch {
			case poison && v == v:
				t.Fatalf("poisoned reuse: element %d = %v, want NaN", i, v)
			case !poison && v != float32(i+1):
				t.Fatalf("unpoisoned reuse: element %d = %v, want the old %v", i, v, i+1)
			}
		}
		r.release(b)
		c := r.mustAlloc(ir.Float, []int{4})
		for i, v := range f32(c) {
			if v != 0 {
				t.Fatalf("alloc after reuse: element %d = %v, want 0", i, v)
			}
		}
	}
}
