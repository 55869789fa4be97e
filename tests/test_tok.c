/* Tokenizers against Hugging Face `tokenizers`: every FLORES-200 devtest sentence of all 204
 * languages, GPT-2 and GPT-NeoX (Pythia) (count + FNV-1a hash of the ids, tests/golden/tok_gpt2_devtest.txt,
 * made by tools/gen_tok_golden.py; Pythia and Llama-2 likewise), GPT-2 from tokenizer.json and
 * from vocab.json + merges.txt; decoding against HF decode() per language; and hand-checked
 * ids for a few strings. */
#include <jansson.h>
#include <stdlib.h>
#include <string.h>

#include "base/base.h"
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
    for (char *line = strtok_r(golden, "\n", &save);; line = strtok_r(NULL, "\n", &save)) {
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
        int rc = pq_tok_encode(tok, line_p, len, &ids, &err);
        sent++;
        n_sent++;
        if ((rc || ids.n != want_n || ids_hash(&ids) != want_h) && !lang_bad) {
            FAILF("%s: %s sentence %zu: %zu ids (hash %016llx), HF gives %zu (%016llx)%s%s", label,
                  lang, sent, ids.n, (unsigned long long)ids_hash(&ids), want_n, want_h,
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

TEST(tok_gpt2_flores_tokenizer_json)
{
    polyq_err err = {0};
    pq_tokenizer *tok = NULL;
    CHECK_OK(pq_tok_load_json(&tok, pq_test_fixture("gpt2-tiny-vocab-bf16/tokenizer.json"), &err));
    if (tok)
        check_flores(tok, "tests/golden/tok_gpt2_devtest.txt", "tokenizer.json");
    pq_tok_free(tok);
}

TEST(tok_gpt2_flores_vocab_merges)
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
TEST(tok_pythia_flores_tokenizer_json)
{
    polyq_err err = {0};
    pq_tokenizer *tok = NULL;
    CHECK_OK(pq_tok_load_json(&tok, pq_test_shared("data/tokenizers/pythia-160m/20B_tokenizer.json"), &err));
    if (tok)
        check_flores(tok, "tests/golden/tok_pythia_devtest.txt", "pythia tokenizer.json");
    pq_tok_free(tok);
}

/* Llama-2: Prepend("▁") + Replace(" ", "▁"), no pre-tokenizer, character BPE with byte
 * fallback; decoding runs Replace, ByteFallback, Fuse, Strip. */
TEST(tok_llama2_flores_tokenizer_json)
{
    polyq_err err = {0};
    pq_tokenizer *tok = NULL;
    CHECK_OK(pq_tok_load_json(&tok, pq_test_shared("data/tokenizers/Llama-2-7b-hf/tokenizer.json"), &err));
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
    json_t *t = json_load_file(pq_test_shared("data/tokenizers/Llama-2-7b-hf/tokenizer.json"), 0, &je);
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
        check_flores_n(tok, "tests/golden/tok_llama2-metaspace_devtest.txt", "llama-2 metaspace", 12);
    pq_tok_free(tok);
}

/* BLOOM's pipeline (Split on an Oniguruma regex with a nested class, then byte-level BPE) on
 * a stand-in trained by tools/gen_tok_golden.py, since the real tokenizer is not available. */
TEST(tok_bloom_standin_flores)
{
    polyq_err err = {0};
    pq_tokenizer *tok = NULL;
    CHECK_OK(pq_tok_load_json(&tok, pq_test_fixture("tokenizers/bloom-standin/tokenizer.json"), &err));
    if (tok)
        check_flores(tok, "tests/golden/tok_bloom-standin_devtest.txt", "bloom stand-in");
    pq_tok_free(tok);
}

/* Ids checked by hand against HF tokenizers (GPT-2): spaces, digits, contractions, special. */
TEST(tok_gpt2_known_ids)
{
    polyq_err err = {0};
    pq_tokenizer *tok = NULL;
    CHECK_OK(pq_tok_load_dir(&tok, pq_test_fixture("gpt2-tiny-vocab-bf16"), &err));
    if (!tok)
        return;
    static const struct { const char *text; int n; int32_t ids[8]; } cases[] = {
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
