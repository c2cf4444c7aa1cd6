"""test_hf exports tiny random-weight T5, mT5, BART and mBART checkpoints with
`s2s_export hf --layout optimum` and checks the directory, the manifest, the
self-check (and that it catches a corrupted graph) and the refusals
(test_inplace checks the inplace layout).

The checkpoints are built here from configs with random weights; their
tokenizers are the ones committed under testdata/tokenizers/.
"""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

import numpy as np
import pytest

os.environ.setdefault("HF_HUB_OFFLINE", "1")

from s2s_export import check, cli, families, graphs, hf  # noqa: E402
from s2s_export.errors import CheckError, ExportError  # noqa: E402

REPO = Path(__file__).resolve().parents[2]
TOKENIZERS = REPO / "testdata" / "tokenizers"

# Sizes of every tiny model; the expected manifest is written from these.
D_MODEL, HEADS, FFN, ENC_LAYERS, DEC_LAYERS = 32, 4, 64, 1, 2  # decoder deeper: num_layers must be the decoder's
T5_D_KV = 6  # deliberately not D_MODEL / HEADS: head_dim must come from d_kv

MODEL_FILES = {
    "encoder_model.onnx", "decoder_model.onnx", "decoder_with_past_model.onnx", "decoder_model_merged.onnx",
    "tokenizer.json", "config.json", "generation_config.json", "s2s.json",
}


def _tokenizer_dir(family: str) -> Path:
    """_tokenizer_dir returns testdata/tokenizers/<family>, which testdata/ commits."""
    d = TOKENIZERS / family
    assert d.is_dir(), f"{d} is missing; it is committed with the repository (regenerate it with testdata's script)"
    return d


def _t5_tokenizer():
    """_t5_tokenizer returns the T5TokenizerFast of testdata/tokenizers/t5."""
    from transformers import T5TokenizerFast

    return T5TokenizerFast.from_pretrained(str(_tokenizer_dir("t5")))


def _bart_tokenizer():
    """_bart_tokenizer returns the BartTokenizerFast of testdata/tokenizers/bart."""
    from transformers import BartTokenizerFast

    return BartTokenizerFast.from_pretrained(str(_tokenizer_dir("bart")))


def _round8(n: int) -> int:
    """_round8 rounds n up to a multiple of 8, as T5 pads its vocabulary (32100 -> 32128)."""
    return (n + 7) // 8 * 8


def make_checkpoint(family: str, path: Path) -> Path:
    """make_checkpoint saves a tiny random-weight checkpoint of family (t5, mt5, bart, mbart) with its tokenizer into path."""
    import torch
    import transformers as tf

    torch.manual_seed(0)
    if family in ("t5", "mt5"):
        tok = _t5_tokenizer()
        cfg_cls, model_cls = (tf.T5Config, tf.T5ForConditionalGeneration) if family == "t5" else (tf.MT5Config, tf.MT5ForConditionalGeneration)
        config = cfg_cls(
            vocab_size=_round8(len(tok)), d_model=D_MODEL, d_kv=T5_D_KV, d_ff=FFN, num_layers=ENC_LAYERS,
            num_decoder_layers=DEC_LAYERS, num_heads=HEADS, pad_token_id=0, eos_token_id=1, decoder_start_token_id=0,
        )
    else:
        tok = _bart_tokenizer()
        cfg_cls, model_cls = (tf.BartConfig, tf.BartForConditionalGeneration) if family == "bart" else (tf.MBartConfig, tf.MBartForConditionalGeneration)
        kw = dict(
            vocab_size=len(tok), d_model=D_MODEL, encoder_layers=ENC_LAYERS, decoder_layers=DEC_LAYERS,
            encoder_attention_heads=HEADS, decoder_attention_heads=HEADS, encoder_ffn_dim=FFN, decoder_ffn_dim=FFN,
            max_position_embeddings=64, pad_token_id=1, bos_token_id=0, eos_token_id=2,
        )
        if family == "mbart":
            kw["decoder_start_token_id"] = None  # as facebook/mbart-large-cc25: generate() falls back to bos
        config = cfg_cls(**kw)
    model_cls(config).eval().save_pretrained(str(path))
    tok.save_pretrained(str(path))
    return path


@pytest.fixture(scope="module")
def exported(tmp_path_factory):
    """exported returns a function family -> (checkpoint, model dir), exporting each family once per module."""
    done: dict[str, tuple[Path, Path]] = {}

    def get(family: str) -> tuple[Path, Path]:
        if family not in done:
            root = tmp_path_factory.mktemp(family)
            src = make_checkpoint(family, root / "ckpt")
            out = root / "model"
            hf.export(src, out, layout=hf.LAYOUT_OPTIMUM, log=lambda s: None)
            done[family] = (src, out)
        return done[family]

    return get


@pytest.mark.parametrize("family", ["t5", "mt5", "bart", "mbart"])
def test_export_writes_the_model_directory(exported, family):
    src, out = exported(family)
    assert {p.name for p in out.iterdir()} == MODEL_FILES
    assert not list(out.parent.glob(".model.*")), "the staging directory was left behind"
    assert (out / "config.json").read_bytes() == (src / "config.json").read_bytes()
    assert (out / "generation_config.json").read_bytes() == (src / "generation_config.json").read_bytes()

    m = json.loads((out / "s2s.json").read_text())
    cfg = json.loads((src / "config.json").read_text())
    t5 = family in ("t5", "mt5")
    assert m["format"] == "s2s-model" and m["version"] == 1 and m["architecture"] == "transformer"
    assert m["model_type"] == family
    assert m["files"] == {
        "encoder": "encoder_model.onnx", "decoder": "decoder_model.onnx",
        "decoder_with_past": "decoder_with_past_model.onnx", "decoder_merged": "decoder_model_merged.onnx",
    }
    assert m["tokenizer"] == {"source": "tokenizer.json", "target": "tokenizer.json"}
    assert (m["num_layers"], m["num_heads"], m["hidden_size"]) == (DEC_LAYERS, HEADS, D_MODEL)
    assert m["head_dim"] == (T5_D_KV if t5 else D_MODEL // HEADS)
    assert m["vocab_size"] == cfg["vocab_size"]
    if t5:
        assert (m["pad_token_id"], m["eos_token_id"], m["bos_token_id"], m["decoder_start_token_id"]) == (0, [1], -1, 0)
    elif family == "bart":
        assert (m["pad_token_id"], m["eos_token_id"], m["bos_token_id"], m["decoder_start_token_id"]) == (1, [2], 0, 2)
    else:  # mbart: no decoder_start_token_id, so bos as in generate()
        assert (m["pad_token_id"], m["eos_token_id"], m["bos_token_id"], m["decoder_start_token_id"]) == (1, [2], 0, 0)
    assert m["encoder_inputs"] == ["input_ids", "attention_mask"]
    assert m["encoder_outputs"] == ["last_hidden_state"]
    past = [f"past_key_values.{i}.{s}.{kv}" for i in range(DEC_LAYERS) for s in ("decoder", "encoder") for kv in ("key", "value")]
    assert m["decoder_inputs"] == ["encoder_attention_mask", "input_ids", *past]
    present = [f"present.{i}.decoder.{kv}" for i in range(DEC_LAYERS) for kv in ("key", "value")]
    assert m["decoder_outputs"] == ["logits", *present]


@pytest.mark.parametrize("family", ["t5", "bart"])
def test_graph_signatures_are_as_documented(exported, family):
    """The shapes and dtypes docs/model-format.md promises the Go runtime."""
    _, out = exported(family)
    m = json.loads((out / "s2s.json").read_text())
    H, D, E, V = m["num_heads"], m["head_dim"], m["hidden_size"], m["vocab_size"]

    def table(sig):
        return {v.name: (v.dtype, v.shape) for v in sig}

    enc = graphs.signature(out / graphs.ENCODER)
    assert table(enc.inputs) == {n: ("INT64", ("batch_size", "encoder_sequence_length")) for n in ("input_ids", "attention_mask")}
    assert table(enc.outputs) == {"last_hidden_state": ("FLOAT", ("batch_size", "encoder_sequence_length", E))}

    wp = graphs.signature(out / graphs.DECODER_WITH_PAST)
    ins = table(wp.inputs)
    assert "encoder_hidden_states" not in ins
    assert ins["past_key_values.0.decoder.key"] == ("FLOAT", ("batch_size", H, "past_decoder_sequence_length", D))
    assert ins["past_key_values.0.encoder.value"] == ("FLOAT", ("batch_size", H, "encoder_sequence_length", D))
    assert table(wp.outputs)["logits"] == ("FLOAT", ("batch_size", "1", V))

    merged = graphs.signature(out / graphs.DECODER_MERGED)
    mins = table(merged.inputs)
    assert mins["use_cache_branch"] == ("BOOL", (1,))
    assert mins["encoder_hidden_states"] == ("FLOAT", ("batch_size", "encoder_sequence_length", E))
    assert mins["encoder_attention_mask"][0] == "INT64"
    assert merged.output_names()[0] == "logits" and "present.0.encoder.key" in merged.output_names()


def test_tokenizer_json_encodes_like_the_checkpoint_tokenizer(exported):
    from tokenizers import Tokenizer
    from transformers import AutoTokenizer

    for family in ("t5", "bart"):
        src, out = exported(family)
        ours = Tokenizer.from_file(str(out / "tokenizer.json"))
        theirs = AutoTokenizer.from_pretrained(str(src))
        for text in ("hello world, how are you today?", "Never   put off, glitter!", ""):
            assert ours.encode(text).ids == theirs(text)["input_ids"], (family, text)


@pytest.mark.parametrize("family", ["t5", "bart"])
def test_self_check_compares_every_step_within_atol(exported, family):
    src, out = exported(family)
    report = check.check(src, out, steps=5)
    seen = {(d.graph, d.step) for d in report.diffs}
    want = {(graphs.ENCODER, -1), (graphs.DECODER, 0)}
    want |= {(graphs.DECODER_WITH_PAST, t) for t in range(1, 5)}
    want |= {(graphs.DECODER_MERGED, t) for t in range(5)}
    assert seen == want
    assert all(d.max_abs <= 1e-4 for d in report.diffs)
    assert "decoder_model_merged.onnx" in report.summary()


def _perturb(path: Path, scale: float = 0.5) -> str:
    """_perturb adds noise to the largest float initializer of the ONNX graph at path and returns its name."""
    import onnx
    from onnx import numpy_helper

    model = onnx.load(str(path))
    inits = [i for i in model.graph.initializer if i.data_type == onnx.TensorProto.FLOAT]
    target = max(inits, key=lambda i: int(np.prod(i.dims)))
    arr = numpy_helper.to_array(target)
    arr = arr + np.random.default_rng(1).normal(0, scale, arr.shape).astype(np.float32)
    target.CopyFrom(numpy_helper.from_array(arr, target.name))
    onnx.save(model, str(path))
    return target.name


@pytest.mark.parametrize("graph,step", [(graphs.DECODER_WITH_PAST, 1), (graphs.DECODER_MERGED, 0), (graphs.ENCODER, -1)])
def test_self_check_fails_on_a_corrupted_graph(exported, tmp_path, capsys, graph, step):
    src, out = exported("bart")
    bad = tmp_path / "bad"
    shutil.copytree(out, bad)
    _perturb(bad / graph)
    with pytest.raises(CheckError) as e:
        check.check(src, bad)
    msg = str(e.value)
    where = graph if step < 0 else f"{graph} step {step}"
    assert where in msg and "max abs diff" in msg, msg
    # The CLI says it on stderr and exits 1.
    assert cli.main(["check", str(src), str(bad)]) == 1
    assert "self-check failed" in capsys.readouterr().err


def test_failed_check_leaves_out_dir_untouched(exported, tmp_path):
    src, _ = exported("t5")
    out = tmp_path / "strict"
    with pytest.raises(CheckError, match="atol 1e-12"):
        hf.export(src, out, atol=1e-12, log=lambda s: None)
    assert not out.exists()
    assert not list(tmp_path.glob(".strict.*"))


def test_overwrite_needs_force(exported, tmp_path, capsys):
    src, out = exported("t5")
    target = tmp_path / "again"
    shutil.copytree(out, target)
    (target / "stale.txt").write_text("old")
    assert cli.main(["hf", str(src), str(target), "--layout", "optimum", "--no-check"]) == 1
    err = capsys.readouterr().err
    assert "exists and is not empty; pass --force" in err
    assert (target / "stale.txt").exists()
    assert cli.main(["hf", str(src), str(target), "--layout", "optimum", "--no-check", "--force"]) == 0
    assert {p.name for p in target.iterdir()} == MODEL_FILES
    # An existing empty directory is fine without --force.
    empty = tmp_path / "empty"
    empty.mkdir()
    assert cli.main(["hf", str(src), str(empty), "--layout", "optimum", "--no-check"]) == 0
    assert {p.name for p in empty.iterdir()} == MODEL_FILES


def test_force_never_removes_the_checkpoint(exported):
    src, _ = exported("t5")
    with pytest.raises(ExportError, match="holds the checkpoint"):
        hf.export(src, src, force=True)
    with pytest.raises(ExportError, match="holds the checkpoint"):
        hf.export(src, src.parent, force=True)
    assert (src / "model.safetensors").is_file()


def test_unsupported_config_class_lists_the_supported_ones(tmp_path):
    from transformers import PegasusConfig

    src = tmp_path / "pegasus"
    PegasusConfig(vocab_size=32, d_model=16).save_pretrained(str(src))
    with pytest.raises(ExportError) as e:
        hf.export(src, tmp_path / "out")
    msg = str(e.value)
    assert "PegasusConfig" in msg
    assert "supported config classes: BartConfig, MBartConfig, MT5Config, MarianConfig, T5Config" in msg
    assert not (tmp_path / "out").exists()
    assert families.supported() == ["BartConfig", "MBartConfig", "MT5Config", "MarianConfig", "T5Config"]


def test_missing_generation_config_is_derived(exported, tmp_path):
    src, _ = exported("bart")
    ckpt = tmp_path / "ckpt"
    shutil.copytree(src, ckpt)
    (ckpt / "generation_config.json").unlink()
    out = tmp_path / "out"
    hf.export(ckpt, out, check=False)
    gen = json.loads((out / "generation_config.json").read_text())
    cfg = json.loads((ckpt / "config.json").read_text())
    assert gen["decoder_start_token_id"] == cfg["decoder_start_token_id"]
    assert gen["forced_eos_token_id"] == cfg["forced_eos_token_id"]


def test_bad_inputs_give_clear_errors(exported, tmp_path):
    with pytest.raises(ExportError, match="is not a directory"):
        hf.export(tmp_path / "nope", tmp_path / "out")
    (tmp_path / "empty").mkdir()
    with pytest.raises(ExportError, match="has no config.json"):
        hf.export(tmp_path / "empty", tmp_path / "out")
    src, _ = exported("bart")
    ckpt = tmp_path / "notok"
    ckpt.mkdir()
    for f in ("config.json", "generation_config.json", "model.safetensors"):
        shutil.copyfile(src / f, ckpt / f)
    with pytest.raises(ExportError, match="tokenizer"):
        hf.export(ckpt, tmp_path / "out", check=False)
    assert not (tmp_path / "out").exists()


def test_cli_lists_subcommands():
    parser = cli.build_parser()
    assert "hf" in cli.COMMANDS and "check" in cli.COMMANDS
    help_text = parser.format_help()
    assert "hf" in help_text and "exports a local Hugging Face checkpoint" in help_text
    with pytest.raises(SystemExit):
        parser.parse_args(["hf"])  # SRC_DIR and OUT_DIR are required


def _marian_tokenizer():
    """_marian_tokenizer returns the MarianTokenizer of testdata/tokenizers/marian."""
    from transformers import MarianTokenizer

    return MarianTokenizer.from_pretrained(str(_tokenizer_dir("marian")))


@pytest.fixture(scope="module")
def marian(tmp_path_factory):
    """marian returns (checkpoint, model dir) of a tiny exported Marian model."""
    import torch
    from transformers import MarianConfig, MarianMTModel

    root = tmp_path_factory.mktemp("marian")
    tok = _marian_tokenizer()
    pad = tok.pad_token_id
    torch.manual_seed(0)
    config = MarianConfig(
        vocab_size=len(tok), d_model=D_MODEL, encoder_layers=ENC_LAYERS, decoder_layers=DEC_LAYERS,
        encoder_attention_heads=HEADS, decoder_attention_heads=HEADS, encoder_ffn_dim=FFN, decoder_ffn_dim=FFN,
        max_position_embeddings=64, pad_token_id=pad, eos_token_id=0, decoder_start_token_id=pad,
    )
    src = root / "ckpt"
    MarianMTModel(config).eval().save_pretrained(str(src))
    tok.save_pretrained(str(src))
    out = root / "model"
    hf.export(src, out, layout=hf.LAYOUT_OPTIMUM, log=lambda s: None)
    return src, out


def test_marian_export(marian):
    from tokenizers import Tokenizer
    from transformers import MarianTokenizer

    src, out = marian
    assert {p.name for p in out.iterdir()} == MODEL_FILES | {"tokenizer_target.json"}
    m = json.loads((out / "s2s.json").read_text())
    tok = MarianTokenizer.from_pretrained(str(src))
    assert m["model_type"] == "marian"
    assert m["tokenizer"] == {"source": "tokenizer.json", "target": "tokenizer_target.json"}
    assert (m["num_layers"], m["num_heads"], m["head_dim"], m["hidden_size"]) == (DEC_LAYERS, HEADS, D_MODEL // HEADS, D_MODEL)
    assert m["vocab_size"] == len(tok)
    assert (m["pad_token_id"], m["eos_token_id"], m["bos_token_id"], m["decoder_start_token_id"]) == (len(tok) - 1, [0], -1, len(tok) - 1)
    source = Tokenizer.from_file(str(out / "tokenizer.json"))
    assert source.encode("the quick brown fox").ids == tok("the quick brown fox")["input_ids"]
    report = check.check(src, out)
    assert len(report.diffs) == 1 + 2 * check.DEFAULT_STEPS  # encoder, then each step split and merged
    assert all(d.ok() for d in report.diffs)


def test_marian_without_spm_files_is_refused(marian, tmp_path):
    src, _ = marian
    ckpt = tmp_path / "ckpt"
    shutil.copytree(src, ckpt)
    (ckpt / "target.spm").unlink()
    with pytest.raises(ExportError, match="needs target.spm"):
        hf.export(ckpt, tmp_path / "out")


def test_opset_is_passed_to_optimum(exported, tmp_path):
    import onnx

    src, _ = exported("t5")
    out = tmp_path / "op14"
    assert cli.main(["hf", str(src), str(out), "--layout", "optimum", "--opset", "14", "--no-check"]) == 0
    for g in graphs.GRAPHS:
        opsets = {o.domain: o.version for o in onnx.load(str(out / g), load_external_data=False).opset_import}
        assert opsets[""] == 14, g


def test_missing_decoder_start_is_refused(exported, tmp_path):
    src, _ = exported("t5")
    ckpt = tmp_path / "ckpt"
    shutil.copytree(src, ckpt)
    for name in ("config.json", "generation_config.json"):
        d = json.loads((ckpt / name).read_text())
        d.pop("decoder_start_token_id", None)
        (ckpt / name).write_text(json.dumps(d))
    with pytest.raises(ExportError, match="no decoder_start_token_id .*; set one"):
        hf.export(ckpt, tmp_path / "out")
