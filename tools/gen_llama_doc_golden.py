#!/usr/bin/env python3
"""llama.cpp's token ids of whole documents, as llama-perplexity reads a file: the first LINES
lines of some FLORES-200 devtest languages, each with its newline, tokenized as one text by
llama-tokenize (no BOS, special text as text), for each GGUF given. The golden of polyq's
document mode (tests/golden/tok_llama_doc_devtest.txt): per model and language the number of
ids and their FNV-1a 64 hash (4 little-endian bytes each). llama.cpp is built by
tools/build_llama_cpp.sh outside the repository; only numbers are committed.

  tools/gen_llama_doc_golden.py SHARED_DIR NAME=MODEL.gguf... [--work DIR] [--lines N]
"""
import ast, os, subprocess, sys, tempfile

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
import llama_cpp_build  # noqa: E402

LANGS = ("eng_Latn", "hin_Deva", "zho_Hans", "arb_Arab", "swh_Latn", "rus_Cyrl", "jpn_Jpan",
         "tam_Taml", "amh_Ethi", "yor_Latn")


def fnv_ids(ids):
    h = 0xcbf29ce484222325
    for i in ids:
        for b in int(i).to_bytes(4, "little"):
            h = ((h ^ b) * 0x100000001b3) & 0xFFFFFFFFFFFFFFFF
    return h


def main():
    args = sys.argv[1:]
    work, n_lines = os.path.expanduser("~/.cache/polyq/llama.cpp"), 100
    for opt in ("--work", "--lines"):
        if opt in args:
            i = args.index(opt)
            if opt == "--work":
                work = args[i + 1]
            else:
                n_lines = int(args[i + 1])
            del args[i:i + 2]
    if len(args) < 2:
        sys.exit(__doc__)
    shared, models = args[0], [a.split("=", 1) for a in args[1:]]
    bin_dir, commit = llama_cpp_build.build(work)
    rows = ["# whole documents (the first %d lines of each language, each with its newline) "
            "tokenized by llama.cpp's llama-tokenize (%s, no BOS, special text as text)\n"
            % (n_lines, commit),
            "# 'model NAME FILE', then per language 'LANG N_IDS IDS_FNV1A64HEX'\n"]
    with tempfile.TemporaryDirectory() as tmp:
        for name, model in models:
            rows.append("model %s %s\n" % (name, os.path.basename(model)))
            for lang in LANGS:
                with open(os.path.join(shared, "data/flores200/devtest/%s.devtest" % lang), "rb") as f:
                    lines = f.read().split(b"\n")[:n_lines]
                doc = os.path.join(tmp, lang)
                with open(doc, "wb") as f:
                    f.write(b"\n".join(lines) + b"\n")
                out = subprocess.run([os.path.join(bin_dir, "llama-tokenize"), "-m", model, "-f", doc,
                                      "--ids", "--no-bos", "--no-parse-special", "--log-disable"],
                                     check=True, capture_output=True, text=True).stdout
                ids = ast.literal_eval(out.strip().splitlines()[-1])
                rows.append("%s %d %016x\n" % (lang, len(ids), fnv_ids(ids)))
    dest = os.path.join(HERE, "..", "tests", "golden", "tok_llama_doc_devtest.txt")
    with open(dest, "w") as f:
        f.writelines(rows)
    print("wrote", dest)


if __name__ == "__main__":
    main()
