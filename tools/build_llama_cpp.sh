#!/bin/sh
# Builds llama.cpp's command-line tools (llama-tokenize, llama-perplexity, llama-quantize,
# llama-bench) from the llama-cpp-python sdist on PyPI, outside the repository, for the tools
# that turn llama.cpp's numbers into committed goldens. Nothing of llama.cpp is committed.
#   tools/build_llama_cpp.sh [WORKDIR]     (default ~/.cache/polyq/llama.cpp)
# prints the folder of the built binaries on its last line.
set -eu
work=${1:-${XDG_CACHE_HOME:-$HOME/.cache}/polyq/llama.cpp}
version=${LLAMA_CPP_PYTHON_VERSION:-0.3.36}
mkdir -p "$work"
cd "$work"
if [ ! -d "llama_cpp_python-$version" ]; then
    "${PYTHON:-python3}" -m pip download --no-binary :all: --no-deps "llama-cpp-python==$version" -d . >&2
    tar xzf "llama_cpp_python-$version.tar.gz"
fi
src="$work/llama_cpp_python-$version/vendor/llama.cpp"
# GGML_NATIVE=OFF with AVX2/FMA: the same kernels on every x86-64 machine of the last decade
# (llama.cpp's AMX path needs a compiler barrier under GCC 12, and differs per CPU)
cmake -S "$src" -B "$work/build" -G Ninja -DCMAKE_BUILD_TYPE=Release -DGGML_NATIVE=OFF \
    -DGGML_AVX=ON -DGGML_AVX2=ON -DGGML_FMA=ON -DGGML_F16C=ON -DLLAMA_CURL=OFF \
    -DLLAMA_BUILD_TESTS=OFF -DLLAMA_BUILD_EXAMPLES=OFF -DLLAMA_BUILD_SERVER=OFF \
    -DLLAMA_BUILD_TOOLS=ON -DBUILD_SHARED_LIBS=OFF >&2
cmake --build "$work/build" -j "$(nproc)" --target llama-tokenize llama-perplexity llama-quantize >&2
echo "$work/build/bin"
