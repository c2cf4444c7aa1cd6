#!/usr/bin/env bash
# make_testdata.sh regenerates everything under testdata/ except
# testdata/tokenizer/ (the Go tokenizer's own goldens), reproducibly from seeds:
#
#   testdata/tokenizers/{t5,bart,marian}/  test tokenizers trained on Debian's fortunes
#   testdata/{t5,bart,marian}-tiny/        tiny random-weight models exported by `s2s_export hf --layout optimum`
#   testdata/{t5,bart,marian}-tiny-inplace/ the same checkpoints in the inplace layout (`--layout inplace`)
#   testdata/{t5,bart,marian}-tiny.onnx    the Optimum-layout models packed into one file by `s2s_export pack`
#   testdata/goldens/{greedy,beam}-*.jsonl transformers' generate() outputs for them
#
# The PyTorch checkpoints are made in a temporary directory and removed.
# Needs the Python environment (scripts/setup.sh python) and the fortunes
# texts (apt-get install fortunes fortunes-min; Debian 12's 1:1.99.1-7.3
# gave the committed files).
#
#   testdata/make_testdata.sh                 everything
#   testdata/make_testdata.sh models          keep the tokenizers, remake models and goldens
#   SEED=5 testdata/make_testdata.sh models   other weights
#   testdata/make_testdata.sh pack            keep the directories; pack them again
set -euo pipefail

root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"
py=${PYTHON:-$root/.venv/bin/python}
seed=${SEED:-2}
families=(t5 bart marian)
what=${1:-all}
case "$what" in
all | models | pack) ;;
*) echo "make_testdata: unknown step $what; use all, models or pack" >&2; exit 2 ;;
esac

[[ -x "$py" ]] || { echo "make_testdata: $py not found; run scripts/setup.sh python or set PYTHON" >&2; exit 1; }
export HF_HUB_OFFLINE=1 TOKENIZERS_PARALLELISM=false PYTHONHASHSEED=0

# pack writes testdata/<family>-tiny.onnx from the directory (deterministic:
# the same directory gives the same bytes).
pack() {
	"$py" -m s2s_export pack "testdata/$1-tiny" "testdata/$1-tiny.onnx" --force
}
if [[ "$what" == pack ]]; then
	for f in "${families[@]}"; do pack "$f"; done
	exit 0
fi

tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT

if [[ "$what" == all ]]; then
	echo "make_testdata: training tokenizers" >&2
	"$py" -m s2s_export tiny-tokenizers "$tmp/tokenizers"
	rm -rf testdata/tokenizers
	mv "$tmp/tokenizers" testdata/tokenizers
fi

mkdir -p testdata/goldens
for f in "${families[@]}"; do
	echo "make_testdata: $f (seed $seed)" >&2
	"$py" -m s2s_export tiny "$f" "$tmp/ckpt-$f" --seed "$seed" | tee "$tmp/summary-$f.json"
	"$py" -m s2s_export hf "$tmp/ckpt-$f" "testdata/$f-tiny" --force --layout optimum
	# atol 2e-4: the tiny T5's shaped weights make one row of the inplace
	# self-check 1.4e-4 off PyTorch; Optimum's graphs are 1.6e-4 off on it.
	"$py" -m s2s_export hf "$tmp/ckpt-$f" "testdata/$f-tiny-inplace" --force --layout inplace --atol 2e-4
	"$py" -m s2s_export goldens "$tmp/ckpt-$f" "testdata/$f-tiny" testdata/goldens
	pack "$f"
done
"$py" - "$tmp" "${families[@]}" >testdata/tiny-models.json <<'PY'
import json, sys
tmp, families = sys.argv[1], sys.argv[2:]
print(json.dumps([json.load(open(f"{tmp}/summary-{f}.json")) for f in families], indent=1))
PY
du -sh testdata/*-tiny testdata/*-tiny-inplace testdata/*-tiny.onnx testdata/tokenizers/* testdata/goldens >&2
