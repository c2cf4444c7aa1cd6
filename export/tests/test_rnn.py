"""test_rnn checks the G2P model of s2s_export.rnn: the CMUdict cleaning and
split, the two tokenizers, the export (graph I/O, manifest, parity of the
graphs with PyTorch step by step, the self-check catching a corrupted graph),
the transformers-backed search, reproducible training, and the shipped
model in models/g2p-en (its graphs, test split and reference decodes).

Export and search tests use tiny untrained models; only the shipped-model
tests touch the trained weights.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
from pathlib import Path

import numpy as np
import pytest
import torch

os.environ.setdefault("HF_HUB_OFFLINE", "1")

from s2s_export import cli  # noqa: E402
from s2s_export.errors import CheckError, ExportError  # noqa: E402
from s2s_export.rnn import data, evaluate, export, search, train, vocab  # noqa: E402
from s2s_export.rnn.model import G2PConfig, G2PModel  # noqa: E402

REPO = Path(__file__).resolve().parents[2]
SHIPPED = REPO / "models" / "g2p-en"

torch.set_num_threads(1)


@pytest.fixture(scope="module")
def voc():
    return vocab.Vocab(data.phoneme_set())


def tiny_model(voc, seed=0, layers=2, encoder_layers=2):
    """tiny_model returns an untrained model with small, unequal sizes (so a
    mixed-up axis shows as a shape error)."""
    torch.manual_seed(seed)
    cfg = G2PConfig(voc.source_size, voc.target_size, embed_size=12, encoder_hidden=10, decoder_hidden=14,
                    decoder_layers=layers, dropout=0.1, encoder_layers=encoder_layers)
    return G2PModel(cfg).eval()


@pytest.fixture(scope="module")
def tiny_dir(tmp_path_factory, voc):
    out = tmp_path_factory.mktemp("g2p") / "tiny"
    model = tiny_model(voc)
    export.export(model, voc, out)
    return out, model


# ---- data ----

DICT_SAMPLE = """\
'bout B AW1 T
a AH0
a(2) EY1
a. EY1
ab-lib AE1 B L IH0 B
abc EY2 B IY2 S IY1
abc(2) EY1 B IY1 S IY1
aalborg AO1 L B AO0 R G # place, danish
b2b B IY1 T UW1 B IY1
Mixed M IH1 K S T
"""


def test_parse_cleans_and_folds():
    got = {e.word: e.prons for e in data.parse(DICT_SAMPLE, set(data.phoneme_set()))}
    assert sorted(got) == ["'bout", "a", "aalborg", "abc", "mixed"]
    assert got["a"] == (("AH",), ("EY",))
    assert got["abc"] == (("EY", "B", "IY", "S", "IY"),), "pronunciations equal without stress are kept once"
    assert got["aalborg"] == (("AO", "L", "B", "AO", "R", "G"),), "the comment is dropped"


def test_parse_rejects_unknown_phoneme():
    with pytest.raises(ExportError, match="unknown phoneme 'QQ'"):
        data.parse("word QQ1 AH0\n", set(data.phoneme_set()))


def test_dictionary_and_split():
    entries = data.load()
    assert len(entries) > 120_000
    assert [e.word for e in entries] == sorted(e.word for e in entries)
    phones = set(data.phoneme_set())
    assert len(phones) == 39
    for e in entries:
        assert e.prons and all(p and set(p) <= phones for p in e.prons), e
    splits = data.split(entries)
    n = len(entries)
    assert abs(len(splits["train"]) / n - 0.90) < 0.01
    assert abs(len(splits["dev"]) / n - 0.05) < 0.005
    assert abs(len(splits["test"]) / n - 0.05) < 0.005
    # The split is a function of the word's sha1 alone.
    for e in entries[:2000]:
        bucket = int(hashlib.sha1(e.word.encode()).hexdigest(), 16) % 100
        assert data.split_of(e.word) == ("train" if bucket < 90 else "dev" if bucket < 95 else "test")


def test_tsv_round_trip(tmp_path):
    entries = data.parse(DICT_SAMPLE, set(data.phoneme_set()))
    data.write_tsv(entries, tmp_path / "t.tsv")
    assert data.read_tsv(tmp_path / "t.tsv") == entries
    (tmp_path / "bad.tsv").write_text("word without tab\n")
    with pytest.raises(ExportError, match="line 1"):
        data.read_tsv(tmp_path / "bad.tsv")


# ---- tokenizers ----

def test_tokenizers(voc, tmp_path):
    assert voc.source_size == 30 and voc.target_size == 43
    assert [voc.source.token_to_id(t) for t in vocab.SPECIALS] == [0, 1, 2]
    assert [voc.target.token_to_id(t) for t in vocab.TARGET_SPECIALS] == [0, 1, 2, 3]
    assert voc.encode_word("Cat") == [voc.source.token_to_id(c) for c in "cat"] + [vocab.EOS]
    assert voc.encode_word(" o'neil ") == [voc.source.token_to_id(c) for c in "o'neil"] + [vocab.EOS]
    assert voc.encode_word("a-b") == [voc.source.token_to_id("a"), vocab.UNK, voc.source.token_to_id("b"), vocab.EOS]
    for p in voc.phones:  # every phoneme is one token, NG included (not N + G)
        assert voc.encode_pron([p]) == [voc.target.token_to_id(p)]
    pron = ["HH", "AH", "L", "OW", "NG"]
    ids = voc.encode_pron(pron)
    assert voc.decode_pron([vocab.BOS] + ids + [vocab.EOS, vocab.PAD]) == "HH AH L OW NG"
    with pytest.raises(ExportError, match="outside the vocabulary"):
        voc.encode_pron("HH AH0")
    voc.save(tmp_path)
    again = vocab.Vocab.from_files(tmp_path / "tokenizer.json", tmp_path / "tokenizer_target.json")
    assert again.phones == voc.phones and again.encode_word("zebra's") == voc.encode_word("zebra's")
    components = json.loads((tmp_path / "tokenizer.json").read_text())
    assert components["model"]["type"] == "BPE" and components["model"]["merges"] == []
    target = json.loads((tmp_path / "tokenizer_target.json").read_text())
    assert target["model"]["type"] == "Unigram" and target["decoder"] is None


# ---- model ----

@pytest.mark.parametrize("encoder_layers", [1, 2])
def test_padding_does_not_change_rows(voc, encoder_layers):
    model = tiny_model(voc, encoder_layers=encoder_layers)
    words = ["a", "pronunciation", "cat"]
    src = train.pad([voc.encode_word(w) for w in words], vocab.PAD)
    tgt = torch.tensor([[vocab.BOS, 5, 6, 7]] * 3)
    with torch.no_grad():
        both = model(src, (src != vocab.PAD).long(), tgt)
        for i, w in enumerate(words):
            one = torch.tensor([voc.encode_word(w)])
            alone = model(one, torch.ones_like(one), tgt[i : i + 1])
            assert torch.allclose(both[i], alone[0], atol=1e-5), w


# ---- export ----

def test_export_directory_and_manifest(tiny_dir):
    import onnxruntime as ort

    out, model = tiny_dir
    names = {p.name for p in out.iterdir()}
    assert names == {"encoder.onnx", "decoder.onnx", "tokenizer.json", "tokenizer_target.json", "config.json",
                     "generation_config.json", "s2s.json", "LICENSE-cmudict"}
    man = json.loads((out / "s2s.json").read_text())
    assert man["architecture"] == "rnn" and man["files"] == {"encoder": "encoder.onnx", "decoder": "decoder.onnx"}
    assert man["tokenizer"] == {"source": "tokenizer.json", "target": "tokenizer_target.json"}
    assert man["vocab_size"] == model.cfg.target_vocab_size and man["num_layers"] == 2
    assert (man["pad_token_id"], man["eos_token_id"], man["bos_token_id"], man["decoder_start_token_id"]) == (0, [1], -1, 3)
    enc = ort.InferenceSession(str(out / "encoder.onnx"))
    dec = ort.InferenceSession(str(out / "decoder.onnx"))
    assert [i.name for i in enc.get_inputs()] == man["encoder_inputs"]
    assert [o.name for o in enc.get_outputs()] == man["encoder_outputs"]
    assert [i.name for i in dec.get_inputs()] == man["decoder_inputs"]
    assert [o.name for o in dec.get_outputs()] == man["decoder_outputs"]
    for sess in (enc, dec):
        for t in sess.get_inputs() + sess.get_outputs():
            named = [d for d in t.shape if isinstance(d, str)]
            assert set(named) <= {"batch_size", "encoder_sequence_length"}, (t.name, t.shape)
            assert t.shape[0] == "batch_size", (t.name, t.shape)
    dec_in = {i.name: i for i in dec.get_inputs()}
    dec_out = {o.name: o for o in dec.get_outputs()}
    enc_out = {o.name: o for o in enc.get_outputs()}
    covered = {"input_ids"}
    for s in man["states"]:
        assert s["batch_axis"] == 0
        assert s["init"] in enc_out and s["input"] in dec_in
        # The state's first value has the input's type and rank, batch axis dynamic.
        assert enc_out[s["init"]].type == dec_in[s["input"]].type == "tensor(float)"
        assert enc_out[s["init"]].shape == dec_in[s["input"]].shape
        assert dec_in[s["input"]].shape[0] == "batch_size"
        if s["carried"]:
            assert dec_out[s["output"]].shape[1:] == dec_in[s["input"]].shape[1:]
        else:
            assert s["output"] == ""
        covered.add(s["input"])
    assert covered == set(dec_in), "every decoder input but input_ids is a state"
    assert {s["input"] for s in man["states"] if s["carried"]} == {"h", "c", "feed"}
    assert dec_out["logits"].shape == ["batch_size", 1, model.cfg.target_vocab_size]
    assert dec_out["attention"].shape == ["batch_size", "encoder_sequence_length"]
    gen = json.loads((out / "generation_config.json").read_text())
    assert gen["max_length"] == evaluate.MAX_LENGTH and gen["decoder_start_token_id"] == 3
    assert "Carnegie Mellon" in (out / "LICENSE-cmudict").read_text()


def test_graphs_match_pytorch_step_by_step(tiny_dir, voc):
    """Run the graphs as the Go host does, with beams: encode 3 words, expand
    every state to 2 rows per word, step 8 times feeding back the graph's own
    states, reordering the carried ones by a beam permutation each step."""
    import onnxruntime as ort

    out, model = tiny_dir
    enc = ort.InferenceSession(str(out / "encoder.onnx"))
    dec = ort.InferenceSession(str(out / "decoder.onnx"))
    src = train.pad([voc.encode_word(w) for w in ["thought", "a", "xylophones"]], vocab.PAD)
    mask = (src != vocab.PAD).long()
    o = enc.run(None, {"input_ids": src.numpy(), "attention_mask": mask.numpy()})
    with torch.no_grad():
        t = model.encode(src, mask)
    for name, g, w in zip(export.ENCODER_OUTPUTS, o, t):
        np.testing.assert_allclose(g, w.numpy(), atol=1e-5, err_msg=name)
    rows = np.repeat(np.arange(3), 2)
    o_state = [x[rows] for x in o[3:]]
    o_const = [x[rows] for x in o[:3]]
    t_state = [x[rows] for x in t[3:]]
    t_const = [x[rows] for x in t[:3]]
    rng = np.random.default_rng(0)
    tok = np.full((6, 1), vocab.BOS, dtype=np.int64)
    for step in range(8):
        g = dec.run(None, dict(zip(export.DECODER_INPUTS, [tok, *o_state, *o_const])))
        with torch.no_grad():
            w = model.step(torch.from_numpy(tok), *t_state, *t_const)
        assert g[0].shape == (6, 1, model.cfg.target_vocab_size)
        for name, a, b in zip(export.DECODER_OUTPUTS, g, w):
            np.testing.assert_allclose(a, b.numpy(), atol=1e-4, err_msg=f"step {step} {name}")
        np.testing.assert_allclose(g[4].sum(axis=1), 1.0, atol=1e-5)
        assert (g[4][mask.numpy()[rows] == 0] == 0).all(), "padding gets no attention"
        # Beams: each row continues one of its word's two rows.
        beam = np.array([2 * (r // 2) + rng.integers(2) for r in range(6)])
        o_state = [x[beam] for x in g[1:4]]
        t_state = [x[torch.from_numpy(beam)] for x in w[1:4]]
        tok = g[0][beam, 0].argmax(axis=1).reshape(6, 1).astype(np.int64)


def test_load_model_rebuilds_the_weights(tiny_dir):
    out, model = tiny_dir
    again, v, man = export.load_model(out)
    for k, w in model.state_dict().items():
        assert torch.equal(again.state_dict()[k], w), k
    assert man == export.manifest(model)
    assert export.self_check(again, v, out) < 1e-4


def test_self_check_catches_a_corrupted_graph(tiny_dir, tmp_path, voc):
    import shutil

    import onnx
    from onnx import numpy_helper

    out, model = tiny_dir
    bad = tmp_path / "bad"
    shutil.copytree(out, bad)
    g = onnx.load(str(bad / "decoder.onnx"))
    for init in g.graph.initializer:
        if init.name == "model.out.bias":
            arr = numpy_helper.to_array(init).copy()
            arr[5] += 0.01
            init.CopyFrom(numpy_helper.from_array(arr, init.name))
    onnx.save(g, str(bad / "decoder.onnx"))
    with pytest.raises(CheckError, match="decoder.onnx step 0: logits differs"):
        export.self_check(model, voc, bad)


def test_export_refuses_non_empty_dir(tmp_path, voc):
    (tmp_path / "keep.txt").write_text("x")
    with pytest.raises(ExportError, match="pass --force"):
        export.export(tiny_model(voc), voc, tmp_path)
    assert (tmp_path / "keep.txt").exists()
    with pytest.raises(ExportError, match="opset 13 is too old"):
        export.export(tiny_model(voc), voc, tmp_path / "new", opset=13)
    assert not (tmp_path / "new").exists()


# ---- search ----

def test_search_cache_equals_recompute(voc):
    """generate() carrying (h, c, feed) reordered by _reorder_cache gives what
    rerunning the decoder over every prefix gives, so the state handling
    follows the beams."""
    model = tiny_model(voc, seed=3, layers=1)
    with torch.no_grad():  # make </s> likely enough that beams finish at different lengths
        model.out.bias[vocab.EOS] += 2.5
    srcs = [voc.encode_word(w) for w in ["cat", "pronunciation", "a", "zebra"]]
    for beams in (1, 3, 5):
        fast = search.generate(model, srcs, num_beams=beams, max_length=12)
        slow = search.generate(model, srcs, num_beams=beams, max_length=12, recompute=True)
        assert [i for i, _ in fast] == [i for i, _ in slow], beams
        assert any(vocab.EOS in i for i, _ in fast)
    greedy = search.generate(model, srcs, num_beams=1, max_length=12)
    own = train.greedy_ids(model, srcs, max_new_tokens=11)
    assert [[t for t in ids if t != vocab.EOS] for ids, _ in greedy] == own


def test_beam_scores_are_hf_sequence_scores(voc):
    """The beam-5 score is the hypothesis's summed log-probability over its
    length (length_penalty 1), recomputed here from the model's logits."""
    model = tiny_model(voc, seed=4, layers=1)
    with torch.no_grad():
        model.out.bias[vocab.EOS] += 3.0
    src = voc.encode_word("ship")
    (ids, score), = search.generate(model, [src], num_beams=5, max_length=12)
    s = torch.tensor([src])
    with torch.no_grad():
        logits = model(s, torch.ones_like(s), torch.tensor([[vocab.BOS] + ids[:-1]]))
    logp = torch.log_softmax(logits[0], dim=-1)
    total = sum(float(logp[i, t]) for i, t in enumerate(ids))
    assert score == pytest.approx(total / len(ids), abs=1e-5)


# ---- evaluation ----

def test_error_rates():
    assert evaluate.edit_distance("kitten", "sitting") == 3
    assert evaluate.edit_distance([], ["A"]) == 1
    hyps = [["K", "AE", "T"], ["D", "AA", "G"], ["F", "IH", "SH"]]
    refs = [[["K", "AE", "T"]], [["D", "AO", "G"], ["D", "AA", "G"]], [["F", "IH", "SH", "IH", "Z"]]]
    wer, per = evaluate.error_rates(hyps, refs)
    assert wer == pytest.approx(1 / 3) and per == pytest.approx(2 / 11)
    # the closest reference counts; on equal edits the shorter one
    assert evaluate.score_word(["T", "AH"], [["T", "AH", "M"], ["T"]]) == (False, 1, 1)
    with pytest.raises(ValueError):
        evaluate.error_rates([], [])


def test_reference_words_spread():
    entries = list(range(1000))
    assert evaluate.reference_words(entries, 4) == [0, 250, 500, 750]
    assert evaluate.reference_words(entries[:3], 200) == [0, 1, 2]


# ---- training ----

def _train_args(tmp_path, **over):
    p = argparse.ArgumentParser()
    train.add_arguments(p)
    args = p.parse_args([str(tmp_path / "out"), "--limit", "96", "--epochs", "2", "--batch-size", "32",
                         "--embed-size", "8", "--encoder-hidden", "8", "--decoder-hidden", "8", "--threads", "1",
                         "--no-progress", "--checkpoint", str(tmp_path / "ck.pt")])
    for k, v in over.items():
        setattr(args, k, v)
    return args


def test_training_is_reproducible(tmp_path):
    a = train.train(_train_args(tmp_path))
    b = train.train(_train_args(tmp_path))
    c = train.train(_train_args(tmp_path, seed=2))
    sa, sb, sc = (r["model"].state_dict() for r in (a, b, c))
    assert all(torch.equal(sa[k], sb[k]) for k in sa)
    assert not all(torch.equal(sa[k], sc[k]) for k in sa)
    assert [h["loss"] for h in a["summary"]["history"]] == [h["loss"] for h in b["summary"]["history"]]
    assert a["summary"]["train_words"] == 96 and a["summary"]["epochs_run"] == 2


def test_resume_gives_the_uninterrupted_run(tmp_path):
    """A run stopped after epoch 2 and resumed to epoch 3 ends with the
    weights, history and kept model of a run that went to epoch 3 at once
    (the checkpoint holds the optimizer, the random generator, the best and
    the recent epochs). The exponential schedule lets --epochs grow on resume."""
    exp = {"schedule": "exp"}
    whole = train.train(_train_args(tmp_path, epochs=3, checkpoint=str(tmp_path / "whole.pt"), **exp))
    part = train.train(_train_args(tmp_path, epochs=2, checkpoint=str(tmp_path / "part.pt"), **exp))
    assert part["summary"]["epochs_run"] == 2
    rest = train.train(_train_args(tmp_path, epochs=3, checkpoint=str(tmp_path / "part.pt"), resume=True, **exp))
    sw, sr = whole["model"].state_dict(), rest["model"].state_dict()
    assert all(torch.equal(sw[k], sr[k]) for k in sw)
    hw, hr = whole["summary"]["history"], rest["summary"]["history"]
    assert [(h["loss"], h["dev_wer"], h["dev_per"], h["lr"]) for h in hw] == [(h["loss"], h["dev_wer"], h["dev_per"], h["lr"]) for h in hr]
    assert rest["summary"]["kept"] == whole["summary"]["kept"] and rest["summary"]["resumed_after_epochs"] == [2]
    with pytest.raises(ExportError, match="--dropout 0.2.*this run has 0.3"):
        train.train(_train_args(tmp_path, epochs=4, checkpoint=str(tmp_path / "part.pt"), resume=True, dropout=0.3, **exp))
    with pytest.raises(ExportError, match="no checkpoint"):
        train.train(_train_args(tmp_path, checkpoint=str(tmp_path / "none.pt"), resume=True))
    (tmp_path / "junk.pt").write_bytes(b"not a checkpoint")
    with pytest.raises(ExportError, match="cannot read"):
        train.train(_train_args(tmp_path, checkpoint=str(tmp_path / "junk.pt"), resume=True))


def test_training_pairs_and_averaging(voc):
    entries = data.parse(DICT_SAMPLE, set(data.phoneme_set()))
    a = next(e for e in entries if e.word == "a")
    assert len(train.training_pairs([a], voc, all_prons=True)) == 2
    assert train.training_pairs([a], voc, all_prons=False) == [(voc.encode_word("a"), voc.encode_pron(["AH"]))]
    states = [{"w": torch.tensor([1.0, 2.0])}, {"w": torch.tensor([3.0, 6.0])}]
    assert torch.equal(train.average_states(states)["w"], torch.tensor([2.0, 4.0]))
    assert torch.equal(states[0]["w"], torch.tensor([1.0, 2.0])), "the inputs are left as they were"


def test_teacher_forcing_equals_steps(voc):
    """forward (all positions at once) computes what step() does one token at a time."""
    model = tiny_model(voc, seed=5, layers=2)
    src = train.pad([voc.encode_word(w) for w in ["cat", "pronunciation"]], vocab.PAD)
    mask = (src != vocab.PAD).long()
    tgt = torch.tensor([[vocab.BOS, 5, 6, 7, 8], [vocab.BOS, 9, 10, 11, 0]])
    with torch.no_grad():
        full = model(src, mask, tgt)
        memory, keys, mmask, h, c, feed = model.encode(src, mask)
        for t in range(tgt.size(1)):
            logits, h, c, feed, _ = model.step(tgt[:, t : t + 1], h, c, feed, memory, keys, mmask)
            assert torch.allclose(full[:, t], logits[:, 0], atol=1e-6), t


def test_cosine_schedule():
    args = argparse.Namespace(lr=1e-2, warmup=4, final_lr=0.1)
    rates = [train.cosine_lr(args, k, 20) for k in range(20)]
    assert rates[:4] == pytest.approx([2.5e-3, 5e-3, 7.5e-3, 1e-2]), "linear warm-up to --lr"
    assert rates[4] == pytest.approx(1e-2) and rates[-1] == pytest.approx(1e-3), "from --lr down to --lr times --final-lr"
    assert all(a > b for a, b in zip(rates[4:], rates[5:])), "the cosine only falls"
    assert train.cosine_lr(argparse.Namespace(lr=1.0, warmup=0, final_lr=0.0), 0, 1) == pytest.approx(1.0)


def test_cosine_resume_gives_the_uninterrupted_run(tmp_path):
    """With --schedule cosine the rate depends on the planned --epochs, so a
    run stopped by --max-minutes resumes to the same weights, and --resume
    refuses another --epochs."""
    cos = {"schedule": "cosine", "warmup": 2, "encoder_layers": 2}
    whole = train.train(_train_args(tmp_path, epochs=3, checkpoint=str(tmp_path / "whole.pt"), **cos))
    part = train.train(_train_args(tmp_path, epochs=3, checkpoint=str(tmp_path / "part.pt"), max_minutes=1e-6, **cos))
    assert part["summary"]["epochs_run"] == 1 and part["summary"]["stopped_by"] == "max-minutes"
    rest = train.train(_train_args(tmp_path, epochs=3, checkpoint=str(tmp_path / "part.pt"), resume=True, **cos))
    sw, sr = whole["model"].state_dict(), rest["model"].state_dict()
    assert any(k.startswith("fwd_upper.") for k in sw), "two encoder layers"
    assert all(torch.equal(sw[k], sr[k]) for k in sw)
    lrs = [h["lr"] for h in whole["summary"]["history"]]
    assert lrs == [h["lr"] for h in rest["summary"]["history"]] and lrs[0] > lrs[1] > lrs[2]
    with pytest.raises(ExportError, match="--epochs 3.*this run has 4"):
        train.train(_train_args(tmp_path, epochs=4, checkpoint=str(tmp_path / "part.pt"), resume=True, **cos))


def test_training_stops_at_max_minutes(tmp_path):
    r = train.train(_train_args(tmp_path, epochs=3, max_minutes=1e-6))
    assert r["summary"]["stopped_by"] == "max-minutes" and r["summary"]["epochs_run"] == 1


def test_progress_without_tqdm(monkeypatch, capsys):
    monkeypatch.setitem(__import__("sys").modules, "tqdm", None)  # import tqdm now fails
    bar = train.Progress(2, "epoch 1/1")
    assert bar.bar is None
    bar.update("loss 1.0")
    bar.update("loss 0.5")
    bar.close()
    err = capsys.readouterr().err
    assert "epoch 1/1: 2/2 100%" in err and "loss 0.5" in err


def test_train_command_writes_a_model(tmp_path, capsys):
    out = tmp_path / "m"
    argv = ["g2p-train", str(out), "--limit", "64", "--epochs", "1", "--batch-size", "32", "--embed-size", "8",
            "--encoder-hidden", "8", "--decoder-hidden", "8", "--threads", "1", "--no-progress",
            "--checkpoint", str(tmp_path / "ck.pt")]
    assert cli.main(argv) == 0
    assert (tmp_path / "ck.pt").is_file()
    assert (out / "test.tsv").is_file() and (out / "training.json").is_file()
    assert data.read_tsv(out / "test.tsv")[0].word == data.split(data.load())["test"][0].word
    assert cli.main(["g2p-check", str(out)]) == 0
    assert cli.main(argv) == 1
    assert "exists and is not empty; pass --force" in capsys.readouterr().err
    assert cli.main(argv[:2] + ["--epochs", "0"]) == 1


# ---- the shipped model ----



def test_shipped_model_checks_and_fits():
    model, voc, man = export.load_model(SHIPPED)
    assert man == export.manifest(model)
    assert export.self_check(model, voc, SHIPPED) < 1e-4
    size = sum(p.stat().st_size for p in SHIPPED.iterdir())
    assert size < 10_000_000, f"models/g2p-en is {size} bytes; keep it under 10 MB"
    training = json.loads((SHIPPED / "training.json").read_text())
    assert training["test_words"] == len(data.read_tsv(SHIPPED / "test.tsv"))


def test_shipped_test_split_is_the_current_split():
    assert data.read_tsv(SHIPPED / "test.tsv") == data.split(data.load())["test"]


def test_g2p_split_writes_the_split(tmp_path):
    """g2p-split writes what g2p-train writes as test.tsv, for any split (dev for g2p-eval -words)."""
    assert cli.main(["g2p-split", "test", str(tmp_path / "test.tsv")]) == 0
    assert (tmp_path / "test.tsv").read_bytes() == (SHIPPED / "test.tsv").read_bytes()
    assert cli.main(["g2p-split", "dev", str(tmp_path / "dev.tsv")]) == 0
    dev = data.read_tsv(tmp_path / "dev.tsv")
    assert dev == data.split(data.load())["dev"] and {data.split_of(e.word) for e in dev} == {"dev"}
    assert cli.main(["g2p-split", "dev", str(tmp_path / "missing" / "dev.tsv")]) == 1  # an error naming the file, not a traceback


def test_unwritable_output_is_one_line(tmp_path, capsys):
    """A command whose output path cannot be written exits 1 with one line naming the file, not a traceback."""
    missing = tmp_path / "missing" / "reference.jsonl"
    assert cli.main(["g2p-reference", str(SHIPPED), "-n", "1", "--out", str(missing)]) == 1
    err = capsys.readouterr().err.strip()
    assert err.count("\n") == 0 and str(missing) in err and "g2p-reference" in err, err


def test_shipped_reference_decodes_are_the_models():
    """The committed reference decodes are what the shipped weights produce
    (a sample of 40 re-decoded here) and cover 200 test words."""
    model, voc, _ = export.load_model(SHIPPED)
    lines = [json.loads(x) for x in (SHIPPED / evaluate.REFERENCE_FILE).read_text().splitlines()]
    assert len(lines) == 200
    test = data.read_tsv(SHIPPED / "test.tsv")
    assert [r["word"] for r in lines] == [e.word for e in evaluate.reference_words(test, 200)]
    sample = lines[::5]
    srcs = [voc.encode_word(r["word"]) for r in sample]
    assert srcs == [r["input_ids"] for r in sample]
    greedy = search.generate(model, srcs, num_beams=1, max_length=evaluate.MAX_LENGTH, batch_size=1)
    beam = search.generate(model, srcs, num_beams=5, max_length=evaluate.MAX_LENGTH, batch_size=1)
    for r, (g, _), (b, s) in zip(sample, greedy, beam):
        assert g == r["greedy_ids"], r["word"]
        assert b == r["beam5_ids"], r["word"]
        assert s == pytest.approx(r["beam5_score"], abs=1e-6)
        assert r["beam5_text"] == voc.decode_pron(b)
    cases = [json.loads(x) for x in (SHIPPED / evaluate.TOKENIZER_CASES_FILE).read_text().splitlines()]
    for c in cases:
        if c["kind"] == "encode":
            assert voc.source.encode(c["text"]).ids == c["ids"], c
        else:
            assert voc.decode_pron(c["ids"]) == c["text"], c
