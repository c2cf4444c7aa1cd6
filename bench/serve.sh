#!/usr/bin/env bash
# serve.sh measures gen serve on loopback with bench/load: requests/s and
# p50/p99 latency at 1, 8 and 32 concurrent clients, batching on and off,
# and prints a markdown table (and the load average, the machine being
# shared).
#
#   bench/serve.sh MODEL_DIR [SECONDS] [MAX_NEW_TOKENS] [INPUTS_FILE]
#
# The server runs 2 batches at once with 1 ONNX Runtime thread each (2
# cores); batching on merges requests that arrive within 5 ms, up to 64 rows.
# MODES picks the schedulers (continuous, continuous-nowait: every arrival
# joins at the next step, window, off), CLIENTS the client counts; JOIN
# passes flags to the continuous mode (JOIN="-join-wait-steps 16").
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"
model=${1:?usage: bench/serve.sh MODEL_DIR [SECONDS] [MAX_NEW_TOKENS] [INPUTS_FILE]}
secs=${2:-10}
maxnew=${3:-32}
inputs=${4:-}
go build -o bin/gen ./cmd/gen
go build -o bin/load ./bench/load
tmp=$(mktemp -d)
pid=""
cleanup() { [[ -n "$pid" ]] && kill "$pid" 2>/dev/null && wait "$pid" 2>/dev/null; rm -rf "$tmp"; }
trap cleanup EXIT

echo "model $model, $secs s per cell after 2 s warm-up, max_new_tokens $maxnew; load average at start: $(cut -d' ' -f1-3 /proc/loadavg)"
echo
if [[ -z "${MODES:-}" ]]; then
	MODES="window off"
	grep -q '"layout": *"inplace"' "$model/s2s.json" 2>/dev/null && MODES="continuous window off"
fi
echo "| scheduler | clients | req/s | p50 ms | p99 ms | failed |"
echo "|---|---|---|---|---|---|"
for mode in $MODES; do
	case $mode in
	continuous) flags=(-scheduler continuous -intra-op-threads 2 ${JOIN:+$JOIN}) ;;
	continuous-nowait) flags=(-scheduler continuous -intra-op-threads 2 -join-wait-steps 0) ;;
	window) flags=(-scheduler window -intra-op-threads 1 -max-batches 2 -batch-window 5ms) ;;
	off) flags=(-scheduler window -batching=false -intra-op-threads 1 -max-batches 2) ;;
	*) echo "serve.sh: mode $mode is unknown; use continuous, continuous-nowait, window or off" >&2; exit 2 ;;
	esac
	: >"$tmp/out"
	bin/gen serve -model "$model" -addr 127.0.0.1:0 "${flags[@]}" \
		-max-batch-rows 64 -max-queue 1024 -log-level warn >"$tmp/out" 2>"$tmp/log" &
	pid=$!
	for _ in $(seq 300); do grep -q '^listening on' "$tmp/out" && break; sleep 0.1; done
	addr=$(sed -n 's/^listening on //p' "$tmp/out")
	[[ -n "$addr" ]] || { cat "$tmp/log" >&2; exit 1; }
	for c in ${CLIENTS:-1 8 32}; do
		args=(-url "http://$addr" -route tgi -c "$c" -d "${secs}s" -warmup 2s -max-new-tokens "$maxnew" -json)
		[[ -n "$inputs" ]] && args+=(-inputs "$inputs")
		j=$(bin/load "${args[@]}" || true)
		python3 - "$j" "$mode" <<'PY'
import json, sys
r = json.loads(sys.argv[1])
print("| %s | %d | %.1f | %.0f | %.0f | %d |" % (sys.argv[2], r["clients"], r["rps"], r["p50_ms"], r["p99_ms"], r["failed"]))
PY
	done
	kill "$pid"; wait "$pid" 2>/dev/null || true; pid=""
done
echo
echo "load average at the end: $(cut -d' ' -f1-3 /proc/loadavg)"
