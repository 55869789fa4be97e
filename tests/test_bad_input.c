/* Hostile and broken input: every reader answers with one clear message naming the file and
 * the problem, and nothing crashes or leaks (run under `make asan`). */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "base/base.h"
#include "eval/corpus.h"
#include "format/gguf.h"
#include "format/safetensors.h"
#include "model/model.h"
#include "test.h"
#include "tok/legacy.h"
#include "tok/tokenizer.h"

/* A safetensors image: 8-byte length, header, then data_len bytes of zeros. */
static uint8_t *st_image(const char *header, uint64_t claimed_len, size_t data_len, size_t *size)
{
    size_t hl = strlen(header);
    *size = 8 + hl + data_len;
    uint8_t *b = calloc(1, *size);
    for (int i = 0; i < 8; i++)
        b[i] = (uint8_t)(claimed_len >> (8 * i));
    memcpy(b + 8, header, hl);
    return b;
}

static void st_case(const char *header, size_t data_len, int code, const char *needle)
{
    polyq_err err = {0};
    size_t size;
    uint8_t *img = st_image(header, strlen(header), data_len, &size);
    pq_tensors ts = {0};
    err.msg[0] = 0;
    int rc = pq_tensors_add_buffer(&ts, "case.safetensors", img, size, &err);
    if (rc != code || !strstr(err.msg, needle) || (code && !strstr(err.msg, "case.safetensors")))
        FAILF("header %s: want %d \"%s\", got %d \"%s\"", header, code, needle, rc, err.msg);
    pq_tensors_close(&ts);
    free(img);
}

TEST(bad_safetensors_headers)
{
    st_case("{\"a\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,8]}}", 8, 0, "");
    st_case("{\"a\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,8]}}", 4, POLYQ_FORMAT,
            "run past the data");
    st_case("{\"a\":{\"dtype\":\"F32\",\"shape\":[3],\"data_offsets\":[0,8]}}", 8, POLYQ_FORMAT,
            "spans 8 bytes but its shape and dtype F32 need 12");
    st_case("{\"a\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,8]},"
            "\"b\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[4,12]}}",
            12, POLYQ_FORMAT, "overlap or gap");
    st_case("{\"a\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[4,8]}}", 8, POLYQ_FORMAT,
            "overlap or gap");
    st_case("{\"a\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[0,4]}}", 8, POLYQ_FORMAT,
            "cover 4 of the 8 data bytes");
    st_case("{\"a\":{\"dtype\":\"F32\",\"shape\":[4294967296,4294967296],\"data_offsets\":[0,4]}}",
            4, POLYQ_FORMAT, "shape overflows");
    st_case("{\"a\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[0,4]},"
            "\"a\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[4,8]}}",
            8, POLYQ_FORMAT, "duplicate");
    st_case("{\"a\":{\"dtype\":\"Q4\",\"shape\":[1],\"data_offsets\":[0,4]}}", 4, POLYQ_FORMAT,
            "unknown dtype \"Q4\"");
    st_case("{\"a\":{\"dtype\":\"F32\",\"shape\":[-1],\"data_offsets\":[0,4]}}", 4, POLYQ_FORMAT,
            "dimension 0 is not a size");
    st_case("{\"a\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[8,4]}}", 8, POLYQ_FORMAT,
            "invalid data_offsets");
    st_case("{\"a\":{\"dtype\":\"F32\"}}", 0, POLYQ_FORMAT, "needs \"dtype\", \"shape\"");
    st_case("{\"a\":", 0, POLYQ_FORMAT, "invalid JSON");
    st_case("[1,2]", 0, POLYQ_FORMAT, "does not start with '{'");

    polyq_err err = {0};
    pq_tensors ts = {0};
    size_t size;
    uint8_t *img = st_image("{}", 1000, 0, &size); /* length past the end */
    CHECK_FAILS(pq_tensors_add_buffer(&ts, "x.safetensors", img, size, &err), POLYQ_FORMAT,
                "runs past the end of the file");
    free(img);
    img = st_image("{}", 200000000ULL, 0, &size);
    CHECK_FAILS(pq_tensors_add_buffer(&ts, "x.safetensors", img, size, &err), POLYQ_FORMAT,
                "exceeds the 100 MB limit");
    free(img);
    uint8_t tiny[3] = {1, 2, 3};
    CHECK_FAILS(pq_tensors_add_buffer(&ts, "x.safetensors", tiny, 3, &err), POLYQ_FORMAT,
                "too short");
    pq_tensors_close(&ts);
}

static char *tmp_path(const char *name)
{
    return pq_asprintf("%s/%s", pq_test_tmpdir(), name);
}

static void write_file(const char *path, const void *data, size_t n)
{
    FILE *f = fopen(path, "wb");
    if (!f || fwrite(data, 1, n, f) != n)
        FAILF("cannot write %s", path);
    if (f)
        fclose(f);
}

/* A real file cut short: the message names the file. */
TEST(bad_safetensors_truncated_file)
{
    polyq_err err = {0};
    char *buf;
    size_t len;
    CHECK_OK(pq_read_file(pq_test_fixture("gpt2-tiny-f32/model.safetensors"), 1 << 24, &buf, &len,
                          &err));
    char *path = tmp_path("truncated.safetensors");
    write_file(path, buf, len / 2);
    pq_tensors ts = {0};
    CHECK_FAILS(pq_tensors_open_file(&ts, path, &err), POLYQ_FORMAT, "truncated.safetensors");
    pq_tensors_close(&ts);
    char *missing = tmp_path("nope.safetensors");
    CHECK_FAILS(pq_tensors_open_file(&ts, missing, &err), POLYQ_NOT_FOUND, "nope.safetensors");
    pq_tensors_close(&ts);
    free(missing);
    free(path);
    free(buf);
}

/* A model folder whose config.json is replaced; the weights are the f32 fixture's. */
static char *model_with_config(const char *name, const char *config)
{
    char *dir = tmp_path(name);
    mkdir(dir, 0755);
    char *cfg = pq_asprintf("%s/config.json", dir), *st = pq_asprintf("%s/model.safetensors", dir);
    char *src = realpath(pq_test_fixture("gpt2-tiny-f32/model.safetensors"), NULL);
    write_file(cfg, config, strlen(config));
    unlink(st);
    if (!src || symlink(src, st) != 0)
        FAILF("cannot link %s", st);
    free(src);
    free(cfg);
    free(st);
    return dir;
}

TEST(bad_model_configs)
{
    polyq_err err = {0};
    pq_model *m = NULL;
    static const struct {
        const char *config, *needle;
        int code;
    } cases[] = {
        {"{\"model_type\":\"gpt2\",\"n_head\":4,\"n_layer\":2,\"vocab_size\":300,\"n_positions\":"
         "64}",
         "required key \"n_embd\" is missing", POLYQ_FORMAT},
        {"{\"model_type\":\"gpt2\",\"n_embd\":64,\"n_head\":4,\"n_layer\":2,\"vocab_size\":300,"
         "\"n_positions\":64",
         "invalid JSON at line 1", POLYQ_FORMAT},
        {"{\"model_type\":\"mamba\"}", "model_type \"mamba\" is not supported", POLYQ_UNSUPPORTED},
        {"{\"n_embd\":64}", "required key \"model_type\"", POLYQ_FORMAT},
        {"{\"model_type\":\"gpt2\",\"n_embd\":64,\"n_head\":5,\"n_layer\":2,\"vocab_size\":300,"
         "\"n_positions\":64}",
         "not a multiple of n_head", POLYQ_FORMAT},
        {"{\"model_type\":\"gpt2\",\"n_embd\":32,\"n_head\":4,\"n_layer\":2,\"vocab_size\":300,"
         "\"n_positions\":64}",
         "has shape [300, 64], config.json implies [300, 32]", POLYQ_FORMAT},
        {"{\"model_type\":\"gpt2\",\"n_embd\":64,\"n_head\":4,\"n_layer\":3,\"vocab_size\":300,"
         "\"n_positions\":64}",
         "\"transformer.h.2.ln_1.weight\" is missing", POLYQ_FORMAT},
        {"{\"model_type\":\"gpt2\",\"n_embd\":64,\"n_head\":4,\"n_layer\":2,\"vocab_size\":"
         "\"300\"}",
         "\"vocab_size\" must be an integer", POLYQ_FORMAT},
        {"{\"model_type\":\"gpt2\",\"n_embd\":64,\"n_head\":4,\"n_layer\":2,\"vocab_size\":300,"
         "\"n_positions\":64,\"activation_function\":\"mish\"}",
         "\"mish\" is not supported", POLYQ_UNSUPPORTED},
        {"[]", "not a JSON object", POLYQ_FORMAT},
        {"{\"model_type\":\"gpt2\\u0000evil\"}", "\"model_type\" holds a NUL character",
         POLYQ_FORMAT},
        /* Cohere and Cohere2: a scale that is not positive, rotary over part of a head, q/k
         * norms Cohere2 does not have, layer kinds that do not fit */
        {"{\"model_type\":\"cohere\",\"hidden_size\":64,\"num_attention_heads\":4,\"num_hidden_"
         "layers\":2,\"vocab_size\":300,\"intermediate_size\":160,\"logit_scale\":-1}",
         "logit_scale -1 is not positive", POLYQ_FORMAT},
        {"{\"model_type\":\"cohere\",\"hidden_size\":64,\"num_attention_heads\":4,\"num_hidden_"
         "layers\":2,\"vocab_size\":300,\"intermediate_size\":160,\"partial_rotary_factor\":0.5}",
         "partial_rotary_factor 0.5", POLYQ_UNSUPPORTED},
        {"{\"model_type\":\"cohere2\",\"hidden_size\":64,\"num_attention_heads\":4,\"num_hidden_"
         "layers\":2,\"vocab_size\":300,\"intermediate_size\":160,\"use_qk_norm\":true}",
         "Cohere2 has no q/k norm", POLYQ_UNSUPPORTED},
        {"{\"model_type\":\"cohere2\",\"hidden_size\":64,\"num_attention_heads\":4,\"num_hidden_"
         "layers\":2,\"vocab_size\":300,\"intermediate_size\":160,\"layer_types\":[\"full_"
         "attention\"]}",
         "layer_types is not a list of 2", POLYQ_FORMAT},
        /* Gemma 3 4B+: the text model's settings are under text_config */
        {"{\"model_type\":\"gemma3\",\"vision_config\":{}}", "without a text_config", POLYQ_FORMAT},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        char name[32];
        snprintf(name, sizeof name, "cfg%zu", i);
        char *dir = model_with_config(name, cases[i].config);
        CHECK_FAILS(pq_model_open_dir(&m, dir, &err), cases[i].code, cases[i].needle);
        CHECK(m == NULL);
        free(dir);
    }
    CHECK_FAILS(pq_model_open_dir(&m, pq_test_tmpdir(), &err), POLYQ_NOT_FOUND, "no config.json");
}

static void tok_json_case(const char *json, int code, const char *needle)
{
    polyq_err err = {0};
    char *path = tmp_path("tokenizer.json");
    write_file(path, json, strlen(json));
    pq_tokenizer *t = NULL;
    err.msg[0] = 0;
    int rc = pq_tok_load_json(&t, path, &err);
    if (rc != code || !strstr(err.msg, needle) || !strstr(err.msg, "tokenizer.json"))
        FAILF("tokenizer %s: want %d \"%s\", got %d \"%s\"", json, code, needle, rc, err.msg);
    pq_tok_free(t);
    free(path);
}

TEST(bad_tokenizer_files)
{
    const char *pre = "\"pre_tokenizer\":{\"type\":\"ByteLevel\",\"add_prefix_space\":false}";
    char buf[1024];
    tok_json_case("{\"model\":", POLYQ_FORMAT, "invalid JSON");
    snprintf(buf, sizeof buf, "{%s,\"model\":{\"type\":\"WordPiece\",\"vocab\":{}}}", pre);
    tok_json_case(buf, POLYQ_FORMAT, "WordPiece unk_token \"(none)\" is not in the vocabulary");
    snprintf(buf, sizeof buf, "{%s,\"model\":{\"type\":\"WordPieceX\",\"vocab\":{}}}", pre);
    tok_json_case(buf, POLYQ_UNSUPPORTED, "\"WordPieceX\" is not supported");
    snprintf(buf, sizeof buf,
             "{%s,\"model\":{\"type\":\"BPE\",\"vocab\":{\"a\":0,\"b\":1},"
             "\"merges\":[\"a c\"]}}",
             pre);
    tok_json_case(buf, POLYQ_FORMAT, "uses a token not in the vocabulary");
    snprintf(buf, sizeof buf,
             "{%s,\"model\":{\"type\":\"BPE\",\"vocab\":{\"a\":\"x\"},\"merges\":[]}}", pre);
    tok_json_case(buf, POLYQ_FORMAT, "is not an integer id");
    snprintf(buf, sizeof buf,
             "{%s,\"model\":{\"type\":\"BPE\",\"vocab\":{\"a\":-4},\"merges\":[]}}", pre);
    tok_json_case(buf, POLYQ_FORMAT, "out of range");
    snprintf(buf, sizeof buf,
             "{%s,\"model\":{\"type\":\"BPE\",\"vocab\":{\"a\":0},\"merges\":[7]}}", pre);
    tok_json_case(buf, POLYQ_FORMAT, "merge 0 is neither");
    tok_json_case("{\"pre_tokenizer\":{\"type\":\"UnicodeScripts\"},\"model\":{}}",
                  POLYQ_UNSUPPORTED, "\"UnicodeScripts\" is not supported");
    tok_json_case("{\"pre_tokenizer\":{\"type\":\"Split\",\"pattern\":{\"Regex\":\"a\"},"
                  "\"behavior\":\"Sideways\"},\"model\":{}}",
                  POLYQ_UNSUPPORTED, "behavior \"Sideways\"");
    tok_json_case("{\"pre_tokenizer\":{\"type\":\"Metaspace\"},\"model\":{\"type\":\"Unigram\"}}",
                  POLYQ_FORMAT, "Unigram model needs a non-empty \"vocab\" array");
    tok_json_case("{\"model\":{\"type\":\"Unigram\",\"vocab\":[[\"a\",\"x\"]]}}", POLYQ_FORMAT,
                  "Unigram vocab entry 0 is not [piece, score]");
    tok_json_case("{\"model\":{\"type\":\"Unigram\",\"unk_id\":7,\"vocab\":[[\"a\",-1.0]]}}",
                  POLYQ_FORMAT, "unk_id");
    tok_json_case("{\"normalizer\":{\"type\":\"Nmt\"},\"model\":{}}", POLYQ_UNSUPPORTED,
                  "normalizer \"Nmt\"");
    tok_json_case(
        "{\"normalizer\":{\"type\":\"Precompiled\",\"precompiled_charsmap\":\"!!\"},\"model\":{}}",
        POLYQ_FORMAT, "precompiled_charsmap is not base64");
    tok_json_case("{\"normalizer\":{\"type\":\"Precompiled\",\"precompiled_charsmap\":\"/////"
                  "wAA\"},\"model\":{}}",
                  POLYQ_FORMAT, "claims a trie of");
    tok_json_case(
        "{\"post_processor\":{\"type\":\"TemplateProcessing\",\"single\":[{\"SpecialToken\":"
        "{\"id\":\"[X]\"}}]},\"model\":{\"type\":\"WordPiece\",\"unk_token\":\"u\",\"vocab\":{"
        "\"u\":0}}}",
        POLYQ_FORMAT, "template special token \"[X]\" has no ids");
    tok_json_case("{\"post_processor\":{\"type\":\"RobertaProcessing\",\"cls\":[\"<s>\",9],\"sep\":"
                  "[\"</s>\",0]},"
                  "\"model\":{\"type\":\"WordPiece\",\"unk_token\":\"u\",\"vocab\":{\"u\":0}}}",
                  POLYQ_FORMAT, "post_processor id 9 is out of the vocabulary");

    polyq_err err = {0};
    pq_tokenizer *t = NULL;
    char *vocab = tmp_path("vocab.json"), *merges = tmp_path("merges.txt");
    write_file(vocab, "{\"a\":0,\"b\":1,\"ab\":2}", 20);
    write_file(merges, "#version: 0.2\na b\nab\n", 21);
    CHECK_FAILS(pq_tok_load_vocab_merges(&t, vocab, merges, &err), POLYQ_FORMAT,
                "merges.txt: line 3 is not \"left right\"");
    write_file(merges, "#version: 0.2\na b\n\xff\xfe\n", 22);
    CHECK_FAILS(pq_tok_load_vocab_merges(&t, vocab, merges, &err), POLYQ_FORMAT, "not valid UTF-8");
    write_file(merges, "#version: 0.2\na b\n", 18);
    CHECK_OK(pq_tok_load_vocab_merges(&t, vocab, merges, &err));
    pq_tok_free(t);
    write_file(vocab, "[1]", 3);
    CHECK_FAILS(pq_tok_load_vocab_merges(&t, vocab, merges, &err), POLYQ_FORMAT,
                "vocab.json: not a JSON object");
    free(vocab);
    free(merges);
}

TEST(bad_text_files)
{
    polyq_err err = {0};
    pq_corpus c;
    char *p = tmp_path("xxx_Latn.devtest");
    write_file(p, "good line\nsecond\nbad \xc3\x28 here\n", 29);
    CHECK_FAILS(pq_corpus_load(&c, "xxx_Latn", p, 0, &err), POLYQ_TEXT,
                "xxx_Latn.devtest: line 3 is not valid UTF-8 (byte 5)");
    pq_corpus_free(&c);
    write_file(p, "ok\nnul\0byte\n", 12);
    CHECK_FAILS(pq_corpus_load(&c, "xxx_Latn", p, 0, &err), POLYQ_TEXT,
                "line 2 contains a NUL byte");
    pq_corpus_free(&c);
    write_file(p, "", 0);
    CHECK_FAILS(pq_corpus_load(&c, "xxx_Latn", p, 0, &err), POLYQ_TEXT, "no sentences");
    pq_corpus_free(&c);
    write_file(p, "one\r\ntwo\nthree", 14);
    CHECK_OK(pq_corpus_load(&c, "xxx_Latn", p, 0, &err));
    CHECK_INT(c.n, 3);
    CHECK(c.n == 3 && !strcmp(c.lines[0], "one") && c.lens[0] == 3 && !strcmp(c.lines[2], "three"));
    pq_corpus_free(&c);
    CHECK_OK(pq_corpus_load(&c, "xxx_Latn", p, 2, &err));
    CHECK_INT(c.n, 2);
    pq_corpus_free(&c);
    free(p);

    pq_dataset d;
    char *path = NULL;
    CHECK_OK(pq_dataset_open(&d, pq_test_shared("data/flores200"), "devtest", &err));
    CHECK_FAILS(pq_dataset_path(&d, "xyz_Abcd", &path, &err), POLYQ_NOT_FOUND,
                "unknown language code \"xyz_Abcd\"");
    CHECK_FAILS(pq_dataset_path(&d, "../etc", &path, &err), POLYQ_INVALID_ARG,
                "is not a language code");
    CHECK_OK(pq_dataset_path(&d, "eng_Latn", &path, &err));
    free(path);
    pq_dataset_free(&d);
    CHECK_FAILS(pq_dataset_open(&d, pq_test_shared("data/flores200"), "test", &err),
                POLYQ_INVALID_ARG, "split \"test\"");
    CHECK_FAILS(pq_dataset_open(&d, "/nonexistent/flores", "devtest", &err), POLYQ_NOT_FOUND,
                "no such directory");
    CHECK_FAILS(pq_dataset_open(&d, "eng_Latn=", "devtest", &err), POLYQ_INVALID_ARG,
                "is not lang=path");
    pq_dataset_free(&d);
}

/* A GGUF written by polyq's writer into path: n tensors of one F32 each named t<i> (the first
 * two both "twin" when twins), with key "k" written twice when dup_key. */
static void gguf_file(const char *path, size_t n, bool twins, bool dup_key)
{
    polyq_err err = {0};
    pq_gguf_w *w = pq_gguf_w_new();
    CHECK(w && pq_gguf_w_str(w, "general.architecture", "gpt2") == 0);
    if (dup_key)
        CHECK(pq_gguf_w_u32(w, "k", 1) == 0 && pq_gguf_w_u32(w, "k", 2) == 0);
    for (size_t i = 0; w && i < n; i++) {
        char name[32];
        snprintf(name, sizeof name, twins && i < 2 ? "twin" : "t%zu", i);
        float v = (float)i;
        uint64_t ne[1] = {1};
        CHECK(pq_gguf_w_tensor(w, name, PQ_GGML_F32, 1, ne, &v, sizeof v) == 0);
    }
    CHECK_OK(pq_gguf_w_save(w, path, &err));
    pq_gguf_w_free(w);
}

/* pq_gguf_open's status as the error record's code */
static int gguf_open_code(pq_gguf *g, const char *path, polyq_err *err)
{
    return pq_gguf_open(g, path, err) ? err->code : 0;
}

/* GGUF tables checked in linear time: names and keys through a hash map, overlaps by offset;
 * a file of 100k tensors opens and finds its last tensor. */
TEST(bad_gguf_tables)
{
    polyq_err err = {0};
    pq_gguf g;
    char *p = pq_asprintf("%s/tables.gguf", pq_test_tmpdir());
    gguf_file(p, 3, true, false);
    CHECK_FAILS(gguf_open_code(&g, p, &err), POLYQ_FORMAT, "two tensors share the name \"twin\"");
    gguf_file(p, 2, false, true);
    CHECK_FAILS(gguf_open_code(&g, p, &err), POLYQ_FORMAT, "the key \"k\" appears twice");
    /* the second tensor's offset moved onto the first's bytes */
    gguf_file(p, 2, false, false);
    char *b = NULL;
    size_t len = 0;
    CHECK_OK(pq_read_file(p, 1 << 20, &b, &len, &err));
    char *at = b ? memmem(b, len, "t1", 2) : NULL;
    CHECK(at != NULL);
    if (at) { /* name, then n_dims u32, ne[0] u64, type u32, offset u64 */
        memset(at + 2 + 4 + 8 + 4, 0, 8);
        FILE *f = fopen(p, "wb");
        CHECK(f && fwrite(b, 1, len, f) == len);
        if (f)
            fclose(f);
        CHECK_FAILS(gguf_open_code(&g, p, &err), POLYQ_FORMAT, "tensors \"t0\" and \"t1\" overlap");
    }
    free(b);
    gguf_file(p, 100000, false, false);
    CHECK_OK(pq_gguf_open(&g, p, &err));
    const pq_gguf_tensor *t = pq_gguf_find_tensor(&g, "t99999");
    float v = 0;
    if (t)
        memcpy(&v, t->data, sizeof v);
    CHECK(t && v == 99999.0f && !pq_gguf_find_tensor(&g, "t100000"));
    pq_gguf_close(&g);
    free(p);
}

/* A tokenizer.json document built in a heap buffer (a growing printf). */
typedef struct jbuf {
    char *p;
    size_t n, cap;
} jbuf;

static void jput(jbuf *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void jput(jbuf *b, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    int k = vsnprintf(NULL, 0, fmt, ap);
    va_end(ap);
    if (k < 0)
        return;
    if (b->n + (size_t)k + 1 > b->cap) {
        b->cap = (b->n + (size_t)k + 1) * 2;
        b->p = realloc(b->p, b->cap);
    }
    va_start(ap, fmt);
    vsnprintf(b->p + b->n, (size_t)k + 1, fmt, ap);
    va_end(ap);
    b->n += (size_t)k;
}

/* Documented limits of the tokenizer and the text reader, each with its message; and inputs
 * that were slow to load or tokenize (many added tokens, a long word for WordPiece and
 * Unigram) handled in time linear in their size. */
TEST(bad_limits_of_tokenizers_and_text)
{
    polyq_err err = {0};
    /* a token longer than PQ_TOK_MAX_TOKEN */
    jbuf b = {0};
    jput(&b, "{\"model\":{\"type\":\"WordPiece\",\"unk_token\":\"u\",\"vocab\":{\"u\":0,\"");
    for (int i = 0; i < PQ_TOK_MAX_TOKEN + 1; i++)
        jput(&b, "a");
    jput(&b, "\":1}}}");
    tok_json_case(b.p, POLYQ_FORMAT, "token 1 is 4097 bytes long");
    free(b.p);
    /* 200k added tokens load, the last one is found in text */
    b = (jbuf){0};
    jput(&b, "{\"added_tokens\":[");
    for (int i = 0; i < 200000; i++)
        jput(&b,
             "%s{\"id\":%d,\"content\":\"<t%d>\",\"single_word\":false,\"lstrip\":false,"
             "\"rstrip\":false,\"normalized\":false,\"special\":true}",
             i ? "," : "", i + 1, i);
    jput(&b, "],\"model\":{\"type\":\"WordPiece\",\"unk_token\":\"u\",\"vocab\":{\"u\":0}}}");
    pq_tokenizer *t = NULL;
    CHECK_OK(pq_tok_load_json_buffer(&t, "added.json", b.p, b.n, &err));
    free(b.p);
    pq_ids ids = {0};
    if (t) {
        CHECK_OK(pq_tok_encode(t, "<t199999><t7>", 13, &ids, &err));
        CHECK(ids.n == 2 && ids.v[0] == 200000 && ids.v[1] == 8);
    }
    pq_tok_free(t);
    pq_ids_free(&ids);
    /* a word of 1 MB: WordPiece (max_input_chars_per_word set high) and Unigram */
    size_t n = 1u << 20;
    char *word = malloc(n + 1);
    memset(word, 'a', n);
    word[n] = 0;
    static const char wp[] = "{\"model\":{\"type\":\"WordPiece\",\"unk_token\":\"u\","
                             "\"max_input_chars_per_word\":1048576,"
                             "\"vocab\":{\"u\":0,\"a\":1,\"##a\":2,\"aa\":3,\"##aa\":4}}}";
    t = NULL;
    CHECK_OK(pq_tok_load_json_buffer(&t, "wp.json", wp, strlen(wp), &err));
    if (t) {
        CHECK_OK(pq_tok_encode(t, word, n, &ids, &err));
        CHECK(ids.n == n / 2 && ids.v[0] == 3 && ids.v[1] == 4);
    }
    pq_tok_free(t);
    pq_ids_free(&ids);
    static const char ug[] =
        "{\"model\":{\"type\":\"Unigram\",\"unk_id\":0,\"vocab\":[[\"<unk>\",0.0],"
        "[\"a\",-1.0],[\"aa\",-1.5],[\"aaa\",-2.5]]}}";
    t = NULL;
    CHECK_OK(pq_tok_load_json_buffer(&t, "ug.json", ug, strlen(ug), &err));
    if (t) {
        CHECK_OK(pq_tok_encode(t, word, n, &ids, &err));
        CHECK(ids.n > 0 && ids.n <= n);
    }
    pq_tok_free(t);
    pq_ids_free(&ids);
    /* a regex that backtracks without end stops at the match limit */
    static const char re[] =
        "{\"pre_tokenizer\":{\"type\":\"Split\",\"pattern\":{\"Regex\":\"(a|aa)+$\"},"
        "\"behavior\":\"Isolated\",\"invert\":false},"
        "\"model\":{\"type\":\"WordPiece\",\"unk_token\":\"u\",\"vocab\":{\"u\":0}}}";
    t = NULL;
    CHECK_OK(pq_tok_load_json_buffer(&t, "re.json", re, strlen(re), &err));
    word[4000] = 'b';
    if (t)
        CHECK_FAILS(pq_tok_encode(t, word, 4001, &ids, &err), POLYQ_TEXT, "match limit");
    pq_tok_free(t);
    pq_ids_free(&ids);
    /* a line longer than PQ_MAX_LINE */
    char *p = tmp_path("long_Latn.devtest");
    memset(word, 'a', n);
    write_file(p, word, n);
    FILE *f = fopen(p, "ab");
    CHECK(f && fputs("aa\nshort\n", f) >= 0);
    if (f)
        fclose(f);
    pq_corpus c;
    CHECK_FAILS(pq_corpus_load(&c, "long_Latn", p, 0, &err), POLYQ_TEXT,
                "line 1 is 1048578 bytes long");
    pq_corpus_free(&c);
    free(p);
    free(word);
}

/* Input that was accepted as if it were good: CR line endings read as one sentence, an empty BPE
 * vocabulary, a GGUF array of an unknown type with no elements; and a FIFO, which was waited on
 * for ever, refused at once. */
TEST(bad_garbage_refused)
{
    polyq_err err = {0};
    pq_corpus c;
    char *p = tmp_path("cr_Latn.devtest");
    write_file(p, "one\rtwo\rthree\r", 14);
    CHECK_FAILS(pq_corpus_load(&c, "cr_Latn", p, 0, &err), POLYQ_TEXT,
                "line 1 holds a carriage return inside it");
    pq_corpus_free(&c);
    free(p);
    tok_json_case("{\"model\":{\"type\":\"BPE\",\"vocab\":{},\"merges\":[]}}", POLYQ_FORMAT,
                  "the BPE model's vocabulary is empty");
    /* a regex that does not compile: the file, the pattern and PCRE2's reason */
    tok_json_case("{\"pre_tokenizer\":{\"type\":\"Split\",\"pattern\":{\"Regex\":\"a(b\"},"
                  "\"behavior\":\"Isolated\",\"invert\":false},\"model\":{}}",
                  POLYQ_FORMAT,
                  "pre-tokenizer regex \"a(b\" does not compile at 3: missing closing");
    tok_json_case(
        "{\"normalizer\":{\"type\":\"Replace\",\"pattern\":{\"Regex\":\"[z\"},\"content\":\"\"},"
        "\"model\":{}}",
        POLYQ_FORMAT, "Replace regex \"[z\" does not compile");
    /* a u32 array of no elements, its element type then made 99 */
    char *g = tmp_path("arr.gguf");
    pq_gguf_w *w = pq_gguf_w_new();
    CHECK(w && pq_gguf_w_arr(w, "odd.array", PQ_GGUF_U32, NULL, 0) == 0);
    CHECK_OK(pq_gguf_w_save(w, g, &err));
    pq_gguf_w_free(w);
    char *b = NULL;
    size_t len = 0;
    CHECK_OK(pq_read_file(g, 1 << 20, &b, &len, &err));
    char *at = b ? memmem(b, len, "odd.array", 9) : NULL;
    CHECK(at != NULL);
    if (at) { /* key, then the value type u32 (array), the element type u32 */
        at[9 + 4] = 99;
        write_file(g, b, len);
        pq_gguf gg;
        CHECK_FAILS(gguf_open_code(&gg, g, &err), POLYQ_FORMAT,
                    "metadata \"odd.array\" is an array of unknown type 99");
    }
    free(b);
    free(g);
    /* a FIFO: refused without waiting for a writer */
    char *fifo = tmp_path("fifo_Latn.devtest");
    CHECK(mkfifo(fifo, 0600) == 0);
    CHECK_FAILS(pq_corpus_load(&c, "fifo_Latn", fifo, 0, &err), POLYQ_IO, "not a regular file");
    pq_corpus_free(&c);
    char *txt = NULL;
    CHECK_FAILS(pq_read_file(fifo, 100, &txt, NULL, &err), POLYQ_IO, "a FIFO");
    char head[4];
    CHECK(!pq_read_head(fifo, head, 4));
    unlink(fifo);
    free(fifo);
}

/* A sentencepiece piece (tokenizer.model, GGUF) past PQ_TOK_MAX_TOKEN is refused before the
 * merges are derived from every split of every piece. */
TEST(bad_long_sentencepiece_piece)
{
    polyq_err err = {0};
    size_t n = PQ_TOK_MAX_TOKEN + 1;
    char *big = malloc(n);
    memset(big, 'a', n);
    const char *pieces[3] = {"<unk>", "a", big};
    size_t lens[3] = {5, 1, n};
    float scores[3] = {0, -1, -2};
    int32_t types[3] = {2, 1, 1};
    json_t *out = NULL;
    CHECK_FAILS(
        pq_legacy_spm_pieces(&out, "long.model", pieces, lens, scores, types, 3, 0, -1, true, &err),
        POLYQ_FORMAT, "long.model: piece 2 is 4097 bytes long");
    json_decref(out);
    free(big);
}
