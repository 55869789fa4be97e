/* A family and a storage format added through their traits alone: a copy of Llama under
 * another model_type, and a copy of Q8_0 under another name and file number, registered by
 * this file and by nothing else. Each is listed, loaded, quantized (AWQ for the family), stored
 * in polyq's own file and in GGUF, and read back, with weights identical to the originals'. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "base/base.h"
#include "format/gguf.h"
#include "model/model.h"
#include "test.h"

static const char *const llama_fx = "tests/fixtures/llama-tiny-vocab-bf16";

/* A copy of the Llama fixture whose config.json says model_type "toyllama"; the other files
 * are links to the fixture's. */
static char *toy_model_dir(void)
{
    char *dir = pq_asprintf("%s/toyllama", pq_test_tmpdir());
    static const char *const files[] = {"model.safetensors", "tokenizer.json",
                                        "tokenizer_config.json"};
    if (mkdir(dir, 0755) != 0)
        return dir; /* made by an earlier test of this run */
    char *cwd = getcwd(NULL, 0);
    for (size_t i = 0; cwd && i < sizeof files / sizeof files[0]; i++) {
        char *from = pq_asprintf("%s/%s/%s", cwd, llama_fx, files[i]),
             *to = pq_asprintf("%s/%s", dir, files[i]);
        CHECK(symlink(from, to) == 0);
        free(from);
        free(to);
    }
    free(cwd);
    char *cfg_path = pq_asprintf("%s/config.json", llama_fx);
    json_t *cfg = json_load_file(cfg_path, 0, NULL);
    CHECK(cfg != NULL);
    json_object_set_new(cfg, "model_type", json_string("toyllama"));
    char *text = json_dumps(cfg, JSON_INDENT(1));
    char *out = pq_asprintf("%s/config.json", dir);
    pq_test_write(out, text);
    free(text);
    free(out);
    free(cfg_path);
    json_decref(cfg);
    return dir;
}

static pq_arch toy_arch;
static pq_qfmt toy_fmt;

static void register_toys(void)
{
    static bool done;
    if (done)
        return;
    done = true;
    polyq_err err = {0};
    toy_arch = pq_arch_llama; /* everything Llama is, under another name */
    toy_arch.model_type = "toyllama";
    toy_arch.description = "a copy of Llama, registered by a test";
    CHECK_OK(pq_arch_register(&toy_arch, &err));
    pq_qfmt_traits t = *pq_qfmt_get(PQ_QF_Q8_0);
    t.name = "toy8";
    t.tool = "toy";
    t.file_id = 1000;
    t.ggml_type = 1000; /* not llama.cpp's: only polyq reads such a GGUF */
    CHECK_OK(pq_qfmt_register(&t, &toy_fmt, &err));
    /* a second registration of either is refused by name */
    CHECK_FAILS(pq_arch_register(&toy_arch, &err), POLYQ_INVALID_ARG, "already known");
    pq_qfmt again;
    CHECK_FAILS(pq_qfmt_register(&t, &again, &err), POLYQ_INVALID_ARG, "already toy8's");
}

/* Every quantized linear of a and b holds the same bytes. */
static void same_weights(const pq_model *a, const pq_model *b, const char *what)
{
    int differ = 0, n = 0;
    for (int l = 0; l < a->cfg.n_layer; l++) {
        pq_linear *la[PQ_N_LAYER_LINEARS] = PQ_LAYER_LINEARS(&a->layers[l]);
        pq_linear *lb[PQ_N_LAYER_LINEARS] = PQ_LAYER_LINEARS(&b->layers[l]);
        for (int i = 0; i < PQ_N_LAYER_LINEARS; i++) {
            const pq_qweight *x = la[i]->q, *y = lb[i]->q;
            if (!la[i]->n_out)
                continue;
            n++;
            if (!x || !y) {
                differ++;
                continue;
            }
            float *rx = malloc(sizeof(float) * (size_t)x->n_in),
                  *ry = malloc(sizeof(float) * (size_t)x->n_in);
            bool same = x->n_out == y->n_out && x->n_in == y->n_in &&
                        x->row_bytes == y->row_bytes &&
                        pq_qfmt_get(x->fmt)->block_bytes == pq_qfmt_get(y->fmt)->block_bytes &&
                        !memcmp(x->data, y->data, x->row_bytes * (size_t)x->n_out);
            for (int r = 0; same && r < x->n_out; r++) {
                pq_qweight_dequant_row(x, r, rx);
                pq_qweight_dequant_row(y, r, ry);
                same = !memcmp(rx, ry, sizeof(float) * (size_t)x->n_in);
            }
            differ += !same;
            free(rx);
            free(ry);
        }
    }
    if (differ || !n)
        FAILF("%s: %d of %d linears differ", what, differ, n);
}

/* The GGUF reader's sizes of llama.cpp's types and the formats' traits agree. */
TEST(traits_formats_agree_with_ggml_sizes)
{
    int n = 0;
    for (int f = 0; f < PQ_QF_BUILTIN; f++) {
        const pq_qfmt_traits *t = pq_qfmt_get((pq_qfmt)f);
        pq_qfmt back;
        CHECK(pq_qfmt_by_file_id(t->file_id, &back) && back == (pq_qfmt)f);
        if (t->ggml_type < 0)
            continue;
        int block;
        size_t bytes;
        pq_ggml_type_size((uint32_t)t->ggml_type, &block, &bytes);
        if (block != t->block || bytes != t->block_bytes)
            FAILF("%s: ggml type %d is %d weights in %zu bytes, the traits say %d in %zu", t->name,
                  t->ggml_type, block, bytes, t->block, t->block_bytes);
        CHECK(t->bpw == 8.0 * (double)t->block_bytes / t->block);
        n++;
    }
    CHECK_INT(n, 10);
}

TEST(traits_toy_family_through_the_table_alone)
{
    register_toys();
    polyq_err err = {0};
    char list[512];
    pq_arch_list(list, sizeof list, false);
    CHECK(strstr(list, "toyllama") != NULL);
    CHECK(pq_arch_find("toyllama") == &toy_arch);
    char *dir = toy_model_dir();
    pq_model *toy = NULL, *llama = NULL, *qt = NULL, *ql = NULL, *back = NULL;
    CHECK_OK(pq_model_open_dir(&toy, dir, &err));
    CHECK_OK(pq_model_open_dir(&llama, llama_fx, &err));
    if (!toy || !llama)
        goto out;
    CHECK(!strcmp(toy->cfg.model_type, "toyllama") && toy->arch == &toy_arch);
    /* AWQ on calibration ids: the toy family's weights are Llama's */
    enum { NS = 4, T = 24 };
    int32_t ids[NS * T];
    int starts[NS + 1];
    for (int s = 0; s <= NS; s++)
        starts[s] = s * T;
    for (int i = 0; i < NS * T; i++)
        ids[i] = i % T == 0 ? pq_model_bos(llama) : (int32_t)((i * 7919) % llama->cfg.n_vocab);
    pq_calib cal = {ids, starts, NS, 64};
    pq_qspec awq;
    CHECK_OK(pq_qspec_parse("awq-int4-g16", &awq, &err));
    CHECK_OK(pq_model_awq(&qt, toy, &awq, &cal, 2, &err));
    CHECK_OK(pq_model_awq(&ql, llama, &awq, &cal, 2, &err));
    if (qt && ql)
        same_weights(qt, ql, "AWQ of the toy family and of Llama");
    pq_model_free(qt);
    pq_model_free(ql);
    qt = ql = NULL;
    /* GGUF: written as its traits say (llama.cpp's "llama"), read back as its quantized copy */
    pq_qspec q4;
    CHECK_OK(pq_qspec_parse("q4_0", &q4, &err));
    CHECK_OK(pq_model_quantize(&qt, toy, &q4, &err));
    char *gguf = pq_asprintf("%s/toyllama-q4_0.gguf", pq_test_tmpdir()), *spec = NULL;
    if (qt) {
        CHECK_OK(pq_gguf_write_model(gguf, qt, "q4_0", &err));
        CHECK_OK(pq_gguf_load_quantized(&back, toy, gguf, &spec, &err));
        if (back)
            same_weights(back, qt, "q4_0 of the toy family through GGUF");
    }
    free(spec);
    free(gguf);
out:
    pq_model_free(back);
    pq_model_free(qt);
    pq_model_free(toy);
    pq_model_free(llama);
    free(dir);
}

TEST(traits_toy_format_through_the_table_alone)
{
    register_toys();
    polyq_err err = {0};
    char list[512];
    pq_qfmt_list(list, sizeof list);
    CHECK(strstr(list, "; toy8 (toy)") != NULL);
    pq_qspec toy, q8;
    CHECK_OK(pq_qspec_parse("toy8", &toy, &err));
    CHECK_OK(pq_qspec_parse("q8_0", &q8, &err));
    CHECK(toy.fmt == toy_fmt && !strcmp(pq_qspec_method(&toy), "toy"));
    pq_model *base = NULL, *qt = NULL, *q8m = NULL, *back = NULL, *gback = NULL;
    CHECK_OK(pq_model_open_dir(&base, llama_fx, &err));
    if (!base)
        return;
    CHECK_OK(pq_model_quantize(&qt, base, &toy, &err));
    CHECK_OK(pq_model_quantize(&q8m, base, &q8, &err));
    if (qt && q8m) {
        same_weights(qt, q8m, "toy8 and q8_0");
        CHECK(qt->layers[0].q.q && qt->layers[0].q.q->fmt == toy_fmt);
        CHECK(pq_model_bits_per_weight(qt) == pq_model_bits_per_weight(q8m));
        /* polyq's own file stores the toy format's number and reads it back */
        char *qdir = pq_asprintf("%s/toy8-q", pq_test_tmpdir()), *meta = NULL, *spec = NULL;
        CHECK_OK(pq_qfile_write(qdir, qt, "{\"version\": 1, \"spec\": \"toy8\"}", &err));
        CHECK_OK(pq_qfile_load(&back, base, qdir, &meta, &err));
        if (back) {
            same_weights(back, qt, "toy8 through polyq-quant.safetensors");
            CHECK(back->layers[0].q.q && back->layers[0].q.q->fmt == toy_fmt);
        }
        /* GGUF: its ggml type number, and back */
        char *gguf = pq_asprintf("%s/toy8.gguf", pq_test_tmpdir());
        CHECK_OK(pq_gguf_write_model(gguf, qt, "toy8", &err));
        CHECK_OK(pq_gguf_load_quantized(&gback, base, gguf, &spec, &err));
        if (gback) {
            same_weights(gback, qt, "toy8 through GGUF");
            CHECK(gback->layers[0].q.q && gback->layers[0].q.q->fmt == toy_fmt);
        }
        free(meta);
        free(spec);
        free(qdir);
        free(gguf);
    }
    pq_model_free(gback);
    pq_model_free(back);
    pq_model_free(qt);
    pq_model_free(q8m);
    pq_model_free(base);
}
