/* Models as llama.cpp's GGUF files (model.h: pq_gguf_write_model, pq_gguf_load_quantized).
 *
 * Written as llama.cpp's convert_hf_to_gguf.py names and lays out the GPT-2 and Llama
 * families (Mistral is written as "llama"): tensor names blk.N.attn_qkv / attn_q / attn_k /
 * attn_v / attn_output / ffn_gate / ffn_up / ffn_down / attn_norm / ffn_norm, token_embd,
 * position_embd, output_norm, output; matrices with ne = {inputs, outputs} (rows of inputs);
 * Llama's q and k rows permuted from Hugging Face's rotate-half order to ggml's interleaved
 * rotary pairs. Quantized linears keep their llama.cpp blocks byte for byte; polyq's own
 * integer layouts and bitsandbytes' have no ggml type and are refused. The tokenizer goes
 * into tokenizer.ggml.* (gpt2: byte-level BPE tokens and merges; llama: sentencepiece pieces,
 * scores and token types). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "format/gguf.h"
#include "model/model.h"
#include "quant/kquants.h"

static int ggml_type_of(const pq_linear *lin, uint32_t *type)
{
    static const struct { pq_qfmt f; uint32_t t; } map[] = {
        {PQ_QF_Q8_0, PQ_GGML_Q8_0}, {PQ_QF_Q4_0, PQ_GGML_Q4_0}, {PQ_QF_Q4_1, PQ_GGML_Q4_1},
        {PQ_QF_Q5_0, PQ_GGML_Q5_0}, {PQ_QF_Q5_1, PQ_GGML_Q5_1}, {PQ_QF_Q2_K, PQ_GGML_Q2_K},
        {PQ_QF_Q3_K, PQ_GGML_Q3_K}, {PQ_QF_Q4_K, PQ_GGML_Q4_K}, {PQ_QF_Q5_K, PQ_GGML_Q5_K},
        {PQ_QF_Q6_K, PQ_GGML_Q6_K}};
    if (!lin->q) {
        *type = PQ_GGML_F32;
        return 0;
    }
    if (lin->q->in_scale || lin->q->act8)
        return -1;
    for (size_t i = 0; i < sizeof map / sizeof map[0]; i++)
        if (map[i].f == lin->q->fmt) {
            *type = map[i].t;
            return 0;
        }
    return -1;
}

/* Row r of the GGUF tensor holds Hugging Face row perm(r): within each head of D rows,
 * ggml pairs (2i, 2i+1) are HF's (i, i + D/2). */
static int hf_row(int r, int D, bool permute)
{
    if (!permute)
        return r;
    int h = r / D, j = r % D;
    return h * D + (j % 2) * (D / 2) + j / 2;
}

typedef struct {
    pq_gguf_w *w;
    polyq_err *err;
    const char *path;
    int rc;
} writer;

static void put_f32(writer *wr, const char *name, const float *v, int n_dims, uint64_t ne0, uint64_t ne1)
{
    if (wr->rc || !v)
        return;
    uint64_t ne[2] = {ne0, ne1};
    if (pq_gguf_w_tensor(wr->w, name, PQ_GGML_F32, n_dims, ne, v, sizeof(float) * ne0 * (n_dims > 1 ? ne1 : 1)))
        wr->rc = pq_fail(wr->err, POLYQ_NOMEM, "out of memory writing %s", wr->path);
}

static void put_linear(writer *wr, const char *name, const pq_linear *lin, int head_dim, bool permute)
{
    if (wr->rc || !lin->n_out)
        return;
    uint32_t type;
    if (ggml_type_of(lin, &type)) {
        wr->rc = pq_fail(wr->err, POLYQ_UNSUPPORTED,
                         "%s: %s has no llama.cpp type (GGUF holds q8_0, q4_0, q4_1, q5_0, q5_1, q2_k .. q6_k, "
                         "q4_k_m or full precision)", wr->path, name);
        return;
    }
    int N = lin->n_out, K = lin->n_in;
    size_t row = lin->q ? lin->q->row_bytes : sizeof(float) * (size_t)K;
    uint8_t *data = pq_alloc_array((size_t)N, row);
    if (!data) {
        wr->rc = pq_fail(wr->err, POLYQ_NOMEM, "out of memory writing %s", wr->path);
        return;
    }
    for (int r = 0; r < N; r++) {
        int src = hf_row(r, head_dim, permute);
        if (lin->q)
            memcpy(data + (size_t)r * row, lin->q->data + (size_t)src * row, row);
        else
            pq_linear_row_f32(lin, src, (float *)(void *)(data + (size_t)r * row));
    }
    uint64_t ne[2] = {(uint64_t)K, (uint64_t)N};
    if (pq_gguf_w_tensor(wr->w, name, type, 2, ne, data, (size_t)N * row))
        wr->rc = pq_fail(wr->err, POLYQ_NOMEM, "out of memory writing %s", wr->path);
    free(data);
}

static int put_vocab(pq_gguf_w *w, const pq_model *m, bool llama, polyq_err *err)
{
    pq_tok_vocab v;
    if (!m->tok)
        return pq_fail(err, POLYQ_INVALID_ARG, "%s: the model has no tokenizer to write into GGUF", m->dir);
    if (pq_tok_export(m->tok, &v, err))
        return -1;
    int n_bytes = 0;
    for (int32_t i = 0; i < v.n; i++)
        n_bytes += v.types[i] == 6;
    if (llama && n_bytes != 256) { /* llama.cpp's sentencepiece tokenizer falls back to them */
        pq_tok_vocab_free(&v);
        return pq_fail(err, POLYQ_UNSUPPORTED,
                       "%s: llama.cpp reads a Llama-family vocabulary with the 256 byte tokens <0x00>..<0xFF>; "
                       "this tokenizer has %d (no byte fallback)", m->dir, n_bytes);
    }
    int rc = pq_gguf_w_str(w, "tokenizer.ggml.model", llama ? "llama" : "gpt2");
    if (!llama)
        rc |= pq_gguf_w_str(w, "tokenizer.ggml.pre", "gpt-2");
    rc |= pq_gguf_w_strs(w, "tokenizer.ggml.tokens", (const char *const *)v.tokens, (size_t)v.n);
    rc |= pq_gguf_w_arr(w, "tokenizer.ggml.token_type", PQ_GGUF_I32, v.types, (size_t)v.n);
    if (llama) { /* sentencepiece BPE: earlier ids merge first */
        float *scores = malloc(sizeof(float) * (size_t)(v.n ? v.n : 1));
        for (int32_t i = 0; scores && i < v.n; i++)
            scores[i] = v.types[i] == 1 ? -(float)i : 0.0f;
        rc |= scores ? pq_gguf_w_arr(w, "tokenizer.ggml.scores", PQ_GGUF_F32, scores, (size_t)v.n) : -1;
        free(scores);
    } else
        rc |= pq_gguf_w_strs(w, "tokenizer.ggml.merges", (const char *const *)v.merges, v.n_merges);
    int32_t bos = pq_model_bos(m), eos = m->tok ? pq_tok_eos(m->tok) : -1;
    if (bos >= 0)
        rc |= pq_gguf_w_u32(w, "tokenizer.ggml.bos_token_id", (uint32_t)bos);
    if (eos >= 0)
        rc |= pq_gguf_w_u32(w, "tokenizer.ggml.eos_token_id", (uint32_t)eos);
    pq_tok_vocab_free(&v);
    return rc ? pq_fail(err, POLYQ_NOMEM, "out of memory writing the vocabulary") : 0;
}

int pq_gguf_write_model(const char *path, const pq_model *q, const char *spec_name, polyq_err *err)
{
    const pq_config *c = &q->cfg;
    bool gpt2 = !strcmp(c->model_type, "gpt2");
    bool llama = !strcmp(c->model_type, "llama") || !strcmp(c->model_type, "mistral");
    if (!gpt2 && !llama)
        return pq_fail(err, POLYQ_UNSUPPORTED,
                       "%s: GGUF output is written for the GPT-2 and Llama (Mistral) families; this model is \"%s\" "
                       "(write polyq's own format with --out DIR)", path, c->model_type);
    if (llama && c->rope.kind != PQ_ROPE_DEFAULT)
        return pq_fail(err, POLYQ_UNSUPPORTED, "%s: GGUF output of models with rope scaling is not written", path);
    pq_gguf_w *w = pq_gguf_w_new();
    if (!w)
        return pq_fail(err, POLYQ_NOMEM, "out of memory");
    const char *a = gpt2 ? "gpt2" : "llama";
    char key[128];
    int rc = pq_gguf_w_str(w, "general.architecture", a);
    rc |= pq_gguf_w_str(w, "general.name", q->dir ? q->dir : "polyq");
    rc |= pq_gguf_w_str(w, "polyq.quant_spec", spec_name);
#define KEY(suffix) (snprintf(key, sizeof key, "%s." suffix, a), key)
    rc |= pq_gguf_w_u32(w, KEY("context_length"), (uint32_t)c->n_ctx);
    rc |= pq_gguf_w_u32(w, KEY("embedding_length"), (uint32_t)c->n_embd);
    rc |= pq_gguf_w_u32(w, KEY("feed_forward_length"), (uint32_t)c->n_inner);
    rc |= pq_gguf_w_u32(w, KEY("block_count"), (uint32_t)c->n_layer);
    rc |= pq_gguf_w_u32(w, KEY("attention.head_count"), (uint32_t)c->n_head);
    if (gpt2)
        rc |= pq_gguf_w_f32(w, KEY("attention.layer_norm_epsilon"), c->ln_eps);
    else {
        rc |= pq_gguf_w_u32(w, KEY("attention.head_count_kv"), (uint32_t)c->n_kv_head);
        rc |= pq_gguf_w_f32(w, KEY("attention.layer_norm_rms_epsilon"), c->ln_eps);
        rc |= pq_gguf_w_f32(w, KEY("rope.freq_base"), c->rope.theta);
        rc |= pq_gguf_w_u32(w, KEY("rope.dimension_count"), (uint32_t)(c->n_embd / c->n_head));
        if (c->window > 0 && c->window < c->n_ctx)
            rc |= pq_gguf_w_u32(w, KEY("attention.sliding_window"), (uint32_t)c->window);
    }
#undef KEY
    if (rc) {
        pq_gguf_w_free(w);
        return pq_fail(err, POLYQ_NOMEM, "out of memory");
    }
    if (put_vocab(w, q, llama, err)) {
        pq_gguf_w_free(w);
        return -1;
    }
    writer wr = {w, err, path, 0};
    int C = c->n_embd, D = C / c->n_head;
    put_f32(&wr, "token_embd.weight", q->wte, 2, (uint64_t)C, (uint64_t)c->n_vocab);
    if (gpt2)
        put_f32(&wr, "position_embd.weight", q->wpe, 2, (uint64_t)C, (uint64_t)c->n_ctx);
    for (int l = 0; l < c->n_layer && !wr.rc; l++) {
        const pq_layer *L = &q->layers[l];
        char n[96];
#define N(suffix) (snprintf(n, sizeof n, "blk.%d." suffix, l), n)
        put_f32(&wr, N("attn_norm.weight"), L->ln1_w, 1, (uint64_t)C, 0);
        put_f32(&wr, N("attn_norm.bias"), L->ln1_b, 1, (uint64_t)C, 0);
        put_f32(&wr, N("ffn_norm.weight"), L->ln2_w, 1, (uint64_t)C, 0);
        put_f32(&wr, N("ffn_norm.bias"), L->ln2_b, 1, (uint64_t)C, 0);
        if (gpt2) {
            put_linear(&wr, N("attn_qkv.weight"), &L->qkv, D, false);
            put_f32(&wr, N("attn_qkv.bias"), L->qkv.bias, 1, (uint64_t)L->qkv.n_out, 0);
            put_f32(&wr, N("attn_output.bias"), L->attn_out.bias, 1, (uint64_t)C, 0);
            put_f32(&wr, N("ffn_up.bias"), L->up.bias, 1, (uint64_t)L->up.n_out, 0);
            put_f32(&wr, N("ffn_down.bias"), L->down.bias, 1, (uint64_t)C, 0);
        } else {
            put_linear(&wr, N("attn_q.weight"), &L->q, D, true);
            put_linear(&wr, N("attn_k.weight"), &L->k, D, true);
            put_linear(&wr, N("attn_v.weight"), &L->v, D, false);
            put_linear(&wr, N("ffn_gate.weight"), &L->gate, D, false);
        }
        put_linear(&wr, N("attn_output.weight"), &L->attn_out, D, false);
        put_linear(&wr, N("ffn_up.weight"), &L->up, D, false);
        put_linear(&wr, N("ffn_down.weight"), &L->down, D, false);
#undef N
    }
    put_f32(&wr, "output_norm.weight", q->lnf_w, 1, (uint64_t)C, 0);
    put_f32(&wr, "output_norm.bias", q->lnf_b, 1, (uint64_t)C, 0);
    if (q->lm_head.q || q->lm_head.w != q->wte) /* a tied, unquantized head is token_embd */
        put_linear(&wr, "output.weight", &q->lm_head, D, false);
    rc = wr.rc ? wr.rc : pq_gguf_w_save(w, path, err);
    pq_gguf_w_free(w);
    return rc;
}

/* ---- reading a GGUF back as a quantized copy of its base model ----------------------------- */

static int take_linear(pq_model *q, const pq_gguf *g, const char *name, pq_linear *lin, int head_dim,
                       bool permute, polyq_err *err)
{
    if (!lin->n_out)
        return 0;
    const pq_gguf_tensor *t = pq_gguf_find_tensor(g, name);
    if (!t)
        return pq_fail(err, POLYQ_FORMAT, "%s: tensor \"%s\" is missing", g->path, name);
    if (t->n_dims != 2 || t->ne[0] != (uint64_t)lin->n_in || t->ne[1] != (uint64_t)lin->n_out)
        return pq_fail(err, POLYQ_FORMAT, "%s: tensor \"%s\" is [%llu, %llu], the model's is [%d, %d]: not the "
                       "model this file was made from", g->path, name, (unsigned long long)t->ne[1],
                       (unsigned long long)t->ne[0], lin->n_out, lin->n_in);
    static const struct { uint32_t t; const char *spec; } map[] = {
        {PQ_GGML_Q8_0, "q8_0"}, {PQ_GGML_Q4_0, "q4_0"}, {PQ_GGML_Q4_1, "q4_1"}, {PQ_GGML_Q5_0, "q5_0"},
        {PQ_GGML_Q5_1, "q5_1"}, {PQ_GGML_Q2_K, "q2_k"}, {PQ_GGML_Q3_K, "q3_k"}, {PQ_GGML_Q4_K, "q4_k"},
        {PQ_GGML_Q5_K, "q5_k"}, {PQ_GGML_Q6_K, "q6_k"}};
    const char *spec_name = NULL;
    for (size_t i = 0; i < sizeof map / sizeof map[0]; i++)
        if (map[i].t == t->type)
            spec_name = map[i].spec;
    if (!spec_name) /* full precision in the file: the base model's weights serve */
        return t->type == PQ_GGML_F32 || t->type == PQ_GGML_F16 || t->type == PQ_GGML_BF16
                   ? 0
                   : pq_fail(err, POLYQ_UNSUPPORTED, "%s: tensor \"%s\" has ggml type %u", g->path, name, t->type);
    /* a zero matrix quantized in the file's format gives the layout; the bytes come from the file */
    pq_qspec spec;
    if (pq_qspec_parse(spec_name, &spec, err))
        return -1;
    float *zero = pq_calloc_array((size_t)lin->n_in, sizeof(float));
    pq_qweight *qw = NULL;
    int rc = zero ? pq_qweight_rtn(zero, 1, lin->n_in, &spec, &qw, err) : pq_fail(err, POLYQ_NOMEM, "out of memory");
    free(zero);
    if (rc)
        return rc;
    size_t row = qw->row_bytes;
    uint8_t *data = pq_alloc_array((size_t)lin->n_out, row);
    if (!data || t->nbytes != row * (size_t)lin->n_out) {
        pq_qweight_free(qw);
        free(data);
        return data ? pq_fail(err, POLYQ_FORMAT, "%s: tensor \"%s\" has %zu bytes, expected %zu", g->path, name,
                              t->nbytes, row * (size_t)lin->n_out)
                    : pq_fail(err, POLYQ_NOMEM, "out of memory");
    }
    for (int r = 0; r < lin->n_out; r++)
        memcpy(data + (size_t)hf_row(r, head_dim, permute) * row, t->data + (size_t)r * row, row);
    free(qw->data);
    qw->data = data;
    qw->n_out = lin->n_out;
    return pq_model_set_qweight(q, lin, qw, err);
}

int pq_gguf_load_quantized(pq_model **out, const pq_model *base, const char *path, char **spec_name,
                           polyq_err *err)
{
    *out = NULL;
    *spec_name = NULL;
    pq_gguf g;
    if (pq_gguf_open(&g, path, err))
        return -1;
    const pq_config *c = &base->cfg;
    bool gpt2 = !strcmp(c->model_type, "gpt2");
    const char *arch;
    size_t alen;
    int rc = pq_gguf_get_str(&g, "general.architecture", &arch, &alen, err);
    if (!rc && (!(gpt2 || !strcmp(c->model_type, "llama") || !strcmp(c->model_type, "mistral")) ||
                alen != strlen(gpt2 ? "gpt2" : "llama") || memcmp(arch, gpt2 ? "gpt2" : "llama", alen)))
        rc = pq_fail(err, POLYQ_FORMAT, "%s: a GGUF of architecture \"%.*s\" cannot be a quantized copy of %s (%s)",
                     path, (int)alen, arch, base->dir, c->model_type);
    pq_qspec none;
    pq_model *q = NULL;
    if (!rc)
        rc = pq_qspec_parse("fp32", &none, err) || pq_model_quantize(&q, base, &none, err);
    int D = c->n_embd / c->n_head;
    for (int l = 0; l < c->n_layer && !rc; l++) {
        pq_layer *L = &q->layers[l];
        char n[96];
#define N(suffix) (snprintf(n, sizeof n, "blk.%d." suffix, l), n)
        if (gpt2)
            rc = take_linear(q, &g, N("attn_qkv.weight"), &L->qkv, D, false, err);
        else
            rc = take_linear(q, &g, N("attn_q.weight"), &L->q, D, true, err) ||
                 take_linear(q, &g, N("attn_k.weight"), &L->k, D, true, err) ||
                 take_linear(q, &g, N("attn_v.weight"), &L->v, D, false, err) ||
                 take_linear(q, &g, N("ffn_gate.weight"), &L->gate, D, false, err);
        rc = rc || take_linear(q, &g, N("attn_output.weight"), &L->attn_out, D, false, err) ||
             take_linear(q, &g, N("ffn_up.weight"), &L->up, D, false, err) ||
             take_linear(q, &g, N("ffn_down.weight"), &L->down, D, false, err);
#undef N
    }
    if (!rc && pq_gguf_find_tensor(&g, "output.weight"))
        rc = take_linear(q, &g, "output.weight", &q->lm_head, D, false, err);
    const char *s = NULL;
    size_t slen = 0;
    polyq_err ignore = {0};
    if (!rc && pq_gguf_get_str(&g, "polyq.quant_spec", &s, &slen, &ignore) == 0 && slen < sizeof q->spec.name) {
        pq_qspec sp;
        char name[64];
        snprintf(name, sizeof name, "%.*s", (int)slen, s);
        if (pq_qspec_parse(name, &sp, &ignore) == 0)
            q->spec = sp;
    }
    if (!rc && q->spec.none) { /* made by another tool (llama-quantize): named after the file */
        const char *base_name = strrchr(path, '/') ? strrchr(path, '/') + 1 : path;
        q->spec.none = false;
        snprintf(q->spec.name, sizeof q->spec.name, "gguf:%.50s", base_name);
    }
    if (!rc)
        *spec_name = pq_strdup(q->spec.name);
    pq_gguf_close(&g);
    if (rc) {
        pq_model_free(q);
        return -1;
    }
    *out = q;
    return 0;
}
