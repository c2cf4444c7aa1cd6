"""test_ensemble checks s2s_export.rnn.ensemble and `g2p-ensemble`: a step
of the ensemble is the log of its members' mean probabilities with each
member's states in its own slice, the directory it writes self-checks and
reloads, float16 storage halves the graphs and computes what the rounded
weights compute, and members that cannot be combined are refused.

The members are tiny untrained models of different sizes, so a slice taken
from the wrong member shows as a shape error or a wrong value.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import onnx
import pytest
import torch

os.environ.setdefault("HF_HUB_OFFLINE", "1")

from s2s_export import cli  # noqa: E402
from s2s_export.errors import ExportError  # noqa: E402
from s2s_export.rnn import data, export, search, vocab  # noqa: E402
from s2s_export.rnn.ensemble import G2PEnsemble, build, combine  # noqa: E402
from s2s_export.rnn.model import G2PConfig, G2PModel  # noqa: E402

torch.set_num_threads(1)


@pytest.fixture(scope="module")
def voc():
    return vocab.Vocab(data.phoneme_set())


def member(voc, seed: int, enc: int, dec: int, layers: int = 2) -> G2PModel:
    """member returns an untrained model; its sizes are the arguments."""
    torch.manual_seed(seed)
    cfg = G2PConfig(voc.source_size, voc.target_size, embed_size=12, encoder_hidden=enc, decoder_hidden=dec,
                    decoder_layers=layers, dropout=0.1)
    return G2PModel(cfg).eval()


@pytest.fixture(scope="module")
def members(voc):
    return [member(voc, 1, 10, 14), member(voc, 2, 6, 9)]


@pytest.fixture(scope="module")
def member_dirs(tmp_path_factory, voc, members):
    root = tmp_path_factory.mktemp("members")
    test = data.split(data.load())["test"][:20]
    dirs = []
    for i, m in enumerate(members):
        export.export(m, voc, root / f"m{i}", training={"member": i}, test=test)
        dirs.append(root / f"m{i}")
    return dirs


def _inputs(voc, words=("pronunciation", "cat", "a")):
    from s2s_export.rnn.train import pad

    ids = pad([voc.encode_word(w) for w in words], 0)
    return ids, (ids != 0).long()


def test_step_is_the_log_of_the_members_mean_probability(voc, members):
    ens = combine(members)
    ids, mask = _inputs(voc)
    with torch.no_grad():
        memory, keys, mmask, h, c, feed = ens.encode(ids, mask)
        assert memory.shape[2] == 2 * 10 + 2 * 6 and h.shape[2] == 14 + 9 and feed.shape[1] == 14 + 9
        tok = torch.full((ids.size(0), 1), 3, dtype=torch.int64)
        logits, nh, nc, nf, att = ens.step(tok, h, c, feed, memory, keys, mmask)
        probs, states = [], []
        for m in members:
            mem_m, keys_m, _, h_m, c_m, f_m = m.encode(ids, mask)
            out = m.step(tok, h_m, c_m, f_m, mem_m, keys_m, mmask)
            probs.append(torch.softmax(out[0], dim=-1))
            states.append(out)
    torch.testing.assert_close(logits, torch.log((probs[0] + probs[1]) / 2), atol=1e-6, rtol=1e-5)
    torch.testing.assert_close(logits.exp().sum(dim=-1), torch.ones(ids.size(0), 1))  # normalized already
    torch.testing.assert_close(nh, torch.cat([states[0][1], states[1][1]], dim=2))
    torch.testing.assert_close(nc, torch.cat([states[0][2], states[1][2]], dim=2))
    torch.testing.assert_close(nf, torch.cat([states[0][3], states[1][3]], dim=1))
    torch.testing.assert_close(att, (states[0][4] + states[1][4]) / 2)


def test_ensemble_searches_like_transformers_generate(voc, members):
    """The ensemble runs through the same generate() wrapper as one model; with the state carried or recomputed the same."""
    ens = combine(members)
    src = [voc.encode_word(w) for w in ("cat", "xylophones")]
    for beams in (1, 3):
        carried = search.generate(ens, src, num_beams=beams, max_length=12)
        again = search.generate(ens, src, num_beams=beams, max_length=12, recompute=True)
        assert [ids for ids, _ in carried] == [ids for ids, _ in again]


def test_g2p_ensemble_writes_a_checked_directory(tmp_path, voc, members, member_dirs):
    out = tmp_path / "ens"
    assert cli.main(["g2p-ensemble", str(out), *map(str, member_dirs)]) == 0
    model, _, man = export.load_model(out)
    assert isinstance(model, G2PEnsemble) and man == export.manifest(model)
    want = combine(members).state_dict()
    got = model.state_dict()
    assert set(got) == set(want) and all(torch.equal(got[k], want[k]) for k in want)
    conf = json.loads((out / "config.json").read_text())
    assert conf["ensemble"] == 2 and conf["weights_dtype"] == "float32" and len(conf["model"]["members"]) == 2
    training = json.loads((out / "training.json").read_text())
    assert [m["member"] for m in training["members"]] == [0, 1] and training["test_words"] == 20
    assert data.read_tsv(out / "test.tsv") == data.read_tsv(member_dirs[0] / "test.tsv")
    assert cli.main(["g2p-check", str(out)]) == 0


def test_float16_halves_the_graphs_and_computes_the_rounded_weights(tmp_path, member_dirs):
    full, half = tmp_path / "f32", tmp_path / "f16"
    assert cli.main(["g2p-ensemble", str(full), *map(str, member_dirs)]) == 0
    assert cli.main(["g2p-ensemble", str(half), *map(str, member_dirs), "--float16"]) == 0
    def weights(d):
        return [i for f in (export.ENCODER_FILE, export.DECODER_FILE)
                for i in onnx.load(str(d / f)).graph.initializer if i.name.startswith("model.")]

    assert {i.data_type for i in weights(half)} == {onnx.TensorProto.FLOAT16}
    assert 2 * sum(len(i.raw_data) for i in weights(half)) == sum(len(i.raw_data) for i in weights(full)) > 0
    assert export.weights_dtype(half) == "float16" and export.weights_dtype(full) == "float32"
    m32, _, _ = export.load_model(full)
    m16, _, _ = export.load_model(half)
    for k, v in m32.state_dict().items():
        assert torch.equal(m16.state_dict()[k], v.half().float()), k
    assert cli.main(["g2p-check", str(half)]) == 0  # onnxruntime on the stored float16 against PyTorch on the rounded weights
    again = tmp_path / "again"
    assert cli.main(["g2p-export", str(half), str(again)]) == 0
    assert export.weights_dtype(again) == "float16"


def test_members_that_cannot_be_combined(tmp_path, voc, members, member_dirs, capsys):
    assert cli.main(["g2p-ensemble", str(tmp_path / "one"), str(member_dirs[0])]) == 1
    assert "at least 2" in capsys.readouterr().err
    ens = tmp_path / "ens"
    assert cli.main(["g2p-ensemble", str(ens), *map(str, member_dirs)]) == 0
    assert cli.main(["g2p-ensemble", str(tmp_path / "nested"), str(ens), str(member_dirs[0])]) == 1
    assert "ensemble already" in capsys.readouterr().err
    assert cli.main(["g2p-ensemble", str(member_dirs[0]), str(member_dirs[0]), str(member_dirs[1])]) == 1
    with pytest.raises(ExportError, match="decoder_layers"):
        G2PEnsemble([members[0].cfg, member(voc, 3, 6, 9, layers=1).cfg])
    with pytest.raises(ExportError, match="members"):
        build({"members": [members[0].cfg.to_dict()], "extra": 1})
    with pytest.raises(ExportError, match="at least 2"):
        build({"members": [members[0].cfg.to_dict()]})


def test_train_script_makes_the_shipped_kind_of_model(tmp_path):
    """scripts/train-g2p.sh, with tiny members: two g2p-train runs, their float16 ensemble, the reference decodes and the packed file."""
    import subprocess
    import sys

    repo = Path(__file__).resolve().parents[2]
    out = tmp_path / "g2p"
    env = dict(os.environ, PY=sys.executable, BUILD=str(tmp_path / "build"),
               G2P_TRAIN_ARGS="--limit 64 --epochs 1 --batch-size 32 --embed-size 8 --encoder-hidden 8 "
                              "--decoder-hidden 8 --no-progress")
    run = subprocess.run(["bash", str(repo / "scripts" / "train-g2p.sh"), str(out)], env=env, capture_output=True,
                         text=True, timeout=600)
    assert run.returncode == 0, run.stdout + run.stderr
    model, _, _ = export.load_model(out)
    assert isinstance(model, G2PEnsemble) and export.weights_dtype(out) == "float16"
    assert (out / "reference-decodes.jsonl").is_file() and (tmp_path / "g2p.onnx").is_file()
    assert (tmp_path / "build" / "g2p-train" / "g2p-member-h.pt").is_file()
    again = subprocess.run(["bash", str(repo / "scripts" / "train-g2p.sh"), str(out)], env=env, capture_output=True,
                           text=True, timeout=600)
    assert again.returncode == 0 and "--resume" in again.stdout, again.stdout + again.stderr
