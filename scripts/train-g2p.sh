#!/usr/bin/env bash
# train-g2p.sh trains the shipped G2P model from scratch, the way it was made
# (docs/g2p.md, "The shipped model"): two members, each a seeded g2p-train run,
# then their ensemble with float16 weights, its self-check, the reference
# decodes the Go parity test reads, and the packed single file.
#
#   scripts/train-g2p.sh [OUT_DIR]     default models/g2p-en (and models/g2p-en.onnx)
#
# Each member's run is resumable: run the script again after a stop and every
# member continues from its checkpoint under build/g2p-train/ (a finished
# member is exported again without training). Set THREADS_E / THREADS_H to
# change a member's threads: that is another run with other weights.
# BUILD (default build) holds the members; G2P_TRAIN_ARGS is added to both
# members' g2p-train flags (the smoke test trains tiny members with it).
set -euo pipefail
cd "$(dirname "$0")/.."
OUT=${1:-models/g2p-en}
PY=${PY:-.venv/bin/python}
[[ -x $PY ]] || { echo "train-g2p: $PY is missing; run scripts/setup.sh python first" >&2; exit 1; }
BUILD=${BUILD:-build}
mkdir -p "$BUILD/g2p-train"
read -r -a extra <<<"${G2P_TRAIN_ARGS:-}"

# member NAME ARGS...: one g2p-train run into $BUILD/g2p-member-NAME, resumed
# from its checkpoint when one exists.
member() {
	local name=$1
	shift
	local dir=$BUILD/g2p-member-$name ck=$BUILD/g2p-train/g2p-member-$name.pt resume=()
	[[ -f $ck ]] && resume=(--resume)
	echo "train-g2p: member $name: g2p-train $dir $* ${resume[*]}"
	"$PY" -m s2s_export g2p-train "$dir" --checkpoint "$ck" --force "${resume[@]}" "$@" "${extra[@]}"
}

# E: the cosine recipe with label smoothing 0.1, one thread (118 minutes here).
member e --threads "${THREADS_E:-1}"
# H: the same recipe without label smoothing, two threads, 40 epochs (about 65 minutes).
member h --threads "${THREADS_H:-2}" --label-smoothing 0 --epochs 40

"$PY" -m s2s_export g2p-ensemble "$OUT" "$BUILD/g2p-member-e" "$BUILD/g2p-member-h" --float16 --force
"$PY" -m s2s_export g2p-reference "$OUT"
"$PY" -m s2s_export pack "$OUT" "${OUT%/}.onnx" --force
echo "train-g2p: wrote $OUT and ${OUT%/}.onnx; score it with: go run ./cmd/g2p-eval -model $OUT -beams 1,2,5,10 -oracle 5"
