package tokenizer

import (
	"encoding/json"
	"fmt"
	"math"
	"strings"
	"sync"
	"unicode/utf8"
)

// model turns one pre-tokenized word into ids.
type model interface {
	tokenize(word string) ([]int64, error)
	idToToken(id int64) (string, bool)
	tokenToID(token string) (int64, bool)
	size() int
}

// newModel builds the model described by raw. Files without a "type" are
// recognised by their fields, as tokenizers does.
func newModel(raw json.RawMessage) (model, error) {
	if isNull(raw) {
		return nil, fmt.Errorf("model: missing")
	}
	typ, err := componentType(raw)
	if err != nil {
		return nil, fmt.Errorf("model: %v", err)
	}
	if typ == "" {
		var probe map[string]json.RawMessage
		if err := json.Unmarshal(raw, &probe); err != nil {
			return nil, fmt.Errorf("model: %v", err)
		}
		if _, ok := probe["merges"]; ok {
			typ = "BPE"
		} else if v, ok := probe["vocab"]; ok && len(strings.TrimSpace(string(v))) > 0 && strings.TrimSpace(string(v))[0] == '[' {
			typ = "Unigram"
		}
	}
	switch typ {
	case "BPE":
		return newBPE(raw)
	case "Unigram":
		return newUnigram(raw)
	case "":
		return nil, fmt.Errorf("model: no \"type\" field and not recognisable as BPE or Unigram")
	default:
		return nil, unsupported("model type %q (supported: BPE, Unigram)", typ)
	}
}

// wordCache remembers the ids of recent words, as tokenizers' BPE and
// Unigram caches do. It is safe for concurrent use; it is emptied when it
// reaches its size, and words longer than cacheMaxWord are not kept.
type wordCache struct {
	mu sync.RWMutex
	m  map[string][]int64
}

const (
	cacheSize    = 10000
	cacheMaxWord = 256
)

func (c *wordCache) get(word string) ([]int64, bool) {
	c.mu.RLock()
	ids, ok := c.m[word]
	c.mu.RUnlock()
	return ids, ok
}

func (c *wordCache) put(word string, ids []int64) {
	if len(word) > cacheMaxWord {
		return
	}
	c.mu.Lock()
	if c.m == nil || len(c.m) >= cacheSize {
		c.m = make(map[string][]int64, 256)
	}
	c.m[strings.Clone(word)] = ids
	c.mu.Unlock()
}

// cached returns the ids of word from the cache or from tokenize.
func (c *wordCache) cached(word string, tokenize func(string) ([]int64, error)) ([]int64, error) {
	if ids, ok := c.get(word); ok {
		return ids, nil
	}
	ids, err := tokenize(word)
	if err == nil {
		c.put(word, ids)
	}
	return ids, err
}

// vocabulary is the id <-> token map shared by both models.
type vocabulary struct {
	ids    map[string]int64
	tokens map[int64]string
}

func (v *vocabulary) idToToken(id int64) (string, bool) {
	t, ok := v.tokens[id]
	return t, ok
}

func (v *vocabulary) tokenToID(token string) (int64, bool) {
	id, ok := v.ids[token]
	return id, ok
}

func (v *vocabulary) size() int { return len(v.ids) }

// ---- Unigram ----

// unigram is SentencePiece's unigram model with tokenizers' Viterbi
// search (encode_optimized). sugarme's Unigram is not used: it adds a
// made-up 0.1-per-byte length bonus to every piece, caps pieces at 20 bytes
// and spells all input in bytes when byte_fallback is on, so its ids differ
// from tokenizers'.
type unigram struct {
	vocabulary
	cache        wordCache
	scores       []float64
	unkID        int64 // -1 when the model has none
	byteFallback bool
	minScore     float64
	trie         pieceTrie
}

// pieceTrie finds the vocabulary pieces that start a string, byte by byte,
// in one map keyed by (node, byte).
type pieceTrie struct {
	next map[uint64]int32 // node<<8 | byte -> child node
	id   []int64          // piece id ending at a node, or -1
}

func (t *pieceTrie) insert(piece string, id int64) {
	if t.next == nil {
		t.next = make(map[uint64]int32)
		t.id = []int64{-1}
	}
	node := int32(0)
	for i := 0; i < len(piece); i++ {
		key := uint64(node)<<8 | uint64(piece[i])
		child, ok := t.next[key]
		if !ok {
			child = int32(len(t.id))
			t.id = append(t.id, -1)
			t.next[key] = child
		}
		node = child
	}
	t.id[node] = id
}

// unkPenalty is what tokenizers subtracts from the lowest score to score
// an unknown character.
const unkPenalty = 10.0

func newUnigram(raw json.RawMessage) (*unigram, error) {
	var v struct {
		Vocab        [][2]json.RawMessage `json:"vocab"`
		UnkID        *int64               `json:"unk_id"`
		ByteFallback bool                 `json:"byte_fallback"`
	}
	if err := decodeInto(raw, "model Unigram", &v); err != nil {
		return nil, err
	}
	if len(v.Vocab) == 0 {
		return nil, fmt.Errorf("model Unigram: empty vocab")
	}
	u := &unigram{
		vocabulary:   vocabulary{ids: make(map[string]int64, len(v.Vocab)), tokens: make(map[int64]string, len(v.Vocab))},
		scores:       make([]float64, len(v.Vocab)),
		unkID:        -1,
		byteFallback: v.ByteFallback,
		minScore:     math.Inf(1),
	}
	for i, pair := range v.Vocab {
		var tok string
		var score float64
		if err := json.Unmarshal(pair[0], &tok); err != nil {
			return nil, fmt.Errorf("model Unigram: vocab entry %d: %v", i, err)
		}
		if err := json.Unmarshal(pair[1], &score); err != nil {
			return nil, fmt.Errorf("model Unigram: vocab entry %d: %v", i, err)
		}
		u.ids[tok] = int64(i)
		u.tokens[int64(i)] = tok
		u.scores[i] = score
		u.minScore = math.Min(u.minScore, score)
	}
	// A repeated piece resolves to its last id, as in tokenizers' token_to_ids.
	for tok, id := range u.ids {
		if tok != "" {
			u.trie.insert(tok, id)
		}
	}
	if v.UnkID != nil {
		if *v.UnkID < 0 || *v.UnkID >= int64(len(v.Vocab)) {
			return nil, fmt.Errorf("model Unigram: unk_id %d is outside the vocab of %d", *v.UnkID, len(v.Vocab))
		}
		u.unkID = *v.UnkID
	}
	return u, nil
}

// bestPath is a Viterbi node: the best segmentation of the text up to here.
type bestPath struct {
	id    int64
	score float64
	from  int // start of the last piece; -1 when unreached
}

// encode returns the best segmentation of s into vocabulary pieces, unknown
// characters fused into one piece, as tokenizers' encode_optimized does.
func (u *unigram) encode(s string) ([]string, error) {
	n := len(s)
	nodes := make([]bestPath, n+1)
	for i := range nodes {
		nodes[i].from = -1
	}
	unkScore := u.minScore - unkPenalty
	for start := 0; start < n; {
		_, charLen := utf8.DecodeRuneInString(s[start:])
		here := nodes[start].score
		hasSingle := false
		node := int32(0)
		for end := start + 1; end <= n; end++ {
			child, ok := u.trie.next[uint64(node)<<8|uint64(s[end-1])]
			if !ok {
				break
			}
			node = child
			id := u.trie.id[node]
			if id < 0 {
				continue
			}
			cand := here + u.scores[id]
			if t := &nodes[end]; t.from < 0 || cand > t.score {
				*t = bestPath{id: id, score: cand, from: start}
			}
			if end-start == charLen {
				hasSingle = true
			}
		}
		if !hasSingle {
			if u.unkID < 0 {
				return nil, fmt.Errorf("model Unigram: %q is not in the vocab and the model has no unk_id", s[start:start+charLen])
			}
			cand := here + unkScore
			if t := &nodes[start+charLen]; t.from < 0 || cand > t.score {
				*t = bestPath{id: u.unkID, score: cand, from: start}
			}
		}
		start += charLen
	}
	var out []string
	unkEnd := -1 // end of a run of unknown pieces being fused
	for end := n; end > 0; {
		node := nodes[end]
		if node.id == u.unkID {
			if unkEnd < 0 {
				unkEnd = end
			}
		} else {
			if unkEnd >= 0 {
				out = append(out, s[end:unkEnd])
				unkEnd = -1
			}
			out = append(out, s[node.from:end])
		}
		end = node.from
	}
	if unkEnd >= 0 {
		out = append(out, s[:unkEnd])
	}
	for i, j := 0, len(out)-1; i < j; i, j = i+1, j-1 {
		out[i], out[j] = out[j], out[i]
	}
	return out, nil
}

func (u *unigram) tokenize(word string) ([]int64, error) {
	if word == "" {
		return nil, nil
	}
	return u.cache.cached(word, u.tokenizeWord)
}

func (u *unigram) tokenizeWord(word string) ([]int64, error) {
	pieces, err := u.encode(word)
	if err != nil {
		return nil, err
	}
	ids := make([]int64, 0, len(pieces))
	for _, p := range pieces {
		if id, ok := u.ids[p]; ok {
			ids = append(ids, id)
			continue
		}
		if u.byteFallback {
			if bytes, ok := byteFallbackIDs(u.ids, p); ok {
				ids = append(ids, bytes...)
				continue
			}
		}
		ids = append(ids, u.unkID)
	}
	return ids, nil
}

// byteFallbackIDs returns the ids of the "<0xAB>" tokens spelling s, or
// false when one is missing.
func byteFallbackIDs(vocab map[string]int64, s string) ([]int64, bool) {
	ids := make([]int64, 0, len(s))
	for i := 0; i < len(s); i++ {
		id, ok := vocab[fmt.Sprintf("<0x%02X>", s[i])]
		if !ok {
			return nil, false
		}
		ids = append(ids, id)
	}
	return ids, true
}

// ---- BPE ----

// bpe is the byte-pair-encoding model. sugarme's BPE is not used: its merge
// queue does not break ties between equal-rank merges leftmost first (so
// "aaa" can merge as a+aa), it puts
// continuing_subword_prefix on the first character instead of the others,
// never adds end_of_word_suffix, panics on an unknown character without
// unk_token, and ignores fuse_unk, byte_fallback and ignore_merges.
type bpe struct {
	vocabulary
	cache        wordCache
	merges       map[[2]int64]bpeMerge
	unk          int64 // -1 when none
	prefix       string
	suffix       string
	fuseUnk      bool
	byteFallback bool
	ignoreMerges bool
}

// bpeMerge is the rank of a merge and the id it produces.
type bpeMerge struct {
	rank  int
	newID int64
}

func newBPE(raw json.RawMessage) (*bpe, error) {
	var v struct {
		Dropout      *float64          `json:"dropout"`
		UnkToken     *string           `json:"unk_token"`
		Prefix       *string           `json:"continuing_subword_prefix"`
		Suffix       *string           `json:"end_of_word_suffix"`
		FuseUnk      bool              `json:"fuse_unk"`
		ByteFallback bool              `json:"byte_fallback"`
		IgnoreMerges bool              `json:"ignore_merges"`
		Vocab        map[string]int64  `json:"vocab"`
		Merges       []json.RawMessage `json:"merges"`
	}
	if err := decodeInto(raw, "model BPE", &v); err != nil {
		return nil, err
	}
	if v.Dropout != nil && *v.Dropout != 0 {
		return nil, fmt.Errorf("model BPE: dropout %g makes tokenization random; set \"dropout\" to null for inference", *v.Dropout)
	}
	if len(v.Vocab) == 0 {
		return nil, fmt.Errorf("model BPE: empty vocab")
	}
	b := &bpe{
		vocabulary:   vocabulary{ids: v.Vocab, tokens: make(map[int64]string, len(v.Vocab))},
		merges:       make(map[[2]int64]bpeMerge, len(v.Merges)),
		unk:          -1,
		fuseUnk:      v.FuseUnk,
		byteFallback: v.ByteFallback,
		ignoreMerges: v.IgnoreMerges,
	}
	for tok, id := range v.Vocab {
		b.tokens[id] = tok
	}
	if v.Prefix != nil {
		b.prefix = *v.Prefix
	}
	if v.Suffix != nil {
		b.suffix = *v.Suffix
	}
	if v.UnkToken != nil {
		id, ok := v.Vocab[*v.UnkToken]
		if !ok {
			return nil, fmt.Errorf("model BPE: unk_token %q is not in the vocab", *v.UnkToken)
		}
		b.unk = id
	}
	for i, m := range v.Merges {
		left, right, err := parseMerge(m)
		if err != nil {
			return nil, fmt.Errorf("model BPE: merge %d: %v", i, err)
		}
		a, okA := v.Vocab[left]
		c, okC := v.Vocab[right]
		if !okA || !okC {
			return nil, fmt.Errorf("model BPE: merge %d (%q %q) uses a token that is not in the vocab", i, left, right)
		}
		merged := left + strings.TrimPrefix(right, b.prefix)
		id, ok := v.Vocab[merged]
		if !ok {
			return nil, fmt.Errorf("model BPE: merge %d makes %q, which is not in the vocab", i, merged)
		}
		b.merges[[2]int64{a, c}] = bpeMerge{rank: i, newID: id}
	}
	return b, nil
}

// parseMerge reads a merge written as "a b" (old files) or ["a", "b"].
func parseMerge(raw json.RawMessage) (string, string, error) {
	var pair []string
	if err := json.Unmarshal(raw, &pair); err == nil {
		if len(pair) != 2 {
			return "", "", fmt.Errorf("has %d parts, want 2", len(pair))
		}
		return pair[0], pair[1], nil
	}
	var line string
	if err := json.Unmarshal(raw, &line); err != nil {
		return "", "", fmt.Errorf("is neither \"a b\" nor [\"a\", \"b\"]")
	}
	left, right, ok := strings.Cut(line, " ")
	if !ok || strings.Contains(right, " ") {
		return "", "", fmt.Errorf("%q is not two tokens separated by one space", line)
	}
	return left, right, nil
}

// symbol is one part of a word being merged, linked to its neighbours.
type symbol struct {
	id         int64
	prev, next int
	size       int // bytes; 0 once merged into its left neighbour
}

// mergeItem is a candidate merge in the queue.
type mergeItem struct {
	pos   int
	rank  int
	newID int64
}

// mergeQueue is a min-heap on (rank, pos): the lowest rank first, the
// leftmost among equals, as in tokenizers.
type mergeQueue []mergeItem

func (q mergeQueue) less(i, j int) bool {
	if q[i].rank != q[j].rank {
		return q[i].rank < q[j].rank
	}
	return q[i].pos < q[j].pos
}

func (q *mergeQueue) push(it mergeItem) {
	*q = append(*q, it)
	h := *q
	for i := len(h) - 1; i > 0; {
		parent := (i - 1) / 2
		if !h.less(i, parent) {
			break
		}
		h[i], h[parent] = h[parent], h[i]
		i = parent
	}
}

func (q *mergeQueue) pop() mergeItem {
	h := *q
	top := h[0]
	last := len(h) - 1
	h[0] = h[last]
	h = h[:last]
	for i := 0; ; {
		l, r, m := 2*i+1, 2*i+2, i
		if l < len(h) && h.less(l, m) {
			m = l
		}
		if r < len(h) && h.less(r, m) {
			m = r
		}
		if m == i {
			break
		}
		h[i], h[m] = h[m], h[i]
		i = m
	}
	*q = h
	return top
}

func (b *bpe) tokenize(word string) ([]int64, error) {
	if word == "" {
		return nil, nil
	}
	if b.ignoreMerges {
		if id, ok := b.ids[word]; ok {
			return []int64{id}, nil
		}
	}
	return b.cache.cached(word, b.tokenizeWord)
}

func (b *bpe) tokenizeWord(word string) ([]int64, error) {
	syms := make([]symbol, 0, len(word))
	add := func(id int64, size int) {
		syms = append(syms, symbol{id: id, prev: len(syms) - 1, next: len(syms) + 1, size: size})
	}
	unkID, unkLen := int64(-1), 0
	for i := 0; i < len(word); {
		_, size := utf8.DecodeRuneInString(word[i:])
		s := word[i : i+size]
		if i > 0 {
			s = b.prefix + s
		}
		if i+size == len(word) {
			s += b.suffix
		}
		if id, ok := b.ids[s]; ok {
			if unkID >= 0 {
				add(unkID, unkLen)
				unkID = -1
			}
			add(id, size)
		} else if fb, ok := b.fallback(s); ok {
			for _, id := range fb {
				add(id, 1)
			}
		} else if b.unk >= 0 {
			switch {
			case unkID >= 0 && b.fuseUnk:
				unkLen += size
			case unkID >= 0:
				add(unkID, unkLen)
				unkLen = size
			default:
				unkID, unkLen = b.unk, size
			}
		}
		// Without unk_token an unknown character is dropped, as in tokenizers.
		i += size
	}
	if unkID >= 0 {
		add(unkID, unkLen)
	}
	if len(syms) == 0 {
		return nil, nil
	}
	syms[len(syms)-1].next = -1
	b.mergeAll(syms)
	ids := make([]int64, 0, len(syms))
	for _, s := range syms {
		if s.size > 0 {
			ids = append(ids, s.id)
		}
	}
	return ids, nil
}

// fallback spells s with "<0xAB>" tokens when byte_fallback is on.
func (b *bpe) fallback(s string) ([]int64, bool) {
	if !b.byteFallback {
		return nil, false
	}
	return byteFallbackIDs(b.ids, s)
}

// mergeAll applies merges lowest rank first, leftmost among equal ranks.
func (b *bpe) mergeAll(syms []symbol) {
	q := make(mergeQueue, 0, len(syms))
	for i := 0; i+1 < len(syms); i++ {
		if m, ok := b.merges[[2]int64{syms[i].id, syms[i+1].id}]; ok {
			q.push(mergeItem{pos: i, rank: m.rank, newID: m.newID})
		}
	}
	for len(q) > 0 {
		top := q.pop()
		cur := &syms[top.pos]
		if cur.size == 0 || cur.next == -1 {
			continue
		}
		nextPos := cur.next
		right := syms[nextPos]
		// Skip queue entries made stale by an earlier merge.
		if m, ok := b.merges[[2]int64{cur.id, right.id}]; !ok || m.newID != top.newID {
			continue
		}
		cur.id = top.newID
		cur.size += right.size
		cur.next = right.next
		syms[nextPos].size = 0
		if right.next >= 0 && right.next < len(syms) {
			syms[right.next].prev = top.pos
		}
		if cur.prev >= 0 {
			if m, ok := b.merges[[2]int64{syms[cur.prev].id, cur.id}]; ok {
				q.push(mergeItem{pos: cur.prev, rank: m.rank, newID: m.newID})
			}
		}
		if cur.next >= 0 && cur.next < len(syms) {
			if m, ok := b.merges[[2]int64{cur.id, syms[cur.next].id}]; ok {
				q.push(mergeItem{pos: top.pos, rank: m.rank, newID: m.newID})
			}
		}
	}
}
