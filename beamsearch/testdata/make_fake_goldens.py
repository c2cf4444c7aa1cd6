"""Make fake_goldens.json: Hugging Face generate() run on a scripted fake model.

The fake is a tiny encoder-decoder whose next-token logits are a pure function
of the source id (what the "encoder" saw) and the decoder history (decoder
start token first). fake_test.go computes the very same function in Go, so the
Go search and transformers' real greedy and beam search can be compared token
for token and score for score, without ONNX.

Run from the repository root:

    .venv/bin/python beamsearch/testdata/make_fake_goldens.py

It rewrites beamsearch/testdata/fake_goldens.json.
"""

import json
import math
import os
import sys

import torch
import transformers
from transformers import GenerationMixin, PretrainedConfig, PreTrainedModel
from transformers.modeling_outputs import BaseModelOutput, Seq2SeqLMOutput

VOCAB = 40
EOS = [2]
START = 0
PAD = 1

MASK64 = (1 << 64) - 1


def mix(x):
    """splitmix64's finaliser; fake_test.go has the same one."""
    z = (x + 0x9E3779B97F4A7C15) & MASK64
    z = ((z ^ (z >> 30)) * 0xBF58476D1CE4E5B9) & MASK64
    z = ((z ^ (z >> 27)) * 0x94D049BB133111EB) & MASK64
    return z ^ (z >> 31)


def unit(x):
    """The top 53 bits of x as a float in [0, 1)."""
    return (x >> 11) * (1.0 / 9007199254740992.0)


def fake_logits(src, history, vocab, eos):
    """Next-token logits (float64, rounded to float32 by the caller).

    Mostly a table of (source, last token), so histories cycle and the
    repetition processors have work to do; partly a hash of the whole
    history, so beams that share a last token still differ; EOS grows more
    likely as the history grows.
    """
    h = mix(src)
    for t in history:
        h = mix(h ^ t)
    base = mix((src << 32) ^ (history[-1] << 8) ^ 0x5151)
    n = len(history)
    out = []
    for v in range(vocab):
        a = unit(mix(base ^ v))
        b = unit(mix(h ^ ((v * 0x100000001B3) & MASK64)))
        x = (6.0 * a) - 3.0 + (1.5 * b)
        if v in eos:
            x = x + ((0.5 * n) - 3.0)
        out.append(x)
    return out


class FakeConfig(PretrainedConfig):
    model_type = "s2s_fake"

    def __init__(self, vocab_size=VOCAB, **kwargs):
        self.vocab_size = vocab_size
        kwargs.setdefault("is_encoder_decoder", True)
        super().__init__(**kwargs)


class FakeEncoder(torch.nn.Module):
    main_input_name = "input_ids"

    def forward(self, input_ids=None, attention_mask=None, **kwargs):
        # The "hidden state" is the source id itself.
        return BaseModelOutput(last_hidden_state=input_ids[:, :1, None].to(torch.float64))


class FakeModel(PreTrainedModel, GenerationMixin):
    config_class = FakeConfig
    main_input_name = "input_ids"

    def __init__(self, config):
        super().__init__(config)
        self.dummy = torch.nn.Parameter(torch.zeros(1))
        self.encoder = FakeEncoder()

    def get_encoder(self):
        return self.encoder

    def prepare_inputs_for_generation(self, input_ids, encoder_outputs=None, **kwargs):
        return {"decoder_input_ids": input_ids, "encoder_outputs": encoder_outputs}

    def forward(self, decoder_input_ids=None, encoder_outputs=None, return_dict=True, **kwargs):
        src = encoder_outputs.last_hidden_state[:, 0, 0].to(torch.int64).tolist()
        hist = decoder_input_ids.tolist()
        eos = self.config.eos_token_id
        eos = eos if isinstance(eos, list) else [eos]
        rows = [fake_logits(s, h, self.config.vocab_size, eos) for s, h in zip(src, hist)]
        last = torch.tensor(rows, dtype=torch.float32)[:, None, :]
        return Seq2SeqLMOutput(logits=last)


def strip(seq, n_generated, eos):
    """Generated tokens without the start token, up to and with the first EOS."""
    out = []
    for t in seq[1 : 1 + n_generated]:
        out.append(int(t))
        if t in eos:
            break
    return out


def run_case(model, case):
    opts = dict(case["options"])
    eos = opts.pop("eos_token_id", EOS)
    inputs = case["inputs"]
    ids = torch.tensor([[s] for s in inputs], dtype=torch.int64)
    kwargs = dict(
        eos_token_id=eos,
        pad_token_id=PAD,
        decoder_start_token_id=START,
        use_cache=False,
        return_dict_in_generate=True,
        output_scores=True,
        do_sample=False,
    )
    kwargs.update(opts)
    out = model.generate(input_ids=ids, attention_mask=torch.ones_like(ids), **kwargs)
    nb = opts.get("num_beams", 1)
    nrs = opts.get("num_return_sequences", 1)
    seqs = out.sequences.tolist()
    results = []
    if nb == 1:
        # Greedy: score = sum of log_softmax(processed logits) of the chosen tokens.
        for i in range(len(inputs)):
            toks = strip(seqs[i], len(seqs[i]) - 1, eos)
            score = 0.0
            for step, t in enumerate(toks):
                row = out.scores[step][i].to(torch.float64)
                score += float(torch.log_softmax(row, dim=-1)[t])
            results.append([{"tokens": toks, "score": score}])
    else:
        bi = out.beam_indices.tolist()
        sc = out.sequences_scores.tolist()
        for i in range(len(inputs)):
            hyps = []
            for k in range(nrs):
                r = i * nrs + k
                n = sum(1 for x in bi[r] if x != -1)
                hyps.append({"tokens": strip(seqs[r], n, eos), "score": sc[r]})
            results.append(hyps)
    return results


CASES = [
    ("greedy", {"max_new_tokens": 12}),
    ("greedy_short", {"max_new_tokens": 3}),
    ("greedy_min_new", {"max_new_tokens": 12, "min_new_tokens": 6}),
    ("greedy_two_eos", {"max_new_tokens": 12, "eos_token_id": [2, 7]}),
    ("greedy_ngram2", {"max_new_tokens": 14, "no_repeat_ngram_size": 2}),
    ("greedy_rep", {"max_new_tokens": 14, "repetition_penalty": 1.3}),
    ("greedy_bad_words", {"max_new_tokens": 12, "bad_words_ids": [[5], [9, 11], [2]]}),
    ("greedy_suppress", {"max_new_tokens": 12, "suppress_tokens": [3, 4, 6]}),
    ("greedy_forced", {"max_new_tokens": 8, "forced_bos_token_id": 5, "forced_eos_token_id": 2}),
    # Without do_sample, generate() leaves the sampling warpers out.
    ("greedy_warpers_ignored", {"max_new_tokens": 10, "temperature": 0.3, "top_k": 2, "top_p": 0.5}),
    ("beam2", {"num_beams": 2, "max_new_tokens": 12}),
    ("beam3_warpers_ignored", {"num_beams": 3, "max_new_tokens": 10, "temperature": 3.0, "top_k": 2}),
    ("beam4", {"num_beams": 4, "max_new_tokens": 14}),
    ("beam5", {"num_beams": 5, "max_new_tokens": 14}),
    ("beam4_lp06", {"num_beams": 4, "max_new_tokens": 14, "length_penalty": 0.6}),
    ("beam4_lp2", {"num_beams": 4, "max_new_tokens": 14, "length_penalty": 2.0}),
    ("beam4_lp0", {"num_beams": 4, "max_new_tokens": 14, "length_penalty": 0.0}),
    ("beam4_lp_neg", {"num_beams": 4, "max_new_tokens": 14, "length_penalty": -1.0}),
    ("beam4_es_true", {"num_beams": 4, "max_new_tokens": 14, "early_stopping": True}),
    ("beam4_es_never", {"num_beams": 4, "max_new_tokens": 14, "early_stopping": "never"}),
    ("beam4_es_never_lp2", {"num_beams": 4, "max_new_tokens": 14, "early_stopping": "never", "length_penalty": 2.0}),
    ("beam4_es_true_lp2", {"num_beams": 4, "max_new_tokens": 14, "early_stopping": True, "length_penalty": 2.0}),
    ("beam4_ngram2", {"num_beams": 4, "max_new_tokens": 14, "no_repeat_ngram_size": 2}),
    ("beam4_ngram3", {"num_beams": 4, "max_new_tokens": 14, "no_repeat_ngram_size": 3}),
    ("beam4_rep", {"num_beams": 4, "max_new_tokens": 14, "repetition_penalty": 1.3}),
    ("beam4_nrs3", {"num_beams": 4, "max_new_tokens": 14, "num_return_sequences": 3}),
    ("beam5_nrs3_never", {"num_beams": 5, "max_new_tokens": 12, "num_return_sequences": 3, "early_stopping": "never"}),
    ("beam4_min_new", {"num_beams": 4, "max_new_tokens": 14, "min_new_tokens": 10}),
    ("beam4_two_eos", {"num_beams": 4, "max_new_tokens": 14, "eos_token_id": [2, 7], "num_return_sequences": 2}),
    ("beam4_short", {"num_beams": 4, "max_new_tokens": 3, "num_return_sequences": 4}),
    ("beam4_one_token", {"num_beams": 4, "max_new_tokens": 1, "num_return_sequences": 2}),
    ("beam3_bad_suppress", {"num_beams": 3, "max_new_tokens": 12, "bad_words_ids": [[5], [9, 11]], "suppress_tokens": [3]}),
    ("beam4_es_never_lp_neg", {"num_beams": 4, "max_new_tokens": 14, "early_stopping": "never", "length_penalty": -0.5}),
    ("beam8_nrs8", {"num_beams": 8, "max_new_tokens": 10, "num_return_sequences": 8}),
    ("beam2_mixed", {"num_beams": 2, "max_new_tokens": 16, "repetition_penalty": 1.2, "no_repeat_ngram_size": 2, "bad_words_ids": [[12, 12]]}),
    # The decoder start token counts as history for the repetition processors.
    ("greedy_ngram1", {"max_new_tokens": 10, "no_repeat_ngram_size": 1}),
    ("beam3_ngram1", {"num_beams": 3, "max_new_tokens": 10, "no_repeat_ngram_size": 1}),
    ("greedy_bad_start", {"max_new_tokens": 10, "bad_words_ids": [[0, 15]], "repetition_penalty": 0.7}),
    # Defaults: generate() makes its default max_length 20 into 20 new tokens.
    ("greedy_default_length", {}),
    ("beam4_default_length", {"num_beams": 4, "length_penalty": 2.0, "early_stopping": "never"}),
    # Forced BOS leaves one live beam: the others run at -1e9 or -inf. (With
    # max_new_tokens 1 the second best ties at -1e9 with empty slots, and
    # torch.topk's order among ties is not specified: only the best is kept.)
    ("beam4_forced_bos_one_token", {"num_beams": 4, "max_new_tokens": 1, "forced_bos_token_id": 5}),
    ("beam4_forced_bos_two_tokens", {"num_beams": 4, "max_new_tokens": 2, "forced_bos_token_id": 5, "num_return_sequences": 4}),
    (
        "beam4_bart_like",
        {
            "num_beams": 4,
            "max_new_tokens": 14,
            "min_new_tokens": 4,
            "length_penalty": 2.0,
            "early_stopping": True,
            "no_repeat_ngram_size": 3,
            "forced_bos_token_id": 5,
            "forced_eos_token_id": 2,
        },
    ),
]

INPUTS = [3, 17, 101, 4242, 9]


def main():
    torch.manual_seed(0)
    model = FakeModel(FakeConfig(eos_token_id=EOS[0], pad_token_id=PAD, decoder_start_token_id=START))
    model.eval()
    model.generation_config.max_length = 20
    cases = []
    with torch.no_grad():
        for name, options in CASES:
            case = {"name": name, "options": options, "inputs": INPUTS}
            case["results"] = run_case(model, case)
            cases.append(case)
    doc = {
        "about": "made by make_fake_goldens.py with transformers " + transformers.__version__ + " and torch " + torch.__version__,
        "vocab": VOCAB,
        "eos_token_id": EOS,
        "decoder_start_token_id": START,
        "pad_token_id": PAD,
        "cases": cases,
    }
    path = os.path.join(os.path.dirname(os.path.abspath(__file__)), "fake_goldens.json")
    with open(path, "w") as f:
        json.dump(doc, f, indent=1)
        f.write("\n")
    print("wrote", path, len(cases), "cases", file=sys.stderr)


if __name__ == "__main__":
    main()
