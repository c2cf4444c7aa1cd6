#!/usr/bin/env bash
# setup.sh prepares a fresh clone: it fetches the pinned ONNX Runtime shared
# library into .ort/lib, makes the exporter's Python environment in .venv and
# builds bin/gen. Each step is skipped when already done.
#
#   scripts/setup.sh            everything
#   scripts/setup.sh ort        only the ONNX Runtime library (enough to serve)
#   scripts/setup.sh ort-cuda   the CUDA build of ONNX Runtime with its CUDA 13 and cuDNN
#                               libraries into .ort/cuda/lib (x86-64, ~1.2 GB of wheels from
#                               PyPI); not part of "everything"
#   scripts/setup.sh python     only the Python environment
#   scripts/setup.sh go         only bin/gen
#   scripts/setup.sh fortunes   Debian's fortunes texts (test inputs and the test
#                               tokenizers' corpus; the tests' crosscheck reads them)
#   scripts/setup.sh bench      the benchmark's extra engines (CTranslate2) into .venv; not part of "everything"
#   scripts/setup.sh g2p-peers  Phonetisaurus and g2p_en (bench/requirements-g2p.txt) into build/venv-g2p,
#                               for bench/g2p_peers.py; not part of "everything"
#   scripts/setup.sh serve-tools  Debian's nginx, chromium and curl (gen serve's scale-out and playground tests)
#   scripts/setup.sh pins [VARIANT [ARCH]]
#                               print the files and sha256 sums the ort (cpu) or ort-cuda (cuda)
#                               step fetches and installs
#
# The ONNX Runtime versions, files and checksums come from
# runtime/ortinstall/pins.txt, the table `gen ort install` reads too.
set -euo pipefail

root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"
pins_file="$root/runtime/ortinstall/pins.txt"

log() { printf 'setup: %s\n' "$*" >&2; }

# pin_default VARIANT: the version fetched for VARIANT (cpu or cuda).
pin_default() {
	awk -v var="$1" '{ sub(/#.*/, "") } $1 == "default" && $2 == var { print $3 }' "$pins_file"
}

# pins VARIANT ARCH [VERSION]: the build's dist lines ("dist TOOL PACKAGE
# VERSION FILE SHA256"), then its file lines ("file FROM MEMBER NAME SHA256").
pins() {
	local variant=$1 arch=$2 version=${3:-}
	[[ -n "$version" ]] || version=$(pin_default "$variant")
	awk -v ver="$version" -v var="$variant" -v arch="$arch" '
		{ sub(/#.*/, "") }
		($1 == "dist" || $1 == "file") && $2 == ver && $3 == var && $4 == arch {
			line = $1
			for (i = 5; i <= NF; i++) line = line " " $i
			print line
		}' "$pins_file" | sort -s -k1,1
}

# host_arch prints the pin table's name of this machine's architecture.
host_arch() {
	case "$(uname -s)/$(uname -m)" in
	Linux/x86_64) echo x64 ;;
	Linux/aarch64) echo arm64 ;;
	*) log "no prebuilt ONNX Runtime is pinned for $(uname -s)/$(uname -m); set ONNXRUNTIME_LIB to your own libonnxruntime.so.1"; return 1 ;;
	esac
}

# check_sum FILE SHA256 NAME: refuse FILE unless it has the pinned sha256.
check_sum() {
	local got
	got=$(sha256sum "$1" | cut -d' ' -f1)
	if [[ "$got" != "$2" ]]; then
		log "$3 has sha256 $got, not the pinned $2; refusing it (a changed or corrupted download: run again, and if it persists report it)"
		exit 1
	fi
}

# extract ARCHIVE MEMBER OUT: copy one member of a .tgz or a .whl to OUT.
extract() {
	case "$1" in
	*.tgz) tar -xzOf "$1" "$2" >"$3" ;;
	*.whl) "${PYTHON:-python3}" -c 'import shutil, sys, zipfile
with zipfile.ZipFile(sys.argv[1]) as z, z.open(sys.argv[2]) as src, open(sys.argv[3], "wb") as dst:
    shutil.copyfileobj(src, dst)' "$1" "$2" "$3" ;;
	*) log "$1 is neither a .tgz nor a .whl"; exit 1 ;;
	esac
	chmod 0755 "$3"
}

# install_build VARIANT DEST STAMP: fetch the pinned build of VARIANT, check
# every file, and replace DEST (a lib directory) with it in one rename.
install_build() {
	local variant=$1 dest=$2 stamp=$3
	local arch version rows
	arch=$(host_arch)
	version=$(pin_default "$variant")
	if [[ -f "$dest/libonnxruntime.so.1" && -f "$stamp" && "$(cat "$stamp")" == "$version" ]]; then
		log "ONNX Runtime $version ($variant) already in ${dest#"$root"/}"
		return
	fi
	rows=$(pins "$variant" "$arch" "$version")
	if [[ -z "$rows" ]]; then
		log "no $variant build of ONNX Runtime $version is pinned for $arch; set ONNXRUNTIME_LIB to your own libonnxruntime.so.1"
		exit 1
	fi
	mkdir -p "$(dirname "$dest")"
	local tmp
	tmp=$(mktemp -d "$(dirname "$dest")/.setup-XXXXXX")
	# shellcheck disable=SC2064
	trap "rm -rf '$tmp'" RETURN EXIT
	mkdir "$tmp/download" "$tmp/lib"
	local kind tool pkg pver file sha wheels=() req="$tmp/requirements.txt"
	while read -r kind tool pkg pver file sha; do
		case "$tool" in
		npm)
			command -v npm >/dev/null || { log "npm is needed to fetch ONNX Runtime (apt-get install npm), or set ONNXRUNTIME_LIB"; exit 1; }
			log "fetching $pkg@$pver with npm pack (no install scripts run)"
			(cd "$tmp/download" && npm pack --silent "$pkg@$pver" >/dev/null)
			;;
		pip)
			wheels+=("$file")
			echo "$pkg==$pver --hash=sha256:$sha" >>"$req"
			;;
		esac
	done < <(grep '^dist ' <<<"$rows")
	if [[ ${#wheels[@]} -gt 0 ]]; then
		local py=${PYTHON:-python3}
		"$py" -m pip --version >/dev/null 2>&1 || { log "pip is needed to fetch the CUDA build ($py -m pip; apt-get install python3-pip), or set ONNXRUNTIME_LIB"; exit 1; }
		# The platform and CPython tags of the pinned files, so that pip picks
		# exactly them whatever Python runs it.
		local flags=() w base plat tag pytag="" seen=" "
		for w in "${wheels[@]}"; do
			base=${w%.whl}
			plat=${base##*-}
			for tag in ${plat//./ }; do
				[[ "$seen" == *" $tag "* ]] || { flags+=(--platform "$tag"); seen+="$tag "; }
			done
			tag=$(cut -d- -f3 <<<"$base")
			[[ -n "$pytag" || "$tag" != cp3* ]] || pytag=$tag
		done
		[[ -z "$pytag" ]] || flags+=(--python-version "3.${pytag#cp3}" --implementation cp --abi "$pytag")
		log "fetching ${#wheels[@]} wheels with pip download --no-deps (nothing is installed)"
		"$py" -m pip download --progress-bar off --no-deps --only-binary=:all: --require-hashes --disable-pip-version-check \
			-d "$tmp/download" -r "$req" "${flags[@]}"
	fi
	while read -r kind tool pkg pver file sha; do
		check_sum "$tmp/download/$file" "$sha" "$file"
	done < <(grep '^dist ' <<<"$rows")
	local from member name
	while read -r kind from member name sha; do
		extract "$tmp/download/$from" "$member" "$tmp/lib/$name"
		check_sum "$tmp/lib/$name" "$sha" "$from:$member"
	done < <(grep '^file ' <<<"$rows")
	ln -s libonnxruntime.so.1 "$tmp/lib/libonnxruntime.so"
	rm -rf "$tmp/download"
	# The new directory replaces the old one by rename: a half-written
	# download never becomes the library.
	if [[ -e "$dest" ]]; then
		mv "$dest" "$tmp/old"
	fi
	mv "$tmp/lib" "$dest"
	echo "$version" >"$stamp"
	log "ONNX Runtime $version ($variant) in ${dest#"$root"/} ($(du -sh "$dest" | cut -f1))"
}

setup_ort() { install_build cpu "$root/.ort/lib" "$root/.ort/VERSION"; }

setup_ort_cuda() {
	install_build cuda "$root/.ort/cuda/lib" "$root/.ort/cuda/VERSION"
	log "gen -provider cuda (or S2S_PROVIDER=cuda) loads .ort/cuda/lib; it needs an NVIDIA driver for CUDA 13 (R580 or newer)"
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

setup_serve_tools() {
	if command -v nginx >/dev/null && command -v chromium >/dev/null && command -v curl >/dev/null; then
		log "nginx, chromium and curl already installed"
		return
	fi
	command -v apt-get >/dev/null || { log "gen serve's tests need nginx, chromium and curl; install them with your package manager"; exit 1; }
	local sudo=""
	[[ $(id -u) -eq 0 ]] || sudo=sudo
	log "installing Debian's nginx, chromium and curl (nginx is run unprivileged by the tests, never as a service)"
	$sudo apt-get update -qq >/dev/null
	DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends nginx chromium curl >/dev/null
	log "nginx, chromium and curl installed"
}

if [[ $# -eq 0 ]]; then
	set -- ort python go
fi
for step in "$@"; do
	case "$step" in
	ort) setup_ort ;;
	ort-cuda) setup_ort_cuda ;;
	pins)
		shift
		pins "${1:-cpu}" "${2:-$(host_arch)}"
		exit 0
		;;
	python) setup_python ;;
	go) setup_go ;;
	bench) setup_bench ;;
	g2p-peers) setup_g2p_peers ;;
	fortunes) setup_fortunes ;;
	serve-tools) setup_serve_tools ;;
	*) log "unknown step $step; use ort, ort-cuda, python, go, fortunes, serve-tools, bench, g2p-peers or pins"; exit 2 ;;
	esac
done
