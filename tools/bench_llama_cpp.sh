#!/bin/sh
# polyq and llama.cpp side by side on the same GGUF weights, the same machine, in one run:
#
#   tools/bench_llama_cpp.sh [SHAPE:FORMAT ...]     (default gpt2-124m:fp32 gpt2-124m:q8_0
#                                                    gpt2-124m:q4_0 gpt2-124m:q4_k
#                                                    llama-1.1b:fp32 llama-1.1b:q4_0)
#
# Each SHAPE is one of polyq-bench's random-weight shapes (gpt2-124m, llama-1.1b), given the
# real tokenizer of its family from ../shared (GPT-2's, Llama-2's) and written by
# `polyq quantize --quant FORMAT` as a GGUF file; both programs then read that one file.
# Printed, per row:
#   - one thread, tokens per CPU-second: polyq-bench on FLORES-like sentences (--threads 1;
#     every token's logits) against llama-bench pp512 (-t 1; the last token's logits only);
#   - one thread, 512-token sequences with every token's logits: polyq-bench --seq-len 512
#     against llama-perplexity -c 512 (which asks for all logits of each chunk: 512 tokens over
#     the seconds per pass it prints);
#   - all cores, wall tokens/s: polyq-bench against llama-bench pp512 -t NPROC.
# A quantized file gets two rows: polyq computing its blocks in weight-only semantics
# (activations in f32) and in llama.cpp's numerics (--quant fp32-llamacpp: activations
# quantized per block, integer dot products), each against the same llama.cpp numbers.
# llama.cpp is built natively (GGML_NATIVE=ON: its best kernels on this CPU) from the
# llama-cpp-python sdist into WORKDIR (default ~/.cache/polyq/llama.cpp-native), never into the
# repository. Under GCC 12 llama.cpp's AMX path needs a compiler barrier before
# _tile_loadconfig; on a CPU with AMX, pass -nr or build with another compiler (LLAMA_CC).
# Needs: cmake, ninja, python3 with pip (for the sdist), make (polyq).
set -eu
root=$(cd "$(dirname "$0")/.." && pwd)
shared=${POLYQ_SHARED:-$root/../shared}
work=${WORKDIR:-${XDG_CACHE_HOME:-$HOME/.cache}/polyq/llama.cpp-native}
version=${LLAMA_CPP_PYTHON_VERSION:-0.3.36}
rows=${*:-"gpt2-124m:fp32 gpt2-124m:q8_0 gpt2-124m:q4_0 gpt2-124m:q4_k llama-1.1b:fp32 llama-1.1b:q4_0"}
nproc=$(nproc)

mkdir -p "$work"
if [ ! -x "$work/build/bin/llama-bench" ] || [ ! -x "$work/build/bin/llama-perplexity" ]; then
    (cd "$work" && if [ ! -d "llama_cpp_python-$version" ]; then
        "${PYTHON:-python3}" -m pip download --no-binary :all: --no-deps \
            "llama-cpp-python==$version" -d . >&2
        tar xzf "llama_cpp_python-$version.tar.gz"
    fi)
    cmake -S "$work/llama_cpp_python-$version/vendor/llama.cpp" -B "$work/build" -G Ninja \
        -DCMAKE_BUILD_TYPE=Release -DGGML_NATIVE=ON -DLLAMA_CURL=OFF -DLLAMA_BUILD_TESTS=OFF \
        -DLLAMA_BUILD_EXAMPLES=OFF -DLLAMA_BUILD_SERVER=OFF -DLLAMA_BUILD_TOOLS=ON \
        -DBUILD_SHARED_LIBS=OFF ${LLAMA_CC:+-DCMAKE_C_COMPILER=$LLAMA_CC} >&2
    cmake --build "$work/build" -j "$nproc" --target llama-bench llama-perplexity >&2
fi
bin=$work/build/bin
cd "$root"
make -s build/polyq build/polyq-bench >&2

# text for llama-perplexity: English FLORES devtest, enough for two 512-token chunks
text=$work/flores-eng.txt
cat "$shared/data/flores200/devtest/eng_Latn.devtest" > "$text"

# the shape's random-weight folder, with its family's tokenizer, as a GGUF file of FORMAT
gguf_of() { # shape format -> prints the path
    shape=$1 fmt=$2 dir=build/bench-models/$1-F32
    # writes the folder once (and times one sentence)
    build/polyq-bench --shape "$shape" --tokens 1 --reps 1 --ref-tokens 0 > /dev/null
    case $shape in
    gpt2-*)
        cp "$shared/data/tokenizers/gpt2/encoder.json" "$dir/vocab.json"
        cp "$shared/data/tokenizers/gpt2/vocab.bpe" "$dir/merges.txt" ;;
    llama-*)
        cp "$shared/data/tokenizers/Llama-2-7b-hf/tokenizer.model" "$dir/tokenizer.model" ;;
    esac
    out=$work/$shape-$fmt.gguf
    [ -s "$out" ] || build/polyq quantize "$dir" --quant "$fmt" --out "$out" >&2
    echo "$out"
}

# a column of polyq-bench's row (| separated, 1-based after the leading bar)
col() { awk -F'|' -v c="$1" 'NF > 3 { gsub(/ /, "", $(c + 1)); print $(c + 1) }'; }

ratio() { awk -v a="$1" -v b="$2" 'BEGIN { if (b > 0) printf "%.2f", a / b; else print "-" }'; }

llama_pp() { # file threads -> pp512 tokens/s (mean of 3)
    "$bin/llama-bench" -m "$1" -p 512 -n 0 -t "$2" -r 3 -o json 2> /dev/null |
        python3 -c 'import json, sys; print("%.1f" % json.load(sys.stdin)[0]["avg_ts"])'
}

llama_all_logits() { # file -> tokens/s of llama-perplexity at 1 thread (512 / its seconds per pass)
    "$bin/llama-perplexity" -m "$1" -f "$text" -c 512 -b 512 --chunks 2 -t 1 2>&1 |
        sed -n 's/.* \([0-9.]*\) seconds per pass.*/\1/p' | tail -1 |
        awk '{ if ($1 > 0) printf "%.1f", 512 / $1 }'
}

cpu=$(sed -n 's/^model name[[:space:]]*: //p' /proc/cpuinfo | head -1)
echo "polyq and llama.cpp on the same GGUF files, $(date -u +%Y-%m-%d), $cpu, $nproc cores"
echo
echo "| row | polyq-bench, 1 thread, tokens per CPU-second | llama.cpp pp512, 1 thread (last token's logits only) | ratio | polyq 512-token sequences, 1 thread | llama.cpp, logits of all 512 tokens, 1 thread | ratio | polyq-bench, $nproc threads, tokens/s | llama.cpp pp512, $nproc threads | ratio |"
echo "|---|---|---|---|---|---|---|---|---|---|"
for r in $rows; do
    shape=${r%%:*} fmt=${r#*:}
    f=$(gguf_of "$shape" "$fmt")
    l1=$(llama_pp "$f" 1)
    lall=$(llama_all_logits "$f")
    ln=$(llama_pp "$f" "$nproc")
    # polyq in its weight-only semantics and, for a quantized file, in llama.cpp's numerics
    modes=fp32
    [ "$fmt" = fp32 ] || modes="fp32 fp32-llamacpp"
    for q in $modes; do
        p1=$(build/polyq-bench --shape "$f" --quant "$q" --threads 1 --tokens 1024 --ref-tokens 0 |
            col 6)
        pseq=$(build/polyq-bench --shape "$f" --quant "$q" --threads 1 --seq-len 512 --tokens 1024 \
            --ref-tokens 0 | col 6)
        pn=$(build/polyq-bench --shape "$f" --quant "$q" --threads "$nproc" --tokens 1024 \
            --ref-tokens 0 | col 4)
        what="$shape $fmt"
        [ "$q" = fp32 ] || what="$shape $fmt, llama.cpp's numerics"
        echo "| $what | $p1 | $l1 | $(ratio "$p1" "$l1") | $pseq | $lall | $(ratio "$pseq" "$lall") | $pn | $ln | $(ratio "$pn" "$ln") |"
    done
done
