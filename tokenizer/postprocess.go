package tokenizer

import (
	"encoding/json"
	"fmt"
)

// postProcessor adds the model's special tokens around one encoded text.
type postProcessor interface {
	process(ids []int64) []int64
}

// newPostProcessor builds the post-processor described by raw (nil for
// none). Only the "single" template matters: Encode takes one text.
func newPostProcessor(raw json.RawMessage) (postProcessor, error) {
	if isNull(raw) {
		return nil, nil
	}
	typ, err := componentType(raw)
	if err != nil {
		return nil, fmt.Errorf("post_processor: %v", err)
	}
	switch typ {
	case "TemplateProcessing":
		return newTemplate(raw)
	case "RobertaProcessing", "BertProcessing":
		var v struct {
			Sep [2]json.RawMessage `json:"sep"`
			Cls [2]json.RawMessage `json:"cls"`
		}
		what := "post_processor " + typ
		if err := decodeInto(raw, what, &v); err != nil {
			return nil, err
		}
		var sep, cls int64
		if err := json.Unmarshal(v.Sep[1], &sep); err != nil {
			return nil, fmt.Errorf("%s: sep: %v", what, err)
		}
		if err := json.Unmarshal(v.Cls[1], &cls); err != nil {
			return nil, fmt.Errorf("%s: cls: %v", what, err)
		}
		return templateProcessor{{special: []int64{cls}}, {sequence: true}, {special: []int64{sep}}}, nil
	case "ByteLevel":
		// It only trims offsets; ids are unchanged.
		return nil, nil
	case "Sequence":
		var v struct {
			Processors []json.RawMessage `json:"processors"`
		}
		if err := decodeInto(raw, "post_processor Sequence", &v); err != nil {
			return nil, err
		}
		var seq sequenceProcessor
		for _, r := range v.Processors {
			p, err := newPostProcessor(r)
			if err != nil {
				return nil, err
			}
			if p != nil {
				seq = append(seq, p)
			}
		}
		return seq, nil
	case "":
		return nil, fmt.Errorf("post_processor: no \"type\" field")
	default:
		return nil, unsupported("post_processor type %q (supported: TemplateProcessing, RobertaProcessing, BertProcessing, ByteLevel, Sequence)", typ)
	}
}

// templateItem is one element of a template: the text's ids, or the ids
// of a special token.
type templateItem struct {
	sequence bool
	special  []int64
}

// templateProcessor is the "single" template of TemplateProcessing.
type templateProcessor []templateItem

func newTemplate(raw json.RawMessage) (templateProcessor, error) {
	const what = "post_processor TemplateProcessing"
	type ref struct {
		ID string `json:"id"`
	}
	var v struct {
		Single []struct {
			Sequence     *ref `json:"Sequence"`
			SpecialToken *ref `json:"SpecialToken"`
		} `json:"single"`
		SpecialTokens map[string]struct {
			IDs []int64 `json:"ids"`
		} `json:"special_tokens"`
	}
	if err := decodeInto(raw, what, &v); err != nil {
		return nil, err
	}
	var t templateProcessor
	for i, it := range v.Single {
		switch {
		case it.Sequence != nil:
			if it.Sequence.ID != "A" {
				return nil, fmt.Errorf("%s: single template item %d names sequence %q; a single template may only use \"A\"", what, i, it.Sequence.ID)
			}
			t = append(t, templateItem{sequence: true})
		case it.SpecialToken != nil:
			st, ok := v.SpecialTokens[it.SpecialToken.ID]
			if !ok {
				return nil, fmt.Errorf("%s: special token %q is used in the template but not listed in special_tokens", what, it.SpecialToken.ID)
			}
			t = append(t, templateItem{special: st.IDs})
		default:
			return nil, fmt.Errorf("%s: single template item %d is neither Sequence nor SpecialToken", what, i)
		}
	}
	return t, nil
}

func (t templateProcessor) process(ids []int64) []int64 {
	out := make([]int64, 0, len(ids)+len(t))
	for _, it := range t {
		if it.sequence {
			out = append(out, ids...)
		} else {
			out = append(out, it.special...)
		}
	}
	return out
}

// sequenceProcessor applies post-processors in order.
type sequenceProcessor []postProcessor

func (s sequenceProcessor) process(ids []int64) []int64 {
	for _, p := range s {
		ids = p.process(ids)
	}
	return ids
}
