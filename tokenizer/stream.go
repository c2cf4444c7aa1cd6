package tokenizer

import "strings"

// StreamDecoder turns ids into text one id at a time, for streaming
// generation. The text it returns, concatenated, equals Decode of all the
// ids it was given. It never returns part of a multi-byte character: text
// that may still change (a trailing U+FFFD that later bytes could complete)
// is held back until the next id or Flush.
//
// Each Add decodes a short window of the last ids, not all of them, so a
// stream costs time linear in its length. The window starts at an id
// before the text not yet settled, whose text, decoded alone, is not empty
// and ends the text returned so far: with it as context, decoders that
// treat the start of the text apart (Metaspace's first token, a Replace
// of leading spaces) decode the next ids as they do inside the whole
// text. With a ByteFallback decoder the window never starts inside a run
// of byte tokens, which decode together.
//
// Two decoders rewrite text already returned: Strip with "stop" > 0 (it
// trims the end of the text, which later ids move), and ByteFallback when a
// run of byte tokens that spelled valid UTF-8 turns invalid (tokenizers
// then gives one U+FFFD per byte of the whole run). The stream keeps what
// it returned and can fall short of Decode there; so it does when the
// text stays unsettled for more than maxWindow ids (invalid UTF-8 that
// never completes), where the window is cut to bound the cost. A
// StreamDecoder is not safe for concurrent use; use one per generation.
type StreamDecoder struct {
	p           *pipeline
	skipSpecial bool
	window      []int64         // the last ids: window[0] is context, already returned
	base        string          // decode of the context ids, not returned by this window
	sent        string          // the text after base already returned
	returned    strings.Builder // all the text returned
}

// maxWindow is the most ids a StreamDecoder decodes at once.
const maxWindow = 64

// NewStreamDecoder returns a StreamDecoder that decodes with t's target
// tokenizer, dropping special tokens when skipSpecial is true.
func NewStreamDecoder(t *Tokenizer, skipSpecial bool) *StreamDecoder {
	return &StreamDecoder{p: t.target, skipSpecial: skipSpecial}
}

// Add appends id and returns the text it completes, often "".
func (s *StreamDecoder) Add(id int64) string {
	tok, ok := s.p.idToToken(id)
	if !ok || s.skipSpecial && s.p.special[tok] {
		return "" // Decode leaves it out as well
	}
	s.window = append(s.window, id)
	text := s.p.decode(s.window, false)
	done := s.base + s.sent
	if !strings.HasPrefix(text, done) {
		// Text already returned was rewritten; wait until it is restored.
		if len(s.window) > maxWindow {
			s.restart()
		}
		return ""
	}
	stable := strings.TrimRight(text, "\uFFFD")
	var out string
	if len(stable) > len(done) {
		out = stable[len(done):]
	}
	switch {
	case len(stable) == len(text):
		s.give(out)
		s.settle()
	case len(s.window) > maxWindow:
		// Invalid bytes that no later id completes: give them up.
		out = text[len(done):]
		s.give(out)
		s.restart()
	default:
		s.give(out)
	}
	return out
}

// give records out as returned.
func (s *StreamDecoder) give(out string) {
	s.sent += out
	s.returned.WriteString(out)
}

// Flush returns the text held back so far, if any. Add may be called again
// afterwards.
func (s *StreamDecoder) Flush() string {
	if len(s.window) == 0 {
		return ""
	}
	text := s.p.decode(s.window, false)
	done := s.base + s.sent
	if !strings.HasPrefix(text, done) {
		return ""
	}
	out := text[len(done):]
	s.give(out)
	return out
}

// settle shrinks the window once all its text is returned, to the latest
// ids that may start one (see StreamDecoder), which stay as context.
func (s *StreamDecoder) settle() {
	returned := s.returned.String()
	for cut := len(s.window) - 1; cut > 0; cut-- {
		if s.p.byteRuns && s.isByteToken(s.window[cut]) {
			continue
		}
		base := s.p.decode(s.window[cut:], false)
		if base == "" || !strings.HasSuffix(returned, base) {
			continue
		}
		s.window = append(s.window[:0], s.window[cut:]...)
		s.base, s.sent = base, ""
		return
	}
}

// restart makes the last id the whole window, as if all its text had been
// returned.
func (s *StreamDecoder) restart() {
	s.window = append(s.window[:0], s.window[len(s.window)-1])
	s.base = s.p.decode(s.window, false)
	s.sent = ""
}

func (s *StreamDecoder) isByteToken(id int64) bool {
	tok, _ := s.p.idToToken(id)
	_, ok := parseByteToken(tok)
	return ok
}
