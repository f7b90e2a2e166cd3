package cpu

import (
	"context"
	"fmt"
	"math"
	"reflect"
	"runtime"
	"slices"
	"sync"

	"github.com/tfc-compiler/tfc/ir"
)

// Options configure compilation and execution.
type Options struct {
	// Threads is the number of goroutines kernels may use; 0 means
	// runtime.GOMAXPROCS(0).
	Threads int
	// NoMemoryPlan turns the static memory plan off: every buffer then
	// comes from the per-Run dynamic pool (for comparisons and debugging).
	NoMemoryPlan bool
}

// Executable is a compiled graph. It is safe to call Run from several
// goroutines at once: each call takes its own arena of planned buffers
// (kept in the Executable for later Runs) and its own dynamic pool.
type Executable struct {
	plan    *plan
	threads int

	mu        sync.Mutex
	lastStats RunStats
	// arenas are the free arenas of the memory plan, one per Run that
	// has ended; concurrent Runs make more.
	arenas []*arena
}

// RunStats describes the memory of the most recent Run.
type RunStats struct {
	// PeakBytes is the largest number of bytes held at once in buffers the
	// run allocated, planned slots and the dynamic pool together
	// (constants and caller inputs excluded). Measured.
	PeakBytes int64
	// AllocatedBytes is the total of fresh allocations of the dynamic
	// pool; bytes served from released buffers are not counted again.
	AllocatedBytes int64
	// ReusedBuffers counts dynamic allocations served by a released
	// buffer.
	ReusedBuffers int
	// PlannedBytes is the sum over the memory plan's slots of the largest
	// value this Run placed in each: the planned peak at this Run's sizes,
	// counting only values whose kernel allocated them through the plan.
	PlannedBytes int64
	// ArenaBytes is the capacity of the slot buffers after the Run (they
	// only grow, and are kept for later Runs).
	ArenaBytes int64
	// ArenaReused is true when the Run's slot buffers came from an
	// earlier Run.
	ArenaReused bool
	// CopiedOutputs counts values the safety net copied out of a slot
	// that was not theirs (a kernel returned a view the planner did not
	// know about). The corpus runs with none.
	CopiedOutputs int
	// Copied names the copied values: "node (op): value".
	Copied []string
	// DynamicOutputs counts planned values that did not land in their
	// slot: their kernel made its own buffer or returned a constant.
	DynamicOutputs int
	// Symbols holds the dimension symbols bound during the Run, from the
	// inputs' and outputs' shapes ("batch", "seq", and "?value[i]" for
	// dimensions only known at run time); Executable.PlannedPeakBytes
	// takes them.
	Symbols map[string]int64
}

// plan is the compiled form of one graph (the main graph or a nested
// body): its schedule, constants and which values die after which step.
type plan struct {
	g       *ir.Graph
	steps   []step
	consts  map[*ir.Value]*Tensor
	outputs []*ir.Value
	// mem is the static memory plan; only the main graph has one (nested
	// bodies use the dynamic pool).
	mem *memPlan
}

type step struct {
	node *ir.Node
	run  kernel
	// release lists values of this graph whose last use is this step.
	release []*ir.Value
}

// kernel executes one node. in holds the node's inputs (nil for omitted
// optional ones); it returns one tensor per node output (nil for omitted
// outputs). Kernels must not modify their inputs.
type kernel func(r *runState, in []*Tensor) ([]*Tensor, error)

// Compile turns the model's main graph into an Executable. It fails,
// naming the node, when an op, an attribute or a known element type is not
// supported. Aligned float32, int64 and int32 constants are used in place
// (not copied), so the model must stay open (Model.Close not called) while
// the Executable is in use.
func Compile(m *ir.Model, opts Options) (*Executable, error) {
	if m == nil || m.Graph == nil {
		return nil, fmt.Errorf("cpu.Compile: model has no graph")
	}
	opsets := map[string]int64{}
	for _, o := range m.Opsets {
		d := o.Domain
		if d == "ai.onnx" {
			d = ""
		}
		opsets[d] = o.Version
	}
	c := &compiler{opsets: opsets}
	p, err := c.compileGraph(m.Graph)
	if err != nil {
		return nil, err
	}
	if !opts.NoMemoryPlan {
		p.mem = planMemory(p)
	}
	threads := opts.Threads
	if threads <= 0 {
		threads = runtime.GOMAXPROCS(0)
	}
	return &Executable{plan: p, threads: threads}, nil
}

type compiler struct {
	opsets map[string]int64
}

// opset returns the imported version of the node's domain.
func (c *compiler) opset(n *ir.Node) int64 {
	d := n.Domain
	if d == "ai.onnx" {
		d = ""
	}
	return c.opsets[d]
}

func (c *compiler) compileGraph(g *ir.Graph) (*plan, error) {
	p := &plan{g: g, consts: map[*ir.Value]*Tensor{}, outputs: g.Outputs}
	for _, vs := range [][]*ir.Value{g.Inputs, g.Outputs} {
		for _, v := range vs {
			if !SupportsType(v.Type) {
				return nil, fmt.Errorf("graph %q: value %q has type %v, which the CPU backend does not support", g.Name, v.Name, v.Type)
			}
		}
	}
	for _, v := range g.Constants {
		if v.Const == nil {
			return nil, fmt.Errorf("graph %q: constant %q is sparse, which the CPU backend does not support", g.Name, v.Name)
		}
		t, err := viewIR(v.Const)
		if err != nil {
			return nil, fmt.Errorf("graph %q: %w", g.Name, err)
		}
		p.consts[v] = t
	}
	// lastUse[v] is the last step that reads v; values never read are
	// released right after the step that produced them.
	lastUse := map[*ir.Value]int{}
	for i, n := range g.Nodes {
		for _, v := range nodeReads(n) {
			if v.Graph() == g {
				lastUse[v] = i
			}
		}
		for _, o := range n.Outputs {
			if o != nil {
				if _, ok := lastUse[o]; !ok {
					lastUse[o] = i
				}
			}
		}
	}
	keep := map[*ir.Value]bool{}
	for _, v := range g.Outputs {
		keep[v] = true
	}
	for _, v := range g.Inputs {
		keep[v] = true // caller-owned
	}
	p.steps = make([]step, len(g.Nodes))
	for i, n := range g.Nodes {
		k, err := c.compileNode(n)
		if err != nil {
			return nil, err
		}
		p.steps[i] = step{node: n, run: k}
	}
	for v, i := range lastUse {
		if keep[v] || p.consts[v] != nil {
			continue
		}
		p.steps[i].release = append(p.steps[i].release, v)
	}
	for i := range p.steps {
		slices.SortFunc(p.steps[i].release, func(a, b *ir.Value) int { return a.ID - b.ID })
	}
	return p, nil
}

// nodeReads returns the values a node reads: its inputs and the values of
// enclosing graphs that its nested graphs use.
func nodeReads(n *ir.Node) []*ir.Value {
	var out []*ir.Value
	for _, v := range n.Inputs {
		if v != nil {
			out = append(out, v)
		}
	}
	for _, a := range n.Attrs {
		for _, sg := range a.Subgraphs() {
			sg.Walk(func(inner *ir.Node) {
				for _, v := range inner.Inputs {
					if v != nil && !definedWithin(v.Graph(), sg) {
						out = append(out, v)
					}
				}
			})
			for _, v := range sg.Outputs {
				if v != nil && !definedWithin(v.Graph(), sg) {
					out = append(out, v)
				}
			}
		}
	}
	return out
}

// definedWithin reports whether graph g is sg or nested inside it.
func definedWithin(g, sg *ir.Graph) bool {
	for ; g != nil; g = g.Parent {
		if g == sg {
			return true
		}
	}
	return false
}

func (c *compiler) compileNode(n *ir.Node) (kernel, error) {
	def := lookupOp(n.Domain, n.Op)
	if def == nil {
		return nil, fmt.Errorf("%s: op %s is not supported by the CPU backend", n.Describe(), qualified(n.Domain, n.Op))
	}
	// Check the element type when the graph declares it; otherwise the
	// kernel checks at run time.
	if len(n.Inputs) > 0 && n.Inputs[0] != nil {
		if dt := n.Inputs[0].Type.Elem; dt != ir.Undefined && !def.types.has(dt) {
			return nil, fmt.Errorf("%s: element type %v of input %q is not supported (supported: %s)", n.Describe(), dt, n.Inputs[0].Name, def.types)
		}
	}
	k, err := def.build(n, c)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", n.Describe(), err)
	}
	if def.widen {
		k = widenHalf(k)
	}
	types := def.types
	return func(r *runState, in []*Tensor) ([]*Tensor, error) {
		if len(in) > 0 && in[0] != nil && !types.has(in[0].DType) {
			return nil, fmt.Errorf("element type %v of input 0 is not supported (supported: %s)", in[0].DType, types)
		}
		return k(r, in)
	}, nil
}

func qualified(domain, op string) string {
	if domain == "" || domain == "ai.onnx" {
		return op
	}
	return domain + "::" + op
}

// runState is the state of one Run: buffer pool, liveness bookkeeping and
// memory statistics. Nested graphs (If/Loop bodies) share it.
type runState struct {
	ctx     context.Context
	threads int
	exe     *Executable

	pool  map[poolKey][]any
	refs  map[uintptr]int // live values per backing array
	owned map[uintptr]int64
	live  int64
	stats RunStats
	// curFrame is the frame of the node being run, for control-flow
	// kernels whose bodies read enclosing values.
	curFrame *frame

	// Memory plan state (nil mem: dynamic pool only).
	mem      *memPlan
	arena    *arena
	slotLive map[uintptr]int64 // bytes of live slot-backed buffers, by base
	slotUsed []int64           // largest bytes placed per slot
	symbols  map[string]int64  // dimension symbols bound so far
	// pending are the planned outputs of the main-graph step being run;
	// nil while a nested body runs.
	pending    []pendingOut
	pendingBuf []pendingOut
}

type poolKey struct {
	dt ir.DataType
	n  int
}

// alloc returns a zeroed tensor: the planned slot of an output of the
// step being run when the allocation fits one, else a released buffer of
// the same element type and length, else a fresh one.
func (r *runState) alloc(dt ir.DataType, shape []int) (*Tensor, error) {
	return r.allocate(dt, shape, true)
}

// allocOverwrite is alloc for kernels that write every element of the
// result before anything reads it (GEMM with beta 0 and k > 0,
// elementwise maps, row norms): a reused buffer is not cleared, which
// saves a pass over memory per op. Fresh memory is zero either way.
func (r *runState) allocOverwrite(dt ir.DataType, shape []int) (*Tensor, error) {
	return r.allocate(dt, shape, false)
}

// poisonOverwrite makes allocOverwrite fill its buffers with garbage
// (NaN, all-ones integers, true) instead of leaving old contents, so that
// tests catch a kernel that claims to overwrite everything but does not.
var poisonOverwrite = false

func (r *runState) allocate(dt ir.DataType, shape []int, zero bool) (*Tensor, error) {
	t, err := r.allocateRaw(dt, shape, zero)
	if err == nil && !zero && poisonOverwrite {
		poisonData(t.Data)
	}
	return t, err
}

func poisonData(d any) {
	switch d := d.(type) {
	case []float32:
		for i := range d {
			d[i] = float32(math.NaN())
		}
	case []float64:
		for i := range d {
			d[i] = math.NaN()
		}
	case []int32:
		for i := range d {
			d[i] = -1
		}
	case []int64:
		for i := range d {
			d[i] = -1
		}
	case []bool:
		for i := range d {
			d[i] = true
		}
	case []uint8:
		for i := range d {
			d[i] = 0xff
		}
	case []uint16: // float16 and bfloat16 too: 0xffff is a NaN in both
		for i := range d {
			d[i] = 0xffff
		}
	case []int8:
		for i := range d {
			d[i] = -1
		}
	case []int16:
		for i := range d {
			d[i] = -1
		}
	case []uint32:
		for i := range d {
			d[i] = math.MaxUint32
		}
	case []uint64:
		for i := range d {
			d[i] = math.MaxUint64
		}
	}
}

func (r *runState) allocateRaw(dt ir.DataType, shape []int, zero bool) (*Tensor, error) {
	n := 1
	for _, d := range shape {
		if d < 0 {
			return nil, fmt.Errorf("negative dimension in output shape %v", shape)
		}
		if d != 0 && n > (1<<40)/d {
			return nil, fmt.Errorf("output shape %v is too large", shape)
		}
		n *= d
	}
	if len(r.pending) > 0 && n > 0 {
		if t := r.allocPlanned(dt, shape, n, zero); t != nil {
			return t, nil
		}
	}
	return r.allocDynamic(dt, shape, n, zero)
}

// allocDynamic serves an allocation of n elements from the dynamic pool.
func (r *runState) allocDynamic(dt ir.DataType, shape []int, n int, zero bool) (*Tensor, error) {
	key := poolKey{dt, n}
	if free := r.pool[key]; len(free) > 0 {
		data := free[len(free)-1]
		r.pool[key] = free[:len(free)-1]
		if zero {
			clearData(data)
		}
		t := &Tensor{DType: dt, Shape: slices.Clone(shape), Data: data}
		r.stats.ReusedBuffers++
		r.live += r.owned[dataPtr(t)]
		r.stats.PeakBytes = max(r.stats.PeakBytes, r.live)
		return t, nil
	}
	data, err := makeData(dt, n)
	if err != nil {
		return nil, err
	}
	t := &Tensor{DType: dt, Shape: slices.Clone(shape), Data: data}
	if p := dataPtr(t); p != 0 {
		bytes := int64(n) * int64(max(dt.Bits(), 8)) / 8
		r.owned[p] = bytes
		r.live += bytes
		r.stats.AllocatedBytes += bytes
		r.stats.PeakBytes = max(r.stats.PeakBytes, r.live)
	}
	return t, nil
}

// mustAlloc is alloc for kernels whose shapes were already validated.
func (r *runState) mustAlloc(dt ir.DataType, shape []int) *Tensor {
	t, err := r.alloc(dt, shape)
	if err != nil {
		panic(err) // recovered at the node boundary and reported with the node
	}
	return t
}

// mustAllocOverwrite is allocOverwrite for validated shapes.
func (r *runState) mustAllocOverwrite(dt ir.DataType, shape []int) *Tensor {
	t, err := r.allocOverwrite(dt, shape)
	if err != nil {
		panic(err) // recovered at the node boundary and reported with the node
	}
	return t
}

func (r *runState) retain(t *Tensor) {
	if v, ok := t.OptionalValue(); ok {
		r.retain(v)
	}
	for _, e := range t.Elements() {
		r.retain(e)
	}
	if p := dataPtr(t); p != 0 {
		r.refs[p]++
	}
}

// release drops one reference to t's buffer and returns the buffer to the
// pool when no live value uses it any more.
func (r *runState) release(t *Tensor) {
	if v, ok := t.OptionalValue(); ok {
		r.release(v)
	}
	for _, e := range t.Elements() {
		r.release(e)
	}
	p := dataPtr(t)
	if p == 0 {
		return
	}
	r.refs[p]--
	if r.refs[p] > 0 {
		return
	}
	delete(r.refs, p)
	if bytes, ok := r.slotLive[p]; ok {
		// A slot buffer: the plan reuses it; only the statistics change.
		delete(r.slotLive, p)
		r.live -= bytes
		return
	}
	bytes, ok := r.owned[p]
	if !ok {
		return
	}
	r.live -= bytes
	n := dataLen(t)
	key := poolKey{t.DType, n}
	r.pool[key] = append(r.pool[key], t.Data)
}

// dataPtr identifies a tensor's backing array (0 for empty data).
func dataPtr(t *Tensor) uintptr {
	if t == nil || t.Data == nil {
		return 0
	}
	v := reflect.ValueOf(t.Data)
	if v.Kind() != reflect.Slice || v.Len() == 0 {
		return 0
	}
	return v.Pointer()
}

func clearData(d any) {
	switch d := d.(type) {
	case []float32:
		clear(d)
	case []float64:
		clear(d)
	case []uint16:
		clear(d)
	case []int8:
		clear(d)
	case []int16:
		clear(d)
	case []int32:
		clear(d)
	case []int64:
		clear(d)
	case []uint8:
		clear(d)
	case []uint32:
		clear(d)
	case []uint64:
		clear(d)
	case []bool:
		clear(d)
	case []string:
		clear(d)
	}
}

// frame maps values to tensors for one graph activation; nested graphs
// look up values of enclosing graphs through parent.
type frame struct {
	vals   map[*ir.Value]*Tensor
	parent *frame
}

func (f *frame) lookup(v *ir.Value) (*Tensor, bool) {
	for ; f != nil; f = f.parent {
		if t, ok := f.vals[v]; ok {
			return t, true
		}
	}
	return nil, false
}

// Stats returns the memory statistics of the most recent Run.
func (e *Executable) Stats() RunStats {
	e.mu.Lock()
	defer e.mu.Unlock()
	return e.lastStats
}

// Run executes the graph. inputs maps graph input names to tensors; the
// result maps graph output names to tensors owned by the caller.
func (e *Executable) Run(ctx context.Context, inputs map[string]*Tensor) (map[string]*Tensor, error) {
	r := &runState{
		ctx: ctx, threads: e.threads, exe: e,
		pool: map[poolKey][]any{}, refs: map[uintptr]int{}, owned: map[uintptr]int64{},
	}
	if mem := e.plan.mem; mem != nil {
		a, reused := e.getArena()
		defer e.putArena(a)
		r.mem, r.arena = mem, a
		r.slotLive = map[uintptr]int64{}
		r.slotUsed = make([]int64, len(mem.slots))
		r.symbols = map[string]int64{}
		r.stats.ArenaReused = reused
	}
	g := e.plan.g
	fr := &frame{vals: map[*ir.Value]*Tensor{}}
	for _, v := range g.Inputs {
		t, ok := inputs[v.Name]
		if !ok {
			if v.Const != nil {
				continue // an input with a default: the constant is used
			}
			return nil, fmt.Errorf("graph input %q is missing", v.Name)
		}
		if err := t.check(); err != nil {
			return nil, fmt.Errorf("graph input %q: %w", v.Name, err)
		}
		if v.Type.Kind == ir.KindSequence && !t.IsSequence() {
			return nil, fmt.Errorf("graph input %q: got %v, the graph declares a sequence", v.Name, t)
		}
		if v.Type.Kind == ir.KindOptional && !t.IsOptional() {
			return nil, fmt.Errorf("graph input %q: got %v, the graph declares an optional", v.Name, t)
		}
		if v.Type.Kind == ir.KindTensor && (t.IsSequence() || t.IsOptional()) {
			return nil, fmt.Errorf("graph input %q: got a sequence, the graph declares %v", v.Name, v.Type)
		}
		if v.Type.Elem != ir.Undefined && v.Type.Elem != t.DType {
			return nil, fmt.Errorf("graph input %q: got element type %v, the graph declares %v", v.Name, t.DType, v.Type.Elem)
		}
		if v.Type.HasShape && v.Type.Kind == ir.KindTensor {
			if len(v.Type.Shape) != len(t.Shape) {
				return nil, fmt.Errorf("graph input %q: got rank %d (shape %v), the graph declares %v", v.Name, len(t.Shape), t.Shape, v.Type)
			}
			for i, d := range v.Type.Shape {
				if d.IsKnown() && int64(t.Shape[i]) != d.Size {
					return nil, fmt.Errorf("graph input %q: dimension %d is %d, the graph declares %v", v.Name, i, t.Shape[i], v.Type)
				}
			}
		}
		fr.vals[v] = t
	}
	if r.mem != nil {
		for _, b := range r.mem.inputDims {
			r.bind(b, fr.vals[g.Inputs[b.out]])
		}
	}
	outs, err := r.runPlan(e.plan, fr)
	if r.mem != nil {
		for _, b := range r.slotUsed {
			r.stats.PlannedBytes += b
		}
		r.stats.ArenaBytes = r.arena.bytes()
		r.stats.Symbols = r.symbols
	}
	e.mu.Lock()
	e.lastStats = r.stats
	e.mu.Unlock()
	if err != nil {
		return nil, err
	}
	// Outputs are never planned, and endStep has moved any that landed in
	// a slot to fresh memory: only inputs and constants need a copy.
	result := make(map[string]*Tensor, len(outs))
	for i, v := range e.plan.outputs {
		t := outs[i]
		if _, ours := r.owned[dataPtr(t)]; t != nil && (!ours || t.IsSequence() || t.IsOptional()) {
			t = t.Clone() // an input or constant passed through: never hand out our constants
		}
		result[v.Name] = t
	}
	return result, nil
}

// runPlan runs a (possibly nested) plan in frame fr, whose inputs are
// already bound, and returns its outputs in order.
func (r *runState) runPlan(p *plan, fr *frame) ([]*Tensor, error) {
	for v, t := range p.consts {
		if _, bound := fr.vals[v]; !bound {
			fr.vals[v] = t
		}
	}
	for _, v := range p.g.Inputs {
		if t, ok := fr.vals[v]; ok {
			r.retain(t)
		}
	}
	for i := range p.steps {
		if err := r.ctx.Err(); err != nil {
			return nil, err
		}
		s := &p.steps[i]
		if err := r.runStep(s, fr, p.mem, i); err != nil {
			return nil, err
		}
	}
	outs := make([]*Tensor, len(p.outputs))
	for i, v := range p.outputs {
		t, ok := fr.lookup(v)
		if !ok {
			return nil, fmt.Errorf("graph %q: output %q was not computed", p.g.Name, v.Name)
		}
		outs[i] = t
	}
	return outs, nil
}

// runStep runs step i of a plan; mem is the plan's memory plan (nil for
// nested bodies).
func (r *runState) runStep(s *step, fr *frame, mem *memPlan, i int) (err error) {
	n := s.node
	defer func() {
		if p := recover(); p != nil {
			err = fmt.Errorf("%s: internal error in kernel: %v", n.Describe(), p)
		}
	}()
	in := make([]*Tensor, len(n.Inputs))
	for j, v := range n.Inputs {
		if v == nil {
			continue
		}
		t, ok := fr.lookup(v)
		if !ok {
			return fmt.Errorf("%s: input %q has no value (not computed before this node)", n.Describe(), v.Name)
		}
		in[j] = t
	}
	r.curFrame = fr
	saved := r.pending
	r.pending = nil
	if mem != nil {
		r.beginStep(i)
	}
	outs, err := s.run(r, in)
	r.pending = saved
	if err != nil {
		return fmt.Errorf("%s: %w", n.Describe(), err)
	}
	if len(outs) < len(n.Outputs) {
		outs = append(outs, make([]*Tensor, len(n.Outputs)-len(outs))...)
	}
	for j, v := range n.Outputs {
		if v == nil {
			continue
		}
		t := outs[j]
		if t == nil {
			return fmt.Errorf("%s: output %q was not produced", n.Describe(), v.Name)
		}
		if err := t.check(); err != nil {
			return fmt.Errorf("%s: output %q: internal error: %w", n.Describe(), v.Name, err)
		}
	}
	if mem != nil {
		r.endStep(i, n, outs)
	}
	for j, v := range n.Outputs {
		if v == nil {
			continue
		}
		fr.vals[v] = outs[j]
		r.retain(outs[j])
	}
	for _, v := range s.release {
		if t, ok := fr.vals[v]; ok {
			r.release(t)
			delete(fr.vals, v)
		}
	}
	return nil
}
