package models

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strconv"
	"strings"
)

// A packed model is a whole model in one ONNX file, written by
// `python -m s2s_export pack` (docs/model-format.md, "Packed models"): its
// graph holds every part (encoder, decoders) behind If nodes on one input,
// and its metadata_props hold the files of the directory form.

// PackedFormatVersion is the version of the packed format this package
// reads: files of the same major version are read, newer minor versions
// only add what this host can ignore.
const PackedFormatVersion = "1.0"

// Metadata keys of a packed model. The other keys are the files of the
// directory form under their names (config.json, tokenizer.json, ...).
const (
	KeyFormatVersion = "s2s.format_version"
	KeyParts         = "s2s.parts"
)

// Limits of what ReadPacked reads from a file's metadata.
const (
	// MaxMetadataBytes is the size limit of one metadata value (the
	// largest tokenizer.json in use, mT5's, is 16 MB).
	MaxMetadataBytes = 64 << 20
	// MaxMetadataTotalBytes is the size limit of all metadata values.
	MaxMetadataTotalBytes = 256 << 20
	// MaxMetadataEntries is the most metadata entries read.
	MaxMetadataEntries = 1024
)

// ErrNotPacked is returned (wrapped) for a file that is not a packed model:
// not ONNX, or an ONNX graph without the packed metadata; check with
// errors.Is. It also wraps ErrNotModelDir.
var ErrNotPacked = fmt.Errorf("%w: not a packed s2s model", ErrNotModelDir)

// ErrPackedVersion is returned (wrapped) for a packed model of a format
// version this package does not read; check with errors.Is.
var ErrPackedVersion = errors.New("unsupported packed model version")

// ErrBadPacked is returned (wrapped) for a packed model whose metadata is
// malformed or does not fit its graph; check with errors.Is.
var ErrBadPacked = errors.New("bad packed model")

// TensorInfo describes one input or output of a packed model's graph.
type TensorInfo struct {
	Name string
	// ElemType is the ONNX element type (TensorProto.DataType: 1 float,
	// 6 int32, 7 int64, 9 bool; ONNX Runtime uses the same numbers); 0
	// for a value that is not a tensor.
	ElemType int32
	// Dims is the declared shape, -1 for open axes; nil when the rank is
	// not declared.
	Dims []int64
}

// Part is one part of a packed model: the value of the part input that
// runs it, and the graph inputs it takes and outputs it gives.
type Part struct {
	// Name is the part's name, which the manifest's files name: encoder,
	// decoder, decoder_with_past.
	Name string `json:"name"`
	// Value is what the part input holds to run this part.
	Value int64 `json:"value"`
	// Source is the graph file of the directory form it came from.
	Source string `json:"source"`
	// Inputs are the graph inputs the part takes, in its own graph's order.
	Inputs []string `json:"inputs"`
	// Outputs are the part's outputs under its own names, in its graph's
	// order.
	Outputs []string `json:"outputs"`
	// Renamed maps an output to the packed graph's name for it where they
	// differ (an output named like another part's input).
	Renamed map[string]string `json:"renamed,omitempty"`
}

// GraphOutput returns the packed graph's name of the part's output name.
func (p *Part) GraphOutput(name string) string {
	if g, ok := p.Renamed[name]; ok {
		return g
	}
	return name
}

// Packed is a packed model read by ReadPacked or ReadPackedFile.
type Packed struct {
	// Manifest is the model's s2s.json; its Files name parts, its
	// Tokenizer metadata entries, Packed is true and Dir names the file.
	Manifest *Manifest
	// FormatVersion is the file's s2s.format_version.
	FormatVersion string
	// PartInput is the graph input that chooses the part to run.
	PartInput string
	// Parts are the model's parts.
	Parts []Part
	// Inputs and Outputs are the graph's, in graph order.
	Inputs, Outputs []TensorInfo
	// Metadata holds the metadata entries (the directory form's files
	// under their names).
	Metadata map[string]string
	// Path is the file the model was read from; "" when read from memory.
	Path string
	// Data is the whole file when the model was read from memory; nil
	// when it was read from Path (ONNX Runtime then reads the file).
	Data []byte
}

// partsJSON is the s2s.parts metadata entry.
type partsJSON struct {
	Input string `json:"input"`
	Parts []Part `json:"parts"`
}

// IsPackedFile reports whether path is a regular file (so not a model
// directory): Load and Open read it as a packed model.
func IsPackedFile(path string) bool {
	st, err := os.Stat(path)
	return err == nil && st.Mode().IsRegular()
}

// ReadPackedFile reads the manifest, metadata and graph inputs and outputs
// of the packed model in the file path, without reading its weights.
func ReadPackedFile(path string) (*Packed, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("models: %w: %v", ErrNotModelDir, err)
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil {
		return nil, fmt.Errorf("models: %w", err)
	}
	if !st.Mode().IsRegular() {
		return nil, fmt.Errorf("models: %w: %s is not a regular file; pass a model directory or a packed .onnx file", ErrNotModelDir, path)
	}
	p, err := readPacked(f, st.Size(), path)
	if err != nil {
		return nil, err
	}
	p.Path = path
	return p, nil
}

// ReadPacked reads the packed model in data, the whole file (as embedded
// with go:embed, say). The Packed keeps data: ONNX Runtime loads the
// graph from it.
func ReadPacked(data []byte) (*Packed, error) {
	p, err := readPacked(bytes.NewReader(data), int64(len(data)), "packed model")
	if err != nil {
		return nil, err
	}
	p.Data = data
	return p, nil
}

// readPacked reads a packed model from r; label names it in errors.
func readPacked(r io.ReaderAt, size int64, label string) (*Packed, error) {
	h, err := readONNXHeader(r, size)
	if err != nil {
		return nil, fmt.Errorf("models: %w: %s is not an ONNX model (%v); pass a model directory or a file written by `python -m s2s_export pack`", ErrNotPacked, label, err)
	}
	if !h.hasGraph {
		return nil, fmt.Errorf("models: %w: %s is not an ONNX model (no graph); pass a model directory or a file written by `python -m s2s_export pack`", ErrNotPacked, label)
	}
	version, ok := h.metadata[KeyFormatVersion]
	if !ok {
		return nil, fmt.Errorf("models: %w: %s is an ONNX graph without %s in its metadata; pass its model directory, or pack the directory with `python -m s2s_export pack`", ErrNotPacked, label, KeyFormatVersion)
	}
	if err := checkFormatVersion(version); err != nil {
		return nil, fmt.Errorf("models: %s: %w", label, err)
	}
	bad := func(format string, args ...any) error {
		return fmt.Errorf("models: %s: %w: %s; pack the model again with `python -m s2s_export pack`", label, ErrBadPacked, fmt.Sprintf(format, args...))
	}
	p := &Packed{FormatVersion: version, Inputs: h.inputs, Outputs: h.outputs, Metadata: h.metadata}
	var pj partsJSON
	if err := json.Unmarshal([]byte(h.metadata[KeyParts]), &pj); err != nil {
		return nil, bad("%s: %v", KeyParts, err)
	}
	p.PartInput, p.Parts = pj.Input, pj.Parts
	if err := p.checkParts(); err != nil {
		return nil, bad("%v", err)
	}
	data, ok := h.metadata[ManifestFile]
	if !ok {
		return nil, bad("no %s in the metadata", ManifestFile)
	}
	m, err := ParseManifest([]byte(data))
	if err != nil {
		return nil, bad("%s: %v", ManifestFile, err)
	}
	m.Dir, m.Packed = label, true
	if cfg, ok := h.metadata["config.json"]; ok && m.MaxPositions == 0 && m.Architecture == ArchTransformer {
		// Manifests written before max_position_embeddings was recorded:
		// config.json has it.
		var c hfConfig
		if err := json.Unmarshal([]byte(cfg), &c); err != nil {
			return nil, bad("config.json: %v", err)
		}
		m.MaxPositions = c.MaxPositionEmbeddings
	}
	for _, name := range []string{m.Files.Encoder, m.Files.Decoder, m.Files.DecoderWithPast, m.Files.DecoderMerged} {
		if _, ok := p.Part(name); name != "" && !ok {
			return nil, bad("the manifest names the part %q, which the file does not have", name)
		}
	}
	for _, name := range []string{m.Tokenizer.Source, m.Tokenizer.Target} {
		if _, ok := h.metadata[name]; name != "" && !ok {
			return nil, bad("the manifest names the tokenizer %q, which the metadata does not hold", name)
		}
	}
	if m.Files.DecoderMerged != "" {
		return nil, bad("the manifest names a merged decoder; a packed model has decoder and decoder_with_past parts")
	}
	if err := m.Validate(); err != nil {
		return nil, err
	}
	p.Manifest = m
	return p, nil
}

// checkFormatVersion accepts "1" and "1.<minor>".
func checkFormatVersion(v string) error {
	major, _, _ := strings.Cut(v, ".")
	want, _, _ := strings.Cut(PackedFormatVersion, ".")
	if n, err := strconv.Atoi(major); err != nil || n < 0 {
		return fmt.Errorf("%w: %s is %q, not a version; pack the model again", ErrPackedVersion, KeyFormatVersion, v)
	}
	if major != want {
		return fmt.Errorf("%w: the file's format version is %s; this host reads %s.x; use the s2s release that matches the packer, or pack the model again with this one", ErrPackedVersion, v, want)
	}
	return nil
}

// checkParts checks the parts against the graph: the part input exists
// (int64, one value) and each part takes inputs and gives outputs the
// graph has, with values and names that are unique.
func (p *Packed) checkParts() error {
	ins := map[string]TensorInfo{}
	for _, t := range p.Inputs {
		ins[t.Name] = t
	}
	outs := map[string]bool{}
	for _, t := range p.Outputs {
		outs[t.Name] = true
	}
	pi, ok := ins[p.PartInput]
	if p.PartInput == "" || !ok {
		return fmt.Errorf("the part input %q is not an input of the graph", p.PartInput)
	}
	if pi.ElemType != onnxInt64 || len(pi.Dims) != 1 || pi.Dims[0] != 1 {
		return fmt.Errorf("the part input %q is not an int64 tensor of shape [1]", p.PartInput)
	}
	if len(p.Parts) < 2 {
		return fmt.Errorf("%d parts; a packed model has two or more", len(p.Parts))
	}
	names, values := map[string]bool{}, map[int64]bool{}
	for _, part := range p.Parts {
		if part.Name == "" || names[part.Name] || values[part.Value] {
			return fmt.Errorf("part %q (value %d) is unnamed or not unique", part.Name, part.Value)
		}
		names[part.Name], values[part.Value] = true, true
		seen := map[string]bool{}
		for _, in := range part.Inputs {
			if _, ok := ins[in]; !ok || in == p.PartInput || seen[in] {
				return fmt.Errorf("part %q takes %q, which is not one of the graph's inputs (or is listed twice)", part.Name, in)
			}
			seen[in] = true
		}
		clear(seen)
		for _, out := range part.Outputs {
			g := part.GraphOutput(out)
			if !outs[g] || seen[g] {
				return fmt.Errorf("part %q gives %q, which is not one of the graph's outputs (or is listed twice)", part.Name, g)
			}
			seen[g] = true
		}
	}
	return nil
}

// onnxInt64 is TensorProto.INT64.
const onnxInt64 = 7

// Part returns the part called name.
func (p *Packed) Part(name string) (*Part, bool) {
	for i := range p.Parts {
		if p.Parts[i].Name == name {
			return &p.Parts[i], true
		}
	}
	return nil, false
}

// Label names the model in messages: its file's base name, or "packed
// model" for one read from memory.
func (p *Packed) Label() string {
	if p.Path != "" {
		return filepath.Base(p.Path)
	}
	return "packed model"
}

// GenerationConfig returns the model's generation_config.json; a model
// without one gives an empty config.
func (p *Packed) GenerationConfig() (*GenerationConfig, error) {
	data, ok := p.Metadata[GenerationConfigFile]
	if !ok {
		return &GenerationConfig{}, nil
	}
	g, err := ParseGenerationConfig([]byte(data))
	if err != nil {
		return nil, fmt.Errorf("models: %s: %s: %w; fix it and pack the model again", p.Label(), GenerationConfigFile, err)
	}
	return g, nil
}

// loadPacked is Load for a file: the packed model's manifest.
func loadPacked(path string) (*Manifest, error) {
	p, err := ReadPackedFile(path)
	if err != nil {
		return nil, err
	}
	return p.Manifest, nil
}
