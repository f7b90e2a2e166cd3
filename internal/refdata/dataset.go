package refdata

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"regexp"
	"sort"
	"strconv"

	"github.com/tfc-compiler/tfc/backend/cpu"
	"github.com/tfc-compiler/tfc/ir"
)

// DataSet is one test_data_set_N folder read against a graph.
type DataSet struct {
	Dir string
	// Inputs are keyed by graph input name.
	Inputs map[string]*cpu.Tensor
	// Outputs are indexed like the graph's outputs; an entry is nil
	// where the folder has no output_K.pb.
	Outputs []*cpu.Tensor
}

var dataSetDirRe = regexp.MustCompile(`^test_data_set_(\d+)$`)

// Dirs lists the test_data_set_N folders of modelDir, sorted by N.
func Dirs(modelDir string) ([]string, error) {
	entries, err := os.ReadDir(modelDir)
	if err != nil {
		return nil, err
	}
	type numbered struct {
		n   int
		dir string
	}
	var found []numbered
	for _, e := range entries {
		m := dataSetDirRe.FindStringSubmatch(e.Name())
		if !e.IsDir() || m == nil {
			continue
		}
		n, err := strconv.Atoi(m[1])
		if err != nil { // too many digits for an int
			return nil, fmt.Errorf("%s: data set number out of range", filepath.Join(modelDir, e.Name()))
		}
		found = append(found, numbered{n, filepath.Join(modelDir, e.Name())})
	}
	sort.Slice(found, func(i, j int) bool { return found[i].n < found[j].n })
	dirs := make([]string, len(found))
	for i, f := range found {
		dirs[i] = f.dir
	}
	return dirs, nil
}

// Load reads the inputs and outputs of the data set in dir for g.
func Load(g *ir.Graph, dir string) (*DataSet, error) {
	in, err := LoadInputs(g, dir)
	if err != nil {
		return nil, err
	}
	out, err := LoadOutputs(g, dir)
	if err != nil {
		return nil, err
	}
	return &DataSet{Dir: dir, Inputs: in, Outputs: out}, nil
}

// LoadAll loads every test_data_set_N folder of modelDir, sorted by N;
// a folder without any is an error.
func LoadAll(g *ir.Graph, modelDir string) ([]*DataSet, error) {
	dirs, err := Dirs(modelDir)
	if err != nil {
		return nil, err
	}
	if len(dirs) == 0 {
		return nil, fmt.Errorf("%s: no test_data_set_N folders", modelDir)
	}
	sets := make([]*DataSet, 0, len(dirs))
	for _, d := range dirs {
		ds, err := Load(g, d)
		if err != nil {
			return nil, err
		}
		sets = append(sets, ds)
	}
	return sets, nil
}

// LoadInputs reads input_0.pb, input_1.pb, ... of dir up to the first
// missing one. A file whose stored name is a graph input feeds that
// input; any other feeds the K-th graph input without a default (ONNX
// puts inputs with defaults last), as the ONNX backend tests do.
func LoadInputs(g *ir.Graph, dir string) (map[string]*cpu.Tensor, error) {
	isInput := map[string]bool{}
	var required []*ir.Value
	for _, v := range g.Inputs {
		isInput[v.Name] = true
		if v.Const == nil {
			required = append(required, v)
		}
	}
	inputs := map[string]*cpu.Tensor{}
	for k := 0; ; k++ {
		path := filepath.Join(dir, fmt.Sprintf("input_%d.pb", k))
		if _, err := os.Stat(path); err != nil {
			break
		}
		// The position gives the type (it says how a sequence or an
		// optional is stored) before the stored name is known.
		var typ ir.Type
		if k < len(required) {
			typ = required[k].Type
		}
		t, name, err := ReadValue(path, typ)
		if err != nil {
			return nil, err
		}
		if !isInput[name] {
			if k >= len(required) {
				return nil, fmt.Errorf("%s: the model has only %d inputs", path, len(required))
			}
			name = required[k].Name
		}
		inputs[name] = t
	}
	return inputs, nil
}

// LoadOutputs reads output_K.pb of dir for each output of g; an entry is
// nil where the file is absent.
func LoadOutputs(g *ir.Graph, dir string) ([]*cpu.Tensor, error) {
	outs := make([]*cpu.Tensor, len(g.Outputs))
	for k, v := range g.Outputs {
		path := filepath.Join(dir, fmt.Sprintf("output_%d.pb", k))
		if _, err := os.Stat(path); errors.Is(err, fs.ErrNotExist) {
			continue
		}
		t, _, err := ReadValue(path, v.Type)
		if err != nil {
			return nil, err
		}
		outs[k] = t
	}
	return outs, nil
}

// Check runs exe (compiled from g) on every test_data_set_N folder of
// modelDir, in order, and calls compare on each output and its reference;
// it returns the first error, naming the data set and the output. Every
// output must have a reference, and there must be a data set.
func Check(ctx context.Context, exe *cpu.Executable, g *ir.Graph, modelDir string, compare func(got, want *cpu.Tensor) error) error {
	dirs, err := Dirs(modelDir)
	if err != nil {
		return err
	}
	if len(dirs) == 0 {
		return fmt.Errorf("%s: no test_data_set_N folders", modelDir)
	}
	for _, dir := range dirs {
		ds, err := Load(g, dir)
		if err != nil {
			return err
		}
		set := filepath.Base(dir)
		outs, err := exe.Run(ctx, ds.Inputs)
		if err != nil {
			return fmt.Errorf("%s: run: %w", set, err)
		}
		for k, v := range g.Outputs {
			if ds.Outputs[k] == nil {
				return fmt.Errorf("%s: output %q has no reference output_%d.pb", set, v.Name, k)
			}
			got := outs[v.Name]
			if got == nil {
				return fmt.Errorf("%s: output %q missing", set, v.Name)
			}
			if err := compare(got, ds.Outputs[k]); err != nil {
				return fmt.Errorf("%s: output %q: %w", set, v.Name, err)
			}
		}
	}
	return nil
}
