/* Memory estimate (see memory.h). The tensor table is read with the same safetensors and
 * torch readers the model uses (mapping costs nothing until pages are read); the config keys
 * of every supported family are tried in turn. */
#include "eval/memory.h"

#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "base/base.h"
#include "eval/eval.h"
#include "format/gguf.h"
#include "format/json.h"
#include "format/safetensors.h"
#include "kernels/ops.h"
#include "model/model.h"

static int64_t first_int(const json_t *cfg, const char *const *keys, int64_t dflt)
{
    for (int i = 0; keys[i]; i++) {
        json_t *v = json_object_get(cfg, keys[i]);
        if (json_is_integer(v) && json_integer_value(v) > 0)
            return json_integer_value(v);
    }
    return dflt;
}

double pq_parse_size(const char *s)
{
    char *end;
    double v = strtod(s, &end);
    if (end == s || v < 0)
        return -1;
    double mult = 1;
    switch (*end) {
    case 'k':
    case 'K':
        mult = 1024.0;
        end++;
        break;
    case 'm':
    case 'M':
        mult = 1024.0 * 1024;
        end++;
        break;
    case 'g':
    case 'G':
        mult = 1024.0 * 1024 * 1024;
        end++;
        break;
    case 't':
    case 'T':
        mult = 1024.0 * 1024 * 1024 * 1024;
        end++;
        break;
    default:
        break;
    }
    if (*end == 'i' || *end == 'B' || *end == 'b')
        end += *end == 'i' ? 1 : 0, end += (*end == 'B' || *end == 'b');
    return *end ? -1 : v * mult;
}

double pq_memory_available(void)
{
    FILE *f = fopen("/proc/meminfo", "r");
    char line[256];
    double kb = 0;
    while (f && fgets(line, sizeof line, f))
        if (sscanf(line, "MemAvailable: %lf kB", &kb) == 1)
            break;
    if (f)
        fclose(f);
    return kb * 1024;
}

/* The quantized copies, batch buffers and the rest, from the model's shape and the count of
 * weights in its block linears: shared by folders and GGUF files. */
static void estimate_rest(double V, double C, double ctx, double I, double linear,
                          const pq_qspec *specs, int n_q, int batch_tokens, int window_tokens,
                          int threads, pq_mem_plan *out)
{
    for (int q = 0; q < n_q; q++) {
        if (specs[q].none)
            continue;
        double g = specs[q].gran == PQ_GRAN_GROUP     ? specs[q].group
                   : specs[q].gran == PQ_GRAN_CHANNEL ? C
                                                      : 1e12;
        double bits = specs[q].bits + (32.0 + (specs[q].sym ? 0 : 8)) / g;
        out->weights_q += linear * bits / 8 + (specs[q].head ? V * C * bits / 8 : 0);
    }
    /* lockstep buffers: two logit matrices and the activations of one batch, whose rows are
     * touched up to the batch or the longest window, whichever is longer (the matrices are
     * reserved for the model's whole context, but pages untouched cost nothing) */
    double ectx = ctx < PQ_EVAL_MAX_CONTEXT ? ctx : PQ_EVAL_MAX_CONTEXT; /* pq_eval_context */
    double win = window_tokens < 0 ? ectx : window_tokens < ectx ? window_tokens : ectx;
    double M = batch_tokens > win ? batch_tokens : win;
    out->buffers = 2.0 * M * V * 4 + M * (6 * C + 2 * I) * 4 +
                   (double)threads * PQ_OPS_CHUNK * (I > C ? I : C) * 4;
    out->base = 16.0 * 1024 * 1024; /* the process, its libraries and BLAS buffers */
    out->total = out->weights_fp + out->weights_q + out->buffers + out->tokenizer + out->base;
}

/* A GGUF model (pq_model_open_gguf): F32, F16 and BF16 tensors and the quantized linears and
 * token embeddings used in place, other quantized tensors (GPT-2's position embeddings)
 * dequantized to f32 copies (their file pages read once); the shape from ARCH.* metadata; the
 * vocabulary's structures about 12 times the bytes of its token and merge strings. */
static int estimate_gguf(const char *path, const pq_qspec *specs, int n_q, int batch_tokens,
                         int window_tokens, int threads, pq_mem_plan *out, polyq_err *err)
{
    pq_gguf g;
    int rc = pq_gguf_open(&g, path, err);
    if (rc)
        return rc;
    const char *arch = NULL;
    size_t alen = 0;
    char key[96];
    int64_t V = 0, C = 768, ctx = 2048, I = 0;
    polyq_err ignore = {0};
    if (pq_gguf_get_str(&g, "general.architecture", &arch, &alen, &ignore) == 0 && alen < 48) {
#define GET(suffix, dst)                                                                           \
    (snprintf(key, sizeof key, "%.*s." suffix, (int)alen, arch),                                   \
     pq_gguf_get_int(&g, key, &(dst), &ignore))
        GET("embedding_length", C);
        GET("context_length", ctx);
        GET("feed_forward_length", I);
        GET("vocab_size", V);
#undef GET
    }
    const pq_gguf_kv *tokens = pq_gguf_find_kv(&g, "tokenizer.ggml.tokens");
    if (V <= 0)
        V = tokens ? (int64_t)tokens->n : 32000;
    if (I <= 0)
        I = 4 * C;
    double linear = 0, strings = 0;
    for (size_t i = 0; i < g.n_t; i++) {
        const pq_gguf_tensor *t = &g.t[i];
        double numel = 1;
        for (int d = 0; d < t->n_dims; d++)
            numel *= (double)t->ne[d];
        bool plain = t->type == PQ_GGML_F32 || t->type == PQ_GGML_F16 || t->type == PQ_GGML_BF16;
        bool embedding = t->n_dims == 2 && ((int64_t)t->ne[0] == V || (int64_t)t->ne[1] == V);
        bool packed = !plain && t->n_dims == 2 && !strstr(t->name, "position_embd");
        out->weights_fp += plain || packed ? (double)t->nbytes : 4.0 * numel + (double)t->nbytes;
        if (t->n_dims == 2 && !embedding)
            linear += numel;
    }
    /* the token and merge strings (and the keys after them) lie between the token list and
     * the tensor data */
    if (tokens && g.n_t && g.t[0].data > tokens->at)
        strings = (double)(g.t[0].data - tokens->at);
    out->tokenizer = 12.0 * strings;
    pq_gguf_close(&g);
    estimate_rest((double)V, (double)C, (double)ctx, (double)I, linear, specs, n_q, batch_tokens,
                  window_tokens, threads, out);
    return 0;
}

int pq_memory_estimate(const char *dir, const pq_qspec *specs, int n_q, int batch_tokens,
                       int window_tokens, int threads, pq_mem_plan *out, polyq_err *err)
{
    memset(out, 0, sizeof *out);
    char magic[4] = {0};
    if (pq_read_head(dir, magic, 4) && !memcmp(magic, "GGUF", 4))
        return estimate_gguf(dir, specs, n_q, batch_tokens, window_tokens, threads, out, err);
    char *cfg_path = pq_path_join(dir, "config.json");
    json_t *cfg = NULL;
    pq_tensors ts = {0};
    int rc = !cfg_path ? pq_fail(err, POLYQ_NOMEM, "out of memory")
             : !pq_file_exists(cfg_path)
                 ? pq_fail(err, POLYQ_NOT_FOUND,
                           "%s: no config.json: not a Hugging Face model directory", dir)
                 : pq_json_load(cfg_path, 16u << 20, &cfg, err);
    if (!rc)
        rc = pq_tensors_open_dir(&ts, dir, err);
    if (rc)
        goto out;
    static const char *const k_vocab[] = {"vocab_size", NULL};
    static const char *const k_embd[] = {"hidden_size", "n_embd", "n_embed", "d_model", NULL};
    static const char *const k_ctx[] = {"n_positions", "max_position_embeddings", "seq_length",
                                        NULL};
    static const char *const k_inner[] = {"intermediate_size", "n_inner", "ffn_dim", NULL};
    double V = (double)first_int(cfg, k_vocab, 50257), C = (double)first_int(cfg, k_embd, 768);
    double ctx = (double)first_int(cfg, k_ctx, 2048),
           I = (double)first_int(cfg, k_inner, (int64_t)(4 * C));
    /* weights: F32 used in place; F16/BF16 matrices of linear layers (and an untied LM head)
     * too; other tensors become f32 copies, their file pages read once */
    const char *mt = NULL;
    pq_json_str(cfg, "model_type", false, &mt, cfg_path, NULL);
    const pq_arch *arch = pq_arch_find(mt);
    const char *copied = arch ? arch->mem_copied : NULL;
    double linear = 0;
    for (size_t i = 0; i < ts.n; i++) {
        const pq_tensor_info *t = &ts.t[i];
        bool embedding = t->n_dims == 2 && ((double)t->shape[0] == V || (double)t->shape[1] == V);
        bool head = strstr(t->name, "lm_head") || strstr(t->name, "embed_out");
        bool stored = t->dtype == PQ_DT_F32 ||
                      ((t->dtype == PQ_DT_F16 || t->dtype == PQ_DT_BF16) && t->n_dims == 2 &&
                       (head || !embedding) && !(copied && strstr(t->name, copied)));
        out->weights_fp += stored ? (double)t->nbytes : 4.0 * (double)t->numel + (double)t->nbytes;
        if (t->n_dims == 2 && !embedding)
            linear += (double)t->numel;
    }
    if (arch && arch->mem_linears_copied)
        out->weights_fp += 4.0 * linear;
    struct stat st;
    char *tj = pq_path_join(dir, "tokenizer.json");
    if (tj && stat(tj, &st) == 0)
        out->tokenizer = 12.0 * (double)st.st_size; /* the parsed JSON tree, briefly */
    free(tj);
    estimate_rest(V, C, ctx, I, linear, specs, n_q, batch_tokens, window_tokens, threads, out);
out:
    pq_tensors_close(&ts);
    json_decref(cfg);
    free(cfg_path);
    return rc;
}
