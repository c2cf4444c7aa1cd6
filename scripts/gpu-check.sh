#!/usr/bin/env bash
# gpu-check.sh checks the CUDA path on a machine with an NVIDIA GPU, from a
# fresh clone: it sets up the CUDA build of ONNX Runtime (setup.sh ort-cuda),
# runs the goldens through -provider cuda against the CPU provider (the same
# tokens at greedy and beam search, scores within 1e-3), and benchmarks the
# Marian- and T5-shaped models on CUDA: the Go host against Optimum on
# onnxruntime-gpu's CUDA provider and CTranslate2's CUDA build, in one table.
#
#   scripts/gpu-check.sh               everything (aimed at under 5 minutes; most of it is downloads)
#   scripts/gpu-check.sh --no-bench    the setup and the goldens only
#
# It needs an NVIDIA driver for CUDA 13 (R580 or newer), Go, npm, Python 3.11+
# with pip, and the package registries (npm, PyPI, the Go module proxy). It
# writes .ort/cuda/lib, .venv (setup.sh python bench) and .venv-gpu (.venv
# plus onnxruntime-gpu), all git-ignored, and the results under
# ${GPU_CHECK_OUT:-gpu-check-out}.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"
bench=1
[[ "${1:-}" == "--no-bench" ]] && bench=0
out=${GPU_CHECK_OUT:-$root/gpu-check-out}
mkdir -p "$out"
start=$SECONDS
step() { printf '\n== %s (at %ds)\n' "$*" $((SECONDS - start)) >&2; }
fail() { printf 'gpu-check: %s\n' "$*" >&2; exit 1; }

step "the GPU"
command -v nvidia-smi >/dev/null || fail "no nvidia-smi: this machine has no NVIDIA driver"
nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv,noheader | tee "$out/gpu.txt"

step "ONNX Runtime: the CPU library (.ort/lib) and the CUDA build (.ort/cuda/lib); bin/gen"
scripts/setup.sh ort ort-cuda go

step "gen doctor -provider cuda"
bin/gen doctor -provider cuda -model testdata/t5-tiny | tee "$out/doctor.txt" || fail "the CUDA provider is not usable here; see gen doctor's output above"

step "goldens: -provider cuda against the CPU provider of the same library"
# auto: the merged decoder graph on the CPU, the split pair on CUDA; then
# the merged graph on both, the choice the benchmark weighs.
status=0
for graphs in auto merged; do
	go run ./scripts/gpucheck -ort-lib .ort/cuda/lib -decoder-graphs "$graphs" | tee "$out/goldens-$graphs.txt" || status=1
done

if [[ $bench -eq 0 ]]; then
	step "done in $((SECONDS - start)) s (no benchmark); results in ${out#"$root"/}"
	exit $status
fi

step "Python: .venv (the exporter, CTranslate2) and .venv-gpu (.venv with onnxruntime-gpu)"
scripts/setup.sh python bench
ort_version=$(scripts/setup.sh pins cuda x64 | awk '$1 == "dist" && $3 == "onnxruntime-gpu" { print $4 }')
if [[ ! -x .venv-gpu/bin/python ]] || ! .venv-gpu/bin/python -c 'import onnxruntime as o, sys; sys.exit("CUDAExecutionProvider" not in o.get_available_providers())' 2>/dev/null; then
	.venv/bin/python -m venv .venv-gpu
	# .venv-gpu sees .venv's packages after its own: its onnxruntime-gpu
	# shadows .venv's CPU onnxruntime, nothing else is installed twice.
	site=$(.venv/bin/python -c 'import sysconfig; print(sysconfig.get_paths()["purelib"])')
	gsite=$(.venv-gpu/bin/python -c 'import sysconfig; print(sysconfig.get_paths()["purelib"])')
	echo "$site" >"$gsite/s2s-venv.pth"
	.venv-gpu/bin/python -m pip install --quiet --disable-pip-version-check --no-deps "onnxruntime-gpu==$ort_version"
fi

step "benchmark: Marian and T5 shapes on CUDA"
common=(--provider cuda --models marian,t5 --tokens 64 --inputs 4 --batch 16 --reps 2 --threads 2,1)
PYTHON=$root/.venv-gpu/bin/python bench/run.sh "${common[@]}" --decoder-graphs split \
	--engines go,optimum,optimum-iobinding,ct2-float32 --json "$out/bench-split.json" >"$out/bench-split.txt" || status=1
PYTHON=$root/.venv-gpu/bin/python bench/run.sh "${common[@]}" --decoder-graphs merged \
	--engines go,optimum-iobinding --json "$out/bench-merged.json" >"$out/bench-merged.txt" || status=1
.venv-gpu/bin/python - "$out" <<'EOF'
import json, sys
from pathlib import Path
from bench.__main__ import table
out = Path(sys.argv[1])
rows = []
for graphs in ("split", "merged"):
    for r in json.loads((out / f"bench-{graphs}.json").read_text()):
        r["engine"] = f"{r['engine']} ({graphs})"
        rows.append(r)
print(table(rows))
print("\nCUDA; 4 inputs at batch 1, 16 at batch 16; 64 forced tokens; 2 reps; tok/s, latencies and peak RSS as in docs/performance.md")
EOF
step "done in $((SECONDS - start)) s; results in ${out#"$root"/}"
[[ $status -eq 0 ]] || fail "a check failed: see the goldens' tables and the rows marked (!)"
