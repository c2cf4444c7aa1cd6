"""search decodes with the PyTorch G2P model through transformers'
generate(), so greedy and beam search have exactly Hugging Face's semantics
(num_beams, length_penalty, early_stopping, max_length counting the decoder
start token). The model is wrapped as a stateful transformers model: the
encoder outputs are a ModelOutput of batch-major tensors (generate expands
them to the beams), and the "cache" is the (h, c, feed) recurrent state,
reordered by beam through _reorder_cache.
"""

from __future__ import annotations

import os
from dataclasses import dataclass

import torch

os.environ.setdefault("HF_HUB_OFFLINE", "1")

from transformers import GenerationConfig, GenerationMixin, PretrainedConfig, PreTrainedModel  # noqa: E402
from transformers.utils import ModelOutput  # noqa: E402


class G2PHFConfig(PretrainedConfig):
    """G2PHFConfig is the transformers config of the wrapper (ids and vocab size only)."""

    model_type = "s2s-g2p"

    def __init__(self, vocab_size: int = 0, **kwargs):
        kwargs.setdefault("is_encoder_decoder", True)
        super().__init__(**kwargs)
        self.vocab_size = vocab_size


@dataclass
class EncoderOutput(ModelOutput):
    """EncoderOutput holds the encoder graph's outputs, batch-major."""

    last_hidden_state: torch.Tensor | None = None  # memory
    memory_keys: torch.Tensor | None = None
    memory_mask: torch.Tensor | None = None
    init_h: torch.Tensor | None = None
    init_c: torch.Tensor | None = None
    init_feed: torch.Tensor | None = None


@dataclass
class StepOutput(ModelOutput):
    """StepOutput is one decoder step: logits [N,1,V] and the new (h, c, feed)."""

    logits: torch.Tensor | None = None
    past_key_values: tuple | None = None


class _Encoder(torch.nn.Module):
    main_input_name = "input_ids"

    def __init__(self, g2p):
        super().__init__()
        self.g2p = g2p

    def forward(self, input_ids=None, attention_mask=None, **kwargs):
        memory, keys, mask, h, c, feed = self.g2p.encode(input_ids, attention_mask)
        return EncoderOutput(last_hidden_state=memory, memory_keys=keys, memory_mask=mask, init_h=h, init_c=c, init_feed=feed)


class HFG2P(PreTrainedModel, GenerationMixin):
    """HFG2P wraps a G2PModel for transformers' generate()."""

    config_class = G2PHFConfig
    main_input_name = "input_ids"
    _is_stateful = True  # its cache is the recurrent state, not a transformers Cache

    def __init__(self, g2p, recompute: bool = False):
        cfg = g2p.cfg
        super().__init__(G2PHFConfig(
            vocab_size=cfg.target_vocab_size, pad_token_id=cfg.pad_token_id, eos_token_id=cfg.eos_token_id,
            decoder_start_token_id=cfg.decoder_start_token_id,
        ))
        self.g2p = g2p
        self.recompute = recompute
        self.encoder = _Encoder(g2p)
        self.eval()

    def get_encoder(self):
        """get_encoder returns the module generate() runs once per input."""
        return self.encoder

    def forward(self, input_ids=None, attention_mask=None, decoder_input_ids=None, encoder_outputs=None,
                past_key_values=None, **kwargs):
        """forward runs one decoder step on the last token of decoder_input_ids
        from the state in past_key_values; with recompute (or no state) it
        runs the whole of decoder_input_ids from the initial state instead."""
        if encoder_outputs is None:
            encoder_outputs = self.encoder(input_ids, attention_mask)
        e = encoder_outputs
        if past_key_values is None or self.recompute:
            h, c, feed = e.init_h, e.init_c, e.init_feed
            tokens = decoder_input_ids
        else:
            (h, c, feed), tokens = past_key_values, decoder_input_ids[:, -1:]
        for t in range(tokens.size(1)):
            logits, h, c, feed, _ = self.g2p.step(tokens[:, t : t + 1], h, c, feed, e.last_hidden_state,
                                                  e.memory_keys, e.memory_mask)
        return StepOutput(logits=logits, past_key_values=None if self.recompute else (h, c, feed))

    def prepare_inputs_for_generation(self, decoder_input_ids, past_key_values=None, attention_mask=None,
                                      encoder_outputs=None, **kwargs):
        """prepare_inputs_for_generation passes the state and the encoder outputs through."""
        return {"decoder_input_ids": decoder_input_ids, "past_key_values": past_key_values,
                "encoder_outputs": encoder_outputs, "attention_mask": attention_mask}

    def _reorder_cache(self, past_key_values, beam_idx):
        return tuple(t.index_select(0, beam_idx) for t in past_key_values)


def generation_config(model, num_beams: int, max_length: int) -> GenerationConfig:
    """generation_config returns the options of one search: HF defaults, the
    model's ids, num_beams, max_length; length_penalty 1, early_stopping false."""
    cfg = model.cfg
    return GenerationConfig(
        max_length=max_length, num_beams=num_beams, do_sample=False, length_penalty=1.0, early_stopping=False,
        decoder_start_token_id=cfg.decoder_start_token_id, eos_token_id=cfg.eos_token_id,
        pad_token_id=cfg.pad_token_id, use_cache=True,
    )


def generate(model, sources: list[list[int]], *, num_beams: int, max_length: int, batch_size: int = 256,
             recompute: bool = False):
    """generate decodes each source (ids, </s> included) and returns, per
    source, (ids, score): the generated ids without the decoder start token,
    up to and including </s> (padding after it removed), and under beam search
    HF's sequences_scores (else None). recompute reruns the decoder over the
    whole prefix at each step instead of carrying the state (slow; a check
    of the state handling)."""
    from .train import pad

    wrapped = HFG2P(model, recompute=recompute)
    cfg = model.cfg
    gc = generation_config(model, num_beams, max_length)
    out = []
    with torch.inference_mode():
        for i in range(0, len(sources), batch_size):
            src = pad(sources[i : i + batch_size], cfg.pad_token_id)
            res = wrapped.generate(input_ids=src, attention_mask=(src != cfg.pad_token_id).long(), generation_config=gc,
                                   return_dict_in_generate=True, output_scores=num_beams > 1)
            scores = res.sequences_scores.tolist() if num_beams > 1 else [None] * src.size(0)
            for row, score in zip(res.sequences.tolist(), scores):
                ids = row[1:]
                if cfg.eos_token_id in ids:
                    ids = ids[: ids.index(cfg.eos_token_id) + 1]
                out.append((ids, score))
    return out
