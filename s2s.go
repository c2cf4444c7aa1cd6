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
	// Limits bound each request; zero fields take DefaultLimits.
	Limits Limits
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
	// Sample is which returned sequence Text continues when sampling with
	// NumReturnSequences above 1 (each is streamed on its own); otherwise 0.
	Sample int
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
	limits   Limits

	mu       sync.Mutex
	closed   bool
	running  int           // requests in flight
	drained  chan struct{} // closed when running drops to 0 after closed is set
	stopping context.Context
	stopAll  context.CancelCauseFunc // ends every running request's context, cause ErrClosed
}

// ErrClosed is returned by a Generator used after Close; check with errors.Is.
var ErrClosed = errors.New("s2s: generator is closed")

// Open loads the model directory dir: the graphs, the tokenizer and the
// generation defaults from generation_config.json. A regular file is read
// as a packed model (one .onnx file written by `python -m s2s_export
// pack`; see OpenBytes).
func Open(dir string, opts Options) (*Generator, error) {
	if err := opts.Limits.Validate(); err != nil {
		return nil, err
	}
	if models.IsPackedFile(dir) {
		return openPackedFile(dir, opts)
	}
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
	return newGenerator(m, gc, tok, model, opts)
}

// checkDefaults caps the model's default max_new_tokens to the limits and
// the model's positions, and refuses defaults no request could run with.
func (g *Generator) checkDefaults() error {
	g.defaults = g.limits.Cap(g.defaults, g.manifest.MaxPositions)
	if err := g.CheckOptions(g.defaults); err != nil {
		return fmt.Errorf("s2s: the defaults of %s do not work: %w; fix the file or raise the limit", g.manifest.Path(models.GenerationConfigFile), err)
	}
	return nil
}

// CheckOptions reports what Generate would refuse in opts before running
// anything: a *LimitError for options over the limits or the model's
// positions, else an error wrapping beamsearch.ErrInvalidOptions.
func (g *Generator) CheckOptions(opts GenerateOptions) error {
	if err := g.limits.CheckOptions(opts, g.manifest.MaxPositions); err != nil {
		return err
	}
	if err := opts.Validate(g.model.VocabSize()); err != nil {
		return fmt.Errorf("s2s: %w", err)
	}
	return nil
}

// Close stops the requests still running (each returns an error that
// errors.Is(err, ErrClosed) reports, within one graph node), waits for them
// to return and releases the model's ONNX Runtime sessions. Later requests
// get ErrClosed. Closing twice is harmless. Shutdown lets running requests
// finish first.
func (g *Generator) Close() error {
	_, err := g.shutdown(nil)
	return err
}

// Shutdown refuses new requests (ErrClosed), waits until the running ones
// have finished or ctx ends, whichever comes first, then stops those still
// running as Close does and releases the sessions. It returns ctx's error
// when it had to stop requests, else the error of releasing the sessions.
func (g *Generator) Shutdown(ctx context.Context) error {
	stopped, err := g.shutdown(ctx.Done())
	if stopped {
		return errors.Join(ctx.Err(), err)
	}
	return err
}

// shutdown closes the Generator once running requests are done or done
// is closed (nil: at once); it reports whether it had to stop requests.
func (g *Generator) shutdown(done <-chan struct{}) (stopped bool, err error) {
	g.mu.Lock()
	if g.closed {
		g.mu.Unlock()
		return false, nil
	}
	g.closed = true
	var drained chan struct{}
	if g.running > 0 {
		drained = make(chan struct{})
		g.drained = drained
	}
	g.mu.Unlock()
	if drained != nil {
		if done != nil {
			select {
			case <-drained:
			case <-done:
				stopped = true
			}
		} else {
			stopped = true
		}
		if stopped {
			g.stopAll(ErrClosed)
			<-drained
		}
	}
	g.stopAll(ErrClosed)
	return stopped, g.model.Close()
}

// begin registers a request and returns its context, which ends with ctx
// or when the Generator is closed, and the function that ends the request.
func (g *Generator) begin(ctx context.Context) (context.Context, func(), error) {
	g.mu.Lock()
	defer g.mu.Unlock()
	if g.closed {
		return nil, nil, ErrClosed
	}
	g.running++
	rctx, cancel := context.WithCancelCause(ctx)
	stop := context.AfterFunc(g.stopping, func() { cancel(ErrClosed) })
	return rctx, func() {
		stop()
		cancel(nil)
		g.mu.Lock()
		defer g.mu.Unlock()
		if g.running--; g.running == 0 && g.drained != nil {
			close(g.drained)
			g.drained = nil
		}
	}, nil
}

// closedErr returns ErrClosed (wrapped) when the Generator's Close ended the
// request of ctx, else err as it is.
func closedErr(ctx context.Context, err error) error {
	if err != nil && errors.Is(context.Cause(ctx), ErrClosed) && !errors.Is(err, ErrClosed) {
		return fmt.Errorf("%w: closed while the request ran (%v)", ErrClosed, err)
	}
	return err
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

// Continuous reports whether the model can run requests at different
// steps in one batch (NewContinuous works: the inplace layout).
func (g *Generator) Continuous() bool { return g.model.Joins() }

// Limits returns the limits each request is checked against.
func (g *Generator) Limits() Limits { return g.limits }

// Tokenizer returns the model's tokenizer.
func (g *Generator) Tokenizer() *tokenizer.Tokenizer { return g.tok }

// Generate runs one request over inputs, generated together as one batch.
// stream may be nil. When ctx ends the request stops within one graph node
// (ONNX Runtime's terminate flag) and returns an error wrapping ctx's
// cause; when the Generator is closed meanwhile, one wrapping ErrClosed.
func (g *Generator) Generate(ctx context.Context, inputs []string, opts GenerateOptions, stream StreamFunc) ([]Output, error) {
	return g.generateTexts(ctx, inputs, opts, stream, g.GenerateIDs)
}

// generateTexts checks and tokenizes inputs, runs them through run and
// puts each input's text in its Output (and in the stream's events); it
// is Generate's body for the Generator and for a Continuous batch.
func (g *Generator) generateTexts(ctx context.Context, inputs []string, opts GenerateOptions, stream StreamFunc,
	run func(context.Context, [][]int64, GenerateOptions, StreamFunc) ([]Output, error)) ([]Output, error) {
	if len(inputs) == 0 {
		return nil, errors.New("s2s: no inputs; pass at least one text")
	}
	// What needs no tokens is checked before tokenizing.
	if err := g.limits.checkTexts(inputs); err != nil {
		return nil, err
	}
	if err := g.CheckOptions(opts); err != nil {
		return nil, err
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
	outs, err := run(ctx, ids, opts, stream)
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
	ctx, end, err := g.begin(ctx)
	if err != nil {
		return nil, err
	}
	defer end()
	outs, err := g.generateIDs(ctx, ids, opts, stream)
	return outs, closedErr(ctx, err)
}

// generateIDs is GenerateIDs for a registered request.
func (g *Generator) generateIDs(ctx context.Context, ids [][]int64, opts GenerateOptions, stream StreamFunc) ([]Output, error) {
	if err := g.checkRequest(ids, opts); err != nil {
		return nil, err
	}
	// Without a pad id (NoToken) the runtime pads with 0: padded positions
	// are masked, so any id does.
	dec, err := g.model.Encode(ctx, ids, opts.PadTokenID)
	if err != nil {
		return nil, fmt.Errorf("s2s: %w", err)
	}
	defer dec.Close()
	results, err := beamsearch.Generate(ctx, dec, len(ids), opts, g.onStep(len(ids), opts, stream))
	if err != nil {
		return nil, fmt.Errorf("s2s: %w", err)
	}
	outs := make([]Output, len(results))
	for i, r := range results {
		outs[i] = g.output(r.Sequences)
	}
	return outs, nil
}

// checkRequest checks a request against the limits, the options against
// the vocabulary and every input id.
func (g *Generator) checkRequest(ids [][]int64, opts GenerateOptions) error {
	if len(ids) == 0 {
		return errors.New("s2s: no inputs; pass at least one token sequence")
	}
	if err := g.limits.check(ids, opts, g.manifest.MaxPositions); err != nil {
		return err
	}
	vocab := g.model.VocabSize()
	if err := opts.Validate(vocab); err != nil {
		return fmt.Errorf("s2s: %w", err)
	}
	for i, seq := range ids {
		if len(seq) == 0 {
			return fmt.Errorf("s2s: input %d has no tokens; pass non-empty input ids", i)
		}
		for _, id := range seq {
			if id < 0 || id >= int64(vocab) {
				return fmt.Errorf("s2s: input %d has token id %d outside the vocabulary [0, %d)", i, id, vocab)
			}
		}
	}
	return nil
}

// onStep turns a request's stream into the search's: text decoded as it
// settles, never inside a UTF-8 character; nil for none.
func (g *Generator) onStep(inputs int, opts GenerateOptions, stream StreamFunc) beamsearch.StreamFunc {
	var onStep beamsearch.StreamFunc
	if stream != nil {
		// One text decoder per input and sampled sequence: sampled
		// sequences of one input are streamed interleaved.
		samples := 1
		if opts.DoSample {
			samples = max(opts.NumReturnSequences, 1)
		}
		streams := make([]*tokenizer.StreamDecoder, inputs*samples)
		for i := range streams {
			streams[i] = tokenizer.NewStreamDecoder(g.tok, true)
		}
		onStep = func(s beamsearch.Step) error {
			var text string
			sd := streams[s.Input*samples+s.Sample]
			for _, id := range s.Tokens {
				text += sd.Add(id)
			}
			ev := Event{Input: s.Input, Sample: s.Sample, Tokens: s.Tokens, Text: text}
			if s.Final {
				// The other samples' held-back text comes first, each
				// in an event of its own.
				for k := 1; k < samples; k++ {
					if rest := streams[s.Input*samples+k].Flush(); rest != "" {
						if err := stream(Event{Input: s.Input, Sample: k, Text: rest}); err != nil {
							return err
						}
					}
				}
				ev.Text += streams[s.Input*samples].Flush()
				out := g.output(s.Sequences)
				ev.Final, ev.Output = true, &out
			}
			if ev.Text == "" && len(ev.Tokens) == 0 && !ev.Final {
				return nil
			}
			return stream(ev)
		}
	}
	return onStep
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
