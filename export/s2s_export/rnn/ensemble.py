"""ensemble combines trained G2P models into one model with the same two
graphs and the same inputs and outputs, so the Go host runs it unchanged:
each state is the members' states concatenated along its last axis, and
each step's logits are the log of the members' mean probabilities (already
normalized, so the host's log-softmax leaves them as they are). Greedy and
beam search then search the averaged distribution, the usual ensemble of
neural sequence models.

    encode -> memory [B,S,sum 2E], memory_keys [B,S,sum H], memory_mask [B,S],
              init_h, init_c [B,L,sum H], init_feed [B,sum H]
    step   -> logits [B,1,V] (log mean softmax), next_h, next_c, next_feed,
              attention [B,S] (the members' mean)

The members must share the vocabularies, the special ids and the number of
decoder layers; their sizes may differ. config.json's "model" is
{"members": [G2PConfig, ...]}; the weights are named members.I.* in the
graphs. `g2p-ensemble` writes one from model directories, optionally with
its weights stored as float16 (half the size; computed in float32).
"""

from __future__ import annotations

import dataclasses
import math

import torch
from torch import nn

from ..errors import ExportError
from .model import G2PConfig, G2PModel


class G2PEnsemble(nn.Module):
    """G2PEnsemble runs its members side by side; see the module doc."""

    def __init__(self, cfgs: list[G2PConfig]):
        super().__init__()
        if len(cfgs) < 2:
            raise ExportError(f"an ensemble needs at least 2 members, got {len(cfgs)}")
        first = cfgs[0]
        same = ("source_vocab_size", "target_vocab_size", "decoder_layers", "pad_token_id", "eos_token_id",
                "decoder_start_token_id")
        for i, c in enumerate(cfgs[1:], 1):
            for f in same:
                if getattr(c, f) != getattr(first, f):
                    raise ExportError(f"ensemble member {i} has {f} {getattr(c, f)}, member 0 {getattr(first, f)}; "
                                      "members must share vocabularies, special ids and decoder layers")
        self.members = nn.ModuleList([G2PModel(c) for c in cfgs])
        # cfg is what the exporter and the search read: the ids and the
        # vocabulary, and the sizes of the concatenated states.
        self.cfg = dataclasses.replace(first, encoder_hidden=sum(c.encoder_hidden for c in cfgs),
                                       decoder_hidden=sum(c.decoder_hidden for c in cfgs))
        self._mem = [2 * c.encoder_hidden for c in cfgs]
        self._hid = [c.decoder_hidden for c in cfgs]

    def config_dict(self) -> dict:
        """config_dict is config.json's "model": the members' configs."""
        return {"members": [m.cfg.to_dict() for m in self.members]}

    def encode(self, input_ids: torch.Tensor, attention_mask: torch.Tensor):
        """encode runs every member's encoder and concatenates their outputs."""
        outs = [m.encode(input_ids, attention_mask) for m in self.members]
        memory = torch.cat([o[0] for o in outs], dim=2)
        keys = torch.cat([o[1] for o in outs], dim=2)
        mask = outs[0][2]
        init_h = torch.cat([o[3] for o in outs], dim=2)
        init_c = torch.cat([o[4] for o in outs], dim=2)
        init_feed = torch.cat([o[5] for o in outs], dim=1)
        return memory, keys, mask, init_h, init_c, init_feed

    def step(self, input_ids, h, c, feed, memory, memory_keys, memory_mask):
        """step runs one decoder step of every member on its slice of the states."""
        hs, cs, fs = h.split(self._hid, dim=2), c.split(self._hid, dim=2), feed.split(self._hid, dim=1)
        mems, keys = memory.split(self._mem, dim=2), memory_keys.split(self._hid, dim=2)
        logps, nh, nc, nf, att = [], [], [], [], []
        for i, m in enumerate(self.members):
            logits, h_i, c_i, f_i, a_i = m.step(input_ids, hs[i], cs[i], fs[i], mems[i], keys[i], memory_mask)
            logps.append(torch.log_softmax(logits, dim=-1))
            nh.append(h_i)
            nc.append(c_i)
            nf.append(f_i)
            att.append(a_i)
        logits = torch.logsumexp(torch.stack(logps), dim=0) - math.log(len(self.members))
        attention = torch.stack(att).mean(dim=0)
        return logits, torch.cat(nh, dim=2), torch.cat(nc, dim=2), torch.cat(nf, dim=1), attention


def build(model_conf: dict) -> nn.Module:
    """build returns the model that config.json's "model" describes: a
    G2PModel, or a G2PEnsemble for {"members": [...]}."""
    if "members" in model_conf:
        if set(model_conf) != {"members"} or not isinstance(model_conf["members"], list):
            raise ExportError("config: an ensemble's model is {\"members\": [...]} alone; re-write it with g2p-ensemble")
        return G2PEnsemble([G2PConfig.from_dict(d) for d in model_conf["members"]])
    return G2PModel(G2PConfig.from_dict(model_conf))


def combine(models: list[G2PModel]) -> G2PEnsemble:
    """combine returns the ensemble of trained models (their weights copied)."""
    ens = G2PEnsemble([m.cfg for m in models])
    for dst, src in zip(ens.members, models):
        dst.load_state_dict(src.state_dict())
    return ens.eval()


def round_to_float16(model: nn.Module) -> None:
    """round_to_float16 rounds every float32 weight to the nearest float16 in
    place, so the PyTorch model computes exactly what graphs whose weights
    are stored as float16 compute after their Cast to float32."""
    with torch.no_grad():
        for p in model.parameters():
            p.copy_(p.half().float())
