package s2s

import (
	"context"
	"errors"

	"github.com/s2s-dev/s2s/models"
	"github.com/s2s-dev/s2s/runtime"
	"github.com/s2s-dev/s2s/tokenizer"
)

// OpenBytes loads a packed model from memory: data is the whole .onnx file
// written by `python -m s2s_export pack` (or `hf ... --single-file`), such
// as one embedded in the program with go:embed. The graph, the tokenizers
// and the generation defaults all come from data, and ONNX Runtime makes
// its session from the bytes, so nothing but the ONNX Runtime library is
// read from disk. The Generator keeps data; do not change it.
func OpenBytes(data []byte, opts Options) (*Generator, error) {
	if err := opts.Limits.Validate(); err != nil {
		return nil, err
	}
	p, err := models.ReadPacked(data)
	if err != nil {
		return nil, err
	}
	return openPacked(p, opts)
}

// openPackedFile is Open for a packed model's file: ONNX Runtime reads the
// graph from the file itself.
func openPackedFile(path string, opts Options) (*Generator, error) {
	p, err := models.ReadPackedFile(path)
	if err != nil {
		return nil, err
	}
	return openPacked(p, opts)
}

// openPacked opens a packed model read by models.ReadPacked(File).
func openPacked(p *models.Packed, opts Options) (*Generator, error) {
	m := p.Manifest
	gc, err := p.GenerationConfig()
	if err != nil {
		return nil, err
	}
	tok, err := packedTokenizer(p)
	if err != nil {
		return nil, err
	}
	model, err := runtime.LoadPacked(p, opts.Runtime) // applies defaults and validates
	if err != nil {
		return nil, err
	}
	return newGenerator(m, gc, tok, model, opts)
}

// newGenerator makes the Generator of a loaded model.
func newGenerator(m *models.Manifest, gc *models.GenerationConfig, tok *tokenizer.Tokenizer, model *runtime.Model, opts Options) (*Generator, error) {
	g := &Generator{manifest: m, model: model, tok: tok, defaults: m.Options(gc), limits: opts.Limits.WithDefaults()}
	if err := g.checkDefaults(); err != nil {
		return nil, errors.Join(err, model.Close())
	}
	g.stopping, g.stopAll = context.WithCancelCause(context.Background())
	return g, nil
}

// packedTokenizer builds the tokenizer a packed model holds.
func packedTokenizer(p *models.Packed) (*tokenizer.Tokenizer, error) {
	m, label := p.Manifest, p.Label()+":"
	return tokenizer.FromJSON(
		tokenizer.JSON{Name: label + m.Tokenizer.Source, Data: []byte(p.Metadata[m.Tokenizer.Source])},
		tokenizer.JSON{Name: label + m.Tokenizer.Target, Data: []byte(p.Metadata[m.Tokenizer.Target])},
	)
}

// LoadTokenizer loads the tokenizer of the model at path (a directory or
// a packed file) without its graphs.
func LoadTokenizer(path string) (*tokenizer.Tokenizer, error) {
	if models.IsPackedFile(path) {
		p, err := models.ReadPackedFile(path)
		if err != nil {
			return nil, err
		}
		return packedTokenizer(p)
	}
	m, err := models.Load(path)
	if err != nil {
		return nil, err
	}
	return tokenizer.Load(m.Path(m.Tokenizer.Source), m.Path(m.Tokenizer.Target))
}
