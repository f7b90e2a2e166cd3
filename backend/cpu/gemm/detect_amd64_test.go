//go:build amd64 && !purego && linux

package gemm

import (
	"os"
	"strings"
	"testing"
)

// TestDetectMatchesProcCPUInfo checks the CPUID/XGETBV detection against
// the kernel's view of the CPU: avx2 and fma in /proc/cpuinfo's flags
// (Linux lists them only when the OS also enables YMM state).
func TestDetectMatchesProcCPUInfo(t *testing.T) {
	data, err := os.ReadFile("/proc/cpuinfo")
	if err != nil {
		t.Skipf("cannot read /proc/cpuinfo: %v", err)
	}
	var flags []string
	for _, line := range strings.Split(string(data), "\n") {
		if name, value, ok := strings.Cut(line, ":"); ok && strings.TrimSpace(name) == "flags" {
			flags = strings.Fields(value)
			break
		}
	}
	if flags == nil {
		t.Skip("no flags line in /proc/cpuinfo")
	}
	has := func(f string) bool {
		for _, x := range flags {
			if x == f {
				return true
			}
		}
		return false
	}
	want := has("avx2") && has("fma") && has("avx")
	if got := detectAVX2FMA(); got != want {
		t.Fatalf("detectAVX2FMA() = %v, /proc/cpuinfo says avx2+fma+avx = %v", got, want)
	}
	if got, wantName := KernelName(), map[bool]string{true: "avx2-fma-6x16", false: "go-6x16"}[want]; got != wantName {
		t.Fatalf("KernelName() = %q, want %q", got, wantName)
	}
}
