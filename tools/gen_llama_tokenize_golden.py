#!/usr/bin/env python3
"""llama.cpp's token ids of every FLORES-200 devtest line for a GGUF vocabulary, as the golden
of polyq's GGUF tokenizer (tests/golden/tok_<name>_devtest.txt, the format of the other
tokenizer goldens: per language '> lang n_sentences decode_fnv1a64hex', then per sentence
'n_ids fnv1a64hex').

llama.cpp is built by tools/build_llama_cpp.sh (from the llama-cpp-python sdist, outside the
repository); tools/llama_tokenize_lines.c, compiled here against its libllama, tokenizes each
line alone, without the BOS/EOS the vocabulary adds (polyq puts its own prefix token before a
sentence). Only the numbers are committed.
Usage: tools/gen_llama_tokenize_golden.py SHARED_DIR MODEL.gguf NAME [LLAMA_WORKDIR]
"""
import glob, os, subprocess, sys

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
import llama_cpp_build  # noqa: E402


def main():
    shared, model, name = sys.argv[1:4]
    work = sys.argv[4] if len(sys.argv) > 4 else os.path.expanduser("~/.cache/polyq/llama.cpp")
    exe = llama_cpp_build.compile_tool(work, "llama_tokenize_lines")
    files = sorted(glob.glob(os.path.join(shared, "data/flores200/devtest/*.devtest")))
    args = ["%s=%s" % (os.path.basename(f)[: -len(".devtest")], f) for f in files]
    res = subprocess.run([exe, model] + args, check=True, capture_output=True, text=True)
    commit = llama_cpp_build.build(work)[1]
    dest = os.path.join(HERE, "..", "tests", "golden", "tok_%s_devtest.txt" % name)
    with open(dest, "w") as f:
        f.write("# %s: llama.cpp's tokenizer (%s, llama_tokenize without BOS/EOS, special text as "
                "text) on FLORES-200 devtest\n" % (os.path.basename(model), commit))
        f.write("# per language: '> lang n_sentences decode_fnv1a64hex' (hash of every detokenized "
                "sentence + newline), then per sentence 'n_ids fnv1a64hex'\n")
        f.write(res.stdout)
    print("wrote", dest, len(files), "languages")


if __name__ == "__main__":
    main()
