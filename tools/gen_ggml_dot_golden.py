#!/usr/bin/env python3
"""ggml's activation quantization and integer dot products for every ggml format on fixed
inputs (tools/ggml_dot_golden.c, built against llama.cpp's libraries from the llama-cpp-python
sdist by tools/build_llama_cpp.sh, outside the repository), written as the golden that
tests/test_quant.c checks polyq's llama.cpp numerics against (tests/golden/ggml_dot.txt).
Only the numbers are committed.
Usage: tools/gen_ggml_dot_golden.py [--work DIR]
"""
import os, subprocess, sys

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
import llama_cpp_build  # noqa: E402


def main():
    work = llama_cpp_build.work_arg(sys.argv[1:])
    exe = llama_cpp_build.compile_tool(work, "ggml_dot_golden")
    out = subprocess.run([exe], check=True, capture_output=True, text=True).stdout
    commit = llama_cpp_build.build(work)[1]
    dest = os.path.join(HERE, "..", "tests", "golden", "ggml_dot.txt")
    with open(dest, "w") as f:
        f.write("# ggml's quantized activations (FNV-1a of the bytes) and vec_dot values, %s "
                "(AVX2 build): tools/ggml_dot_golden.c\n" % commit)
        f.write(out)
    print("wrote", dest, out.count("\n"), "lines")


if __name__ == "__main__":
    main()
