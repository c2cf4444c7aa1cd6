#!/usr/bin/env bash
# fuzz.sh runs every fuzz target for SECONDS seconds each (default 10):
#
#   scripts/fuzz.sh          # 10 s each: the smoke CI runs
#   scripts/fuzz.sh 600      # ten minutes each
#   FUZZ_ONLY=FuzzSearch scripts/fuzz.sh 300
#
# A failing input is written by Go into the target's package under
# testdata/fuzz/TARGET/ (Go's corpus layout); commit it as a regression
# seed: plain `go test` runs every seed there. The targets need no ONNX
# Runtime (the tokenizer, search, config and manifest paths).
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"
seconds=${1:-10}
# Workers: at most 2, as the machines this runs on are small and shared.
parallel=${FUZZ_PARALLEL:-2}

targets=(
	"./config FuzzFlags"
	"./config FuzzConfigFile"
	"./cmd/gen FuzzParseArgs"
	"./models FuzzManifest"
	"./models FuzzGenerationConfig"
	"./tokenizer FuzzLoad"
	"./tokenizer FuzzEncode"
	"./tokenizer FuzzStream"
	"./beamsearch FuzzSearch"
)
failed=0
flaked=0
for t in "${targets[@]}"; do
	read -r pkg name <<<"$t"
	if [[ -n "${FUZZ_ONLY:-}" && "$name" != "$FUZZ_ONLY" ]]; then
		continue
	fi
	echo "== $name ($pkg, ${seconds}s)"
	corpus="$pkg/testdata/fuzz/$name"
	before=$(ls "$corpus" 2>/dev/null | sort)
	out=$(mktemp)
	if ! go test -run '^$' -fuzz "^${name}\$" -fuzztime "${seconds}s" -parallel "$parallel" "$pkg" 2>&1 | tee "$out"; then
		after=$(ls "$corpus" 2>/dev/null | sort)
		# Go 1.26's fuzz coordinator can report its own -fuzztime deadline
		# as a failure ("context deadline exceeded", no input written;
		# golang/go#75804, fixed in Go 1.27). Only that exact case is let
		# through; a written input or any other failure fails the run.
		if [[ "$before" == "$after" ]] && grep -q '^    context deadline exceeded$' "$out" && ! grep -q 'panic\|Failing input' "$out"; then
			echo "fuzz.sh: $name: the fuzz coordinator's deadline race (golang/go#75804), no input failed; not counted" >&2
			flaked=$((flaked + 1))
		else
			echo "fuzz.sh: $name failed; its input is under $corpus/" >&2
			failed=$((failed + 1))
		fi
	fi
	rm -f "$out"
done
if ((flaked > 0)); then
	echo "fuzz.sh: $flaked target(s) hit golang/go#75804 (not failures)" >&2
fi
if ((failed > 0)); then
	echo "fuzz.sh: $failed target(s) failed" >&2
	exit 1
fi
