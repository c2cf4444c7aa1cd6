#!/usr/bin/env bash
# soak.sh runs 10,000 generations in one process over mixed options
# (greedy, beam search with n-best, sampling, streaming, batches), closing
# and opening the model again every 500, and prints resident memory, the Go
# heap and the goroutines every 1,000. It fails when, from generation
# 1,000 (the warm-up) to the end, resident memory grew more than 48 MB,
# the live Go heap more than 8 MB or the goroutines by more than 2.
#
#   scripts/soak.sh                               # testdata/t5-tiny, 10,000
#   scripts/soak.sh -model models/g2p-en -n 20000
#
# Extra arguments go to cmd/s2s-soak (-h lists them). It needs ONNX
# Runtime (scripts/setup.sh ort).
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"
go build -o bin/s2s-soak ./cmd/s2s-soak
exec bin/s2s-soak "$@"
