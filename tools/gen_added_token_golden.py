#!/usr/bin/env python3
"""Writes tests/golden/added_tokens.txt: token ids Hugging Face `tokenizers` gives for lines
that contain added tokens, with every combination of the flags lstrip, rstrip, single_word
and normalized, in four pipelines: the XLM-R stand-in (Precompiled normalizer, WhitespaceSplit
+ Metaspace, Unigram; its <mask>), the mBERT stand-in (BertNormalizer, BertPreTokenizer,
WordPiece; its [MASK]), GPT-NeoX-20B (Pythia; NFC, byte-level BPE; <|endoftext|>) and the
pretok-mix stand-in (NFKD + StripAccents + Lowercase: a normalized token's pattern is its
content normalized). Besides each pipeline's own special token, a new added token "Ab" is
declared with the same flags (its id one past the largest id).

Format: '> TOKENIZER_DIR_OR_SHARED_PATH TOKEN FLAGS' then per line 'INDEX ID ID ...', where
FLAGS is four 0/1 digits: lstrip rstrip single_word normalized. The lines are in LINES below
and in tests/test_tok.c; tokens are encoded without the post-processor's specials.
Usage: pip install tokenizers==0.23.3; tools/gen_added_token_golden.py SHARED_DIR
"""
import itertools, json, os, sys
import tokenizers
from tokenizers import Tokenizer

ROOT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..")
# "@" stands for the added token's content
LINES = ["@", "a @ b", "a@b", "  @  ", "a  @", "@  a", "\t@\n", "word@ word", "word @word",
         "@@", "@ @", "x@", "@x", "é @é", "Ab ab AB aB", "The cat sat on the @.",
         "one, @, two", "\u3000@\u3000", "日本@語", "@.", "(@)", "a\u00a0@\u00a0b",
         "Ünïcödé @ text", "__@__", "1@2"]

BASES = [("fixtures/tokenizers/xlmr-standin/tokenizer.json", "<mask>"),
         ("fixtures/tokenizers/mbert-standin/tokenizer.json", "[MASK]"),
         ("shared:data/tokenizers/pythia-160m/20B_tokenizer.json", "<|endoftext|>"),
         ("fixtures/tokenizers/pretok-mix/tokenizer.json", None)]


def load(shared, ref):
    path = os.path.join(shared, ref[7:]) if ref.startswith("shared:") else os.path.join(
        ROOT, "tests", ref)
    with open(path, encoding="utf-8") as f:
        return json.load(f)


def with_token(t, content, flags):
    t = json.loads(json.dumps(t))
    lstrip, rstrip, single, normalized = flags
    entry = {"content": content, "single_word": single, "lstrip": lstrip, "rstrip": rstrip,
             "normalized": normalized}
    for a in t["added_tokens"]:
        if a["content"] == content:
            a.update(entry)
            break
    else:
        vocab = t["model"]["vocab"]
        ids = vocab.values() if isinstance(vocab, dict) else range(len(vocab))
        top = max(list(ids) + [a["id"] for a in t["added_tokens"]])
        t["added_tokens"].append(dict(entry, id=top + 1, special=False))
    return Tokenizer.from_str(json.dumps(t))


def main():
    shared = sys.argv[1]
    out = os.path.join(ROOT, "tests/golden/added_tokens.txt")
    with open(out, "w", encoding="utf-8") as f:
        f.write("# tokenizers %s (tools/gen_added_token_golden.py)\n" % tokenizers.__version__)
        for ref, special in BASES:
            base = load(shared, ref)
            for content in [c for c in (special, "Ab") if c]:
                for flags in itertools.product([False, True], repeat=4):
                    tok = with_token(base, content, flags)
                    f.write("> %s %s %s\n" % (ref, content, "".join("01"[x] for x in flags)))
                    for i, line in enumerate(LINES):
                        ids = tok.encode(line.replace("@", content), add_special_tokens=False).ids
                        f.write("%d %s\n" % (i, " ".join(map(str, ids))))
    print("wrote", out, file=sys.stderr)


if __name__ == "__main__":
    main()
