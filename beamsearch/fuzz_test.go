package beamsearch

import (
	"context"
	"encoding/binary"
	"errors"
	"math"
	"testing"
)

// FuzzSearch runs greedy search, beam search and sampling over scripted
// logits made of the fuzzer's bytes (NaN, infinities, ties, huge values
// included) with options drawn from them: Generate returns an error that
// wraps ErrDecoder or ErrInvalidOptions, or results of the promised shape
// with no NaN score; it never panics.
func FuzzSearch(f *testing.F) {
	f.Add([]byte{0, 1, 2, 3}, []byte{0x00, 0x00, 0x80, 0x3f})
	f.Add([]byte{1, 3, 4, 2, 0, 9}, []byte{0x00, 0x00, 0x80, 0x7f, 0, 0, 0, 0})                   // +Inf
	f.Add([]byte{2, 2, 2, 1, 5}, []byte{0x00, 0x00, 0xc0, 0x7f})                                  // NaN
	f.Add([]byte{3, 1, 7, 3, 250, 0}, []byte{0xff, 0xff, 0x7f, 0x7f, 0xff, 0xff, 0x7f, 0xff})     // ±MaxFloat32
	f.Add([]byte{4, 4, 1, 5, 128, 7, 3}, []byte{0, 0, 0, 0})                                      // all equal
	f.Add([]byte{5, 2, 6, 0, 1, 200, 60}, []byte{0x00, 0x00, 0x80, 0xff, 0x00, 0x00, 0x80, 0x3f}) // -Inf and 1
	f.Fuzz(func(t *testing.T, params, raw []byte) {
		p := func(i int) int {
			if i < len(params) {
				return int(params[i])
			}
			return 0
		}
		vocab := 2 + p(1)%7
		batch := 1 + p(2)%3
		o := Defaults()
		o.EOSTokenIDs = []int64{int64(p(3) % vocab)}
		o.DecoderStartTokenID = int64(p(4) % vocab)
		o.MaxNewTokens = 1 + p(5)%8
		switch p(0) % 3 {
		case 1:
			o.NumBeams = 1 + p(6)%4
			o.NumReturnSequences = 1 + p(7)%o.NumBeams
			o.LengthPenalty = float64(int8(p(8))) / 8
			o.EarlyStopping = []string{EarlyStoppingTrue, EarlyStoppingFalse, EarlyStoppingNever}[p(9)%3]
		case 2:
			o.DoSample = true
			o.NumReturnSequences = 1 + p(6)%3
			o.Temperature = math.Ldexp(1, int(int8(p(7)))/2)
			o.TopK = p(8) % (vocab + 1)
			o.TopP = float64(1+p(9)%100) / 100
			o.Seed = uint64(p(10))
		}
		o.MinNewTokens = p(11) % (o.MaxNewTokens + 1)
		o.RepetitionPenalty = []float64{1, 0.5, 2, 1e-30, 1e30}[p(12)%5]
		o.NoRepeatNgramSize = p(13) % 3
		if p(14)%2 == 1 {
			o.ForcedEOSTokenID = o.EOSTokenIDs[0]
		}
		if p(15)%2 == 1 {
			o.SuppressTokens = []int64{int64(p(16) % vocab)}
		}
		// The logits of each step: the fuzzer's floats, cycled, shifted by
		// the row's history so rows differ.
		var pool []float32
		for i := 0; i+4 <= len(raw); i += 4 {
			pool = append(pool, math.Float32frombits(binary.LittleEndian.Uint32(raw[i:])))
		}
		if len(pool) == 0 {
			pool = []float32{0}
		}
		sources := make([]int, batch)
		for i := range sources {
			sources[i] = i
		}
		dec := newFakeDecoder(vocab, sources, func(src int, history []int64, out []float32) {
			k := src*7 + len(history)*3
			for _, t := range history {
				k += int(t)
			}
			for v := range out {
				out[v] = pool[(k+v)%len(pool)]
			}
		})
		res, err := Generate(context.Background(), dec, batch, o, nil)
		if err != nil {
			if !errors.Is(err, ErrDecoder) && !errors.Is(err, ErrInvalidOptions) {
				t.Fatalf("unexpected error kind: %v", err)
			}
			return
		}
		if len(res) != batch {
			t.Fatalf("%d results for %d inputs", len(res), batch)
		}
		for i, r := range res {
			if len(r.Sequences) != o.NumReturnSequences {
				t.Fatalf("input %d: %d sequences, want %d", i, len(r.Sequences), o.NumReturnSequences)
			}
			for _, s := range r.Sequences {
				if math.IsNaN(s.Score) {
					t.Fatalf("input %d: NaN score: %+v", i, s)
				}
				if len(s.Tokens) > o.MaxNewTokens {
					t.Fatalf("input %d: %d tokens, max %d", i, len(s.Tokens), o.MaxNewTokens)
				}
				for _, tok := range s.Tokens {
					if tok < 0 || tok >= int64(vocab) {
						t.Fatalf("input %d: token %d outside the vocabulary", i, tok)
					}
				}
			}
		}
	})
}
