package cpu

// Run-time side of the static memory plan (memplan.go): the arena of slot
// buffers, handing slots out to kernels' allocations, and the safety net
// for kernels that alias in ways the plan does not know.

import (
	"fmt"
	"unsafe"

	"github.com/tfc-compiler/tfc/ir"
)

// arena holds one growable buffer per slot of a memory plan. A Run takes
// one from its Executable's free list and gives it back when it returns,
// so buffers (and their grown capacity) are reused across Runs while
// concurrent Runs each have their own.
type arena struct {
	slots []slotBuf
}

// slotBuf is one slot's buffer: a []uint64 backing (no pointers, so the
// GC need not scan it) whose usable part starts 32-byte aligned, for AVX
// loads of float32 data.
type slotBuf struct {
	backing []uint64
	base    unsafe.Pointer
	size    int64 // usable bytes from base
}

const slotAlign = 32

// ensure makes the buffer hold at least n bytes. Growing drops the old
// contents: a slot is only grown when its previous values are dead.
func (b *slotBuf) ensure(n int64) {
	if n <= b.size {
		return
	}
	n = max(n, b.size+b.size/4) // sizes vary with data-dependent symbols: grow in steps
	words := (n+slotAlign-1)/8 + slotAlign/8
	b.backing = make([]uint64, words)
	p := unsafe.Pointer(&b.backing[0])
	off := (slotAlign - uintptr(p)%slotAlign) % slotAlign
	b.base = unsafe.Add(p, off)
	b.size = words*8 - int64(off)
}

// holds reports whether address p lies inside the buffer.
func (b *slotBuf) holds(p uintptr) bool {
	base := uintptr(b.base)
	return b.size > 0 && p >= base && p < base+uintptr(b.size)
}

// slotHolding returns the slot whose buffer holds t's data, or -1.
func (a *arena) slotHolding(t *Tensor) int {
	p := dataPtr(t)
	if a == nil || p == 0 {
		return -1
	}
	for i := range a.slots {
		if a.slots[i].holds(p) {
			return i
		}
	}
	return -1
}

// anyInSlots reports whether t, or for a sequence or optional any tensor
// it holds, has its data inside a slot buffer.
func (a *arena) anyInSlots(t *Tensor) bool {
	if v, ok := t.OptionalValue(); ok && a.anyInSlots(v) {
		return true
	}
	for _, e := range t.Elements() {
		if a.anyInSlots(e) {
			return true
		}
	}
	return a.slotHolding(t) >= 0
}

func (a *arena) bytes() int64 {
	var n int64
	for i := range a.slots {
		n += a.slots[i].size
	}
	return n
}

// typedSlice views n elements of dt's Go storage type at p.
func typedSlice(dt ir.DataType, p unsafe.Pointer, n int) any {
	switch dt {
	case ir.Float:
		return unsafe.Slice((*float32)(p), n)
	case ir.Double:
		return unsafe.Slice((*float64)(p), n)
	case ir.Float16, ir.BFloat16, ir.Uint16:
		return unsafe.Slice((*uint16)(p), n)
	case ir.Int8, ir.Int4, ir.Int2:
		return unsafe.Slice((*int8)(p), n)
	case ir.Int16:
		return unsafe.Slice((*int16)(p), n)
	case ir.Int32:
		return unsafe.Slice((*int32)(p), n)
	case ir.Int64:
		return unsafe.Slice((*int64)(p), n)
	case ir.Uint32:
		return unsafe.Slice((*uint32)(p), n)
	case ir.Uint64:
		return unsafe.Slice((*uint64)(p), n)
	case ir.Bool:
		return unsafe.Slice((*bool)(p), n)
	}
	if dt == ir.Uint8 || lowPrecTypes.has(dt) {
		return unsafe.Slice((*uint8)(p), n)
	}
	return nil
}

// getArena takes an arena from the free list, or makes an empty one.
func (e *Executable) getArena() (a *arena, reused bool) {
	e.mu.Lock()
	defer e.mu.Unlock()
	if k := len(e.arenas); k > 0 {
		a = e.arenas[k-1]
		e.arenas = e.arenas[:k-1]
		return a, true
	}
	return &arena{slots: make([]slotBuf, len(e.plan.mem.slots))}, false
}

func (e *Executable) putArena(a *arena) {
	e.mu.Lock()
	defer e.mu.Unlock()
	e.arenas = append(e.arenas, a)
}

// pendingOut is a planned output of the step being run, waiting for the
// kernel's allocation.
type pendingOut struct {
	plannedOut
	count  int // expected element count; -1 when not yet known
	handed bool
}

// beginStep prepares the planned outputs of main-graph step i.
func (r *runState) beginStep(i int) {
	r.pending = r.pendingBuf[:0]
	for _, po := range r.mem.stepOuts[i] {
		cnt := -1
		if v, err := po.elems.eval(r.symbols); err == nil && v >= 0 {
			cnt = int(v)
		}
		r.pending = append(r.pending, pendingOut{plannedOut: po, count: cnt})
	}
	r.pendingBuf = r.pending
}

// allocPlanned hands out the slot of the first planned output of the
// current step that the allocation fits (same element type, and the
// expected element count or else the declared shape), or returns nil.
func (r *runState) allocPlanned(dt ir.DataType, shape []int, n int, zero bool) *Tensor {
	elemSize := storageBytes(dt)
	if elemSize == 0 {
		return nil
	}
	for i := range r.pending {
		p := &r.pending[i]
		if p.handed || (p.dt != ir.Undefined && p.dt != dt) || !r.fits(p, shape, n) {
			continue
		}
		bytes := int64(n) * elemSize
		sb := &r.arena.slots[p.slot]
		sb.ensure(bytes)
		if zero {
			clear(unsafe.Slice((*byte)(sb.base), bytes)) // kernels rely on zeroed outputs
		}
		data := typedSlice(dt, sb.base, n)
		if data == nil {
			return nil
		}
		p.handed = true
		t := &Tensor{DType: dt, Shape: append([]int(nil), shape...), Data: data}
		r.slotLive[uintptr(sb.base)] = bytes
		r.live += bytes
		r.stats.PeakBytes = max(r.stats.PeakBytes, r.live)
		r.slotUsed[p.slot] = max(r.slotUsed[p.slot], bytes)
		return t
	}
	return nil
}

// endStep runs after main-graph step i produced outs: the safety net,
// and binding the dimension symbols of the outputs.
func (r *runState) endStep(i int, n *ir.Node, outs []*Tensor) {
	for j, v := range n.Outputs {
		t := outs[j]
		if v == nil || t == nil {
			continue
		}
		own, planned := r.mem.slotOf[v]
		if !planned {
			own = -1
		}
		if t.IsSequence() || t.IsOptional() {
			if r.arena.anyInSlots(t) {
				outs[j] = t.Clone()
				r.stats.CopiedOutputs++
				r.noteCopy(n, v)
			}
			continue
		}
		if k := r.arena.slotHolding(t); k >= 0 && k != own {
			// Data inside another value's slot: it would be overwritten
			// when that slot is reused, so it moves to fresh memory.
			outs[j] = r.copyFresh(t)
			r.stats.CopiedOutputs++
			r.noteCopy(n, v)
		}
	}
	for _, po := range r.mem.stepOuts[i] {
		if t := outs[po.out]; t != nil && !r.arena.slots[po.slot].holds(dataPtr(t)) {
			r.stats.DynamicOutputs++
		}
	}
	for _, b := range r.mem.bindDims[i] {
		r.bind(b, outs[b.out])
	}
}

// bind records the value of a dimension symbol from a tensor's shape; the
// first value seen wins.
func (r *runState) bind(b dimBinding, t *Tensor) {
	if t == nil || t.IsSequence() || t.IsOptional() {
		return
	}
	if _, ok := r.symbols[b.sym]; ok {
		return
	}
	switch {
	case b.dim == -2:
		r.symbols[b.sym] = int64(t.NumElements()) * storageBytes(t.DType)
	case b.dim < 0:
		r.symbols[b.sym] = int64(t.NumElements())
	case b.dim < len(t.Shape):
		r.symbols[b.sym] = int64(t.Shape[b.dim])
	}
}

// copyFresh copies a tensor into a buffer of the dynamic pool.
func (r *runState) copyFresh(t *Tensor) *Tensor {
	c, err := r.allocDynamic(t.DType, t.Shape, t.NumElements(), false) // the copy writes every element
	if err != nil || dataLen(t) < t.NumElements() {
		return t.Clone()
	}
	copyElems(c.Data, t.Data, 0, 0, t.NumElements())
	return c
}

func (r *runState) noteCopy(n *ir.Node, v *ir.Value) {
	r.stats.Copied = append(r.stats.Copied, fmt.Sprintf("%s (%s): %s", n.Name, qualified(n.Domain, n.Op), v.Name))
}

// fits reports whether an allocation of shape (n elements) can be the
// planned output p: its element count when the bound symbols give it,
// else its declared shape as far as it is known.
func (r *runState) fits(p *pendingOut, shape []int, n int) bool {
	switch {
	case p.anySize:
		return true
	case p.count >= 0:
		return p.count == n
	case p.shape == nil:
		return true
	case len(p.shape) != len(shape):
		return false
	}
	for i, d := range p.shape {
		switch {
		case d.IsKnown():
			if int64(shape[i]) != d.Size {
				return false
			}
		case d.IsSym():
			if v, err := evalSym(d.Sym, r.symbols); err == nil && v != int64(shape[i]) {
				return false
			}
		}
	}
	return true
}

// ReleaseBuffers drops the slot buffers the Executable keeps for later
// Runs (a Run in progress keeps its own until it returns); the next Run
// allocates them again. For long-lived servers after a burst of large
// inputs.
func (e *Executable) ReleaseBuffers() {
	e.mu.Lock()
	defer e.mu.Unlock()
	e.arenas = nil
}
