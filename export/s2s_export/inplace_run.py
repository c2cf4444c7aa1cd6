"""inplace_run runs a model directory of the inplace layout (inplace.py) in
onnxruntime the way the Go host's inplaceDecoder does (runtime/inplace.go):
the reference protocol, used by the exporter's self-check.

State, for rows r of the batch and slots j of the cache:

- cache_length P: slots 0..P-1 hold keys and values; the next step writes
  slot P of every row (past and present are the same buffers);
- row_start[r]: the first slot of row r (rows that joined later start later;
  slots before are masked); the row's position is P - row_start[r];
- cache_indirection[r, j]: the row whose buffer holds row r's slot j (beams
  share the slots they have in common; a reorder only rewrites this table);
- groups: the inputs, each with its rows, its mask and its cross-attention
  keys and values. When every input has the same number of rows k, in
  order, the step graph gets one copy per input ([inputs, ...], queries
  grouped k at a time); otherwise one copy per row.

Reorder(src) makes new row i continue old row src[i]. A reorder copies no
cache unless rows leave; then, slot by slot, what the new rows read from
buffer rows past the new row count moves into rows nobody reads at that
slot (compaction). When
P reaches the buffer's length, every row's slots move left by the smallest
row_start (the slots no row reads).
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from . import inplace
from .errors import CheckError, ExportError


def _session(path: Path, threads: int = 2):
    import onnxruntime as ort

    so = ort.SessionOptions()
    so.intra_op_num_threads = min(threads, os.cpu_count() or 1)
    so.inter_op_num_threads = 1
    so.log_severity_level = 3
    try:
        return ort.InferenceSession(str(path), so, providers=["CPUExecutionProvider"])
    except Exception as e:
        raise ExportError(f"{path}: onnxruntime cannot load it ({e}); re-export the model") from e


@dataclass
class _Group:
    """_Group is one input: its mask and cross-attention keys and values ([heads, S, head_dim] per tensor)."""

    gid: int
    mask: np.ndarray  # [S] int32
    cross: list[np.ndarray]  # 2 * layers, [heads, S, head_dim]


class Runner:
    """Runner holds the sessions of a model directory and the decoder state of one batch."""

    def __init__(self, model_dir: Path, max_len: int, threads: int = 2):
        model_dir = Path(model_dir)
        self.manifest = json.loads((model_dir / "s2s.json").read_text())
        m = self.manifest
        if m.get("layout") != inplace.LAYOUT:
            raise ExportError(f"{model_dir}: layout {m.get('layout')!r} is not {inplace.LAYOUT!r}")
        files = m["files"]
        self.enc = _session(model_dir / files["encoder"], threads)
        self.cross_s = _session(model_dir / files["decoder_cross"], threads)
        self.step_s = _session(model_dir / files["decoder_step"], threads)
        self.L, self.N, self.H, self.V = m["num_layers"], m["num_heads"], m["head_dim"], m["vocab_size"]
        self.M = max_len
        self.P = 0
        self.rows = 0
        cap = 4
        self.cache = [np.zeros((cap, self.N, self.M, self.H), np.float32) for _ in range(2 * self.L)]
        self.start = np.zeros(0, np.int32)
        self.ci = np.zeros((0, self.M), np.int32)
        self.group_of: list[int] = []  # per row: its group id
        self.groups: dict[int, _Group] = {}
        self.next_gid = 0
        self.grouped_steps = 0  # steps that shared the cross-attention cache between the rows of an input
        self.shifts = 0

    # -- inputs ---------------------------------------------------------
    def add(self, ids: np.ndarray, mask: np.ndarray, rows_per_input: int) -> list[int]:
        """add encodes ids ([n, S] int64, right-padded, mask 1 on real tokens),
        computes their cross-attention keys and values and appends
        rows_per_input rows per input, starting at slot P. It returns the new
        groups' ids."""
        hidden = self.enc.run(["last_hidden_state"], {"input_ids": ids, "attention_mask": mask})[0]
        names = [inplace.cross_name(i, kv) for i in range(self.L) for kv in ("key", "value")]
        kv = self.cross_s.run(names, {inplace.IN_HIDDEN: hidden})
        gids = []
        for n in range(ids.shape[0]):
            g = _Group(self.next_gid, mask[n].astype(np.int32), [t[n] for t in kv])
            self.groups[g.gid] = g
            self.next_gid += 1
            gids.append(g.gid)
            for _ in range(rows_per_input):
                self._append_row(g.gid)
        return gids

    def _append_row(self, gid: int) -> None:
        r = self.rows
        if r == self.cache[0].shape[0]:
            for j, c in enumerate(self.cache):
                bigger = np.zeros((2 * r, *c.shape[1:]), np.float32)
                bigger[:r] = c
                self.cache[j] = bigger
        self.rows += 1
        self.start = np.append(self.start, np.int32(self.P))
        self.ci = np.vstack([self.ci, np.full((1, self.M), r, np.int32)])
        self.group_of.append(gid)

    # -- steps ------------------------------------------------------------
    def _cross_feeds(self) -> dict[str, np.ndarray]:
        """_cross_feeds returns the mask and cross-attention inputs: one copy per
        input when the rows are grouped (each input k consecutive rows, the
        same k for all), else one per row."""
        order = []
        for gid in self.group_of:
            if not order or order[-1] != gid:
                order.append(gid)
        k = self.rows // len(order)
        grouped = len(order) == len(set(order)) and all(
            self.group_of[i * k:(i + 1) * k] == [g] * k for i, g in enumerate(order)) and k * len(order) == self.rows
        groups = [self.groups[g] for g in (order if grouped else self.group_of)]
        self.grouped_steps += grouped and k > 1
        S = max(len(g.mask) for g in groups)
        mask = np.zeros((len(groups), S), np.int32)
        feeds = {}
        for n, g in enumerate(groups):
            mask[n, :len(g.mask)] = g.mask
        feeds[inplace.IN_ENC_MASK] = mask
        for t in range(2 * self.L):
            a = np.zeros((len(groups), self.N, S, self.H), np.float32)
            for n, g in enumerate(groups):
                a[n, :, :g.cross[t].shape[1]] = g.cross[t]
            feeds[inplace.cross_name(t // 2, ("key", "value")[t % 2])] = a
        return feeds

    def step(self, tokens: np.ndarray) -> np.ndarray:
        """step feeds one token per row and returns the logits, [rows, vocab]."""
        if len(tokens) != self.rows:
            raise ValueError(f"{len(tokens)} tokens for {self.rows} rows")
        if self.P == self.M:
            self._shift()
        R = self.rows
        io = self.step_s.io_binding()
        io.bind_cpu_input(inplace.IN_IDS, np.asarray(tokens, np.int64).reshape(R, 1))
        io.bind_cpu_input(inplace.IN_ROW_START, self.start.copy())
        io.bind_cpu_input(inplace.IN_CACHE_LEN, np.array([self.P], np.int32))
        io.bind_cpu_input(inplace.IN_BEAM_WIDTH, np.array([R], np.int32))
        ci = np.ascontiguousarray(self.ci[:R][None])
        io.bind_cpu_input(inplace.IN_INDIRECTION, ci)
        for name, v in self._cross_feeds().items():
            io.bind_cpu_input(name, v)
        shape = [R, self.N, self.M, self.H]
        for t, c in enumerate(self.cache):
            layer, kv = t // 2, ("key", "value")[t % 2]
            view = c[:R]  # contiguous: the first R rows
            io.bind_cpu_input(inplace.past_name(layer, kv), view)
            io.bind_output(inplace.present_name(layer, kv), "cpu", 0, np.float32, shape, view.ctypes.data)
        logits = np.zeros((R, 1, self.V), np.float32)
        io.bind_output(inplace.OUT_LOGITS, "cpu", 0, np.float32, list(logits.shape), logits.ctypes.data)
        try:
            self.step_s.run_with_iobinding(io)
        except Exception as e:
            raise CheckError(f"{inplace.STEP} failed to run in onnxruntime: {e}") from e
        self.ci[:R, self.P] = np.arange(R, dtype=np.int32)
        self.P += 1
        return logits[:, 0]

    def _shift(self) -> None:
        """_shift moves every row's slots left by the smallest row_start."""
        s = int(self.start[:self.rows].min()) if self.rows else self.P
        if s == 0:
            raise ExportError(f"the cache of {self.M} slots is full and every slot is read; give a longer max_len")
        keep = self.P - s
        for c in self.cache:
            c[:self.rows, :, :keep] = c[:self.rows, :, s:self.P].copy()
        self.ci[:, :keep] = self.ci[:, s:self.P].copy()
        self.start -= s
        self.P = keep
        self.shifts += 1

    # -- reorder ------------------------------------------------------------
    def reorder(self, src: list[int]) -> int:
        """reorder makes new row i continue old row src[i]; it returns the
        number of (buffer row, slot) pairs it copied: none unless rows leave.
        Then each slot is compacted on its own (a buffer row can hold slots
        of two histories: an old one below the slot where a reorder gave it
        a new row, that row's own above): what the new rows read there from
        buffer rows past the new row count moves into rows nobody reads
        there."""
        n, old = len(src), self.rows
        if any(s < 0 or s >= old for s in src):
            raise ValueError(f"reorder {src} over {old} rows")
        while n > self.cache[0].shape[0]:
            self._grow_rows()
        new_ci = np.empty((n, self.M), np.int32)
        for i, s in enumerate(src):
            new_ci[i] = i
            st = self.start[s]
            new_ci[i, st:self.P] = self.ci[s, st:self.P]
        moved = 0
        if n < old:
            for j in range(self.P):
                readers = [i for i, s in enumerate(src) if j >= self.start[s]]
                used = {int(new_ci[i, j]) for i in readers}
                free = [r for r in range(n) if r not in used]
                phi = {}
                for u in sorted(used):
                    if u >= n:
                        phi[u] = free.pop(0)
                        for c in self.cache:
                            c[phi[u], :, j] = c[u, :, j]
                        moved += 1
                for i in readers:
                    new_ci[i, j] = phi.get(int(new_ci[i, j]), new_ci[i, j])
        self.ci = new_ci
        self.start = self.start[list(src)].copy()
        self.group_of = [self.group_of[s] for s in src]
        self.rows = n
        for gid in list(self.groups):
            if gid not in self.group_of:
                del self.groups[gid]
        return moved

    def _grow_rows(self) -> None:
        for j, c in enumerate(self.cache):
            bigger = np.zeros((2 * c.shape[0], *c.shape[1:]), np.float32)
            bigger[: c.shape[0]] = c
            self.cache[j] = bigger


def reference(model, enc_ids: np.ndarray, enc_mask: np.ndarray, history: list[int]) -> np.ndarray:
    """reference returns PyTorch's next-token logits after history (decoder
    tokens, the start token first) for one source (unpadded ids and mask)."""
    import torch

    with torch.no_grad():
        out = model(input_ids=torch.from_numpy(enc_ids[None]), attention_mask=torch.from_numpy(enc_mask[None]),
                    decoder_input_ids=torch.tensor([history], dtype=torch.long), use_cache=False, return_dict=True)
    return out.logits[0, -1].numpy()


def scenario(model, model_dir: Path, sources: list[np.ndarray], start: int, pool: np.ndarray, compare, *, seed: int = 0,
             max_len: int = 6) -> Runner:
    """scenario runs the inplace graphs through a batch that exercises the
    protocol and calls compare(step, name, got, want) with PyTorch's logits
    for every row of every step:

    step 0  inputs A (7 tokens) and B (4, padded) with 2 rows each (beams)
    step 1  then a beam reorder inside A (both rows continue A's second row)
    step 2  input C (5 tokens) joins with 2 rows: rows at different steps
    step 3  then B leaves: its rows go, C's rows are compacted into theirs
    step 4  input D joins with 1 row (the inputs' row counts now differ)
    step 5  then A leaves; the cache (max_len 6 slots) is full
    step 6  before it the slots move left (no row reads slots 0 and 1)

    sources are the source ids, unpadded; every row starts with the start
    token and then gets tokens drawn from pool."""
    rng = np.random.default_rng(seed)
    r = Runner(model_dir, max_len)
    pad = r.manifest["pad_token_id"] if r.manifest["pad_token_id"] >= 0 else 0

    def batch(srcs):
        S = max(len(s) for s in srcs)
        ids = np.full((len(srcs), S), pad, np.int64)
        mask = np.zeros((len(srcs), S), np.int64)
        for n, s in enumerate(srcs):
            ids[n, :len(s)] = s
            mask[n, :len(s)] = 1
        return ids, mask

    hist: list[list[int]] = []  # per row: decoder tokens fed
    srcof: list[int] = []  # per row: index into sources

    def join(which: list[int], k: int):
        ids, mask = batch([sources[w] for w in which])
        r.add(ids, mask, k)
        for w in which:
            for _ in range(k):
                hist.append([])
                srcof.append(w)

    def step(t: int):
        toks = []
        for row in range(r.rows):
            tok = start if not hist[row] else int(rng.choice(pool))
            hist[row].append(tok)
            toks.append(tok)
        logits = r.step(np.array(toks, np.int64))
        for row in range(r.rows):
            s = sources[srcof[row]]
            want = reference(model, s, np.ones_like(s), hist[row])
            compare(t, f"logits row {row} (input {'ABCD'[srcof[row]]}, {len(hist[row])} tokens)", logits[row], want)

    def reorder(src: list[int]):
        r.reorder(src)
        hist[:] = [list(hist[s]) for s in src]
        srcof[:] = [srcof[s] for s in src]

    join([0, 1], 2)
    step(0)
    step(1)
    reorder([1, 1, 2, 3])
    join([2], 2)
    step(2)
    step(3)
    reorder([0, 1, 4, 5])
    join([3], 1)
    step(4)
    step(5)
    reorder([2, 3, 4])  # A (rows 0, 1) leaves
    step(6)
    if r.shifts == 0:
        raise CheckError("the scenario did not fill the cache; the self-check is broken")
    return r
