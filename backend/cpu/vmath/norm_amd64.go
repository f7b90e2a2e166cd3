//go:build amd64 && !purego

package vmath

// The norm row kernels in norm_amd64.s; each handles n >= 1 and touches
// nothing outside its slices (masked tails). norm.go's Go twins state
// what each computes.

//go:noescape
func sumAVX2(p *float32, n int) float32

//go:noescape
func addSumAVX2(s, x, skip, bias *float32, n int) float32

//go:noescape
func devStatsAVX2(s *float32, n int, m0 float32) (sumD, sumD2 float32)

//go:noescape
func applyAVX2(y, s, gamma, beta *float32, n int, m0, inv, shift float32)
