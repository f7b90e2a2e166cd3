package onnx

import (
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"

	"github.com/tfc-compiler/tfc/frontend/onnx/onnxpb"
	"github.com/tfc-compiler/tfc/ir"
)

// externalFile is one loaded external-data file.
type externalFile struct {
	data  []byte
	index int // position in Info.ExternalFiles
}

// externalData returns the bytes of a tensor stored outside the model
// (data_location = EXTERNAL), a view of the memory-mapped data file.
func (d *decoder) externalData(tp *onnxpb.TensorProto, want int64) ([]byte, *ir.ExternalRef, error) {
	ref := &ir.ExternalRef{Offset: 0, Length: -1}
	haveLocation := false
	for _, kv := range tp.GetExternalData() {
		switch kv.GetKey() {
		case "location":
			ref.Location, haveLocation = kv.GetValue(), true
		case "offset", "length":
			v, err := strconv.ParseInt(kv.GetValue(), 10, 64)
			if err != nil || v < 0 {
				return nil, nil, fmt.Errorf("external data %s %q is not a non-negative integer", kv.GetKey(), kv.GetValue())
			}
			if kv.GetKey() == "offset" {
				ref.Offset = v
			} else {
				ref.Length = v
			}
		default:
			ref.Extra = append(ref.Extra, ir.StringPair{Key: kv.GetKey(), Value: kv.GetValue()})
		}
	}
	if !haveLocation || ref.Location == "" {
		return nil, nil, fmt.Errorf("external data has no location")
	}
	if ref.Length >= 0 && ref.Length != want {
		return nil, nil, fmt.Errorf("external data length %d does not match the %d bytes its shape %v of %v needs", ref.Length, want, tp.GetDims(), ir.DataType(tp.GetDataType()))
	}
	ef, err := d.openExternal(ref.Location)
	if err != nil {
		return nil, nil, err
	}
	size := int64(len(ef.data))
	if ref.Offset > size || want > size-ref.Offset {
		return nil, nil, fmt.Errorf("external data %q: offset %d + length %d is past the end of the file (%d bytes)", ref.Location, ref.Offset, want, size)
	}
	d.info.ExternalFiles[ef.index].Tensors++
	if ref.Length < 0 {
		ref.Length = 0 // not given in the file
	}
	return ef.data[ref.Offset : ref.Offset+want : ref.Offset+want], ref, nil
}

// openExternal validates location and maps the file once per model.
func (d *decoder) openExternal(location string) (*externalFile, error) {
	if ef, ok := d.external[location]; ok {
		return ef, nil
	}
	if d.baseDir == "" {
		return nil, fmt.Errorf("external data %q cannot be loaded: the model was decoded from bytes without a base folder", location)
	}
	path, err := resolveExternalPath(d.baseDir, location)
	if err != nil {
		return nil, err
	}
	var data []byte
	if d.opts.NoMmap || !canMmap {
		data, err = os.ReadFile(path)
		if err != nil {
			return nil, fmt.Errorf("external data %q: %w", location, err)
		}
	} else {
		mp, err := mapFile(path)
		if err != nil {
			return nil, fmt.Errorf("external data %q: %w", location, err)
		}
		d.closers = append(d.closers, mp)
		data = mp.data
	}
	ef := &externalFile{data: data, index: len(d.info.ExternalFiles)}
	d.info.ExternalFiles = append(d.info.ExternalFiles, ExternalFile{Path: location, Bytes: int64(len(data))})
	d.external[location] = ef
	return ef, nil
}

// resolveExternalPath joins a stored location to the model's folder,
// refusing absolute paths, ".." escapes and symlinks that lead outside it.
func resolveExternalPath(baseDir, location string) (string, error) {
	if strings.ContainsRune(location, 0) {
		return "", fmt.Errorf("external data location %q contains a NUL byte", location)
	}
	if filepath.IsAbs(location) || strings.HasPrefix(location, "/") || strings.HasPrefix(location, `\`) || filepath.VolumeName(location) != "" {
		return "", fmt.Errorf("external data location %q is an absolute path; only paths inside the model's folder are allowed", location)
	}
	clean := filepath.Clean(filepath.FromSlash(location))
	if clean == ".." || strings.HasPrefix(clean, ".."+string(filepath.Separator)) {
		return "", fmt.Errorf("external data location %q escapes the model's folder", location)
	}
	base, err := filepath.Abs(baseDir)
	if err != nil {
		return "", fmt.Errorf("external data %q: %w", location, err)
	}
	realBase, err := filepath.EvalSymlinks(base)
	if err != nil {
		return "", fmt.Errorf("external data %q: model folder: %w", location, err)
	}
	full := filepath.Join(realBase, clean)
	real, err := filepath.EvalSymlinks(full)
	if err != nil {
		return "", fmt.Errorf("external data %q: %w", location, err)
	}
	rel, err := filepath.Rel(realBase, real)
	if err != nil || rel == ".." || strings.HasPrefix(rel, ".."+string(filepath.Separator)) || filepath.IsAbs(rel) {
		return "", fmt.Errorf("external data location %q resolves (through a symlink) to %s, outside the model's folder", location, real)
	}
	return real, nil
}
