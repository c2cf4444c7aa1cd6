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
	"os"
	"path/filepath"
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

	PadTokenID          int64   `json:"pad_token_id"`
	EOSTokenIDs         []int64 `json:"eos_token_id"`
	BOSTokenID          int64   `json:"bos_token_id"`
	DecoderStartTokenID int64   `json:"decoder_start_token_id"`

	// MaxPositions is the number of decoder positions the model has
	// embeddings for (BART, Marian); 0 when it has no such limit (T5).
	// The inplace layout's step graph refuses positions past it.
	MaxPositions int `json:"max_positions,omitempty"`

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

// Load reads the model directory dir. It reads s2s.json when present;
// otherwise it derives the manifest from config.json and the Optimum graph
// file names found in dir.
func Load(dir string) (*Manifest, error) {
	st, err := os.Stat(dir)
	if err != nil {
		return nil, fmt.Errorf("models: %w: %v; pass the directory the exporter (or optimum-cli) wrote", ErrNotModelDir, err)
	}
	if !st.IsDir() {
		return nil, fmt.Errorf("models: %w: %s is a file; pass its directory", ErrNotModelDir, dir)
	}
	var m *Manifest
	if data, err := os.ReadFile(filepath.Join(dir, ManifestFile)); err == nil {
		m = &Manifest{BOSTokenID: -1, PadTokenID: -1, DecoderStartTokenID: -1}
		if err := json.Unmarshal(data, m); err != nil {
			return nil, fmt.Errorf("models: %s: %v; re-export the model", filepath.Join(dir, ManifestFile), err)
		}
	} else if errors.Is(err, os.ErrNotExist) {
		m, err = deriveFromConfig(dir)
		if err != nil {
			return nil, err
		}
	} else {
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

// Validate checks that the manifest names files that exist and the ids and
// sizes the host needs.
func (m *Manifest) Validate() error {
	bad := func(format string, args ...any) error {
		return fmt.Errorf("models: %s: %s", m.Dir, fmt.Sprintf(format, args...))
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
	if m.MaxPositions < 0 {
		return bad("max_positions is %d; it must be 0 (no limit) or more", m.MaxPositions)
	}
	for _, f := range []string{m.Files.Encoder, m.Files.Decoder, m.Files.DecoderWithPast, m.Files.DecoderMerged, m.Files.DecoderCross, m.Files.DecoderStep, m.Tokenizer.Source, m.Tokenizer.Target} {
		if f == "" {
			continue
		}
		if _, err := os.Stat(m.Path(f)); err != nil {
			return bad("%s is missing; re-export the model", f)
		}
	}
	if m.Tokenizer.Source == "" {
		return bad("no tokenizer.json; export the model with the s2s exporter, which writes one")
	}
	if m.VocabSize <= 0 {
		return bad("vocab_size is %d; the config must give it", m.VocabSize)
	}
	if len(m.EOSTokenIDs) == 0 {
		return bad("no eos_token_id in the config; set one")
	}
	if m.DecoderStartTokenID < 0 {
		return bad("no decoder_start_token_id in the config; set one")
	}
	if m.Architecture == ArchRNN && len(m.States) == 0 {
		return bad("an rnn model needs its state tensors listed under \"states\"")
	}
	return nil
}
