#!/usr/bin/env bash
# setup.sh prepares a fresh clone: it fetches the pinned ONNX Runtime shared
# library into .ort/lib, makes the exporter's Python environment in .venv and
# builds bin/gen. Each step is skipped when already done.
#
#   scripts/setup.sh            everything
#   scripts/setup.sh ort        only the ONNX Runtime library (enough to serve)
#   scripts/setup.sh python     only the Python environment
#   scripts/setup.sh go         only bin/gen
#   scripts/setup.sh fortunes   Debian's fortunes texts (test inputs and the test
#                               tokenizers' corpus; the tests' crosscheck reads them)
#   scripts/setup.sh bench      the benchmark's extra engines (CTranslate2) into .venv; not part of "everything"
#   scripts/setup.sh g2p-peers  Phonetisaurus and g2p_en (bench/requirements-g2p.txt) into build/venv-g2p,
#                               for bench/g2p_peers.py; not part of "everything"
set -euo pipefail

ORT_VERSION=1.30.0   # onnxruntime-node release; onnxruntime_go v1.27.0 needs 1.24+

root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"

log() { printf 'setup: %s\n' "$*" >&2; }

ort_sha256() {
	# sha256 of libonnxruntime.so.1 inside the onnxruntime-node tarball
	case "$1" in
	1.30.0/x64) echo ffb75a925ba05e47b235bb66e3e3911714a80b328a9c9425539feb204aa32a23 ;;
	1.30.0/arm64) echo 1f549d46250b005580b597f4164984aaf75b3bcb9f3aeb07c7f8a8fe60b23c76 ;;
	*) echo "" ;;
	esac
}

setup_ort() {
	local dest="$root/.ort/lib/libonnxruntime.so.1"
	local stamp="$root/.ort/VERSION"
	if [[ -f "$dest" && -f "$stamp" && "$(cat "$stamp")" == "$ORT_VERSION" ]]; then
		log "ONNX Runtime $ORT_VERSION already in .ort/lib"
		return
	fi
	case "$(uname -s)/$(uname -m)" in
	Linux/x86_64) arch=x64 ;;
	Linux/aarch64) arch=arm64 ;;
	*) log "no prebuilt ONNX Runtime for $(uname -s)/$(uname -m) in onnxruntime-node; set ONNXRUNTIME_LIB to your own libonnxruntime"; exit 1 ;;
	esac
	command -v npm >/dev/null || { log "npm is needed to fetch ONNX Runtime (apt-get install npm), or set ONNXRUNTIME_LIB"; exit 1; }
	local tmp
	tmp=$(mktemp -d)
	trap 'rm -rf "$tmp"' RETURN
	log "fetching onnxruntime-node@$ORT_VERSION with npm pack (no install scripts run)"
	(cd "$tmp" && npm pack --silent "onnxruntime-node@$ORT_VERSION" >/dev/null)
	tar -xzf "$tmp/onnxruntime-node-$ORT_VERSION.tgz" -C "$tmp" "package/bin/napi-v6/linux/$arch/libonnxruntime.so.1"
	local got want
	got=$(sha256sum "$tmp/package/bin/napi-v6/linux/$arch/libonnxruntime.so.1" | cut -d' ' -f1)
	want=$(ort_sha256 "$ORT_VERSION/$arch")
	if [[ -n "$want" && "$got" != "$want" ]]; then
		log "libonnxruntime.so.1 checksum $got is not the pinned $want; refusing it"
		exit 1
	fi
	mkdir -p "$root/.ort/lib"
	install -m 0755 "$tmp/package/bin/napi-v6/linux/$arch/libonnxruntime.so.1" "$dest"
	ln -sf libonnxruntime.so.1 "$root/.ort/lib/libonnxruntime.so"
	echo "$ORT_VERSION" >"$stamp"
	log "ONNX Runtime $ORT_VERSION in .ort/lib"
}

setup_python() {
	local venv="$root/.venv" req="$root/export/requirements.txt"
	local stamp="$venv/.s2s-requirements"
	if [[ -x "$venv/bin/python" && -f "$stamp" ]] && cmp -s "$req" "$stamp"; then
		log "Python environment .venv is up to date"
		return
	fi
	local py=${PYTHON:-python3}
	command -v "$py" >/dev/null || { log "python3 (3.10+) is needed for the exporter"; exit 1; }
	log "making .venv (PyTorch is large; pip's cache is reused on later runs)"
	"$py" -m venv "$venv"
	"$venv/bin/python" -m pip install --quiet --upgrade pip
	"$venv/bin/python" -m pip install --quiet -r "$req"
	"$venv/bin/python" -m pip install --quiet --no-deps -e "$root/export"
	cp "$req" "$stamp"
	log "Python environment in .venv"
}

setup_go() {
	command -v go >/dev/null || { log "Go 1.26+ is needed"; exit 1; }
	mkdir -p "$root/bin"
	go build -o "$root/bin/gen" ./cmd/gen
	log "built bin/gen"
}

setup_bench() {
	[[ -x "$root/.venv/bin/python" ]] || setup_python
	"$root/.venv/bin/python" -m pip install --quiet -r "$root/bench/requirements.txt"
	log "benchmark engines (bench/requirements.txt) in .venv"
}

setup_g2p_peers() {
	local venv="$root/build/venv-g2p" req="$root/bench/requirements-g2p.txt"
	local stamp="$venv/.s2s-requirements"
	if [[ -x "$venv/bin/python" && -f "$stamp" ]] && cmp -s "$req" "$stamp"; then
		log "G2P peers environment build/venv-g2p is up to date"
		return
	fi
	local py=${PYTHON:-python3}
	command -v "$py" >/dev/null || { log "python3 (3.10+) is needed for the G2P peers"; exit 1; }
	log "making build/venv-g2p (Phonetisaurus, g2p_en)"
	"$py" -m venv "$venv"
	"$venv/bin/python" -m pip install --quiet -r "$req"
	cp "$req" "$stamp"
	log "G2P peers in build/venv-g2p; run build/venv-g2p/bin/python bench/g2p_peers.py"
}

setup_fortunes() {
	if [[ -f /usr/share/games/fortunes/fortunes && -f /usr/share/games/fortunes/wisdom ]]; then
		log "fortunes texts already in /usr/share/games/fortunes"
		return
	fi
	command -v apt-get >/dev/null || { log "the fortunes texts come from Debian's packages fortunes and fortunes-min; install them with your package manager"; exit 1; }
	local sudo=""
	[[ $(id -u) -eq 0 ]] || sudo=sudo
	log "installing Debian's fortunes and fortunes-min"
	$sudo apt-get update -qq >/dev/null
	DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq fortunes fortunes-min >/dev/null
	log "fortunes texts in /usr/share/games/fortunes"
}

if [[ $# -eq 0 ]]; then
	set -- ort python go
fi
for step in "$@"; do
	case "$step" in
	ort) setup_ort ;;
	python) setup_python ;;
	go) setup_go ;;
	bench) setup_bench ;;
	g2p-peers) setup_g2p_peers ;;
	fortunes) setup_fortunes ;;
	*) log "unknown step $step; use ort, python, go, fortunes, bench or g2p-peers"; exit 2 ;;
	esac
done
