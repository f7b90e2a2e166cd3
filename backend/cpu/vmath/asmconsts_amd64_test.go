//go:build amd64 && !purego

package vmath

import (
	"os"
	"regexp"
	"strconv"
	"testing"
)

// TestAsmConstOffsets checks that the "#define C_<name> <offset>(R8)"
// lines of the assembly address the rows of vconst that asmConsts gives
// those names, and that every constant is defined once.
func TestAsmConstOffsets(t *testing.T) {
	src, err := os.ReadFile("vmath_amd64.s")
	if err != nil {
		t.Fatal(err)
	}
	defs := regexp.MustCompile(`(?m)^#define C_(\w+) (\d+)\(R8\)$`).FindAllStringSubmatch(string(src), -1)
	index := map[string]int{}
	for i, c := range asmConsts {
		if _, dup := index[c.name]; dup {
			t.Fatalf("asmConsts names %s twice", c.name)
		}
		index[c.name] = i
	}
	seen := map[string]bool{}
	for _, d := range defs {
		name := d[1]
		off, _ := strconv.Atoi(d[2])
		i, ok := index[name]
		if !ok {
			t.Errorf("vmath_amd64.s defines C_%s, which asmConsts lacks", name)
			continue
		}
		if off != 32*i {
			t.Errorf("C_%s is at offset %d, asmConsts has it in row %d (offset %d)", name, off, i, 32*i)
		}
		if seen[name] {
			t.Errorf("C_%s defined twice", name)
		}
		seen[name] = true
	}
	for _, c := range asmConsts {
		if !seen[c.name] {
			t.Errorf("asmConsts has %s, but vmath_amd64.s does not define C_%s", c.name, c.name)
		}
	}
}
