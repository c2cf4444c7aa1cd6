#!/usr/bin/env bash
# playground_test.sh loads gen serve's playground (GET /) in headless
# Chromium (Debian's chromium), lets it stream one generation from
# /generate_stream into the page, and checks the page's output and status;
# with --screenshot it also writes docs/playground.png.
#
#   scripts/playground_test.sh [--screenshot]
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"
shot=0
[[ "${1:-}" == "--screenshot" ]] && shot=1
browser=$(command -v chromium || command -v chromium-browser || true)
[[ -n "$browser" ]] || { echo "playground: chromium not found; run scripts/setup.sh serve-tools" >&2; exit 1; }

tmp=$(mktemp -d)
pid=""
cleanup() {
	[[ -n "$pid" ]] && kill "$pid" 2>/dev/null && wait "$pid" 2>/dev/null
	rm -rf "$tmp"
}
trap cleanup EXIT
go build -o bin/gen ./cmd/gen
bin/gen serve -model models/g2p-en -addr 127.0.0.1:0 -intra-op-threads 1 >"$tmp/out" 2>"$tmp/log" &
pid=$!
for _ in $(seq 100); do grep -q '^listening on' "$tmp/out" && break; sleep 0.1; done
addr=$(sed -n 's/^listening on //p' "$tmp/out")
[[ -n "$addr" ]] || { echo "playground: gen serve did not start:" >&2; cat "$tmp/log" >&2; exit 1; }

url="http://$addr/?text=internationalization&run=1"
chrome=("$browser" --headless --no-sandbox --disable-gpu --user-data-dir="$tmp/profile" --hide-scrollbars
	--window-size=1100,620 --virtual-time-budget=10000)
dom=$(timeout 60 "${chrome[@]}" --dump-dom "$url" 2>/dev/null)
# What the page must show is what the CLI gives for the same model and word.
want=$(bin/gen -model models/g2p-en -intra-op-threads 1 internationalization)
output=$(grep -o '<div id="output">[^<]*</div>' <<<"$dom" | sed 's/<[^>]*>//g')
status=$(grep -o '<div id="status"[^>]*>[^<]*</div>' <<<"$dom" | sed 's/<[^>]*>//g')
if [[ "$output" != "$want" || "$status" != *"tokens"*"eos_token"* ]]; then
	echo "playground: FAIL: the page shows output '$output', status '$status'; want '$want' and a finished status" >&2
	exit 1
fi
if ! grep -q '"route":"POST /generate_stream"\|route="POST /generate_stream"' "$tmp/log"; then
	echo "playground: FAIL: the page did not stream through /generate_stream" >&2
	exit 1
fi
if [[ $shot == 1 ]]; then
	timeout 60 "${chrome[@]}" --screenshot="$root/docs/playground.png" "$url" >/dev/null 2>&1
	echo "playground: wrote docs/playground.png"
fi
echo "playground: ok: headless Chromium streamed '$output' ($status)"
