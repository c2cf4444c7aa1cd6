// Package models reads s2s model directories: the manifest (s2s.json)
// written by the exporter, or, for directories written by Optimum itself,
// the same facts derived from the Hugging Face config.json. It also reads
// generation_config.json. It imports no cgo, so it is usable everywhere.
//
// The folders beside this file are the demo models that ship with s2s.
package models

import (
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"math"
	"os"
	"path/filepath"

	"github.com/s2s-dev/s2s/internal/safefile"
)

// ManifestFile is the manifest's file name inside a model directory.
const ManifestFile = "s2s.json"

// Graph file names of the Optimum ONNX layout, used when no manifest names them.
const (
	OptimumEncoder         = "encoder_model.onnx"
	OptimumDecoder         = "decoder_model.onnx"
	OptimumDecoderWithPast = "decoder_with_past_model.onnx"
	OptimumDecoderMerged   = "decoder_model_merged.onnx"
)

// Architectures a manifest can name.
const (
	ArchTransformer = "transformer"
	ArchRNN         = "rnn"
)

// Decoder layouts of a Transformer manifest (its "layout" field).
const (
	// LayoutOptimum is Optimum's past/present decoder graphs (the default
	// when the manifest names none).
	LayoutOptimum = "optimum"
	// LayoutInplace is the exporter's own decoder graphs: a cross graph run
	// once per input and a step graph whose self-attention cache is written
	// in place (docs/model-format.md).
	LayoutInplace = "inplace"
)

// Files names the graphs of a model, relative to its directory. A
// Transformer model has an encoder and either Decoder plus DecoderWithPast,
// or DecoderMerged, or both; in the inplace layout DecoderCross and
// DecoderStep instead.
type Files struct {
	Encoder         string `json:"encoder"`
	Decoder         string `json:"decoder,omitempty"`
	DecoderWithPast string `json:"decoder_with_past,omitempty"`
	DecoderMerged   string `json:"decoder_merged,omitempty"`
	DecoderCross    string `json:"decoder_cross,omitempty"`
	DecoderStep     string `json:"decoder_step,omitempty"`
}

// Tokenizers names the tokenizer files. Target is used to decode generated
// ids; it equals Source when the model has one vocabulary for both sides.
type Tokenizers struct {
	Source string `json:"source"`
	Target string `json:"target,omitempty"`
}

// State describes one tensor of a recurrent (RNN) decoder's state: its
// input and output names on the decoder step graph, the encoder graph output
// it starts from, and how the search treats it.
type State struct {
	// Input is the decoder step graph's input name.
	Input string `json:"input"`
	// Output is the decoder step graph's output name that feeds Input at
	// the next step; empty for per-source constants.
	Output string `json:"output,omitempty"`
	// Init is the encoder graph output that gives its first value.
	Init string `json:"init"`
	// Carried states change each step and are reordered with beams;
	// constants (encoder states, projected keys, masks) are per source.
	Carried bool `json:"carried"`
	// BatchAxis is the axis that indexes rows (usually 0).
	BatchAxis int `json:"batch_axis"`
}

// Manifest is what the Go host needs to know of a model beyond its graphs.
type Manifest struct {
	Format       string `json:"format"`
	Version      int    `json:"version"`
	Architecture string `json:"architecture"`
	ModelType    string `json:"model_type"`
	// Layout is the decoder graphs' layout, LayoutOptimum ("" too) or
	// LayoutInplace.
	Layout    string     `json:"layout,omitempty"`
	Files     Files      `json:"files"`
	Tokenizer Tokenizers `json:"tokenizer"`

	NumLayers  int `json:"num_layers"`
	NumHeads   int `json:"num_heads"`
	HeadDim    int `json:"head_dim"`
	HiddenSize int `json:"hidden_size"`
	VocabSize  int `json:"vocab_size"`

	// MaxPositions is the model's max_position_embeddings: the longest
	// input, and the most decoder steps, its position embeddings cover
	// (BART, mBART, Marian, Pegasus). 0 means no such limit (T5's relative
	// positions, recurrent models). An exported s2s.json without it takes
	// it from config.json.
	MaxPositions int `json:"max_position_embeddings,omitempty"`

	PadTokenID          int64   `json:"pad_token_id"`
	EOSTokenIDs         []int64 `json:"eos_token_id"`
	BOSTokenID          int64   `json:"bos_token_id"`
	DecoderStartTokenID int64   `json:"decoder_start_token_id"`

	// Names of the graphs' inputs and outputs, as the exporter wrote them.
	// Informational for Transformers (the runtime discovers them from the
	// graphs); required for RNN models.
	EncoderInputs  []string `json:"encoder_inputs,omitempty"`
	EncoderOutputs []string `json:"encoder_outputs,omitempty"`
	DecoderInputs  []string `json:"decoder_inputs,omitempty"`
	DecoderOutputs []string `json:"decoder_outputs,omitempty"`

	// States lists an RNN decoder's state tensors.
	States []State `json:"states,omitempty"`

	// Dir is the directory the manifest was read from (not serialized).
	Dir string `json:"-"`
	// Derived is true when no s2s.json existed and the manifest was built
	// from config.json (an Optimum directory).
	Derived bool `json:"-"`
	// Packed is true when the manifest was read from a packed model
	// (ReadPacked): Files then name its parts, Tokenizer its metadata
	// entries, and Dir the file.
	Packed bool `json:"-"`
}

// ErrNotModelDir is returned (wrapped) when a directory holds no model; check
// with errors.Is.
var ErrNotModelDir = errors.New("not a model directory")

// Path returns name joined to the model directory ("" stays "").
func (m *Manifest) Path(name string) string {
	if name == "" {
		return ""
	}
	return filepath.Join(m.Dir, name)
}

// MaxJSONBytes is the size limit of the JSON files of a model directory
// (s2s.json, config.json, generation_config.json): real ones are a few
// kilobytes.
const MaxJSONBytes = 16 << 20

// ErrBadManifest is returned (wrapped) for a manifest, config.json or
// generation_config.json that is malformed or inconsistent; check with
// errors.Is.
var ErrBadManifest = errors.New("bad model configuration")

// Load reads the model directory dir. It reads s2s.json when present;
// otherwise it derives the manifest from config.json and the Optimum graph
// file names found in dir. Every file the manifest names must stay inside
// dir (no absolute paths, no "..", no symlinks out), and the JSON files
// are read only when they are regular files of at most MaxJSONBytes. A
// regular file is read as a packed model (ReadPackedFile) and its manifest
// returned.
func Load(dir string) (*Manifest, error) {
	st, err := os.Stat(dir)
	if err != nil {
		return nil, fmt.Errorf("models: %w: %v; pass the directory the exporter (or optimum-cli) wrote", ErrNotModelDir, err)
	}
	if !st.IsDir() {
		return loadPacked(dir)
	}
	data, err := readModelFile(dir, ManifestFile)
	var m *Manifest
	switch {
	case err == nil:
		if m, err = ParseManifest(data); err != nil {
			return nil, fmt.Errorf("models: %s: %w", filepath.Join(dir, ManifestFile), err)
		}
		if m.MaxPositions == 0 && m.Architecture == ArchTransformer {
			// Manifests written before max_position_embeddings was
			// recorded: config.json has it.
			var c hfConfig
			if _, err := readJSON(dir, "config.json", &c); err != nil {
				return nil, err
			}
			m.MaxPositions = c.MaxPositionEmbeddings
		}
	case errors.Is(err, fs.ErrNotExist):
		m, err = deriveFromConfig(dir)
		if err != nil {
			return nil, err
		}
	default:
		return nil, fmt.Errorf("models: %w", err)
	}
	m.Dir = dir
	if m.Tokenizer.Target == "" {
		m.Tokenizer.Target = m.Tokenizer.Source
	}
	if err := m.Validate(); err != nil {
		return nil, err
	}
	return m, nil
}

// ParseManifest decodes an s2s.json. It does not check the result; Load
// calls Validate.
func ParseManifest(data []byte) (*Manifest, error) {
	m := &Manifest{BOSTokenID: -1, PadTokenID: -1, DecoderStartTokenID: -1}
	if err := json.Unmarshal(data, m); err != nil {
		return nil, fmt.Errorf("%w: %v; re-export the model", ErrBadManifest, err)
	}
	if m.Tokenizer.Target == "" {
		m.Tokenizer.Target = m.Tokenizer.Source
	}
	return m, nil
}

// readModelFile reads dir/name when it stays inside dir and is a regular
// file within MaxJSONBytes.
func readModelFile(dir, name string) ([]byte, error) {
	path, err := safefile.Within(dir, name)
	if err != nil {
		return nil, fmt.Errorf("models: %s: %w", dir, err)
	}
	return safefile.ReadFile(path, MaxJSONBytes, "models.MaxJSONBytes")
}

// Limits of the sizes a manifest may give. Past them no model fits in
// memory, and the arithmetic on them could overflow.
const (
	maxVocab     = math.MaxInt32 // token ids are int32 inside the search
	maxDimension = 1 << 20       // layers, heads, head and hidden sizes
	maxPositions = 1 << 24
)

// Validate checks that the manifest names files that exist inside its
// directory, and the ids and sizes the host needs, against each other.
func (m *Manifest) Validate() error {
	bad := func(format string, args ...any) error {
		return fmt.Errorf("models: %s: %w: %s", m.Dir, ErrBadManifest, fmt.Sprintf(format, args...))
	}
	if m.Format != "" && m.Format != "s2s-model" {
		return bad("format is %q, not \"s2s-model\"; this is not an s2s manifest", m.Format)
	}
	if m.Version > 1 {
		return bad("manifest version %d is newer than this host reads (1); update s2s or re-export with the matching exporter", m.Version)
	}
	if m.Architecture != ArchTransformer && m.Architecture != ArchRNN {
		return bad("architecture %q is unknown; use %q or %q", m.Architecture, ArchTransformer, ArchRNN)
	}
	if m.Files.Encoder == "" {
		return bad("no encoder graph; the directory needs %s (or a manifest naming it)", OptimumEncoder)
	}
	switch m.Layout {
	case "", LayoutOptimum:
		hasSplit := m.Files.Decoder != "" && (m.Files.DecoderWithPast != "" || m.Architecture == ArchRNN)
		if !hasSplit && m.Files.DecoderMerged == "" {
			return bad("no decoder graphs; the directory needs %s and %s, or %s", OptimumDecoder, OptimumDecoderWithPast, OptimumDecoderMerged)
		}
	case LayoutInplace:
		if m.Architecture != ArchTransformer {
			return bad("layout %q is for architecture %q, not %q", m.Layout, ArchTransformer, m.Architecture)
		}
		if m.Files.DecoderCross == "" || m.Files.DecoderStep == "" {
			return bad("layout %q needs files.decoder_cross and files.decoder_step; re-export the model", m.Layout)
		}
	default:
		return bad("layout %q is unknown; use %q or %q (re-export the model with this version)", m.Layout, LayoutOptimum, LayoutInplace)
	}
	if m.Tokenizer.Source == "" {
		return bad("no tokenizer.json; export the model with the s2s exporter, which writes one")
	}
	for _, f := range []string{m.Files.Encoder, m.Files.Decoder, m.Files.DecoderWithPast, m.Files.DecoderMerged, m.Files.DecoderCross, m.Files.DecoderStep, m.Tokenizer.Source, m.Tokenizer.Target} {
		if f == "" || m.Packed { // a packed model's parts were checked by ReadPacked
			continue
		}
		path, err := safefile.Within(m.Dir, f)
		if err != nil {
			return fmt.Errorf("models: %s: %w: %w", m.Dir, ErrBadManifest, err)
		}
		st, err := os.Stat(path)
		if err != nil {
			return bad("%s is missing; re-export the model", f)
		}
		if !st.Mode().IsRegular() {
			return bad("%s is not a regular file; put the file itself there", f)
		}
	}
	if m.VocabSize <= 0 || m.VocabSize > maxVocab {
		return bad("vocab_size is %d; the config must give it, between 1 and %d", m.VocabSize, maxVocab)
	}
	for name, v := range map[string]int{"num_layers": m.NumLayers, "num_heads": m.NumHeads, "head_dim": m.HeadDim, "hidden_size": m.HiddenSize} {
		if v < 0 || v > maxDimension {
			return bad("%s is %d; it must be between 0 and %d", name, v, maxDimension)
		}
	}
	if m.MaxPositions < 0 || m.MaxPositions > maxPositions {
		return bad("max_position_embeddings is %d; it must be between 0 (no limit) and %d", m.MaxPositions, maxPositions)
	}
	if len(m.EOSTokenIDs) == 0 {
		return bad("no eos_token_id in the config; set one")
	}
	inVocab := func(name string, id int64, optional bool) error {
		if optional && id == -1 {
			return nil
		}
		if id < 0 || id >= int64(m.VocabSize) {
			return bad("%s %d is outside the vocabulary [0, %d); fix the config", name, id, m.VocabSize)
		}
		return nil
	}
	for _, id := range m.EOSTokenIDs {
		if err := inVocab("eos_token_id", id, false); err != nil {
			return err
		}
	}
	if m.DecoderStartTokenID < 0 {
		return bad("no decoder_start_token_id in the config; set one")
	}
	if err := inVocab("decoder_start_token_id", m.DecoderStartTokenID, false); err != nil {
		return err
	}
	if err := inVocab("pad_token_id", m.PadTokenID, true); err != nil {
		return err
	}
	if err := inVocab("bos_token_id", m.BOSTokenID, true); err != nil {
		return err
	}
	if m.Architecture == ArchRNN && len(m.States) == 0 {
		return bad("an rnn model needs its state tensors listed under \"states\"")
	}
	for i, st := range m.States {
		if st.Input == "" || st.Init == "" {
			return bad("states[%d] needs an input and an init name", i)
		}
		if st.Carried && st.Output == "" {
			return bad("states[%d] (%s) is carried but names no output", i, st.Input)
		}
		if st.BatchAxis < 0 || st.BatchAxis > 7 {
			return bad("states[%d] (%s) has batch_axis %d; it must be between 0 and 7", i, st.Input, st.BatchAxis)
		}
	}
	return nil
}
