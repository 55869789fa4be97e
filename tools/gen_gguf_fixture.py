#!/usr/bin/env python3
"""A GGUF file made by llama.cpp's own converter, for the tests that read GGUF files as models.

  pip download llama-cpp-python==0.3.36 --no-binary :all: --no-deps   # its sdist holds llama.cpp
  tar xzf llama_cpp_python-0.3.36.tar.gz
  tools/gen_gguf_fixture.py llama_cpp_python-0.3.36/vendor/llama.cpp

Runs convert_hf_to_gguf.py (with the gguf-py beside it) on tests/fixtures/llama-tiny-vocab-bf16
with --outtype bf16, so the file holds the fixture's weights unchanged (llama.cpp's tensor
names, q/k rows in ggml's rotary order, sentencepiece vocabulary in tokenizer.ggml.*), and
writes tests/fixtures/gguf/llama-tiny-vocab-bf16.gguf."""
import os, subprocess, sys


def main():
    src = sys.argv[1] if len(sys.argv) > 1 else sys.exit(__doc__)
    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    out = os.path.join(root, "tests", "fixtures", "gguf")
    os.makedirs(out, exist_ok=True)
    env = dict(os.environ, PYTHONPATH=os.path.join(src, "gguf-py"))
    subprocess.check_call([sys.executable, os.path.join(src, "convert_hf_to_gguf.py"),
                           os.path.join(root, "tests", "fixtures", "llama-tiny-vocab-bf16"),
                           "--outtype", "bf16", "--outfile", os.path.join(out, "llama-tiny-vocab-bf16.gguf")],
                          env=env)


if __name__ == "__main__":
    main()
