#!/usr/bin/env python3
"""Writes tests/golden/tok_<name>_<split>.txt: for every FLORES-200 sentence, the number of
token ids Hugging Face `tokenizers` gives and a 64-bit FNV-1a hash of the ids.
Tokenizers: gpt2, pythia (GPT-NeoX-20B tokenizer.json: NFC, byte-level BPE, added tokens),
llama2 (Llama-2 tokenizer.json: Prepend/Replace normalizers, character BPE with byte fallback).

The tokenizer is built from GPT-2's vocab.json/merges.txt (shipped in shared/data/tokenizers/gpt2
as encoder.json/vocab.bpe) exactly as the hub's gpt2 tokenizer.json configures it (byte-level BPE,
no prefix space, <|endoftext|> special), encoded with add_special_tokens=False.
Hash: FNV-1a 64 over each id as 4 little-endian bytes (tests/test_tok.c computes the same).
Usage: tools/gen_tok_golden.py SHARED_DIR [split] [name ...]
"""
import json, os, sys, struct
import tokenizers, transformers
from tokenizers import Tokenizer, AddedToken, models, pre_tokenizers, decoders, processors

FNV_OFFSET, FNV_PRIME, MASK = 0xcbf29ce484222325, 0x100000001b3, (1 << 64) - 1


def fnv1a_bytes(data):
    h = FNV_OFFSET
    for b in data:
        h = ((h ^ b) * FNV_PRIME) & MASK
    return h


def fnv1a(ids):
    h = FNV_OFFSET
    for b in struct.pack("<%dI" % len(ids), *ids):
        h = ((h ^ b) * FNV_PRIME) & MASK
    return h


def gpt2_tokenizer(tdir):
    bpe = models.BPE.from_file(os.path.join(tdir, "encoder.json"), os.path.join(tdir, "vocab.bpe"))
    tok = Tokenizer(bpe)
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    tok.post_processor = processors.ByteLevel(trim_offsets=False)
    tok.add_special_tokens([AddedToken("<|endoftext|>", special=True)])
    return tok


METASPACE_LANGS = ["eng_Latn", "fra_Latn", "hin_Deva", "zho_Hans", "jpn_Jpan", "tha_Thai",
                   "amh_Ethi", "rus_Cyrl", "arb_Arab", "kor_Hang", "yor_Latn", "tam_Taml"]


def llama2_metaspace(tdir):
    """Llama-2's tokenizer.json as newer transformers convert it (legacy=False): no normalizer,
    a Metaspace pre-tokenizer that prepends to the first piece only and does not split.
    tests/test_tok.c derives the same JSON from the shared file."""
    with open(os.path.join(tdir, "Llama-2-7b-hf/tokenizer.json"), encoding="utf-8") as f:
        t = json.load(f)
    t["normalizer"] = None
    t["pre_tokenizer"] = {"type": "Metaspace", "replacement": "\u2581", "prepend_scheme": "first",
                          "split": False}
    t["decoder"] = {"type": "Sequence", "decoders": [
        {"type": "Replace", "pattern": {"String": "\u2581"}, "content": " "},
        {"type": "ByteFallback"}, {"type": "Fuse"},
        {"type": "Strip", "content": " ", "start": 1, "stop": 0}]}
    return t


BLOOM_SPLIT = " ?[^(\\s|[.,!?…。，、।۔،])]+"


def bloom_standin(shared, out_path):
    """A stand-in for BLOOM's tokenizer (the real one is not available here): the same
    pipeline — no normalizer, Split on BLOOM's regex (Isolated), byte-level BPE without
    prefix space, <unk> <s> </s> <pad> as ids 0-3 — trained on FLORES-200 dev text of every
    language (first 100 lines each), 8000 ids."""
    import glob
    from tokenizers import Regex, trainers
    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.Sequence([
        pre_tokenizers.Split(Regex(BLOOM_SPLIT), behavior="isolated", invert=False),
        pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=False)])
    tok.decoder = decoders.ByteLevel()
    lines = []
    for path in sorted(glob.glob(os.path.join(shared, "data/flores200/dev/*.dev"))):
        with open(path, encoding="utf-8") as f:
            lines += f.read().splitlines()[:100]
    trainer = trainers.BpeTrainer(vocab_size=8000, special_tokens=["<unk>", "<s>", "</s>", "<pad>"],
                                  initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
                                  show_progress=False)
    tok.train_from_iterator(lines, trainer)
    tok.save(out_path, pretty=False)
    return tok


def load(shared, name):
    tdir = os.path.join(shared, "data/tokenizers")
    if name == "gpt2":
        return gpt2_tokenizer(os.path.join(tdir, "gpt2"))
    if name == "pythia":
        return Tokenizer.from_file(os.path.join(tdir, "pythia-160m/20B_tokenizer.json"))
    if name == "llama2":
        return Tokenizer.from_file(os.path.join(tdir, "Llama-2-7b-hf/tokenizer.json"))
    if name == "bloom-standin":
        out = os.path.join(os.path.dirname(__file__), "..", "tests/fixtures/tokenizers/bloom-standin")
        os.makedirs(out, exist_ok=True)
        return bloom_standin(shared, os.path.join(out, "tokenizer.json"))
    if name == "llama2-metaspace":
        return Tokenizer.from_str(json.dumps(llama2_metaspace(tdir)))
    raise SystemExit("unknown tokenizer " + name)


def main():
    shared = sys.argv[1]
    split = sys.argv[2] if len(sys.argv) > 2 else "devtest"
    names = sys.argv[3:] or ["gpt2", "pythia", "llama2", "llama2-metaspace", "bloom-standin"]
    fdir = os.path.join(shared, "data/flores200", split)
    langs = sorted(f[: -len(split) - 1] for f in os.listdir(fdir) if f.endswith("." + split))
    for name in names:
        backend = load(shared, name)
        out = os.path.join(os.path.dirname(__file__), "..", "tests/golden",
                           "tok_%s_%s.txt" % (name, split))
        with open(out, "w") as o:
            o.write("# %s tokenizer on FLORES-200 %s; tokenizers %s, transformers %s\n"
                    % (name, split, tokenizers.__version__, transformers.__version__))
            o.write("# per language: '> lang n_sentences decode_fnv1a64hex' (hash of every decoded"
                    " sentence + newline), then per sentence 'n_ids fnv1a64hex'\n")
            for lang in (METASPACE_LANGS if name == "llama2-metaspace" else langs):
                with open(os.path.join(fdir, "%s.%s" % (lang, split)), encoding="utf-8") as f:
                    lines = f.read().split("\n")
                if lines and lines[-1] == "":
                    lines.pop()
                encs = backend.encode_batch(lines, add_special_tokens=False)
                dec = backend.decode_batch([e.ids for e in encs], skip_special_tokens=False)
                o.write("> %s %d %016x\n" % (lang, len(lines), fnv1a_bytes("".join(d + "\n" for d in dec).encode())))
                for e in encs:
                    o.write("%d %016x\n" % (len(e.ids), fnv1a(e.ids)))
        print("wrote", out)


if __name__ == "__main__":
    main()
