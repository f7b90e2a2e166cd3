//go:build !amd64 || purego

package vmath

func sumAVX2(p *float32, n int) float32                             { panic("vmath: no assembly") }
func addSumAVX2(s, x, skip, bias *float32, n int) float32           { panic("vmath: no assembly") }
func devStatsAVX2(s *float32, n int, m0 float32) (float32, float32) { panic("vmath: no assembly") }
func applyAVX2(y, s, gamma, beta *float32, n int, m0, inv, shift float32) {
	panic("vmath: no assembly")
}
