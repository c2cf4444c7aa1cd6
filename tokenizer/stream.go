package tokenizer

import "strings"

// StreamDecoder turns ids into text one id at a time, for streaming
// generation. The text it returns, concatenated, equals Decode of all the
// ids it was given. It never returns part of a multi-byte character: text
// that may still change (a trailing U+FFFD that later bytes could complete)
// is held back until the next id or Flush. The one supported decoder that
// rewrites text already seen is Strip with "stop" > 0 (it trims the end of
// the text, which later ids move); with it the stream can fall short of
// Decode. A StreamDecoder is not safe for concurrent use; use one per
// generation.
type StreamDecoder struct {
	t           *Tokenizer
	skipSpecial bool
	ids         []int64
	prev        string // the decoded text already returned
}

// NewStreamDecoder returns a StreamDecoder that decodes with t's target
// tokenizer, dropping special tokens when skipSpecial is true.
func NewStreamDecoder(t *Tokenizer, skipSpecial bool) *StreamDecoder {
	return &StreamDecoder{t: t, skipSpecial: skipSpecial}
}

// Add appends id and returns the text it completes, often "".
//
// Each call decodes all ids so far (decoders such as Metaspace treat the
// first token apart, so a suffix cannot be decoded alone); the cost grows
// with the length of the output, which is small next to a decoder step.
func (s *StreamDecoder) Add(id int64) string {
	s.ids = append(s.ids, id)
	text := s.t.Decode(s.ids, s.skipSpecial)
	stable := strings.TrimRight(text, "\uFFFD")
	return s.take(text, len(stable))
}

// Flush returns the text held back so far, if any. Add may be called again
// afterwards.
func (s *StreamDecoder) Flush() string {
	text := s.t.Decode(s.ids, s.skipSpecial)
	return s.take(text, len(text))
}

// take returns text[len(prev):end], where prev is the text returned so
// far, and records it. Should a decoder rewrite text already returned (none
// of the supported ones does), nothing is returned until it is restored.
func (s *StreamDecoder) take(text string, end int) string {
	if end <= len(s.prev) || !strings.HasPrefix(text, s.prev) {
		return ""
	}
	out := text[len(s.prev):end]
	s.prev = text[:end]
	return out
}
