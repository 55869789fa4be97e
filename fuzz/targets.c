/* The fuzz targets (see fuzz.h). encode also checks a property: valid UTF-8 decodes back to
 * itself byte for byte. It uses the GPT-2 tokenizer of the real-vocabulary fixture
 * (POLYQ_FUZZ_TOKENIZER overrides the path). */
#include "fuzz.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/base.h"
#include "eval/corpus.h"
#include "eval/plan.h"
#include "eval/wire.h"
#include "format/gguf.h"
#include "format/safetensors.h"
#include "format/torchbin.h"
#include "model/model.h"
#include "quant/qformat.h"
#include "report/compare.h"
#include "report/db.h"
#include "report/figures.h"
#include "report/report.h"
#include "run/sweep.h"
#include "tok/tokenizer.h"
#include <sys/stat.h>
#include <unistd.h>

/* where the targets put what they computed from the input, so that the reads are not optimized
 * away */
static volatile uint64_t fuzz_sink;

/* Parses a weight file and converts every small tensor, as a model load would. */
static int weights(pq_parse_fn parse, const char *what, const uint8_t *data, size_t size)
{
    pq_tensors ts = {0};
    polyq_err err = {0};
    if (parse(&ts, what, data, size, &err) == 0) {
        float tmp[64];
        for (size_t i = 0; i < ts.n; i++)
            if (ts.t[i].numel <= 64)
                pq_tensor_to_f32(&ts.t[i], tmp, &err);
    }
    pq_tensors_close(&ts);
    return 0;
}

int pq_fuzz_safetensors(const uint8_t *data, size_t size)
{
    return weights(pq_tensors_add_buffer, "fuzz.safetensors", data, size);
}

static void probe_tok(pq_tokenizer *t);

int pq_fuzz_tokenizer_json(const uint8_t *data, size_t size)
{
    pq_tokenizer *t = NULL;
    polyq_err err = {0};
    if (pq_tok_load_json_buffer(&t, "fuzz.json", (const char *)data, size, &err) == 0) {
        probe_tok(t);
    }
    pq_tok_free(t);
    return 0;
}

int pq_fuzz_encode(const uint8_t *data, size_t size)
{
    static pq_tokenizer *tok;
    if (!tok) {
        const char *p = getenv("POLYQ_FUZZ_TOKENIZER");
        polyq_err err = {0};
        if (pq_tok_load_json(&tok, p ? p : "tests/fixtures/gpt2-tiny-vocab-bf16/tokenizer.json",
                             &err)) {
            fprintf(stderr, "fuzz_encode: %s\n", err.msg);
            abort();
        }
    }
    pq_ids ids = {0};
    polyq_err err = {0};
    if (pq_tok_encode(tok, (const char *)data, size, &ids, &err) == 0) {
        char *back = NULL;
        size_t len = 0;
        if (pq_tok_decode(tok, ids.v, ids.n, &back, &len, &err) != 0 || len != size ||
            memcmp(back, data, size) != 0)
            abort(); /* byte-level BPE must be lossless */
        free(back);
    } else if (pq_utf8_valid((const char *)data, size, NULL)) {
        abort(); /* valid text must always encode */
    }
    pq_ids_free(&ids);
    return 0;
}

int pq_fuzz_qspec(const uint8_t *data, size_t size)
{
    char buf[256];
    size_t n = size < sizeof buf - 1 ? size : sizeof buf - 1;
    memcpy(buf, data, n);
    buf[n] = 0;
    pq_qspec spec;
    polyq_err err = {0};
    if (pq_qspec_parse(buf, &spec, &err) == 0 && !spec.none) {
        float w[2 * 40];
        for (int i = 0; i < 80; i++)
            w[i] = (float)((i * 37) % 19) - 9.0f;
        pq_qweight *q = NULL;
        if (pq_qweight_rtn(w, 2, 40, &spec, &q, &err) == 0) {
            float row[40];
            pq_qweight_dequant_row(q, 1, row);
        }
        pq_qweight_free(q);
    }
    return 0;
}

int pq_fuzz_torchbin(const uint8_t *data, size_t size)
{
    return weights(pq_torch_add_buffer, "fuzz.bin", data, size);
}

/* A scratch folder for targets whose readers take paths. */
static const char *scratch(void)
{
    static char dir[64];
    if (!dir[0]) {
        snprintf(dir, sizeof dir, "/tmp/polyq-fuzz-%d", (int)getpid());
        mkdir(dir, 0700);
    }
    return dir;
}

void pq_fuzz_cleanup(void)
{
    pq_rmtree(scratch());
}

static void put(const char *name, const void *data, size_t n)
{
    char path[128];
    snprintf(path, sizeof path, "%s/%s", scratch(), name);
    FILE *f = fopen(path, "wb");
    if (f) {
        fwrite(data, 1, n, f);
        fclose(f);
    }
}

/* config.json beside the weights of the small GPT-2 fixture (POLYQ_FUZZ_WEIGHTS overrides). */
int pq_fuzz_config(const uint8_t *data, size_t size)
{
    char link[128];
    snprintf(link, sizeof link, "%s/model.safetensors", scratch());
    if (access(link, F_OK) != 0) {
        const char *w = getenv("POLYQ_FUZZ_WEIGHTS");
        char *abs = realpath(w ? w : "tests/fixtures/gpt2-tiny-f32/model.safetensors", NULL);
        if (!abs || symlink(abs, link) != 0)
            abort();
        free(abs);
    }
    put("config.json", data, size);
    pq_model *m = NULL;
    polyq_err err = {0};
    if (pq_model_open_dir(&m, scratch(), &err) == 0 && m->cfg.n_vocab <= 300 && m->cfg.n_ctx >= 4) {
        pq_ops ops;
        pq_acts acts;
        float *logits = malloc(sizeof(float) * 4 * (size_t)m->cfg.n_vocab);
        int32_t tok[4] = {0, 1, 2, 3};
        int ss[2] = {0, 4};
        if (logits && pq_ops_init(&ops, 1, m->cfg.n_inner, m->cfg.n_ctx) == 0) {
            if (pq_acts_init(&acts, &m->cfg, 4) == 0) {
                pq_model_forward(m, &ops, &acts, tok, ss, 1, logits, &err);
                pq_acts_free(&acts);
            }
            pq_ops_free(&ops);
        }
        free(logits);
    }
    pq_model_free(m);
    return 0;
}

/* vocab.json and merges.txt in one input, split at the first "\n--\n". */
int pq_fuzz_vocab_merges(const uint8_t *data, size_t size)
{
    const uint8_t *cut = memmem(data, size, "\n--\n", 4);
    size_t vl = cut ? (size_t)(cut - data) : size;
    put("vocab.json", data, vl);
    put("merges.txt", cut ? cut + 4 : data, cut ? size - vl - 4 : 0);
    char v[128], mfile[128];
    snprintf(v, sizeof v, "%s/vocab.json", scratch());
    snprintf(mfile, sizeof mfile, "%s/merges.txt", scratch());
    pq_tokenizer *t = NULL;
    polyq_err err = {0};
    if (pq_tok_load_vocab_merges(&t, v, mfile, &err) == 0) {
        pq_ids ids = {0};
        static const char probe[] = "ab abc, <|endoftext|> 12";
        pq_tok_encode(t, probe, sizeof probe - 1, &ids, &err);
        pq_ids_free(&ids);
    }
    pq_tok_free(t);
    return 0;
}

static void probe_tok(pq_tokenizer *t)
{
    static const char probe[] = "Hello  world, 123 [CLS] \xe4\xbd\xa0\xe5\xa5\xbd caf\xc3\xa9 !!";
    pq_ids ids = {0};
    polyq_err err = {0};
    if (pq_tok_encode_special(t, probe, sizeof probe - 1, &ids, &err) == 0) {
        char *back = NULL;
        if (pq_tok_decode(t, ids.v, ids.n, &back, NULL, &err) == 0)
            free(back);
    }
    pq_ids_free(&ids);
}

/* A sentencepiece tokenizer.model (protobuf). */
int pq_fuzz_spm_model(const uint8_t *data, size_t size)
{
    put("tokenizer.model", data, size);
    char path[128];
    snprintf(path, sizeof path, "%s/tokenizer.model", scratch());
    pq_tokenizer *t = NULL;
    polyq_err err = {0};
    if (pq_tok_load_spm_model(&t, path, &err) == 0)
        probe_tok(t);
    pq_tok_free(t);
    return 0;
}

/* The last row of every packed linear of a loaded quantized model, dequantized. */
static void dequant_rows(const pq_model *q)
{
    float row[256];
    for (int l = 0; l < q->cfg.n_layer; l++) {
        pq_linear *ls[PQ_N_LAYER_LINEARS] = PQ_LAYER_LINEARS(&q->layers[l]);
        for (int j = 0; j < PQ_N_LAYER_LINEARS; j++)
            if (ls[j]->q && ls[j]->n_in <= 256)
                pq_qweight_dequant_row(ls[j]->q, ls[j]->n_out - 1, row);
    }
}

/* A quantized-model file (polyq quantize) loaded against the small Llama fixture. */
int pq_fuzz_qfile(const uint8_t *data, size_t size)
{
    static pq_model *base;
    polyq_err err = {0};
    if (!base && pq_model_open_dir(&base, "tests/fixtures/llama-tiny-gqa-f32", &err))
        abort();
    char dir[160];
    snprintf(dir, sizeof dir, "%s/qf", scratch());
    mkdir(dir, 0700);
    put("qf/polyq-quant.safetensors", data, size);
    pq_model *q = NULL;
    char *meta = NULL;
    if (pq_qfile_load(&q, base, dir, &meta, &err) == 0)
        dequant_rows(q);
    free(meta);
    pq_model_free(q);
    return 0;
}

/* A GGUF file: parsed from memory (every metadata value read back), loaded as a quantized copy
 * of the small Llama fixture (GQA, 64 wide) and its rows dequantized, and opened as a model. */
int pq_fuzz_gguf(const uint8_t *data, size_t size)
{
    static pq_model *base;
    polyq_err err = {0};
    if (!base && pq_model_open_dir(&base, "tests/fixtures/llama-tiny-gqa-f32", &err))
        abort();
    pq_gguf g = {0};
    if (pq_gguf_parse(&g, data, size, "fuzz.gguf", &err) == 0) {
        uint64_t sum = 0; /* every value read: the reader must stay inside the buffer */
        for (size_t i = 0; i < g.n_kv; i++) {
            int64_t v;
            const char *str;
            size_t len;
            polyq_err e2 = {0};
            if (pq_gguf_get_int(&g, g.kv[i].key, &v, &e2) == 0)
                sum += (uint64_t)v;
            else if (pq_gguf_get_str(&g, g.kv[i].key, &str, &len, &e2) == 0)
                for (size_t k = 0; k < len; k++)
                    sum += (uint8_t)str[k];
        }
        fuzz_sink = sum;
        pq_gguf_close(&g);
    }
    put("m.gguf", data, size);
    char path[160];
    snprintf(path, sizeof path, "%s/m.gguf", scratch());
    pq_model *q = NULL;
    char *spec = NULL;
    if (pq_gguf_load_quantized(&q, base, path, &spec, &err) == 0)
        dequant_rows(q);
    free(spec);
    pq_model_free(q);
    pq_model *m = NULL; /* and as a model of its own: config, tensors and tokenizer from the file */
    if (pq_model_open_gguf(&m, path, &err) == 0) {
        pq_ids ids = {0};
        polyq_err e2 = {0};
        pq_tok_encode(m->tok, "ab a\xe0\xa4\xb9", 7, &ids, &e2);
        pq_ids_free(&ids);
    }
    pq_model_free(m);
    return 0;
}

/* A sweep plan: read, every list walked. */
int pq_fuzz_plan(const uint8_t *data, size_t size)
{
    pq_plan p;
    polyq_err err = {0};
    if (pq_plan_parse(&p, "fuzz-plan.json", (const char *)data, size, &err) == 0) {
        size_t n = strlen(p.canon) + strlen(p.split);
        for (size_t i = 0; i < p.n_models; i++)
            n += strlen(p.models[i]);
        for (size_t i = 0; i < p.n_specs; i++)
            n += strlen(p.specs[i]) + (size_t)p.parsed[i].bits;
        for (size_t i = 0; i < p.n_calibs; i++)
            n += strlen(p.calibs[i]);
        const char **langs = NULL;
        size_t nl = 0;
        if (pq_plan_lang_list(&p, "fuzz-plan.json", &langs, &nl, &err) == 0)
            for (size_t i = 0; i < nl; i++)
                n += strlen(langs[i]);
        free(langs);
        fuzz_sink = n;
    }
    pq_plan_free(&p);
    return 0;
}

/* One language's results as a sweep rank sends them: read, packed again, identical bytes. */
int pq_fuzz_wire(const uint8_t *data, size_t size)
{
    pq_lang_eval e;
    polyq_err err = {0};
    if (pq_lang_eval_unpack((const char *)data, size, &e, &err) == 0) {
        char *again = NULL;
        size_t n = 0;
        if (pq_lang_eval_pack(&e, 0, &again, &n, &err) == 0 &&
            (n != size || memcmp(again, data, 8)))
            abort(); /* what was read must pack to the same size */
        free(again);
    }
    pq_lang_eval_free(&e);
    return 0;
}

/* BERT's vocab.txt, alone in a directory. */
int pq_fuzz_vocab_txt(const uint8_t *data, size_t size)
{
    char dir[160];
    snprintf(dir, sizeof dir, "%s/vt", scratch());
    mkdir(dir, 0700);
    put("vt/vocab.txt", data, size);
    pq_tokenizer *t = NULL;
    polyq_err err = {0};
    if (pq_tok_load_dir(&t, dir, &err) == 0)
        probe_tok(t);
    pq_tok_free(t);
    return 0;
}

/* A text corpus file: every line must load or be refused with a message. */
int pq_fuzz_corpus(const uint8_t *data, size_t size)
{
    put("xx_Latn.devtest", data, size);
    char path[128];
    snprintf(path, sizeof path, "%s/xx_Latn.devtest", scratch());
    pq_corpus c;
    polyq_err err = {0};
    if (pq_corpus_load(&c, "xx_Latn", path, 0, &err) == 0)
        for (size_t i = 0; i < c.n; i++)
            if (!pq_utf8_valid(c.lines[i], c.lens[i], NULL) || memchr(c.lines[i], 0, c.lens[i]))
                abort(); /* the loader promised valid UTF-8 without NUL */
    pq_corpus_free(&c);
    return 0;
}

/* A sweep database: opened as a sweep opens it (its checks, meta and counts) and read back
 * whole by polyq report (cells, sentences, every text and number column), into scratch. */
int pq_fuzz_sweep_db(const uint8_t *data, size_t size)
{
    char db[160], out[160];
    snprintf(db, sizeof db, "%s/sweep.db", scratch());
    snprintf(out, sizeof out, "%s/sweep-report", scratch());
    remove(db);
    put("sweep.db", data, size);
    polyq_err err = {0};
    pq_db *d = NULL;
    long n = 0;
    if (pq_db_open(&d, db, "{}", &err) == 0)
        pq_db_count(d, &n, &err);
    pq_db_close(d);
    put("sweep.db", data, size); /* as it was, before pq_db_open wrote its tables */
    if (pq_is_sqlite(db))
        pq_report_db(db, out, true, &err);
    pq_figures_release(); /* fontconfig's caches, as polyq report lets go of them */
    pq_rmtree(out);
    remove(db);
    return 0;
}

/* polyq compare on the bytes as a --log-sentences file and as a results file: one against the
 * other, and two named entries of the first. */
int pq_fuzz_compare(const uint8_t *data, size_t size)
{
    char jl[160], js[160];
    snprintf(jl, sizeof jl, "%s/c.jsonl", scratch());
    snprintf(js, sizeof js, "%s/c.json", scratch());
    put("c.jsonl", data, size);
    put("c.json", data, size);
    FILE *out = fopen("/dev/null", "w");
    if (!out)
        return 0;
    polyq_err err = {0};
    pq_compare_opts a = {.a = jl, .b = js, .n_boot = 100};
    pq_compare(&a, out, &err);
    pq_compare_opts b = {.a = jl, .entry_a = "int8", .entry_b = "int4-g32", .n_boot = 100};
    pq_compare(&b, out, &err);
    fclose(out);
    remove(jl);
    remove(js);
    return 0;
}

/* A whole sweep plan, validated as polyq sweep validates it before computing: keys and
 * values, specs, languages against the data, every model found (offline: nothing is fetched),
 * then the database opened for --status. */
int pq_fuzz_sweep_plan(const uint8_t *data, size_t size)
{
    setenv("HF_HUB_OFFLINE", "1", 1);
    char plan[160], db[160];
    snprintf(plan, sizeof plan, "%s/plan.json", scratch());
    snprintf(db, sizeof db, "%s/plan.db", scratch());
    put("plan.json", data, size);
    remove(db);
    FILE *devnull = fopen("/dev/null", "w");
    pq_sweep_opts o = {.plan_path = plan, .db_path = db, .status = true, .out = devnull};
    polyq_err err = {0};
    pq_sweep_run(&o, &err);
    if (devnull)
        fclose(devnull);
    remove(db);
    return 0;
}

const pq_fuzz_target pq_fuzz_targets[] = {
    {"safetensors", pq_fuzz_safetensors},
    {"tokenizer_json", pq_fuzz_tokenizer_json},
    {"encode", pq_fuzz_encode},
    {"qspec", pq_fuzz_qspec},
    {"torchbin", pq_fuzz_torchbin},
    {"config", pq_fuzz_config},
    {"vocab_merges", pq_fuzz_vocab_merges},
    {"corpus", pq_fuzz_corpus},
    {"spm_model", pq_fuzz_spm_model},
    {"vocab_txt", pq_fuzz_vocab_txt},
    {"qfile", pq_fuzz_qfile},
    {"gguf", pq_fuzz_gguf},
    {"plan", pq_fuzz_plan},
    {"wire", pq_fuzz_wire},
    {"sweep_db", pq_fuzz_sweep_db},
    {"sweep_plan", pq_fuzz_sweep_plan},
    {"compare", pq_fuzz_compare},
    {NULL, NULL},
};
