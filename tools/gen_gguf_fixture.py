#!/usr/bin/env python3
"""GGUF files made by llama.cpp's own converter, for the tests that read GGUF files as models.

  pip download llama-cpp-python==0.3.36 --no-binary :all: --no-deps   # its sdist holds llama.cpp
  tar xzf llama_cpp_python-0.3.36.tar.gz
  tools/gen_gguf_fixture.py llama_cpp_python-0.3.36/vendor/llama.cpp [NAME ...]

Runs convert_hf_to_gguf.py (with the gguf-py beside it) on fixtures of tests/fixtures and writes
tests/fixtures/gguf/NAME.gguf:
  llama-tiny-vocab-bf16  --outtype bf16, so the file holds the fixture's weights unchanged
                         (llama.cpp's tensor names, q/k rows in ggml's rotary order,
                         sentencepiece vocabulary in tokenizer.ggml.*);
  cohere-tiny-f32        --outtype f32 (command-r: LayerNorm without bias, logit_scale, tied
                         embeddings, byte-level vocabulary). The converter names a byte-level
                         vocabulary's pre-tokenizer by the hash of its ids on a test text, which
                         only the real Cohere vocabulary has; the stand-in vocabulary has
                         Cohere's pipeline (NFC, digits one by one, byte-level), so the converter
                         is run with its pre-tokenizer lookup answering "command-r", the name the
                         real vocabulary's hash gives, and nothing else changed."""
import os, subprocess, sys

FIXTURES = {"llama-tiny-vocab-bf16": ("bf16", None), "cohere-tiny-f32": ("f32", "command-r")}


def convert(src, root, name, outtype, pre):
    out = os.path.join(root, "tests", "fixtures", "gguf")
    os.makedirs(out, exist_ok=True)
    argv = [os.path.join(src, "convert_hf_to_gguf.py"), os.path.join(root, "tests", "fixtures", name),
            "--outtype", outtype, "--outfile", os.path.join(out, name + ".gguf")]
    if pre is None:
        env = dict(os.environ, PYTHONPATH=os.path.join(src, "gguf-py"))
        subprocess.check_call([sys.executable] + argv, env=env)
        return
    # in a child process: the converter's modules, with the pre-tokenizer lookup answered
    code = ("import sys, runpy; sys.path[:0] = [%r, %r]; import conversion.base as b; "
            "b.TextModel.get_vocab_base_pre = lambda self, tokenizer: %r; sys.argv = %r; "
            "runpy.run_path(%r, run_name='__main__')"
            % (src, os.path.join(src, "gguf-py"), pre, argv, argv[0]))
    subprocess.check_call([sys.executable, "-c", code])


def main():
    src = sys.argv[1] if len(sys.argv) > 1 else sys.exit(__doc__)
    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    for name in sys.argv[2:] or list(FIXTURES):
        outtype, pre = FIXTURES[name]
        convert(src, root, name, outtype, pre)


if __name__ == "__main__":
    main()
