"""model is the G2P network: character embeddings, a bidirectional LSTM
encoder, and an LSTM decoder with Luong "general" global attention and input
feeding (Luong, Pham and Manning 2015).

The encoder and one decoder step are separate methods with tensor-only
arguments, so the same code trains (teacher forcing, a Python loop over
target positions) and is exported as two ONNX graphs. Every state tensor is
batch-major:

    encode(input_ids [B,S] int64, attention_mask [B,S] int64) ->
        memory      [B,S,2E]  encoder states (zero at padding)
        memory_keys [B,S,H]   W_a memory: the attention keys, projected once
        memory_mask [B,S]     float32, 1 real token, 0 padding
        init_h      [B,L,H]   first decoder hidden state  (tanh of a bridge)
        init_c      [B,L,H]   first decoder cell state    (a bridge)
        init_feed   [B,H]     first input-feed vector     (zeros)

    step(input_ids [B,1] int64, h, c, feed, memory, memory_keys, memory_mask) ->
        logits [B,1,V], next_h [B,L,H], next_c [B,L,H], next_feed [B,H], attention [B,S]

The bidirectional encoder is two unidirectional LSTMs; the backward one runs
over each row reversed within its own length (a gather), so right padding
never reaches a real position and no packed sequences are needed (they do
not export to ONNX with dynamic lengths).
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass

import torch
from torch import nn

from ..errors import ExportError


@dataclass
class G2PConfig:
    """G2PConfig holds the model's hyperparameters (config.json's "model" part)."""

    source_vocab_size: int
    target_vocab_size: int
    embed_size: int = 64
    encoder_hidden: int = 128  # per direction; memory is twice this
    decoder_hidden: int = 192
    decoder_layers: int = 1
    dropout: float = 0.2
    encoder_layers: int = 1  # bidirectional layers; each upper one reads both directions of the one below
    pad_token_id: int = 0
    eos_token_id: int = 1
    decoder_start_token_id: int = 3

    def to_dict(self) -> dict:
        """to_dict returns the fields as a JSON-ready dict."""
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, d: dict) -> "G2PConfig":
        """from_dict builds a config from to_dict's output; unknown keys are an error."""
        names = {f.name for f in dataclasses.fields(cls)}
        extra = sorted(set(d) - names)
        if extra:
            raise ExportError(f"config: unknown fields {extra}; re-train the model with g2p-train")
        return cls(**d)


class G2PModel(nn.Module):
    """G2PModel is the encoder-decoder; see the module doc for the tensors."""

    def __init__(self, cfg: G2PConfig):
        super().__init__()
        self.cfg = cfg
        E, H, L = cfg.encoder_hidden, cfg.decoder_hidden, cfg.decoder_layers
        self.src_embed = nn.Embedding(cfg.source_vocab_size, cfg.embed_size, padding_idx=cfg.pad_token_id)
        self.fwd = nn.LSTM(cfg.embed_size, E, batch_first=True)
        self.bwd = nn.LSTM(cfg.embed_size, E, batch_first=True)
        self.fwd_upper = nn.ModuleList([nn.LSTM(2 * E, E, batch_first=True) for _ in range(cfg.encoder_layers - 1)])
        self.bwd_upper = nn.ModuleList([nn.LSTM(2 * E, E, batch_first=True) for _ in range(cfg.encoder_layers - 1)])
        self.bridge_h = nn.Linear(2 * E, L * H)
        self.bridge_c = nn.Linear(2 * E, L * H)
        self.key_proj = nn.Linear(2 * E, H, bias=False)  # Luong general: score = h_t . (W_a h_s)
        self.tgt_embed = nn.Embedding(cfg.target_vocab_size, cfg.embed_size, padding_idx=cfg.pad_token_id)
        self.cells = nn.ModuleList(
            [nn.LSTMCell(cfg.embed_size + H if i == 0 else H, H) for i in range(L)]
        )
        self.combine = nn.Linear(2 * E + H, H, bias=False)  # W_c [context; h_t]
        self.out = nn.Linear(H, cfg.target_vocab_size)
        self.drop = nn.Dropout(cfg.dropout)

    def encode(self, input_ids: torch.Tensor, attention_mask: torch.Tensor):
        """encode runs the encoder; it returns (memory, memory_keys, memory_mask, init_h, init_c, init_feed)."""
        cfg = self.cfg
        mask = attention_mask.to(torch.float32)
        lengths = attention_mask.sum(dim=1)  # [B]
        x = self.drop(self.src_embed(input_ids))  # [B,S,emb]
        pos = torch.arange(input_ids.size(1), device=input_ids.device).unsqueeze(0)  # [1,S]
        rev = lengths.unsqueeze(1) - 1 - pos
        rev = torch.where(rev >= 0, rev, pos)  # [B,S]: reverses each row within its length; padding stays put
        # Explicit zero initial states whose batch size is traced from the
        # input, so the exported LSTM works for any batch size.
        zeros = x.new_zeros((1, x.size(0), cfg.encoder_hidden))
        fwd, bwd = self._bidirectional(self.fwd, self.bwd, x, rev, zeros)
        for fwd_lstm, bwd_lstm in zip(self.fwd_upper, self.bwd_upper):
            fwd, bwd = self._bidirectional(fwd_lstm, bwd_lstm, self.drop(torch.cat([fwd, bwd], dim=2)), rev, zeros)
        memory = torch.cat([fwd, bwd], dim=2) * mask.unsqueeze(2)
        last = (lengths - 1).clamp(min=0).view(-1, 1, 1).expand(-1, 1, fwd.size(2))
        fwd_last = torch.gather(fwd, 1, last).squeeze(1)
        summary = torch.cat([fwd_last, bwd[:, 0]], dim=1)  # [B,2E]
        B = input_ids.size(0)
        init_h = torch.tanh(self.bridge_h(summary)).view(B, cfg.decoder_layers, cfg.decoder_hidden)
        init_c = self.bridge_c(summary).view(B, cfg.decoder_layers, cfg.decoder_hidden)
        keys = self.key_proj(memory)
        init_feed = torch.zeros_like(init_h[:, 0])
        return memory, keys, mask, init_h, init_c, init_feed

    @staticmethod
    def _bidirectional(fwd_lstm, bwd_lstm, x, rev, zeros):
        """_bidirectional runs one bidirectional layer over x [B,S,in]: the
        backward LSTM reads each row reversed within its length (rev, a
        gather index); it returns (forward states, backward states), each [B,S,E]."""
        fwd, _ = fwd_lstm(x, (zeros, zeros))
        rev_x = torch.gather(x, 1, rev.unsqueeze(2).expand(-1, -1, x.size(2)))
        bwd_rev, _ = bwd_lstm(rev_x, (zeros, zeros))
        bwd = torch.gather(bwd_rev, 1, rev.unsqueeze(2).expand(-1, -1, bwd_rev.size(2)))
        return fwd, bwd

    def step(self, input_ids, h, c, feed, memory, memory_keys, memory_mask):
        """step runs one decoder step; it returns (logits [B,1,V], next_h, next_c, next_feed, attention)."""
        x = self.drop(self.tgt_embed(input_ids.reshape(-1)))
        next_h, next_c, next_feed, attention = self._cell(x, h, c, feed, memory, memory_keys, memory_mask)
        logits = self.out(self.drop(next_feed)).unsqueeze(1)
        return logits, next_h, next_c, next_feed, attention

    def _cell(self, x, h, c, feed, memory, memory_keys, memory_mask):
        """_cell is a decoder step from the embedded previous token x [B,emb]:
        it returns (next_h, next_c, next_feed, attention)."""
        x = torch.cat([x, feed], dim=1)
        hs, cs = [], []
        for i, cell in enumerate(self.cells):
            hi, ci = cell(x, (h[:, i], c[:, i]))
            hs.append(hi)
            cs.append(ci)
            x = self.drop(hi)
        query = hs[-1]
        # Batched dot products as a product and a sum: on the CPU this is
        # faster than bmm with one column (training spends a tenth of its
        # time here), and it exports as Mul + ReduceSum.
        scores = (memory_keys * query.unsqueeze(1)).sum(dim=2)  # [B,S]
        scores = scores.masked_fill(memory_mask == 0, float("-inf"))
        attention = torch.softmax(scores, dim=1)
        context = (attention.unsqueeze(2) * memory).sum(dim=1)  # [B,2E]
        next_feed = torch.tanh(self.combine(torch.cat([context, query], dim=1)))
        return torch.stack(hs, 1), torch.stack(cs, 1), next_feed, attention

    def forward(self, input_ids, attention_mask, decoder_input_ids):
        """forward is teacher forcing: logits [B,T,V] for decoder_input_ids [B,T].
        It computes what step() computes at each position, with the target
        embeddings and the output layer applied to all positions at once."""
        memory, keys, mask, h, c, feed = self.encode(input_ids, attention_mask)
        emb = self.drop(self.tgt_embed(decoder_input_ids))  # [B,T,emb]
        feeds = []
        for t in range(decoder_input_ids.size(1)):
            h, c, feed, _ = self._cell(emb[:, t], h, c, feed, memory, keys, mask)
            feeds.append(feed)
        return self.out(self.drop(torch.stack(feeds, 1)))


def param_count(model: nn.Module) -> int:
    """param_count returns the number of parameters."""
    return sum(p.numel() for p in model.parameters())
