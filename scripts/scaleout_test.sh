#!/usr/bin/env bash
# scaleout_test.sh: three gen serve replicas on loopback behind nginx
# (Debian's package, run unprivileged with its own prefix and config), a
# steady load from bench/load through nginx, and a rolling restart:
# SIGTERM each replica in turn (it drains and must exit 0), start it again
# on its port, wait until it is ready. Passes when no request failed.
#
#   scripts/scaleout_test.sh [MODEL_DIR]     (default models/g2p-en; ~40 s)
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"
model=${1:-models/g2p-en}
nginx=$(command -v nginx || true)
[[ -n "$nginx" ]] || { echo "scaleout: nginx not found; run scripts/setup.sh serve-tools" >&2; exit 1; }
command -v curl >/dev/null || { echo "scaleout: curl not found; run scripts/setup.sh serve-tools" >&2; exit 1; }

tmp=$(mktemp -d)
chmod 755 "$tmp"
pids=()
cleanup() {
	for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
	for p in "${pids[@]}"; do wait "$p" 2>/dev/null || true; done
	rm -rf "$tmp"
}
trap cleanup EXIT
log() { printf 'scaleout: %s\n' "$*" >&2; }

go build -o bin/gen ./cmd/gen
go build -o bin/load ./bench/load

# free_port asks the kernel for a loopback port no one holds.
free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'; }

declare -A rpid rport
start_replica() {
	local i=$1
	bin/gen serve -model "$model" -addr "127.0.0.1:${rport[$i]}" -intra-op-threads 1 -drain-timeout 20s \
		-log-format json >>"$tmp/replica$i.out" 2>>"$tmp/replica$i.log" &
	rpid[$i]=$!
	pids+=("${rpid[$i]}")
	for _ in $(seq 200); do
		if curl -fsS -o /dev/null "http://127.0.0.1:${rport[$i]}/v2/health/ready" 2>/dev/null; then return 0; fi
		sleep 0.05
	done
	log "replica $i did not become ready:"; cat "$tmp/replica$i.log" >&2; exit 1
}
for i in 1 2 3; do rport[$i]=$(free_port); start_replica "$i"; done
lb=$(free_port)

mkdir -p "$tmp/nginx/logs"
cat >"$tmp/nginx/nginx.conf" <<CONF
worker_processes 1;
daemon off;
pid $tmp/nginx/nginx.pid;
error_log $tmp/nginx/logs/error.log warn;
events { worker_connections 512; }
http {
    access_log $tmp/nginx/logs/access.log;
    client_body_temp_path $tmp/nginx/body;
    proxy_temp_path $tmp/nginx/proxy;
    fastcgi_temp_path $tmp/nginx/fastcgi;
    uwsgi_temp_path $tmp/nginx/uwsgi;
    scgi_temp_path $tmp/nginx/scgi;
    upstream gen {
        server 127.0.0.1:${rport[1]} max_fails=1 fail_timeout=1s;
        server 127.0.0.1:${rport[2]} max_fails=1 fail_timeout=1s;
        server 127.0.0.1:${rport[3]} max_fails=1 fail_timeout=1s;
        keepalive 16;
    }
    server {
        listen 127.0.0.1:$lb;
        location / {
            proxy_pass http://gen;
            proxy_http_version 1.1;
            proxy_set_header Connection "";
            proxy_set_header X-Request-Id \$request_id;
            # A draining replica answers 503 before any work, and a
            # stopped one refuses the connection: both are safe to retry.
            proxy_next_upstream error timeout http_503 non_idempotent;
            proxy_next_upstream_tries 3;
            proxy_buffering off;
            proxy_read_timeout 60s;
        }
    }
}
CONF
run_nginx=("$nginx" -p "$tmp/nginx" -c "$tmp/nginx/nginx.conf" -e "$tmp/nginx/logs/error.log")
if [[ $(id -u) -eq 0 ]]; then # never as root: as nobody, with its own files
	chown -R nobody "$tmp/nginx"
	run_nginx=(setpriv --reuid=nobody --regid=nogroup --clear-groups "${run_nginx[@]}")
fi
"${run_nginx[@]}" &
pids+=($!)
for _ in $(seq 100); do curl -fsS -o /dev/null "http://127.0.0.1:$lb/v2/health/ready" 2>/dev/null && break; sleep 0.05; done
curl -fsS -o /dev/null "http://127.0.0.1:$lb/v2/health/ready" || { log "nginx did not start:"; cat "$tmp/nginx/logs/error.log" >&2; exit 1; }
log "3 replicas on ports ${rport[1]} ${rport[2]} ${rport[3]}, nginx on $lb"

duration=${SCALEOUT_SECONDS:-30}
bin/load -url "http://127.0.0.1:$lb" -route tgi -c 6 -d "${duration}s" -max-new-tokens 24 >"$tmp/load-tgi" 2>&1 &
load1=$!
bin/load -url "http://127.0.0.1:$lb" -route tgi-stream -c 2 -d "${duration}s" -max-new-tokens 24 >"$tmp/load-stream" 2>&1 &
load2=$!
pids+=("$load1" "$load2")

sleep 3
restart_failed=0
for i in 1 2 3; do
	began=$(date +%s%N)
	kill -TERM "${rpid[$i]}"
	if ! wait "${rpid[$i]}"; then
		log "replica $i exited non-zero after SIGTERM"; restart_failed=1
	fi
	start_replica "$i"
	log "replica $i: drained, exited 0, back and ready in $((($(date +%s%N) - began) / 1000000)) ms"
	sleep 2
done

status=0
wait "$load1" || status=1
wait "$load2" || status=1
cat "$tmp/load-tgi" "$tmp/load-stream"
served=$(grep -h '"msg":"request"' "$tmp"/replica*.log | grep -c '"outcome":"ok"' || true)
refused=$(grep -h '"msg":"request"' "$tmp"/replica*.log | grep -c '"outcome":"unavailable"' || true)
log "replicas answered $served requests; $refused were refused while draining (and retried by nginx)"
if [[ $status -ne 0 || $restart_failed -ne 0 ]]; then
	log "FAIL: requests failed during the rolling restart"
	tail -20 "$tmp/nginx/logs/error.log" >&2 || true
	exit 1
fi
log "ok: rolling restart of 3 replicas under load, zero failed requests"
