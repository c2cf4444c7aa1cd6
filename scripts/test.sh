#!/usr/bin/env bash
# test.sh runs every test: it sets up what the tests need (ONNX Runtime in
# .ort, the exporter's Python environment in .venv), then runs the Go tests
# (runtime, tokenizer parity, goldens against transformers, gen) and the
# exporter's Python tests. The Go tests need no Python: their fixtures are
# committed in testdata/ beside the scripts that made them.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"

scripts/setup.sh ort python go fortunes serve-tools

echo "== go vet"
go vet ./...
echo "== beamsearch, models and config build without cgo"
CGO_ENABLED=0 go build ./beamsearch/ ./models/
echo "== go test"
go test -count=1 ./...
echo "== gen serve's server under the race detector"
go test -count=1 -race ./server/
echo "== deploy manifests against the Kubernetes API types (module deploy/)"
(cd deploy && go test -count=1 ./...)
echo "== gen serve: playground in headless Chromium, rolling restart behind nginx"
scripts/playground_test.sh
scripts/scaleout_test.sh
echo "== exporter and benchmark-harness tests (pytest)"
.venv/bin/python -m pytest -q export/tests bench
