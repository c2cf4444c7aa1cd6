"""The Go host runs a directory written by optimum-cli itself (no s2s.json).

A tiny BART checkpoint is exported with `optimum-cli export onnx --task
text2text-generation-with-past`, exactly as a user would, and `gen -json`
on that directory must give transformers' greedy and beam tokens.
"""

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def gen():
    subprocess.run([str(ROOT / "scripts" / "setup.sh"), "go"], check=True, cwd=ROOT)
    return ROOT / "bin" / "gen"


def test_gen_runs_an_optimum_cli_directory(gen, tmp_path):
    import torch
    from transformers import AutoModelForSeq2SeqLM, AutoTokenizer

    from s2s_export import tiny

    ckpt, out = tmp_path / "ckpt", tmp_path / "optimum"
    tiny.make_tiny("bart", ckpt, 17, d_model=32, layers=2, heads=4, ffn=64)
    env = {**os.environ, "HF_HUB_OFFLINE": "1"}
    cli = Path(sys.executable).with_name("optimum-cli")
    subprocess.run([str(cli), "export", "onnx", "--model", str(ckpt), "--task", "text2text-generation-with-past",
                    str(out)], check=True, env=env, capture_output=True)
    assert not (out / "s2s.json").exists()
    assert (out / "encoder_model.onnx").exists() and (out / "tokenizer.json").exists()

    tok = AutoTokenizer.from_pretrained(str(ckpt))
    model = AutoModelForSeq2SeqLM.from_pretrained(str(ckpt)).eval()
    texts = ["A fool and his money are soon parted.", "Hello world", "Time flies like an arrow; fruit flies like a banana."]
    for options in ({"max_new_tokens": 12}, {"max_new_tokens": 12, "num_beams": 3}):
        proc = subprocess.run([str(gen), "-model", str(out), "-json"] +
                              [a for k, v in options.items() for a in ("-" + k.replace("_", "-"), str(v))],
                              input="".join(t + "\n" for t in texts), capture_output=True, text=True, check=True)
        lines = [json.loads(line) for line in proc.stdout.splitlines()]
        for text, line in zip(texts, lines, strict=True):
            ids = tok(text, return_tensors="pt")
            with torch.no_grad():
                # one input alone: no padding after EOS to cut
                seq = model.generate(**ids, do_sample=False, **options)[0].tolist()[1:]
            assert line["tokens"] == seq, (text, options)
