//go:build !amd64 || purego

package vmath

// useAsm is always false without the amd64 assembly.
var useAsm = false

func expAVX2(dst, src *float32, n int)                       { panic("vmath: no assembly") }
func erfAVX2(dst, src *float32, n int)                       { panic("vmath: no assembly") }
func tanhAVX2(dst, src *float32, n int)                      { panic("vmath: no assembly") }
func geluAVX2(dst, src *float32, n int)                      { panic("vmath: no assembly") }
func geluTanhAVX2(dst, src *float32, n int)                  { panic("vmath: no assembly") }
func biasGeluAVX2(dst, x, bias *float32, n int)              { panic("vmath: no assembly") }
func biasGeluTanhAVX2(dst, x, bias *float32, n int)          { panic("vmath: no assembly") }
func maxScaledAVX2(p *float32, n int, scale float32) float32 { panic("vmath: no assembly") }
func expSumAVX2(p *float32, n int, scale, m float32) float32 { panic("vmath: no assembly") }
func scaleAVX2(p *float32, n int, s float32)                 { panic("vmath: no assembly") }
