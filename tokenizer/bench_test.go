package tokenizer

import (
	"fmt"
	"strings"
	"testing"
)

// BenchmarkEncode encodes the whole corpus per iteration.
func BenchmarkEncode(b *testing.B) {
	corpus := readCorpus(b)
	for _, name := range []string{"t5", "bart", "marian"} {
		tok := loadNamed(b, name)
		b.Run(name, func(b *testing.B) {
			n := 0
			for _, s := range corpus {
				n += len(s)
			}
			b.SetBytes(int64(n))
			for b.Loop() {
				for _, s := range corpus {
					if _, err := tok.Encode(s); err != nil {
						b.Fatal(err)
					}
				}
			}
		})
	}
}

// BenchmarkEncodeBatch encodes the corpus as one batch.
func BenchmarkEncodeBatch(b *testing.B) {
	corpus := readCorpus(b)
	tok := loadNamed(b, "t5")
	for b.Loop() {
		if _, err := tok.EncodeBatch(corpus); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkStream streams a generated output of n tokens through a
// StreamDecoder, which decodes all ids at each step.
func BenchmarkStream(b *testing.B) {
	corpus := readCorpus(b)
	for _, name := range []string{"t5", "bart"} {
		tok := loadNamed(b, name)
		ids, err := tok.Encode(strings.Join(corpus[len(corpus)-100:], " "))
		if err != nil {
			b.Fatal(err)
		}
		for _, n := range []int{64, 256, 1024} {
			if n > len(ids) {
				continue
			}
			b.Run(fmt.Sprintf("%s/%d", name, n), func(b *testing.B) {
				for b.Loop() {
					sd := NewStreamDecoder(tok, true)
					for _, id := range ids[:n] {
						sd.Add(id)
					}
					sd.Flush()
				}
			})
		}
	}
}
