package s2s

import (
	"context"
	"errors"
	"fmt"
	"sync"

	"github.com/s2s-dev/s2s/beamsearch"
	"github.com/s2s-dev/s2s/models"
	"github.com/s2s-dev/s2s/runtime"
	"github.com/s2s-dev/s2s/tokenizer"
)

// Options are the load-time options of a Generator.
type Options struct {
	// Runtime configures ONNX Runtime: library path, provider, threads,
	// graph optimization and which decoder graphs to run.
	Runtime runtime.Options
}

// GenerateOptions are the per-request options, named after the Hugging Face
// generate() parameters. Start from Generator.Defaults.
type GenerateOptions = beamsearch.Options

// FinishReason says why a sequence ended: "eos" or "length".
type FinishReason = beamsearch.FinishReason

// Sequence is one generated sequence of an input.
type Sequence struct {
	// Text is the decoded output, special tokens skipped.
	Text string `json:"text"`
	// Tokens are the generated ids, without the decoder start token.
	Tokens []int64 `json:"tokens"`
	// Score is the sequence's score: under beam search Hugging Face's
	// sequences_scores; under greedy search and sampling the sum of the
	// chosen tokens' log-probabilities.
	Score float64 `json:"score"`
	// FinishReason is "eos" or "length".
	FinishReason FinishReason `json:"finish_reason"`
}

// Output is what one input gave: its sequences, best first.
type Output struct {
	Input     string     `json:"input"`
	Sequences []Sequence `json:"sequences"`
}

// Text returns the best sequence's text.
func (o Output) Text() string {
	if len(o.Sequences) == 0 {
		return ""
	}
	return o.Sequences[0].Text
}

// Event is one streamed piece of output.
type Event struct {
	// Input is the index of the input in the request.
	Input int
	// Text is the newly settled text; never a partial UTF-8 character.
	Text string
	// Tokens are the newly settled token ids.
	Tokens []int64
	// Final is set on the last event of an input; Output holds its result.
	Final  bool
	Output *Output
}

// StreamFunc receives events while a request runs; returning an error stops
// the request with that error.
type StreamFunc func(Event) error

// Generator turns text into text with one model. It is safe for concurrent
// use; each request has its own decoder state.
type Generator struct {
	manifest *models.Manifest
	model    *runtime.Model
	tok      *tokenizer.Tokenizer
	defaults beamsearch.Options

	mu     sync.Mutex
	closed bool
}

// ErrClosed is returned by a Generator used after Close; check with errors.Is.
var ErrClosed = errors.New("s2s: generator is closed")

// Open loads the model directory dir: the graphs, the tokenizer and the
// generation defaults from generation_config.json.
func Open(dir string, opts Options) (*Generator, error) {
	m, err := models.Load(dir)
	if err != nil {
		return nil, err
	}
	gc, err := models.LoadGenerationConfig(dir)
	if err != nil {
		return nil, err
	}
	tok, err := tokenizer.Load(m.Path(m.Tokenizer.Source), m.Path(m.Tokenizer.Target))
	if err != nil {
		return nil, err
	}
	model, err := runtime.Load(m, opts.Runtime) // applies defaults and validates
	if err != nil {
		return nil, err
	}
	return &Generator{manifest: m, model: model, tok: tok, defaults: m.Options(gc)}, nil
}

// Close releases the model's ONNX Runtime sessions. Requests still running
// must finish first.
func (g *Generator) Close() error {
	g.mu.Lock()
	defer g.mu.Unlock()
	if g.closed {
		return nil
	}
	g.closed = true
	return g.model.Close()
}

// Defaults returns the generation options the model asks for: generate()'s
// defaults overlaid with the model's config and generation_config.json.
func (g *Generator) Defaults() GenerateOptions {
	o := g.defaults
	o.EOSTokenIDs = append([]int64(nil), o.EOSTokenIDs...)
	return o
}

// Manifest returns what the model directory says of the model.
func (g *Generator) Manifest() *models.Manifest { return g.manifest }

// Tokenizer returns the model's tokenizer.
func (g *Generator) Tokenizer() *tokenizer.Tokenizer { return g.tok }

// Generate runs one request over inputs, generated together as one batch.
// stream may be nil.
func (g *Generator) Generate(ctx context.Context, inputs []string, opts GenerateOptions, stream StreamFunc) ([]Output, error) {
	if len(inputs) == 0 {
		return nil, errors.New("s2s: no inputs; pass at least one text")
	}
	ids, err := g.tok.EncodeBatch(inputs)
	if err != nil {
		return nil, fmt.Errorf("s2s: %w", err)
	}
	if stream != nil {
		inner := stream
		stream = func(ev Event) error {
			if ev.Output != nil {
				ev.Output.Input = inputs[ev.Input]
			}
			return inner(ev)
		}
	}
	outs, err := g.GenerateIDs(ctx, ids, opts, stream)
	for i := range outs {
		outs[i].Input = inputs[i]
	}
	return outs, err
}

// GenerateText returns the best output text for one input.
func (g *Generator) GenerateText(ctx context.Context, input string, opts GenerateOptions) (string, error) {
	outs, err := g.Generate(ctx, []string{input}, opts, nil)
	if err != nil {
		return "", err
	}
	return outs[0].Text(), nil
}

// GenerateIDs runs one request over already tokenized inputs.
func (g *Generator) GenerateIDs(ctx context.Context, ids [][]int64, opts GenerateOptions, stream StreamFunc) ([]Output, error) {
	g.mu.Lock()
	closed := g.closed
	g.mu.Unlock()
	if closed {
		return nil, ErrClosed
	}
	if len(ids) == 0 {
		return nil, errors.New("s2s: no inputs; pass at least one token sequence")
	}
	vocab := g.model.VocabSize()
	if err := opts.Validate(vocab); err != nil {
		return nil, fmt.Errorf("s2s: %w", err)
	}
	for i, seq := range ids {
		if len(seq) == 0 {
			return nil, fmt.Errorf("s2s: input %d has no tokens; pass non-empty input ids", i)
		}
		for _, id := range seq {
			if id < 0 || id >= int64(vocab) {
				return nil, fmt.Errorf("s2s: input %d has token id %d outside the vocabulary [0, %d)", i, id, vocab)
			}
		}
	}
	// Without a pad id (NoToken) the runtime pads with 0: padded positions
	// are masked, so any id does.
	dec, err := g.model.Encode(ctx, ids, opts.PadTokenID)
	if err != nil {
		return nil, fmt.Errorf("s2s: %w", err)
	}
	defer dec.Close()

	var onStep beamsearch.StreamFunc
	if stream != nil {
		streams := make([]*tokenizer.StreamDecoder, len(ids))
		for i := range streams {
			streams[i] = tokenizer.NewStreamDecoder(g.tok, true)
		}
		onStep = func(s beamsearch.Step) error {
			var text string
			for _, id := range s.Tokens {
				text += streams[s.Input].Add(id)
			}
			ev := Event{Input: s.Input, Tokens: s.Tokens, Text: text}
			if s.Final {
				ev.Text += streams[s.Input].Flush()
				out := g.output(s.Sequences)
				ev.Final, ev.Output = true, &out
			}
			if ev.Text == "" && len(ev.Tokens) == 0 && !ev.Final {
				return nil
			}
			return stream(ev)
		}
	}
	results, err := beamsearch.Generate(ctx, dec, len(ids), opts, onStep)
	if err != nil {
		return nil, fmt.Errorf("s2s: %w", err)
	}
	outs := make([]Output, len(results))
	for i, r := range results {
		outs[i] = g.output(r.Sequences)
	}
	return outs, nil
}

// output decodes a search result's sequences.
func (g *Generator) output(seqs []beamsearch.Sequence) Output {
	out := Output{Sequences: make([]Sequence, len(seqs))}
	for i, s := range seqs {
		out.Sequences[i] = Sequence{
			Text:         g.tok.Decode(s.Tokens, true),
			Tokens:       s.Tokens,
			Score:        s.Score,
			FinishReason: s.FinishReason,
		}
	}
	return out
}
