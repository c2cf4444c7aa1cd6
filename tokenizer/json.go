package tokenizer

import (
	"bytes"
	"fmt"
)

// JSON is the content of one tokenizer.json held in memory (a packed
// model's metadata, say) and the name its errors give it.
type JSON struct {
	Name string
	Data []byte
}

// FromJSON builds a Tokenizer from tokenizer.json contents, as Load does
// from files: source encodes the source text, target decodes generated
// ids. A target without Data, or with the same Data, is the source.
func FromJSON(source, target JSON) (*Tokenizer, error) {
	src, err := pipelineFromJSON(source)
	if err != nil {
		return nil, err
	}
	t := &Tokenizer{source: src, target: src}
	if len(target.Data) > 0 && !bytes.Equal(target.Data, source.Data) {
		if t.target, err = pipelineFromJSON(target); err != nil {
			return nil, err
		}
	}
	return t, nil
}

// pipelineFromJSON builds one tokenizer.json held in memory, turning any
// panic in a dependency into an error.
func pipelineFromJSON(j JSON) (p *pipeline, err error) {
	if len(j.Data) == 0 {
		return nil, fmt.Errorf("tokenizer: %s: %w: it is empty; pass the model's tokenizer.json", j.Name, ErrNotFound)
	}
	defer func() {
		if r := recover(); r != nil {
			p, err = nil, fmt.Errorf("tokenizer: %s: %w: %v; re-save it with the tokenizers library", j.Name, ErrMalformed, r)
		}
	}()
	return buildPipeline(j.Name, j.Data)
}
