package models

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"math"
	"os"
	"path/filepath"

	"github.com/s2s-dev/s2s/beamsearch"
)

// idList decodes a token id given as a number, a list of numbers or null.
type idList []int64

func (l *idList) UnmarshalJSON(b []byte) error {
	b = bytes.TrimSpace(b)
	if bytes.Equal(b, []byte("null")) {
		*l = nil
		return nil
	}
	if len(b) > 0 && b[0] == '[' {
		var ids []int64
		if err := json.Unmarshal(b, &ids); err != nil {
			return err
		}
		*l = ids
		return nil
	}
	var id int64
	if err := json.Unmarshal(b, &id); err != nil {
		return err
	}
	*l = idList{id}
	return nil
}

// first returns the first id, or -1 when there is none.
func (l idList) first() int64 {
	if len(l) == 0 {
		return -1
	}
	return l[0]
}

// hfConfig holds the fields of a Hugging Face config.json the host reads.
type hfConfig struct {
	ModelType             string `json:"model_type"`
	VocabSize             int    `json:"vocab_size"`
	DModel                int    `json:"d_model"`
	DKV                   int    `json:"d_kv"`
	NumHeads              int    `json:"num_heads"`
	NumLayers             int    `json:"num_layers"`
	NumDecoderLayers      int    `json:"num_decoder_layers"`
	DecoderLayers         int    `json:"decoder_layers"`
	DecoderAttentionHeads int    `json:"decoder_attention_heads"`
	MaxPositionEmbeddings int    `json:"max_position_embeddings"`
	PadTokenID            idList `json:"pad_token_id"`
	EOSTokenID            idList `json:"eos_token_id"`
	BOSTokenID            idList `json:"bos_token_id"`
	DecoderStartTokenID   idList `json:"decoder_start_token_id"`
}

// readJSON decodes dir/name into v; a missing file is reported as (false, nil).
func readJSON(dir, name string, v any) (bool, error) {
	data, err := readModelFile(dir, name)
	if errors.Is(err, fs.ErrNotExist) {
		return false, nil
	}
	if err != nil {
		return false, fmt.Errorf("models: %w", err)
	}
	if err := json.Unmarshal(data, v); err != nil {
		return false, fmt.Errorf("models: %s: %w: %v; fix or re-export it", filepath.Join(dir, name), ErrBadManifest, err)
	}
	return true, nil
}

// deriveFromConfig builds a manifest for a directory that Optimum wrote:
// config.json plus the Optimum graph file names.
func deriveFromConfig(dir string) (*Manifest, error) {
	var c hfConfig
	ok, err := readJSON(dir, "config.json", &c)
	if err != nil {
		return nil, err
	}
	if !ok {
		return nil, fmt.Errorf("models: %w: %s has neither %s nor config.json; export the model with `python -m s2s_export hf` or optimum-cli", ErrNotModelDir, dir, ManifestFile)
	}
	m := &Manifest{
		Format:              "s2s-model",
		Version:             1,
		Architecture:        ArchTransformer,
		ModelType:           c.ModelType,
		VocabSize:           c.VocabSize,
		HiddenSize:          c.DModel,
		PadTokenID:          c.PadTokenID.first(),
		EOSTokenIDs:         c.EOSTokenID,
		BOSTokenID:          c.BOSTokenID.first(),
		DecoderStartTokenID: c.DecoderStartTokenID.first(),
		MaxPositions:        c.MaxPositionEmbeddings,
		Derived:             true,
	}
	switch {
	case c.NumHeads > 0: // T5 family
		m.NumHeads = c.NumHeads
		m.HeadDim = c.DKV
		m.NumLayers = c.NumDecoderLayers
		if m.NumLayers == 0 {
			m.NumLayers = c.NumLayers
		}
	case c.DecoderAttentionHeads > 0: // BART, mBART, Marian, Pegasus
		m.NumHeads = c.DecoderAttentionHeads
		m.HeadDim = c.DModel / c.DecoderAttentionHeads
		m.NumLayers = c.DecoderLayers
	}
	// A name that exists is kept even when it leads out of dir: Validate
	// refuses it then, rather than acting as if the file were absent.
	exists := func(name string) string {
		if _, err := os.Lstat(filepath.Join(dir, name)); err == nil {
			return name
		}
		return ""
	}
	m.Files = Files{
		Encoder:         exists(OptimumEncoder),
		Decoder:         exists(OptimumDecoder),
		DecoderWithPast: exists(OptimumDecoderWithPast),
		DecoderMerged:   exists(OptimumDecoderMerged),
	}
	m.Tokenizer.Source = exists("tokenizer.json")
	return m, nil
}

// earlyStopping decodes HF's early_stopping: true, false or "never".
type earlyStopping string

func (e *earlyStopping) UnmarshalJSON(b []byte) error {
	var v any
	if err := json.Unmarshal(b, &v); err != nil {
		return err
	}
	switch x := v.(type) {
	case bool:
		if x {
			*e = beamsearch.EarlyStoppingTrue
		} else {
			*e = beamsearch.EarlyStoppingFalse
		}
	case string:
		*e = earlyStopping(x)
	case nil:
		*e = ""
	default:
		return fmt.Errorf("early_stopping must be true, false or \"never\", not %s", b)
	}
	return nil
}

// GenerationConfig holds the generate() defaults of a model, as its
// generation_config.json gives them. Pointer fields are nil when absent.
type GenerationConfig struct {
	MaxLength          *int          `json:"max_length"`
	MaxNewTokens       *int          `json:"max_new_tokens"`
	MinLength          *int          `json:"min_length"`
	MinNewTokens       *int          `json:"min_new_tokens"`
	NumBeams           *int          `json:"num_beams"`
	NumReturnSequences *int          `json:"num_return_sequences"`
	LengthPenalty      *float64      `json:"length_penalty"`
	EarlyStopping      earlyStopping `json:"early_stopping"`
	DoSample           *bool         `json:"do_sample"`
	Temperature        *float64      `json:"temperature"`
	TopK               *int          `json:"top_k"`
	TopP               *float64      `json:"top_p"`
	RepetitionPenalty  *float64      `json:"repetition_penalty"`
	NoRepeatNgramSize  *int          `json:"no_repeat_ngram_size"`
	BadWordsIDs        [][]int64     `json:"bad_words_ids"`
	SuppressTokens     []int64       `json:"suppress_tokens"`
	ForcedBOSTokenID   idList        `json:"forced_bos_token_id"`
	ForcedEOSTokenID   idList        `json:"forced_eos_token_id"`
	EOSTokenID         idList        `json:"eos_token_id"`
	PadTokenID         idList        `json:"pad_token_id"`
	DecoderStartToken  idList        `json:"decoder_start_token_id"`
}

// defaultMaxLength is transformers' GenerationConfig().max_length.
const defaultMaxLength = 20

// GenerationConfigFile is the generation defaults' file name inside a
// model directory.
const GenerationConfigFile = "generation_config.json"

// LoadGenerationConfig reads dir/generation_config.json; a directory without
// one gives an empty config. Values out of range (a negative num_beams, a
// max_length below 2, ...) are refused with an error naming the field. A
// regular file is read as a packed model.
func LoadGenerationConfig(dir string) (*GenerationConfig, error) {
	if IsPackedFile(dir) {
		p, err := ReadPackedFile(dir)
		if err != nil {
			return nil, err
		}
		return p.GenerationConfig()
	}
	g := &GenerationConfig{}
	if _, err := readJSON(dir, GenerationConfigFile, g); err != nil {
		return nil, err
	}
	if err := g.Validate(); err != nil {
		return nil, fmt.Errorf("models: %s: %w", filepath.Join(dir, GenerationConfigFile), err)
	}
	return g, nil
}

// ParseGenerationConfig decodes and checks a generation_config.json.
func ParseGenerationConfig(data []byte) (*GenerationConfig, error) {
	g := &GenerationConfig{}
	if err := json.Unmarshal(data, g); err != nil {
		return nil, fmt.Errorf("%w: %v; fix or re-export it", ErrBadManifest, err)
	}
	if err := g.Validate(); err != nil {
		return nil, err
	}
	return g, nil
}

// Validate checks each value of g on its own: counts in range (so that
// max_length - 1 and the like cannot overflow), probabilities and factors
// finite. How the values fit together (min below max, beams and returned
// sequences) is beamsearch.Options.Validate's, on the merged options.
func (g *GenerationConfig) Validate() error {
	bad := func(format string, args ...any) error {
		return fmt.Errorf("%w: %s; fix the file or drop the field", ErrBadManifest, fmt.Sprintf(format, args...))
	}
	// A count past maxCount cannot be a real setting; it could overflow.
	const maxCount = math.MaxInt32
	for _, f := range []struct {
		name   string
		v      *int
		lo, hi int
	}{
		{"max_length", g.MaxLength, 2, maxCount}, // max_length counts the decoder start token
		{"max_new_tokens", g.MaxNewTokens, 1, maxCount},
		{"min_length", g.MinLength, 0, maxCount},
		{"min_new_tokens", g.MinNewTokens, 0, maxCount},
		{"num_beams", g.NumBeams, 1, maxCount},
		{"num_return_sequences", g.NumReturnSequences, 1, maxCount},
		{"top_k", g.TopK, 0, maxCount},
		{"no_repeat_ngram_size", g.NoRepeatNgramSize, 0, maxCount},
	} {
		if f.v != nil && (*f.v < f.lo || *f.v > f.hi) {
			return bad("%s is %d; it must be between %d and %d", f.name, *f.v, f.lo, f.hi)
		}
	}
	for _, f := range []struct {
		name string
		v    *float64
	}{
		{"length_penalty", g.LengthPenalty}, {"temperature", g.Temperature}, {"top_p", g.TopP}, {"repetition_penalty", g.RepetitionPenalty},
	} {
		if f.v != nil && (math.IsNaN(*f.v) || math.IsInf(*f.v, 0)) {
			return bad("%s is %v; give a finite number", f.name, *f.v)
		}
	}
	switch g.EarlyStopping {
	case "", beamsearch.EarlyStoppingTrue, beamsearch.EarlyStoppingFalse, beamsearch.EarlyStoppingNever:
	default:
		return bad("early_stopping is %q; use true, false or \"never\"", string(g.EarlyStopping))
	}
	return nil
}

// Options returns the generation options a model starts from: the
// generate() defaults, then the manifest's special ids, then the model's
// generation_config.json, as transformers resolves them for an
// encoder-decoder (max_length counts the decoder start token).
func (m *Manifest) Options(g *GenerationConfig) beamsearch.Options {
	o := beamsearch.Defaults()
	o.EOSTokenIDs = append([]int64(nil), m.EOSTokenIDs...)
	o.PadTokenID = m.PadTokenID
	o.DecoderStartTokenID = m.DecoderStartTokenID
	if g == nil {
		return o
	}
	if g.MaxLength != nil {
		// max_length counts the decoder start token, except that
		// generate() reads its own default (20) as 20 new tokens.
		o.MaxNewTokens = *g.MaxLength - 1
		if *g.MaxLength == defaultMaxLength {
			o.MaxNewTokens = defaultMaxLength
		}
	}
	if g.MaxNewTokens != nil {
		o.MaxNewTokens = *g.MaxNewTokens
	}
	if g.MinLength != nil && *g.MinLength > 1 {
		o.MinNewTokens = *g.MinLength - 1
	}
	if g.MinNewTokens != nil {
		o.MinNewTokens = *g.MinNewTokens
	}
	setInt := func(dst *int, src *int) {
		if src != nil {
			*dst = *src
		}
	}
	setFloat := func(dst *float64, src *float64) {
		if src != nil {
			*dst = *src
		}
	}
	setInt(&o.NumBeams, g.NumBeams)
	setInt(&o.NumReturnSequences, g.NumReturnSequences)
	setInt(&o.TopK, g.TopK)
	setInt(&o.NoRepeatNgramSize, g.NoRepeatNgramSize)
	setFloat(&o.LengthPenalty, g.LengthPenalty)
	setFloat(&o.Temperature, g.Temperature)
	setFloat(&o.TopP, g.TopP)
	setFloat(&o.RepetitionPenalty, g.RepetitionPenalty)
	if g.DoSample != nil {
		o.DoSample = *g.DoSample
	}
	if g.EarlyStopping != "" {
		o.EarlyStopping = string(g.EarlyStopping)
	}
	if g.BadWordsIDs != nil {
		o.BadWordsIDs = g.BadWordsIDs
	}
	if g.SuppressTokens != nil {
		o.SuppressTokens = g.SuppressTokens
	}
	if id := g.ForcedBOSTokenID.first(); id >= 0 {
		o.ForcedBOSTokenID = id
	}
	if id := g.ForcedEOSTokenID.first(); id >= 0 {
		o.ForcedEOSTokenID = id
	}
	if len(g.EOSTokenID) > 0 {
		o.EOSTokenIDs = append([]int64(nil), g.EOSTokenID...)
	}
	if id := g.PadTokenID.first(); id >= 0 {
		o.PadTokenID = id
	}
	if id := g.DecoderStartToken.first(); id >= 0 {
		o.DecoderStartTokenID = id
	}
	return o
}
