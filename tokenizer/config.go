package tokenizer

import (
	"bytes"
	"encoding/json"
	"fmt"
)

// fileJSON is the part of a Hugging Face tokenizer.json that s2s reads.
// Truncation and padding are not read: Encode never truncates or pads.
type fileJSON struct {
	AddedTokens   []addedTokenJSON `json:"added_tokens"`
	Normalizer    json.RawMessage  `json:"normalizer"`
	PreTokenizer  json.RawMessage  `json:"pre_tokenizer"`
	PostProcessor json.RawMessage  `json:"post_processor"`
	Decoder       json.RawMessage  `json:"decoder"`
	Model         json.RawMessage  `json:"model"`
}

// addedTokenJSON is one entry of added_tokens.
type addedTokenJSON struct {
	ID         *int64 `json:"id"`
	Content    string `json:"content"`
	SingleWord bool   `json:"single_word"`
	LStrip     bool   `json:"lstrip"`
	RStrip     bool   `json:"rstrip"`
	Normalized bool   `json:"normalized"`
	Special    bool   `json:"special"`
}

// patternJSON is the {"String": ...} or {"Regex": ...} pattern of Replace
// and Split.
type patternJSON struct {
	String *string `json:"String"`
	Regex  *string `json:"Regex"`
}

// isNull reports whether a component is absent or JSON null.
func isNull(raw json.RawMessage) bool {
	raw = bytes.TrimSpace(raw)
	return len(raw) == 0 || bytes.Equal(raw, []byte("null"))
}

// componentType reads the "type" field of a component object.
func componentType(raw json.RawMessage) (string, error) {
	var head struct {
		Type string `json:"type"`
	}
	if err := json.Unmarshal(raw, &head); err != nil {
		return "", err
	}
	return head.Type, nil
}

// decodeInto unmarshals a component into v with a message naming it.
func decodeInto(raw json.RawMessage, what string, v any) error {
	if err := json.Unmarshal(raw, v); err != nil {
		return fmt.Errorf("%s: %v", what, err)
	}
	return nil
}

// metaspaceJSON holds the fields of the Metaspace pre-tokenizer and
// decoder. Like tokenizers, prepend_scheme defaults to "always",
// "add_prefix_space": false (old files) forces "never", and split
// defaults to true.
type metaspaceJSON struct {
	Replacement    string  `json:"replacement"`
	PrependScheme  *string `json:"prepend_scheme"`
	AddPrefixSpace *bool   `json:"add_prefix_space"`
	Split          *bool   `json:"split"`
}

// prependScheme says when Metaspace puts the replacement before a word.
type prependScheme int

const (
	prependAlways prependScheme = iota
	prependFirst
	prependNever
)

// parse resolves the Metaspace settings the way tokenizers deserializes them.
func (m metaspaceJSON) parse(what string) (rep rune, scheme prependScheme, split bool, err error) {
	runes := []rune(m.Replacement)
	if len(runes) != 1 {
		return 0, 0, false, fmt.Errorf("%s: replacement %q must be one character", what, m.Replacement)
	}
	scheme = prependAlways
	if m.PrependScheme != nil {
		switch *m.PrependScheme {
		case "always":
			scheme = prependAlways
		case "first":
			scheme = prependFirst
		case "never":
			scheme = prependNever
		default:
			return 0, 0, false, fmt.Errorf("%s: prepend_scheme %q is unknown; use always, first or never", what, *m.PrependScheme)
		}
	}
	if m.AddPrefixSpace != nil && !*m.AddPrefixSpace {
		scheme = prependNever
	}
	split = true
	if m.Split != nil {
		split = *m.Split
	}
	return runes[0], scheme, split, nil
}
