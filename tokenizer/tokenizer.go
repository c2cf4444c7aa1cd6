package tokenizer

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"sort"
	"strings"
	"sync"
	"unicode/utf8"

	"github.com/s2s-dev/s2s/internal/safefile"
)

// ErrNotFound is returned (wrapped) when a tokenizer.json file does not
// exist; check with errors.Is.
var ErrNotFound = errors.New("tokenizer.json not found")

// ErrMalformed is returned (wrapped) when a tokenizer.json file is not
// valid JSON or a component is missing fields or has bad values; check
// with errors.Is.
var ErrMalformed = errors.New("malformed tokenizer.json")

// ErrUnsupported is returned (wrapped) when a tokenizer.json uses a
// component type this package does not implement; check with errors.Is.
var ErrUnsupported = errors.New("unsupported tokenizer.json")

// MaxFileBytes is the size limit of a tokenizer.json file. The largest
// in use (mT5, NLLB, Gemma) are 16 to 35 MB; parsing takes several times
// the file's size in memory.
const MaxFileBytes = 64 << 20

// ErrBadText is returned (wrapped) by Encode for text that is not valid
// UTF-8; check with errors.Is.
var ErrBadText = errors.New("text is not valid utf-8")

// unsupported returns an error wrapping ErrUnsupported.
func unsupported(format string, args ...any) error {
	return fmt.Errorf("%w: %s", ErrUnsupported, fmt.Sprintf(format, args...))
}

// Tokenizer encodes source text and decodes generated ids, as transformers
// does. It is immutable after Load and safe for concurrent use.
type Tokenizer struct {
	source *pipeline
	target *pipeline
}

// pipeline is one tokenizer.json: normalizer, pre-tokenizer, model,
// post-processor, decoder and added tokens.
type pipeline struct {
	path        string
	model       model
	normalizer  normalizer
	pre         preTokenizer
	post        postProcessor
	dec         decoder
	byContent   map[string]*addedToken
	byID        map[int64]*addedToken
	special     map[string]bool // contents of special added tokens
	specialIDs  []int64
	rawMatch    *matcher // added tokens matched before normalization
	normMatch   *matcher // added tokens matched after normalization
	vocabLength int
	trackStart  bool // alignments needed (Metaspace "first")
	byteRuns    bool // the decoder has ByteFallback: byte tokens decode as runs
}

// Load reads the tokenizer.json files of a model. sourcePath encodes the
// source text; targetPath decodes generated ids. When targetPath is "" or
// names the same file, one tokenizer serves both ways.
func Load(sourcePath, targetPath string) (*Tokenizer, error) {
	src, err := loadPipeline(sourcePath)
	if err != nil {
		return nil, err
	}
	t := &Tokenizer{source: src, target: src}
	if targetPath != "" && filepath.Clean(targetPath) != filepath.Clean(sourcePath) {
		if t.target, err = loadPipeline(targetPath); err != nil {
			return nil, err
		}
	}
	return t, nil
}

// loadPipeline reads and builds one tokenizer.json.
func loadPipeline(path string) (*pipeline, error) {
	if path == "" {
		return nil, fmt.Errorf("tokenizer: %w: no path given; pass the model's tokenizer.json", ErrNotFound)
	}
	data, err := safefile.ReadFile(path, MaxFileBytes, "tokenizer.MaxFileBytes")
	if err != nil {
		if errors.Is(err, os.ErrNotExist) {
			return nil, fmt.Errorf("tokenizer: %s: %w; export the model with its tokenizer (the s2s exporter writes tokenizer.json)", path, ErrNotFound)
		}
		if st, serr := os.Stat(path); serr == nil && st.IsDir() {
			return nil, fmt.Errorf("tokenizer: %s is a directory; pass the tokenizer.json file inside it", path)
		}
		return nil, fmt.Errorf("tokenizer: %w", err)
	}
	return parsePipeline(path, data)
}

// parsePipeline builds a pipeline from the bytes of a tokenizer.json,
// turning any panic in a dependency into an error.
func parsePipeline(path string, data []byte) (p *pipeline, err error) {
	defer func() {
		if r := recover(); r != nil {
			p, err = nil, fmt.Errorf("tokenizer: %s: %w: %v; re-save it with the tokenizers library", path, ErrMalformed, r)
		}
	}()
	return buildPipeline(path, data)
}

func buildPipeline(path string, data []byte) (*pipeline, error) {
	bad := func(err error) error {
		return fmt.Errorf("tokenizer: %s: %w: %v; re-save it with the tokenizers library (tokenizer.save)", path, ErrMalformed, err)
	}
	var f fileJSON
	if err := json.Unmarshal(data, &f); err != nil {
		return nil, bad(err)
	}
	p := &pipeline{path: path}
	var err error
	step := func(e error) error {
		if e == nil {
			return nil
		}
		if errors.Is(e, ErrUnsupported) {
			return fmt.Errorf("tokenizer: %s: %w; convert the tokenizer to supported components or extend this package", path, e)
		}
		return bad(e)
	}
	if p.model, err = newModel(f.Model); err != nil {
		return nil, step(err)
	}
	if p.normalizer, err = newNormalizer(f.Normalizer); err != nil {
		return nil, step(err)
	}
	if p.pre, err = newPreTokenizer(f.PreTokenizer); err != nil {
		return nil, step(err)
	}
	p.trackStart = needsStart(p.pre)
	if p.post, err = newPostProcessor(f.PostProcessor); err != nil {
		return nil, step(err)
	}
	if p.dec, err = newDecoder(f.Decoder); err != nil {
		return nil, step(err)
	}
	p.byteRuns = hasByteFallback(p.dec)
	if err := p.addTokens(f.AddedTokens); err != nil {
		return nil, bad(err)
	}
	return p, nil
}

// addTokens registers added_tokens and builds their matchers. Tokens with
// "normalized": true are matched in normalized text against their own
// normalized form, as tokenizers does.
func (p *pipeline) addTokens(list []addedTokenJSON) error {
	p.byContent = make(map[string]*addedToken, len(list))
	p.byID = make(map[int64]*addedToken, len(list))
	p.special = make(map[string]bool)
	var raw, norm []matchPattern
	for i, a := range list {
		if a.Content == "" {
			return fmt.Errorf("added_tokens[%d] has empty content", i)
		}
		id, ok := p.model.tokenToID(a.Content)
		if a.ID != nil {
			id, ok = *a.ID, true
		}
		if !ok {
			return fmt.Errorf("added_tokens[%d] (%q) has no id", i, a.Content)
		}
		t := &addedToken{id: id, content: a.Content, singleWord: a.SingleWord, lstrip: a.LStrip,
			rstrip: a.RStrip, normalized: a.Normalized, special: a.Special}
		p.byContent[t.content] = t
		p.byID[t.id] = t
		if t.special {
			p.special[t.content] = true
		}
	}
	for _, t := range p.byContent {
		if t.special {
			p.specialIDs = append(p.specialIDs, t.id)
		}
	}
	sort.Slice(p.specialIDs, func(i, j int) bool { return p.specialIDs[i] < p.specialIDs[j] })
	// Register in id order so that equal patterns resolve the same way each run.
	ordered := make([]*addedToken, 0, len(p.byContent))
	for _, t := range p.byContent {
		ordered = append(ordered, t)
	}
	sort.Slice(ordered, func(i, j int) bool { return ordered[i].id < ordered[j].id })
	for _, t := range ordered {
		if t.normalized {
			pat := t.content
			if p.normalizer != nil {
				pat = p.normalizer.normalize(aligned{text: pat}).text
			}
			norm = append(norm, matchPattern{pattern: pat, token: t})
		} else {
			raw = append(raw, matchPattern{pattern: t.content, token: t})
		}
	}
	p.rawMatch = newMatcher(raw)
	p.normMatch = newMatcher(norm)
	// Vocabulary size as tokenizers' get_vocab_size(with_added_tokens=True):
	// model tokens plus added tokens that are not model tokens.
	p.vocabLength = p.model.size()
	for content := range p.byContent {
		if _, ok := p.model.tokenToID(content); !ok {
			p.vocabLength++
		}
	}
	return nil
}

// Encode returns the ids of text with the model's special tokens added by
// its post-processor: T5 "... </s>", BART "<s> ... </s>", Marian "... </s>".
func (t *Tokenizer) Encode(text string) (ids []int64, err error) {
	if !utf8.ValidString(text) {
		return nil, fmt.Errorf("tokenizer: %w; convert the input to utf-8 first", ErrBadText)
	}
	defer func() {
		if r := recover(); r != nil {
			ids, err = nil, fmt.Errorf("tokenizer: %s: encoding failed: %v; the tokenizer.json may be damaged, re-save it with the tokenizers library", t.source.path, r)
		}
	}()
	return t.source.encode(text)
}

// encode runs the pipeline: added tokens, normalizer, pre-tokenizer, model
// and post-processor.
func (p *pipeline) encode(text string) ([]int64, error) {
	var ids []int64
	for _, part := range p.rawMatch.split(text) {
		if part.id >= 0 {
			ids = append(ids, part.id)
			continue
		}
		normalized := newAligned(part.text, part.start, p.trackStart)
		if p.normalizer != nil {
			normalized = p.normalizer.normalize(normalized)
		}
		for _, sub := range p.normMatch.split(normalized.text) {
			if sub.id >= 0 {
				ids = append(ids, sub.id)
				continue
			}
			words := []aligned{normalized.slice(sub.start, sub.start+len(sub.text))}
			if p.pre != nil {
				words = p.pre.preTokenize(words)
			}
			for _, w := range words {
				wordIDs, err := p.model.tokenize(w.text)
				if err != nil {
					return nil, fmt.Errorf("tokenizer: %s: %v", p.path, err)
				}
				ids = append(ids, wordIDs...)
			}
		}
	}
	if p.post != nil {
		ids = p.post.process(ids)
	}
	if ids == nil {
		ids = []int64{}
	}
	return ids, nil
}

// EncodeBatch encodes each text as Encode does, in parallel. It fails with
// the error of the first text (in order) that fails.
func (t *Tokenizer) EncodeBatch(texts []string) ([][]int64, error) {
	out := make([][]int64, len(texts))
	errs := make([]error, len(texts))
	workers := min(runtime.GOMAXPROCS(0), len(texts))
	var wg sync.WaitGroup
	next := make(chan int)
	for range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range next {
				out[i], errs[i] = t.Encode(texts[i])
			}
		}()
	}
	for i := range texts {
		next <- i
	}
	close(next)
	wg.Wait()
	for i, err := range errs {
		if err != nil {
			return nil, fmt.Errorf("text %d: %w", i, err)
		}
	}
	return out, nil
}

// Decode returns the text of ids as tokenizers' decode(ids,
// skip_special_tokens=skipSpecial) does on the target tokenizer. Ids that
// name no token are left out.
func (t *Tokenizer) Decode(ids []int64, skipSpecial bool) string {
	return t.target.decode(ids, skipSpecial)
}

func (p *pipeline) decode(ids []int64, skipSpecial bool) (text string) {
	defer func() {
		if recover() != nil {
			// Decoders index only their own tables; this is a guard, not a path.
			text = ""
		}
	}()
	tokens := make([]string, 0, len(ids))
	for _, id := range ids {
		tok, ok := p.idToToken(id)
		if !ok || (skipSpecial && p.special[tok]) {
			continue
		}
		tokens = append(tokens, tok)
	}
	if p.dec == nil {
		return strings.Join(tokens, " ")
	}
	return strings.Join(p.dec.decodeChain(tokens), "")
}

// idToToken looks an id up in the added tokens, then in the model.
func (p *pipeline) idToToken(id int64) (string, bool) {
	if a, ok := p.byID[id]; ok {
		return a.content, true
	}
	return p.model.idToToken(id)
}

// TokenID returns the id of token in the target vocabulary (added tokens
// first, then the model's), and whether it exists.
func (t *Tokenizer) TokenID(token string) (int64, bool) {
	if a, ok := t.target.byContent[token]; ok {
		return a.id, true
	}
	return t.target.model.tokenToID(token)
}

// SpecialIDs returns the ids of the target tokenizer's special added
// tokens (pad, eos, unk, ... as marked "special" in tokenizer.json), sorted.
// These are what Decode drops when skipSpecial is true.
func (t *Tokenizer) SpecialIDs() []int64 {
	return append([]int64(nil), t.target.specialIDs...)
}

// VocabSize returns the number of distinct tokens of the target tokenizer,
// added tokens included, as tokenizers' get_vocab_size(with_added_tokens=True).
// A model's embedding matrix may have more rows (padding).
func (t *Tokenizer) VocabSize() int {
	return t.target.vocabLength
}
