#!/usr/bin/env bash
# run.sh runs the benchmark harness (python -m bench) from the repository
# root with the project's .venv; arguments go to the harness:
#
#   bench/run.sh --quick        the plumbing on testdata/t5-tiny and g2p, a minute or two
#   bench/run.sh                opus-mt-en-de- and t5-small-shaped models and g2p, 64 tokens
#   bench/run.sh -h             every option
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"
py=${PYTHON:-$root/.venv/bin/python}
[[ -x "$py" ]] || { echo "bench: $py not found; run scripts/setup.sh python bench" >&2; exit 1; }
export HF_HUB_OFFLINE=1 TOKENIZERS_PARALLELISM=false
exec "$py" -m bench "$@"
