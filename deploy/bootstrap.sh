#!/usr/bin/env bash
# deploy/bootstrap.sh — install what moebus needs on a fresh Debian machine.
#
# Idempotent: packages already present are skipped and the FAISS C API is only
# rebuilt when its stamp is missing, so a second run takes seconds.
#
# Why build the FAISS C API ourselves: Debian's libfaiss-dev (1.7.3) ships the
# C API headers and libfaiss.a but not libfaiss_c. We fetch Debian's own
# `faiss` source package through apt (a private deb-src list, so the system's
# apt configuration is never touched) and compile c_api/*.cpp against the
# installed headers into .deps/lib/libfaiss_c.a. Nothing is downloaded from
# anywhere but Debian's archive.
#
# Usage: deploy/bootstrap.sh [--no-dev]   (--no-dev: skip test-only packages)
set -euo pipefail

here=$(cd "$(dirname "$0")/.." && pwd)
deps="$here/.deps"
want_dev=1
[ "${1:-}" = "--no-dev" ] && want_dev=0

runtime_pkgs=(build-essential cmake pkg-config
  libzmq3-dev libczmq-dev libsqlite3-dev libcurl4-openssl-dev
  libfaiss-dev libopenblas-dev liblapacke-dev libjansson-dev
  libutf8proc-dev libstemmer-dev zlib1g-dev libxml2-dev dpkg-dev procps
  dict-foldoc dict-jargon dict-gcide)
dev_pkgs=(libcmocka-dev python3 python3-zmq clang libclang-rt-14-dev valgrind poppler-utils)

sudo_cmd=()
[ "$(id -u)" -ne 0 ] && sudo_cmd=(sudo)

log() { printf 'bootstrap: %s\n' "$*" >&2; }

pkgs=("${runtime_pkgs[@]}")
[ $want_dev -eq 1 ] && pkgs+=("${dev_pkgs[@]}")

missing=()
for p in "${pkgs[@]}"; do
  if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed"; then
    missing+=("$p")
  fi
done
if [ ${#missing[@]} -gt 0 ]; then
  log "installing: ${missing[*]}"
  "${sudo_cmd[@]}" apt-get update -q
  DEBIAN_FRONTEND=noninteractive "${sudo_cmd[@]}" apt-get install -y -q --no-install-recommends "${missing[@]}"
else
  log "all Debian packages present"
fi

# ---- FAISS C API from Debian's faiss source package -----------------------
stamp="$deps/lib/libfaiss_c.a"
if [ -f "$stamp" ] && [ -f "$deps/.faiss_c.stamp" ]; then
  log "FAISS C API present ($stamp)"
  exit 0
fi

log "building the FAISS C API from Debian's faiss source package"
work="$deps/build/faiss-src"
apt_root="$deps/apt"
rm -rf "$work"
mkdir -p "$work" "$apt_root/lists/partial" "$apt_root/cache/archives/partial" "$apt_root/sources.list.d" "$deps/lib" "$deps/include"

# Private deb-src list: the same archive and suite the system uses for binaries.
suite=$(. /etc/os-release && echo "${VERSION_CODENAME:-bookworm}")
cat > "$apt_root/sources.list" <<LIST
deb-src http://deb.debian.org/debian $suite main
LIST
apt_opts=(-o "Dir::Etc::SourceList=$apt_root/sources.list"
          -o "Dir::Etc::SourceParts=$apt_root/sources.list.d"
          -o "Dir::State::Lists=$apt_root/lists"
          -o "Dir::Cache=$apt_root/cache"
          -o "Dir::Cache::pkgcache=" -o "Dir::Cache::srcpkgcache="
          -o "APT::Sandbox::User=root")
apt-get -q "${apt_opts[@]}" update >&2
# Match the installed binary version where the archive still has it.
ver=$(dpkg-query -W -f='${source:Version}' libfaiss-dev 2>/dev/null || true)
spec=faiss
[ -n "$ver" ] && spec="faiss=$ver"
(cd "$work" && { apt-get -q "${apt_opts[@]}" source "$spec" >&2 || apt-get -q "${apt_opts[@]}" source faiss >&2; })
src=$(find "$work" -mindepth 1 -maxdepth 1 -type d -name 'faiss-*' | head -n 1)
[ -d "$src/c_api" ] || { log "no c_api/ in $src"; exit 1; }

# Compile every C API translation unit except the GPU ones against the
# installed FAISS headers (the C API headers themselves come from the source
# tree, which is what Debian installed under /usr/include/faiss/c_api too).
objdir="$work/obj"
mkdir -p "$objdir"
jobs=$(nproc 2>/dev/null || echo 2)
find "$src/c_api" -name '*.cpp' ! -path '*/gpu/*' | while read -r f; do
  rel=${f#"$src/c_api/"}
  echo "$f $objdir/$(echo "$rel" | tr '/' '_').o"
done | xargs -P "$jobs" -n 2 sh -c \
  'g++ -std=c++17 -O2 -fPIC -fopenmp -c "$0" -o "$1"'
rm -f "$deps/lib/libfaiss_c.a"
ar rcs "$deps/lib/libfaiss_c.a" "$objdir"/*.o
# Headers: use the source tree's c_api headers so they match the library.
rm -rf "$deps/include/faiss"
mkdir -p "$deps/include/faiss"
(cd "$src" && find c_api -name '*.h' ! -path '*/gpu/*' -exec cp --parents {} "$deps/include/faiss/" \;)
echo "$spec" > "$deps/.faiss_c.stamp"
rm -rf "$work"
log "FAISS C API built: $deps/lib/libfaiss_c.a"
