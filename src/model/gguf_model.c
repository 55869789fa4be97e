/* Models as llama.cpp's GGUF files (model.h: pq_gguf_write_model, pq_gguf_load_quantized).
 *
 * Written as llama.cpp's convert_hf_to_gguf.py names and lays out each family that has a GGUF
 * table in its pq_arch entry (pq_gguf_family: today GPT-2 and Llama; Mistral is written as
 * "llama"): tensor names and what each is from the family's table (blk.N.attn_qkv / attn_q /
 * ... / ffn_down, token_embd, output_norm, output), metadata keys by its flags; matrices with
 * ne = {inputs, outputs} (rows of inputs); rows marked 'q'/'k' permuted from Hugging Face's
 * rotate-half order to ggml's interleaved rotary pairs. Quantized linears keep their blocks
 * byte for byte (a format's ggml type is in its traits); polyq's own integer layouts and
 * bitsandbytes' have none and are refused. The tokenizer goes into tokenizer.ggml.* (gpt2:
 * byte-level BPE tokens and merges; llama: sentencepiece pieces, scores and token types). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <stdint.h>

#include "base/base.h"
#include "format/gguf.h"
#include "model/model.h"
#include "quant/kquants.h"
#include "tok/legacy.h"

static int ggml_type_of(const pq_linear *lin, uint32_t *type)
{
    if (!lin->q) {
        *type = PQ_GGML_F32;
        return 0;
    }
    int t = pq_qfmt_get(lin->q->fmt)->ggml_type;
    if (lin->q->in_scale || lin->q->act8 || t < 0)
        return -1;
    *type = (uint32_t)t;
    return 0;
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

static void put_f32(writer *wr, const char *name, const float *v, int n_dims, uint64_t ne0,
                    uint64_t ne1)
{
    if (wr->rc || !v)
        return;
    uint64_t ne[2] = {ne0, ne1};
    if (pq_gguf_w_tensor(wr->w, name, PQ_GGML_F32, n_dims, ne, v,
                         sizeof(float) * ne0 * (n_dims > 1 ? ne1 : 1)))
        wr->rc = pq_fail(wr->err, POLYQ_NOMEM, "out of memory writing %s", wr->path);
}

/* The names of the formats that have a ggml type, for messages (a static buffer). */
static const char *ggml_formats(void)
{
    static char buf[256];
    size_t at = 0;
    buf[0] = 0;
    for (int f = 0; f < pq_qfmt_count(); f++) {
        const pq_qfmt_traits *t = pq_qfmt_get((pq_qfmt)f);
        int w = t->ggml_type < 0
                    ? 0
                    : snprintf(buf + at, sizeof buf - at, "%s%s", at ? ", " : "", t->name);
        if (w < 0 || (size_t)w >= sizeof buf - at)
            break;
        at += (size_t)w;
    }
    return buf;
}

/* The rows of n linears (of one format and width) one after another as one tensor. */
static void put_linear_parts(writer *wr, const char *name, const pq_linear *const *parts, int n,
                             int head_dim, bool permute)
{
    if (wr->rc || !parts[0]->n_out)
        return;
    uint32_t type, t2;
    if (ggml_type_of(parts[0], &type)) {
        wr->rc =
            pq_fail(wr->err, POLYQ_UNSUPPORTED,
                    "%s: %s has no llama.cpp type (GGUF holds the formats with a ggml type, %s, "
                    "q4_k_m or full precision)",
                    wr->path, name, ggml_formats());
        return;
    }
    int N = 0, K = parts[0]->n_in;
    size_t row = parts[0]->q ? parts[0]->q->row_bytes : sizeof(float) * (size_t)K;
    for (int i = 0; i < n; i++) {
        N += parts[i]->n_out;
        size_t ri = parts[i]->q ? parts[i]->q->row_bytes : sizeof(float) * (size_t)K;
        if (parts[i]->n_in != K || ggml_type_of(parts[i], &t2) || t2 != type || ri != row) {
            wr->rc = pq_fail(wr->err, POLYQ_UNSUPPORTED,
                             "%s: %s joins linears stored in different formats, which one GGUF "
                             "tensor cannot hold",
                             wr->path, name);
            return;
        }
    }
    uint8_t *data = pq_alloc_array((size_t)N, row);
    if (!data) {
        wr->rc = pq_fail(wr->err, POLYQ_NOMEM, "out of memory writing %s", wr->path);
        return;
    }
    for (int i = 0, r0 = 0; i < n; r0 += parts[i]->n_out, i++) {
        const pq_linear *lin = parts[i];
        for (int r = 0; r < lin->n_out; r++) {
            int src = hf_row(r, head_dim, permute);
            uint8_t *dst = data + (size_t)(r0 + r) * row;
            if (lin->q)
                memcpy(dst, lin->q->data + (size_t)src * row, row);
            else
                pq_linear_row_f32(lin, src, (float *)(void *)dst);
        }
    }
    uint64_t ne[2] = {(uint64_t)K, (uint64_t)N};
    if (pq_gguf_w_tensor(wr->w, name, type, 2, ne, data, (size_t)N * row))
        wr->rc = pq_fail(wr->err, POLYQ_NOMEM, "out of memory writing %s", wr->path);
    free(data);
}

static void put_linear(writer *wr, const char *name, const pq_linear *lin, int head_dim,
                       bool permute)
{
    const pq_linear *parts[1] = {lin};
    put_linear_parts(wr, name, parts, 1, head_dim, permute);
}

static const char *gguf_pre_name_of(const pq_tokenizer *tok, char *name, size_t n);
static void gguf_pre_names(char *buf, size_t n);

/* The vocabulary as llama.cpp reads it: "llama" (sentencepiece, with the 256 byte tokens) where
 * the family's files have it and the tokenizer falls back to bytes, else "gpt2" (byte-level BPE)
 * with the tokenizer.ggml.pre whose expressions are the tokenizer's pre-tokenizer. */
static int put_vocab(pq_gguf_w *w, const pq_model *m, bool fam_llama, polyq_err *err)
{
    pq_tok_vocab v;
    if (!m->tok)
        return pq_fail(err, POLYQ_INVALID_ARG, "%s: the model has no tokenizer to write into GGUF",
                       m->dir);
    bool byte_level, ignore_merges;
    pq_tok_pre_json(m->tok, &byte_level, &ignore_merges);
    if (pq_tok_export(m->tok, &v, err))
        return -1;
    int n_bytes = 0;
    for (int32_t i = 0; i < v.n; i++)
        n_bytes += v.types[i] == 6;
    bool llama = fam_llama && (n_bytes == 256 || !byte_level);
    if (llama && n_bytes != 256) { /* llama.cpp's sentencepiece tokenizer falls back to them */
        pq_tok_vocab_free(&v);
        return pq_fail(err, POLYQ_UNSUPPORTED,
                       "%s: llama.cpp reads a sentencepiece vocabulary with the 256 byte tokens "
                       "<0x00>..<0xFF>, or a byte-level BPE; this tokenizer is neither (%d byte "
                       "tokens)",
                       m->dir, n_bytes);
    }
    char pre_buf[32];
    const char *pre = llama ? NULL : gguf_pre_name_of(m->tok, pre_buf, sizeof pre_buf);
    if (!llama && !pre) {
        char names[512];
        gguf_pre_names(names, sizeof names);
        pq_tok_vocab_free(&v);
        return pq_fail(err, POLYQ_UNSUPPORTED,
                       "%s: the tokenizer's pre-tokenizer is none of llama.cpp's "
                       "(tokenizer.ggml.pre %s), so llama.cpp would split its text otherwise",
                       m->dir, names);
    }
    int rc = pq_gguf_w_str(w, "tokenizer.ggml.model", llama ? "llama" : "gpt2");
    if (!llama)
        rc |= pq_gguf_w_str(w, "tokenizer.ggml.pre", pre);
    rc |= pq_gguf_w_strs(w, "tokenizer.ggml.tokens", (const char *const *)v.tokens, (size_t)v.n);
    rc |= pq_gguf_w_arr(w, "tokenizer.ggml.token_type", PQ_GGUF_I32, v.types, (size_t)v.n);
    if (llama) { /* sentencepiece BPE: earlier ids merge first */
        float *scores = malloc(sizeof(float) * (size_t)(v.n ? v.n : 1));
        for (int32_t i = 0; scores && i < v.n; i++)
            scores[i] = v.types[i] == 1 ? -(float)i : 0.0f;
        rc |= scores ? pq_gguf_w_arr(w, "tokenizer.ggml.scores", PQ_GGUF_F32, scores, (size_t)v.n)
                     : -1;
        free(scores);
    } else
        rc |= pq_gguf_w_strs(w, "tokenizer.ggml.merges", (const char *const *)v.merges, v.n_merges);
    int32_t bos = pq_model_bos(m), eos = m->tok ? pq_tok_eos(m->tok) : -1;
    if (bos >= 0)
        rc |= pq_gguf_w_u32(w, "tokenizer.ggml.bos_token_id", (uint32_t)bos);
    if (eos >= 0)
        rc |= pq_gguf_w_u32(w, "tokenizer.ggml.eos_token_id", (uint32_t)eos);
    const pq_model *src = m->base ? m->base : m; /* what a GGUF model's own file said */
    if (src->add_bos >= 0)
        rc |= pq_gguf_w_bool(w, "tokenizer.ggml.add_bos_token", src->add_bos == 1);
    pq_tok_vocab_free(&v);
    return rc ? pq_fail(err, POLYQ_NOMEM, "out of memory writing the vocabulary") : 0;
}

/* What field (a PQ_GF_* value) of block l, or of the whole model, holds: a linear, or a vector
 * of *n floats (NULL where the model has none). */
static const pq_linear *field_linear(const pq_model *q, int l, int field)
{
    if (field == PQ_GF_HEAD)
        return &q->lm_head;
    if (field < PQ_GF_LINEAR || field >= PQ_GF_BIAS)
        return NULL;
    const pq_linear *ls[PQ_N_LAYER_LINEARS] = PQ_LAYER_LINEARS(&q->layers[l]);
    return ls[field - PQ_GF_LINEAR];
}

static const float *field_vector(const pq_model *q, int l, int field, uint64_t *n)
{
    const pq_layer *L = l >= 0 ? &q->layers[l] : NULL;
    *n = (uint64_t)q->cfg.n_embd;
    switch (field) {
    case PQ_GF_LNF_W:
        return q->lnf_w;
    case PQ_GF_LNF_B:
        return q->lnf_b;
    case PQ_GF_LN1_W:
        return L->ln1_w;
    case PQ_GF_LN1_B:
        return L->ln1_b;
    case PQ_GF_LN2_W:
        return L->ln2_w;
    case PQ_GF_LN2_B:
        return L->ln2_b;
    default:
        break;
    }
    if (field >= PQ_GF_BIAS && field < PQ_GF_BIAS + PQ_N_LAYER_LINEARS) {
        const pq_linear *ls[PQ_N_LAYER_LINEARS] = PQ_LAYER_LINEARS(L);
        *n = (uint64_t)ls[field - PQ_GF_BIAS]->n_out;
        return ls[field - PQ_GF_BIAS]->bias;
    }
    if (field == PQ_GF_Q_NORM || field == PQ_GF_K_NORM) {
        *n = (uint64_t)pq_config_attn(&q->cfg).D;
        return field == PQ_GF_Q_NORM ? L->q_norm_w : L->k_norm_w;
    }
    if (field == PQ_GF_POST_ATTN)
        return L->post_attn_w;
    if (field == PQ_GF_POST_FFN)
        return L->post_ffn_w;
    return NULL;
}

/* One tensor of the family's table, of block l (-1 outside the blocks), into the file. */
static void put_entry(writer *wr, const pq_model *q, const pq_gguf_name *e, int l)
{
    const pq_config *c = &q->cfg;
    int D = pq_config_attn(c).D;
    char n[128];
    if (l >= 0)
        snprintf(n, sizeof n, "blk.%d.%s", l, e->gg);
    else
        snprintf(n, sizeof n, "%s", e->gg);
    if (e->field == PQ_GF_WTE && q->wte_q) { /* packed as read */
        pq_linear emb = {.n_out = c->n_vocab, .n_in = c->n_embd, .q = q->wte_q};
        put_linear(wr, n, &emb, D, false);
    } else if (e->field == PQ_GF_WTE)
        put_f32(wr, n, q->wte, 2, (uint64_t)c->n_embd, (uint64_t)c->n_vocab);
    else if (e->field == PQ_GF_WPE)
        put_f32(wr, n, q->wpe, 2, (uint64_t)c->n_embd, (uint64_t)c->n_ctx);
    else if (e->field == PQ_GF_HEAD) {
        if (!pq_model_head_is_embeddings(q)) /* a tied, unquantized head is token_embd */
            put_linear(wr, n, &q->lm_head, D, false);
    } else if (e->how == 'g') { /* gate's rows then up's, one tensor */
        const pq_linear *parts[2] = {&q->layers[l].gate, &q->layers[l].up};
        put_linear_parts(wr, n, parts, 2, D, false);
    } else if (field_linear(q, l, e->field))
        put_linear(wr, n, field_linear(q, l, e->field), D, e->how == 'q' || e->how == 'k');
    else {
        uint64_t len;
        const float *v = field_vector(q, l, e->field, &len);
        pq_attn at = pq_config_attn(c);
        if (v && c->qk_norm_heads && (e->field == PQ_GF_Q_NORM || e->field == PQ_GF_K_NORM))
            /* a weight per head (Cohere): [head width, heads] */
            put_f32(wr, n, v, 2, (uint64_t)D, (uint64_t)(e->field == PQ_GF_Q_NORM ? at.H : at.KVH));
        else
            put_f32(wr, n, v, 1, len, 0);
    }
}

int pq_gguf_write_model(const char *path, const pq_model *q, const char *spec_name, polyq_err *err)
{
    const pq_config *c = &q->cfg;
    const pq_gguf_family *fam = q->arch->gguf;
    if (!fam) {
        char list[256];
        pq_arch_list(list, sizeof list, true);
        return pq_fail(
            err, POLYQ_UNSUPPORTED,
            "%s: GGUF output is written for the families llama.cpp names %s; this model is \"%s\" "
            "(write polyq's own format with --out DIR)",
            path, list, c->model_type);
    }
    if (fam->rope && c->rope.kind != PQ_ROPE_DEFAULT && c->rope.kind != PQ_ROPE_LINEAR)
        return pq_fail(err, POLYQ_UNSUPPORTED,
                       "%s: GGUF output of models with rope scaling other than linear is not "
                       "written",
                       path);
    if (fam->writable && fam->writable(q, path, err))
        return -1;
    pq_gguf_w *w = pq_gguf_w_new();
    if (!w)
        return pq_fail(err, POLYQ_NOMEM, "out of memory");
    const char *a = fam->arch;
    char key[128];
    int rc = pq_gguf_w_str(w, "general.architecture", a);
    rc |= pq_gguf_w_str(w, "general.name", q->dir ? q->dir : "polyq");
    rc |= pq_gguf_w_str(w, "polyq.quant_spec", spec_name);
    /* llama.cpp's file type (llama_ftype): what the file is mostly stored as */
    int ftype = q->spec.k_mix  ? 15 /* MOSTLY_Q4_K_M */
                : q->spec.none ? 0  /* ALL_F32 */
                               : pq_qfmt_get(q->spec.fmt)->ftype;
    if (ftype || q->spec.none)
        rc |= pq_gguf_w_u32(w, "general.file_type", (uint32_t)ftype);
#define KEY(suffix) (snprintf(key, sizeof key, "%s." suffix, a), key)
    rc |= pq_gguf_w_u32(w, KEY("context_length"), (uint32_t)c->n_ctx);
    rc |= pq_gguf_w_u32(w, KEY("embedding_length"), (uint32_t)c->n_embd);
    rc |= pq_gguf_w_u32(w, KEY("feed_forward_length"), (uint32_t)c->n_inner);
    rc |= pq_gguf_w_u32(w, KEY("block_count"), (uint32_t)c->n_layer);
    rc |= pq_gguf_w_u32(w, KEY("attention.head_count"), (uint32_t)c->n_head);
    if (fam->rope)
        rc |= pq_gguf_w_u32(w, KEY("attention.head_count_kv"), (uint32_t)c->n_kv_head);
    rc |= pq_gguf_w_f32(w,
                        fam->rms_norm ? KEY("attention.layer_norm_rms_epsilon")
                                      : KEY("attention.layer_norm_epsilon"),
                        c->ln_eps);
    if (fam->rope) {
        rc |= pq_gguf_w_f32(w, KEY("rope.freq_base"), c->rope.theta);
        rc |= pq_gguf_w_u32(w, KEY("rope.dimension_count"), (uint32_t)c->rotary_dims);
        if (c->rope.kind == PQ_ROPE_LINEAR) { /* llama.cpp: the local layers stay unscaled */
            rc |= pq_gguf_w_str(w, KEY("rope.scaling.type"), "linear");
            rc |= pq_gguf_w_f32(w, KEY("rope.scaling.factor"), c->rope.factor);
        }
        if (c->head_dim) { /* heads not hidden / heads wide (Qwen3) */
            rc |= pq_gguf_w_u32(w, KEY("attention.key_length"), (uint32_t)c->head_dim);
            rc |= pq_gguf_w_u32(w, KEY("attention.value_length"), (uint32_t)c->head_dim);
        }
        if (c->window > 0 && c->window < c->n_ctx)
            rc |= pq_gguf_w_u32(w, KEY("attention.sliding_window"), (uint32_t)c->window);
    }
    if (fam->swa_layers && c->window > 0) { /* which layers are local, and their rotary base */
        uint8_t flags[1024];
        for (int l = 0; l < c->n_layer; l++)
            flags[l] = c->sliding[l] != 0;
        rc |= pq_gguf_w_arr(w, KEY("attention.sliding_window_pattern"), PQ_GGUF_BOOL, flags,
                            (size_t)c->n_layer);
        if (c->rope_local.theta != c->rope.theta)
            rc |= pq_gguf_w_f32(w, KEY("rope.freq_base_swa"), c->rope_local.theta);
    }
    if (c->attn_softcap > 0)
        rc |= pq_gguf_w_f32(w, KEY("attn_logit_softcapping"), c->attn_softcap);
    if (c->final_softcap > 0)
        rc |= pq_gguf_w_f32(w, KEY("final_logit_softcapping"), c->final_softcap);
    if (c->logit_scale > 0 && c->logit_scale != 1)
        rc |= pq_gguf_w_f32(w, KEY("logit_scale"), c->logit_scale);
#undef KEY
    if (rc) {
        pq_gguf_w_free(w);
        return pq_fail(err, POLYQ_NOMEM, "out of memory");
    }
    if (put_vocab(w, q, !strcmp(fam->vocab, "llama"), err)) {
        pq_gguf_w_free(w);
        return -1;
    }
    /* the tensors in the table's order: those before the blocks, every block, those after */
    writer wr = {w, err, path, 0};
    const pq_gguf_name *e = fam->names;
    for (; e->gg && !strstr(e->hf, "%d"); e++)
        put_entry(&wr, q, e, -1);
    const pq_gguf_name *blocks = e;
    for (int l = 0; l < c->n_layer && !wr.rc; l++)
        for (e = blocks; e->gg && strstr(e->hf, "%d"); e++)
            put_entry(&wr, q, e, l);
    for (; e->gg; e++)
        put_entry(&wr, q, e, -1);
    rc = wr.rc ? wr.rc : pq_gguf_w_save(w, path, err);
    pq_gguf_w_free(w);
    return rc;
}

/* ---- reading a GGUF back as a quantized copy of its base model ----------------------------- */

/* polyq's spec of a ggml block type (its format's name), NULL for the float types and unknown ones
 */
static const char *spec_of_type(uint32_t type)
{
    pq_qfmt f;
    return type <= INT32_MAX && pq_qfmt_by_ggml((int)type, &f) ? pq_qfmt_get(f)->name : NULL;
}

/* The layout of one row of `cols` weights of t's ggml block type (a row of zeros quantized in
 * that format), with t's size checked against `rows` such rows; the bytes come from the file. */
static int row_layout(const pq_gguf *g, const pq_gguf_tensor *t, const char *spec_name, int cols,
                      size_t rows, pq_qweight **out, polyq_err *err)
{
    pq_qspec spec;
    *out = NULL;
    if (pq_qspec_parse(spec_name, &spec, err))
        return -1;
    float *zero = pq_calloc_array((size_t)cols, sizeof(float));
    int rc = zero ? pq_qweight_rtn(zero, 1, cols, &spec, out, err)
                  : pq_fail(err, POLYQ_NOMEM, "out of memory");
    free(zero);
    if (!rc && t->nbytes != (*out)->row_bytes * rows) {
        rc = pq_fail(err, POLYQ_FORMAT, "%s: tensor \"%s\" has %zu bytes, expected %zu", g->path,
                     t->name, t->nbytes, (*out)->row_bytes * rows);
        pq_qweight_free(*out);
        *out = NULL;
    }
    return rc;
}

/* lin from rows r0 .. r0 + lin->n_out of tensor `name`, which has `rows` rows (lin's own count
 * unless the tensor holds several linears, 'g') */
static int take_linear(pq_model *q, const pq_gguf *g, const char *name, pq_linear *lin, int r0,
                       int rows, int head_dim, bool permute, polyq_err *err)
{
    if (!lin->n_out)
        return 0;
    const pq_gguf_tensor *t = pq_gguf_find_tensor(g, name);
    if (!t)
        return pq_fail(err, POLYQ_FORMAT, "%s: tensor \"%s\" is missing", g->path, name);
    if (t->n_dims != 2 || t->ne[0] != (uint64_t)lin->n_in || t->ne[1] != (uint64_t)rows)
        return pq_fail(err, POLYQ_FORMAT,
                       "%s: tensor \"%s\" is [%llu, %llu], the model's is [%d, %d]: not the "
                       "model this file was made from",
                       g->path, name, (unsigned long long)t->ne[1], (unsigned long long)t->ne[0],
                       rows, lin->n_in);
    const char *spec_name = spec_of_type(t->type);
    if (!spec_name) { /* full precision in the file: the base model's weights serve */
        if (t->type == PQ_GGML_F32 || t->type == PQ_GGML_F16 || t->type == PQ_GGML_BF16) {
            q->n_linear_fp++;
            return 0;
        }
        return pq_fail(err, POLYQ_UNSUPPORTED, "%s: tensor \"%s\" has ggml type %u", g->path, name,
                       t->type);
    }
    pq_qweight *qw = NULL;
    if (row_layout(g, t, spec_name, lin->n_in, (size_t)rows, &qw, err))
        return -1;
    size_t row = qw->row_bytes;
    uint8_t *data = pq_alloc_array((size_t)lin->n_out, row);
    if (!data) {
        pq_qweight_free(qw);
        return pq_fail(err, POLYQ_NOMEM, "out of memory");
    }
    for (int r = 0; r < lin->n_out; r++)
        memcpy(data + (size_t)hf_row(r, head_dim, permute) * row, t->data + (size_t)(r0 + r) * row,
               row);
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
    const pq_gguf_family *fam = base->arch->gguf;
    const char *arch;
    size_t alen;
    int rc = pq_gguf_get_str(&g, "general.architecture", &arch, &alen, err);
    if (!rc && (!fam || alen != strlen(fam->arch) || memcmp(arch, fam->arch, alen)))
        rc = pq_fail(err, POLYQ_FORMAT,
                     "%s: a GGUF of architecture \"%.*s\" cannot be a quantized copy of %s (%s)",
                     path, (int)alen, arch, base->dir, c->model_type);
    pq_qspec none;
    pq_model *q = NULL;
    if (!rc)
        rc = pq_qspec_parse("fp32", &none, err) || pq_model_quantize(&q, base, &none, err);
    int D = pq_config_attn(c).D;
    for (int l = 0; l < c->n_layer && !rc; l++)
        for (const pq_gguf_name *e = fam->names; e->gg && !rc; e++) {
            if (!strstr(e->hf, "%d") || e->field < PQ_GF_LINEAR || e->field >= PQ_GF_BIAS)
                continue;
            char n[128];
            snprintf(n, sizeof n, "blk.%d.%s", l, e->gg);
            pq_layer *L = &q->layers[l];
            pq_linear *ls[PQ_N_LAYER_LINEARS] = PQ_LAYER_LINEARS(L);
            pq_linear *lin = ls[e->field - PQ_GF_LINEAR];
            if (e->how == 'g') /* gate's rows, then up's */
                rc = take_linear(q, &g, n, &L->gate, 0, L->gate.n_out + L->up.n_out, D, false,
                                 err) ||
                     take_linear(q, &g, n, &L->up, L->gate.n_out, L->gate.n_out + L->up.n_out, D,
                                 false, err);
            else
                rc = take_linear(q, &g, n, lin, 0, lin->n_out, D, e->how == 'q' || e->how == 'k',
                                 err);
        }
    for (const pq_gguf_name *e = fam ? fam->names : NULL; !rc && e && e->gg; e++)
        if (e->field == PQ_GF_HEAD && pq_gguf_find_tensor(&g, e->gg))
            rc = take_linear(q, &g, e->gg, &q->lm_head, 0, q->lm_head.n_out, D, false, err);
    const char *s = NULL;
    size_t slen = 0;
    polyq_err ignore = {0};
    if (!rc && pq_gguf_get_str(&g, "polyq.quant_spec", &s, &slen, &ignore) == 0 &&
        slen < sizeof q->spec.name) {
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

/* ------------------------------------------------------------------ a GGUF alone as the model */

/* A ggml type's name for the model's dtype: F32, F16, BF16, or its format's name in capitals. */
static void ggml_name(uint32_t t, char *out, size_t n)
{
    const char *name = t == PQ_GGML_F32    ? "f32"
                       : t == PQ_GGML_F16  ? "f16"
                       : t == PQ_GGML_BF16 ? "bf16"
                                           : spec_of_type(t);
    size_t i = 0;
    for (; name && name[i] && i + 1 < n; i++)
        out[i] = (char)(name[i] >= 'a' && name[i] <= 'z' ? name[i] - 'a' + 'A' : name[i]);
    if (!name && n > 1)
        out[i++] = '?';
    out[i] = 0;
}

/* A tensor of the file as f32, [ne1][ne0] row-major: converted, or dequantized row by row with
 * the format's reference dequantizer. */
static int tensor_f32(const pq_gguf *g, const pq_gguf_tensor *t, float **out, polyq_err *err)
{
    size_t rows = t->n_dims > 1 ? (size_t)t->ne[1] : 1, cols = (size_t)t->ne[0], n;
    for (int d = 2; d < t->n_dims; d++)
        rows *= (size_t)t->ne[d];
    float *v = pq_mul_size(rows, cols, &n) ? pq_alloc_array(n ? n : 1, sizeof(float)) : NULL;
    *out = v;
    if (!v)
        return pq_fail(err, POLYQ_NOMEM, "out of memory reading %s from %s", t->name, g->path);
    if (t->type == PQ_GGML_F32) {
        memcpy(v, t->data, n * sizeof(float));
        return 0;
    }
    if (t->type == PQ_GGML_F16 || t->type == PQ_GGML_BF16) {
        for (size_t i = 0; i < n; i++) {
            uint16_t h;
            memcpy(&h, t->data + 2 * i, 2);
            v[i] = t->type == PQ_GGML_F16 ? pq_f16_to_f32(h) : pq_bf16_to_f32(h);
        }
        return 0;
    }
    const char *spec_name = spec_of_type(t->type);
    if (!spec_name || cols > INT32_MAX || rows > INT32_MAX)
        return pq_fail(err, POLYQ_UNSUPPORTED, "%s: tensor \"%s\" has ggml type %u", g->path,
                       t->name, t->type);
    pq_qweight *qw = NULL;
    if (row_layout(g, t, spec_name, (int)cols, rows, &qw, err))
        return -1;
    size_t row = qw->row_bytes;
    uint8_t *mine = qw->data;
    for (size_t r = 0; r < rows; r++) {
        qw->data = (uint8_t *)t->data + r * row;
        pq_qweight_dequant_row(qw, 0, v + r * cols);
    }
    qw->data = mine;
    pq_qweight_free(qw);
    return 0;
}

/* Every tensor of g under its Hugging Face name: F32/F16/BF16 tensors used as stored and the
 * quantized blocks of the linears and token embeddings stay in the map (a linear whose rows
 * llama.cpp reorders, q and k, as a reordered copy of its blocks); the others are converted into
 * copies the table owns. */
static int add_tensors(pq_tensors *ts, const pq_gguf *g, const pq_gguf_family *fam, int head_dim,
                       polyq_err *err)
{
    const pq_gguf_name *names = fam->names;
    for (size_t i = 0; i < g->n_t; i++) {
        const pq_gguf_tensor *t = &g->t[i];
        int block = -1, used = 0;
        const char *rest = t->name;
        if (sscanf(t->name, "blk.%d.%n", &block, &used) == 1 && used > 0)
            rest = t->name + used;
        const pq_gguf_name *m = NULL;
        for (const pq_gguf_name *k = names; k->gg && !m; k++)
            if (!strcmp(k->gg, rest) && (block >= 0) == (strstr(k->hf, "%d") != NULL))
                m = k;
        if (!m)
            return pq_fail(err, POLYQ_UNSUPPORTED,
                           "%s: tensor \"%s\" is not part of a %s model polyq reads", g->path,
                           t->name, fam->arch);
        char hf[160];
        snprintf(hf, sizeof hf, m->hf, block);
        if (t->n_dims > 2)
            return pq_fail(err, POLYQ_FORMAT, "%s: tensor \"%s\" has %d dimensions", g->path,
                           t->name, t->n_dims);
        int64_t shape[2] = {t->n_dims > 1 ? (int64_t)t->ne[1] : (int64_t)t->ne[0],
                            (int64_t)t->ne[0]};
        int nd = t->n_dims;
        bool as_stored =
            (m->how == 'v' || m->how == 'g') &&
            (t->type == PQ_GGML_F32 || t->type == PQ_GGML_F16 || t->type == PQ_GGML_BF16);
        pq_qfmt qf;
        bool linear = (m->field >= PQ_GF_LINEAR && m->field < PQ_GF_BIAS) ||
                      m->field == PQ_GF_HEAD || m->field == PQ_GF_WTE;
        if (linear && nd == 2 && t->type <= INT32_MAX && pq_qfmt_by_ggml((int)t->type, &qf)) {
            /* a quantized linear stays packed: as stored, or its rows in Hugging Face's order */
            int64_t rc_shape[2] = {(int64_t)t->ne[1], (int64_t)t->ne[0]};
            const uint8_t *data = t->data;
            uint8_t *copy = NULL;
            size_t R = (size_t)t->ne[1];
            if (m->how == 'q' || m->how == 'k') {
                if (head_dim <= 0 || R % (size_t)head_dim || head_dim % 2 || t->nbytes % R)
                    return pq_fail(err, POLYQ_FORMAT,
                                   "%s: tensor \"%s\" has %zu rows, not whole heads of %d", g->path,
                                   t->name, R, head_dim);
                size_t row = t->nbytes / R;
                if (!(copy = pq_alloc_array(t->nbytes, 1)))
                    return pq_fail(err, POLYQ_NOMEM, "out of memory reading %s", g->path);
                for (size_t r = 0; r < R; r++)
                    memcpy(copy + (size_t)hf_row((int)r, head_dim, true) * row, t->data + r * row,
                           row);
                data = copy;
            }
            if (pq_tensors_add_packed(ts, g->path, hf, (int)qf + 1, rc_shape, data, t->nbytes, copy,
                                      err))
                return -1;
            continue;
        }
        if (as_stored) {
            pq_dtype dt = t->type == PQ_GGML_F32   ? PQ_DT_F32
                          : t->type == PQ_GGML_F16 ? PQ_DT_F16
                                                   : PQ_DT_BF16;
            if (pq_tensors_add(ts, g->path, hf, dt, nd, nd > 1 ? shape : shape + 1, t->data, NULL,
                               err))
                return -1;
            continue;
        }
        float *v = NULL;
        if (tensor_f32(g, t, &v, err)) {
            free(v);
            return -1;
        }
        if (m->how != 'v' && nd != 2) {
            free(v);
            return pq_fail(err, POLYQ_FORMAT, "%s: tensor \"%s\" is not a matrix", g->path,
                           t->name);
        }
        size_t R = (size_t)shape[0], K = (size_t)shape[1];
        if (m->how == 't' || m->how == 'q' || m->how == 'k') {
            float *o = pq_alloc_array(R && K ? R * K : 1, sizeof(float));
            if (!o) {
                free(v);
                return pq_fail(err, POLYQ_NOMEM, "out of memory reading %s", g->path);
            }
            if (m->how == 't') { /* [out][in] -> Conv1D's [in][out] */
                for (size_t r = 0; r < R; r++)
                    for (size_t k = 0; k < K; k++)
                        o[k * R + r] = v[r * K + k];
                shape[0] = (int64_t)K;
                shape[1] = (int64_t)R;
            } else {
                if (head_dim <= 0 || R % (size_t)head_dim || head_dim % 2) {
                    free(o);
                    free(v);
                    return pq_fail(err, POLYQ_FORMAT,
                                   "%s: tensor \"%s\" has %zu rows, not whole heads of %d", g->path,
                                   t->name, R, head_dim);
                }
                for (size_t r = 0; r < R; r++)
                    memcpy(o + (size_t)hf_row((int)r, head_dim, true) * K, v + r * K,
                           K * sizeof(float));
            }
            free(v);
            v = o;
        }
        if (pq_tensors_add(ts, g->path, hf, PQ_DT_F32, nd, nd > 1 ? shape : shape + 1, v, v, err))
            return -1;
    }
    return 0;
}

static int kv_f32(const pq_gguf *g, const char *key, double *out)
{
    const pq_gguf_kv *kv = pq_gguf_find_kv(g, key);
    if (!kv || (kv->type != PQ_GGUF_F32 && kv->type != PQ_GGUF_F64))
        return -1;
    if (kv->type == PQ_GGUF_F32) {
        float f;
        memcpy(&f, kv->at, 4);
        *out = f;
    } else
        memcpy(out, kv->at, 8);
    return 0;
}

/* An array of strings (GGUF: u64 length + bytes each; the reader checked them) as pointers
 * into the map. */
static int kv_strs(const pq_gguf *g, const char *key, const char ***s, size_t **len, size_t *n,
                   polyq_err *err)
{
    const pq_gguf_kv *kv = pq_gguf_find_kv(g, key);
    *s = NULL;
    *len = NULL;
    *n = 0;
    if (!kv || kv->type != PQ_GGUF_ARR || kv->arr_type != PQ_GGUF_STR)
        return pq_fail(err, POLYQ_FORMAT, "%s: no string array %s", g->path, key);
    *s = calloc(kv->n ? kv->n : 1, sizeof **s);
    *len = calloc(kv->n ? kv->n : 1, sizeof **len);
    if (!*s || !*len)
        return pq_fail(err, POLYQ_NOMEM, "out of memory");
    const uint8_t *p = kv->at;
    for (uint64_t i = 0; i < kv->n; i++) {
        uint64_t l;
        memcpy(&l, p, 8);
        (*s)[i] = (const char *)p + 8;
        (*len)[i] = (size_t)l;
        p += 8 + l;
    }
    *n = (size_t)kv->n;
    return 0;
}

/* A numeric array of n elements of type want (I32 or F32) as a copy, or NULL when absent. */
static int kv_arr(const pq_gguf *g, const char *key, int want, size_t n, void **out, polyq_err *err)
{
    const pq_gguf_kv *kv = pq_gguf_find_kv(g, key);
    *out = NULL;
    if (!kv)
        return 0;
    if (kv->type != PQ_GGUF_ARR || kv->arr_type != want || kv->n != n)
        return pq_fail(err, POLYQ_FORMAT, "%s: %s is not an array of %zu %s", g->path, key, n,
                       want == PQ_GGUF_F32 ? "f32" : "i32");
    *out = malloc(n ? 4 * n : 4);
    if (!*out)
        return pq_fail(err, POLYQ_NOMEM, "out of memory");
    memcpy(*out, kv->at, 4 * n);
    return 0;
}

static char *c_str(const char *s, size_t n)
{
    char *o = malloc(n + 1);
    if (o) {
        memcpy(o, s, n);
        o[n] = 0;
    }
    return o;
}

/* llama.cpp's pre-tokenizers of byte-level BPE vocabularies (tokenizer.ggml.pre), as
 * llama-vocab.cpp applies them: its regular expressions in turn, each splitting the pieces of
 * the one before, then the bytes mapped as GPT-2 maps them. An empty list is GPT-2's own
 * expression inside ByteLevel. ignore_merges: a piece that is a whole token is that token. */
#define PRE_GPT2 "'s|'t|'re|'ve|'m|'ll|'d| ?\\p{L}+| ?\\p{N}+| ?[^\\s\\p{L}\\p{N}]+|\\s+(?!\\S)"
#define PRE_LLAMA3                                                                                 \
    "(?:'[sS]|'[tT]|'[rR][eE]|'[vV][eE]|'[mM]|'[lL][lL]|'[dD])|[^\\r\\n\\p{L}\\p{N}]?\\p{L}+|\\p{" \
    "N}"                                                                                           \
    "{1,3}| ?[^\\s\\p{L}\\p{N}]+[\\r\\n]*|\\s*[\\r\\n]+|\\s+(?!\\S)|\\s+"
#define PRE_QWEN2                                                                                  \
    "(?:'[sS]|'[tT]|'[rR][eE]|'[vV][eE]|'[mM]|'[lL][lL]|'[dD])|[^\\r\\n\\p{L}\\p{N}]?\\p{L}+|\\p{" \
    "N}"                                                                                           \
    "| ?[^\\s\\p{L}\\p{N}]+[\\r\\n]*|\\s*[\\r\\n]+|\\s+(?!\\S)|\\s+"
/* clang-format off */
/* DeepSeek LLM's letters: Latin, Greek, Cyrillic, Armenian, Georgian, Cherokee and the other
 * cased scripts, as llama-vocab.cpp lists them */
#define PRE_DEEPSEEK_LETTERS \
    "A-Za-zµÀ-ÖØ-öø-ƺƼ-ƿǄ-ʓʕ-ʯ" \
    "Ͱ-ͳͶͷͻ-ͽͿΆΈ-ΊΌΎ-ΡΣ-ϵϷ-ҁҊ-ԯ" \
    "Ա-ՖႠ-ჅᎠ-Ᏽᏸ-ᏽᲐ-ᲺᲽ-Ჿᴀ-ᴫᵫ-ᵷ" \
    "ᵹ-ᶚḀ-ἕἘ-Ἕἠ-ὅὈ-Ὅὐ-ὗὙὛὝὟ-ώ" \
    "ᾀ-ᾴᾶ-ᾼιῂ-ῄῆ-ῌῐ-ΐῖ-Ίῠ-Ῥῲ-ῴ" \
    "ῶ-ῼℂℇℊ-ℓℕℙ-ℝℤΩℨK-ℭℯ-ℴℹℼ-ℿ" \
    "ⅅ-ⅉⅎↃↄⰀ-ⱻⱾ-ⳤⳫ-ⳮⳲⳳꙀ-ꙭꚀ-ꚛꜢ-ꝯ" \
    "ꝱ-ꞇꞋ-ꞎꭰ-ꮿﬀ-ﬆﬓ-ﬗＡ-Ｚａ-ｚ𐐀-𐑏" \
    "𐒰-𐓓𐓘-𐓻𐲀-𐲲𐳀-𐳲𑢠-𑣟𞤀-𞥃"
/* DeepSeek's CJK, the range U+0800..U+4E00 and Hangul, without the spaces in the range */
#define PRE_DEEPSEEK_CJK \
    "[一-龥ࠀ-\u167F\u1681-\u1FFF\u200B-\u2027\u202A-\u202E\u2030-\u205E" \
    "\u2060-\u2FFF\u3001-一가-퟿]+"
/* clang-format on */
/* Han as llama.cpp's unicode_cpt_is_han knows it */
#define PRE_HAN                                                                                    \
    "\\x{3400}-\\x{4DBF}\\x{4E00}-\\x{9FFF}\\x{F900}-\\x{FAFF}\\x{20000}-\\x{2A6DF}\\x{2A700}-"    \
    "\\x{2EBEF}\\x{2F800}-\\x{2FA1F}"
/* llama.cpp reads \p{Lu}, \p{Ll}, \p{Lt}, \p{Lm} and \p{Lo} each as any letter, and \d and \b as
 * ASCII's (std::regex): written so below. */
/* Where llama.cpp matches an expression without \p{..} classes by std::wregex, it first turns
 * every non-ASCII space of the text into a vertical tab: such a space is \s there and matches no
 * class that names it: DeepSeek's full-width punctuation starts at U+3000 (here at U+3001), and
 * its range U+0800..U+4E00 is written without the spaces in it. */
static const struct {
    const char *names; /* the tokenizer.ggml.pre values, space-separated */
    const char *regex[6];
    bool ignore_merges;
} gguf_pre[] = {
    /* clang-format off: the expressions are as llama-vocab.cpp spells them */
    {"gpt-2 phi-2 mpt olmo jais gigachat mellum a.x-4.0 exaone4 modern-bert roberta-bpe "
     "jina-es jina-de jina-v1-en jina-v2-es jina-v2-de jina-v2-code",
     {NULL},
     false},
    /* digits one by one, then GPT-2's expression */
    {"smollm starcoder refact command-r codeshell exaone minerva-7b", {"\\p{N}", PRE_GPT2}, false},
    {"llama-bpe llama3 llama-v3 falcon3 falcon-h1 pixtral midm-2.0 lfm2 jina-v5-nano",
     {PRE_LLAMA3},
     true},
    {"dbrx smaug-bpe chatglm-bpe", {PRE_LLAMA3}, false},
    {"glm4 glm5", {PRE_LLAMA3}, true},
    {"qwen2 deepseek-r1-qwen stablelm2 kormo f2llmv2 megrez", {PRE_QWEN2}, false},
    /* DeepSeek LLM: line breaks, runs of Latin, Greek, Cyrillic and other cased letters, ASCII and
     * full-width punctuation (U+3000 left out: see above), trailing spaces, CJK and Hangul, digit
     * runs */
    {"deepseek-llm",
     {"[\r\n]", "\\s?[" PRE_DEEPSEEK_LETTERS "]+", "\\s?[!-/:-~！-／：-～‘-‟、-。]+", "\\s+$",
      PRE_DEEPSEEK_CJK, "\\p{N}+"},
     false},
    /* DeepSeek Coder: line breaks, letter runs, punctuation runs, CJK and Hangul, digits one by
     * one */
    {"deepseek-coder", {"[\r\n]", "\\s?\\p{L}+", "\\s?\\p{P}+", PRE_DEEPSEEK_CJK, "\\p{N}"}, false},
    /* DeepSeek V3 (Hunyuan dense, HY v4, JoyAI): up to three digits, CJK and kana runs, then its
     * own expression */
    {"deepseek-v3 hunyuan-dense hy_v4 joyai-llm",
     {"\\p{N}{1,3}", "[一-龥぀-ゟ゠-ヿ]+",
      "[!\"#$%&'()*+,\\-./"
      ":;<=>?@\\[\\\\\\]^_`{|}~][A-Za-z]+|[^\r\n\\p{L}\\p{P}\\p{S}]?[\\p{L}\\p{M}]+| "
      "?[\\p{P}\\p{S}]+[\r\n]*|\\s*[\r\n]+|\\s+(?!\\S)|\\s+"},
     false},
    /* anything but spaces and a few sentence marks, with one leading space */
    {"poro-chat bloom gpt3-finnish", {" ?[^(\\s|.,!?…。，、।۔،)]+"}, false},
    /* the same, then digits one by one */
    {"viking", {" ?[^(\\s|.,!?…。，、।۔،)]+", "\\p{N}"}, false},
    /* Mistral's tekken: GPT-4o's expression with each letter run cut at a case change, as llama.cpp
       spells it out */
    {"tekken",
     {"[^\\r\\n\\p{L}\\p{N}]?((?=[\\p{L}])([^a-z]))*((?=[\\p{L}])([^A-Z]))+|[^\\r\\n\\p{L}\\p{N}]?("
      "(?=[\\p{L}])([^a-z]))+((?=[\\p{L}])([^A-Z]))*|\\p{N}| "
      "?[^\\s\\p{L}\\p{N}]+[\\r\\n/]*|\\s*[\\r\\n]+|\\s+(?!\\S)|\\s+"},
     true},
    /* GPT-4o's expression as llama.cpp spells it out (its marks are not letters) */
    {"gpt-4o llama4 kanana2 talkie minimax-m2",
     {"[^\\r\\n\\p{L}\\p{N}]?((?=[\\p{L}])([^a-z]))*((?=[\\p{L}])([^A-Z]))+(?:'[sS]|'[tT]|'[rR][eE]"
      "|'[vV][eE]|'[mM]|'[lL][lL]|'[dD])?|[^\\r\\n\\p{L}\\p{N}]?((?=[\\p{L}])([^a-z]))+((?=[\\p{L}]"
      ")([^A-Z]))*(?:'[sS]|'[tT]|'[rR][eE]|'[vV][eE]|'[mM]|'[lL][lL]|'[dD])?|\\p{N}{1,3}| "
      "?[^\\s\\p{L}\\p{N}]+[\\r\\n/]*|\\s*[\\r\\n]+|\\s+(?!\\S)|\\s+"},
     false},
    {"falcon", {"[\\p{P}\\$\\+<=>\\^~\\|`]+", PRE_GPT2, "[0-9][0-9][0-9]"}, false},
    /* MiniCPM 5 */
    {"minicpm5",
     {"\\p{N}{1,3}",
      "(?:'[sS]|'[tT]|'[rR][eE]|'[vV][eE]|'[mM]|'[lL][lL]|'[dD])|[^\\r\\n\\p{L}\\p{N}]?\\p{L}+|\\p{"
      "N}+| ?[^\\s\\p{L}\\p{N}]+[\\r\\n]*|\\s*[\\r\\n]+|\\s+(?!\\S)|\\s+"},
     true},
    /* Spark 2.5 */
    {"spark2_5",
     {"\\p{N}{1,3}", "[一-龥぀-ゟ゠-ヿ]+",
      "[!\"#$%&'()*+,\\-./"
      ":;<=>?@\\[\\\\\\]^_`{|}~][A-Za-z]+|[^\r\n\\p{L}\\p{P}\\p{S}]?[\\p{L}\\p{M}]+| "
      "?[\\p{P}\\p{S}]+|[\r\n]|\\s+(?!\\S)|\\s+",
      "\\p{N}"},
     false},
    /* Youtu */
    {"youtu",
     {"[가-힣ㄱ-ㆎ]+|[！…“”‘’—：；，、-〿︰-﹏]+|[ㄅ-ㄯ]+|[一-龥぀-"
      "ゟ゠-"
      "ヿ]"
      "+",
      "[^\\r\\n\\p{L}\\p{N}]?[\\p{L}\\p{M}]*[\\p{L}\\p{M}]+(?:'[sS]|'[tT]|'[rR][eE]|'[vV][eE]|'[mM]"
      "|'[lL][lL]|'[dD])?|[^\\r\\n\\p{L}\\p{N}]?[\\p{L}\\p{M}]+[\\p{L}\\p{M}]*(?:'[sS]|'[tT]|'[rR]["
      "eE]|'[vV][eE]|'[mM]|'[lL][lL]|'[dD])?|\\p{N}| "
      "?[^\\s\\p{L}\\p{N}]+[\\r\\n/]*|\\s*[\\r\\n]+|\\s+(?!\\S)|\\s+"},
     true},
    /* Jais 2 */
    {"jais-2",
     {"(?:'[sS]|'[tT]|'[rR][eE]|'[vV][eE]|'[mM]|'[lL][lL]|'[dD])|[^\\r\\n\\p{L}\\p{N}]?\\p{L}+|\\p{"
      "N}{1,3}| "
      "?[^\\s\\p{L}\\p{N}]+[\\r\\n]*|\\s*[\\r\\n]+|\\s{512}(?!\\S)|\\s{256}(?!\\S)|\\s{128}(?!\\S)|"
      "\\s{64}(?!\\S)|\\s{32}(?!\\S)|\\s{16}(?!\\S)|\\s{8}(?!\\S)|\\s{4}(?!\\S)|\\s{1,2}(?!\\S)|"
      "\\s{1}"},
     false},
    /* Qwen 3.5 */
    {"qwen35",
     {"(?:'[sS]|'[tT]|'[rR][eE]|'[vV][eE]|'[mM]|'[lL][lL]|'[dD])|[^\\r\\n\\p{L}\\p{N}]?[\\p{L}\\p{"
      "M}]+|\\p{N}| ?[^\\s\\p{L}\\p{M}\\p{N}]+[\\r\\n]*|\\s*[\\r\\n]+|\\s+(?!\\S)|\\s+"},
     false},
    /* EXAONE MoE */
    {"exaone-moe",
     {"(?:'[sS]|'[tT]|'[rR][eE]|'[vV][eE]|'[mM]|'[lL][lL]|'[dD])|[^\\r\\n\\p{L}\\p{N}]?(?:\\p{L}"
      "\\p{M}*(?: \\p{L}\\p{M}*)*)+|\\p{N}| "
      "?[^\\s\\p{L}\\p{N}]+[\\r\\n/]?|\\s*[\\r\\n]|\\s+(?!\\S)|\\s+"},
     false},
    /* Granite embedding (multilingual, 97M) */
    {"granite-embed-multi-97m",
     {"[^\\r\\n\\p{L}\\p{N}]?((?=[\\p{L}\\p{M}])([^a-z]))*((?=[\\p{L}\\p{M}])([^A-Z]))+(?:'[sS]|'["
      "tT]|'[rR][eE]|'[vV][eE]|'[mM]|'[lL][lL]|'[dD])?|[^\\r\\n\\p{L}\\p{N}]?((?=[\\p{L}\\p{M}])([^"
      "a-z]))+((?=[\\p{L}\\p{M}])([^A-Z]))*(?:'[sS]|'[tT]|'[rR][eE]|'[vV][eE]|'[mM]|'[lL][lL]|'[dD]"
      ")?|\\p{N}{1,3}| ?[^\\s\\p{L}\\p{N}]+[\\r\\n/]*|\\s*[\\r\\n]+|\\s+(?!\\S)|\\s+"},
     true},
    /* Tiny Aya: digit runs in threes from the right, as llama.cpp's own splitter cuts them (for
     * its tokenizer.json's \d{1,3}(?=(?:\d{3})*\b): any number character, and the text before a
     * run stays with its first group), then GPT-4o's original expression */
    {"tiny_aya cohere2moe",
     {"\\P{N}*\\p{N}{1,3}(?=(?:\\p{N}{3})*(?!\\p{N}))",
      "[^\\r\\n\\p{L}\\p{N}]?[\\p{L}\\p{M}]*[\\p{L}\\p{M}]+(?:'[sS]|'[tT]|'[rR][eE]|'[vV][eE]|'[mM]"
      "|'[lL][lL]|'[dD])?|[^\\r\\n\\p{L}\\p{N}]?[\\p{L}\\p{M}]+[\\p{L}\\p{M}]*(?:'[sS]|'[tT]|'[rR]["
      "eE]|'[vV][eE]|'[mM]|'[lL][lL]|'[dD])?|\\p{N}{1,3}| "
      "?[^\\s\\p{L}\\p{N}]+[\\r\\n/]*|\\s*[\\r\\n]+|\\s+(?!\\S)|\\s+"},
     false},
    /* AFMoE: digit runs cut as tiny_aya's are (the same splitter in llama.cpp), CJK and other
     * Asian script runs (the ranges as llama.cpp lists them), then DeepSeek V3's expression */
    {"afmoe",
     {"\\P{N}*\\p{N}{1,3}(?=(?:\\p{N}{3})*(?!\\p{N}))",
      "[\\x{4E00}-\\x{9FFF}\\x{3400}-\\x{4DBF}\\x{8C48}-\\x{FAFF}\\x{3040}-\\x{309F}"
      "\\x{30A0}-\\x{30FF}\\x{FF65}-\\x{FF9F}\\x{2F00}-\\x{2FDF}\\x{0E40}-\\x{0E7F}"
      "\\x{0E80}-\\x{0EFF}\\x{1780}-\\x{17FF}\\x{1000}-\\x{109F}\\x{AA60}-\\x{AA7F}"
      "\\x{A9E0}-\\x{A9FF}\\x{AC00}-\\x{D7AF}\\x{1100}-\\x{11FF}]+",
      "[!\"#$%&'()*+,\\-./"
      ":;<=>?@\\[\\\\\\]^_`{|}~][A-Za-z]+|[^\r\n\\p{L}\\p{P}\\p{S}]?[\\p{L}\\p{M}]+| "
      "?[\\p{P}\\p{S}]+[\r\n]*|\\s*[\r\n]+|\\s+(?!\\S)|\\s+"},
     false},
    /* Kimi K2, as llama.cpp's own splitter reads its expression: Han runs (its ranges), runs of
     * other letters (marks are not letters there) with one leading character and an optional
     * contraction, up to three digits, then the GPT-4o tail */
    {"kimi-k2",
     {"[" PRE_HAN "]+|[^\\r\\n\\p{L}\\p{N}]?(?:(?![" PRE_HAN "])\\p{L})+(?:'[sS]|'[tT]|'[mM]|'["
      "dD]|'[rR][eE]|'[vV][eE]|'[lL][lL])?|\\p{N}{1,3}| "
      "?[^\\s\\p{L}\\p{N}]+[\\r\\n]*|\\s*[\\r\\n]+|\\s+(?!\\S)|\\s+"},
     false},
    /* Chameleon: sentinel and image tokens, tabs, newlines and runs of two or four spaces,
     * digits one by one, punctuation, then GPT-2's expression */
    {"chameleon",
     {"<sentinel:[0-9]+>", "(IMGIMG)((A|B|C|D|E|F|G|H|I){1,4})Z", "([\\t\\n]|    |  )", "\\p{N}",
      "[\\p{P}!-/:-@\\[-`{-~]", PRE_GPT2},
     false},
    /* SuperBPE */
    {"superbpe", {"\\p{N}+", "(?=([0-9]{3})+(?![0-9]))"}, false},
    /* Trillion */
    {"trillion",
     {"'s|'t|'re|'ve|'m|'ll|'d| ?\\p{L}+| ?\\p{N}+| ?[^\\s\\p{L}\\p{N}]+|\\s+(?!\\S)"},
     false},
    /* Granite Docling */
    {"granite-docling",
     {"'s|'t|'re|'ve|'m|'ll|'d| ?\\p{L}+| ?\\p{N}+| ?[^\\s\\p{L}\\p{N}]+|\\s+(?!\\S)"},
     false},
    /* Ling (BailingMoE) */
    {"bailingmoe bailingmoe2 llada-moe",
     {"'(?:[sSdDmMtT]|[lL][lL]|[vV][eE]|[rR][eE])|[^\\r\\n\\p{L}\\p{N}]?\\p{L}+|\\p{N}| "
      "?[^\\s\\p{L}\\p{N}]+[\\r\\n]*|\\s*[\\r\\n]|\\s+(?!\\S)|\\s+"},
     false},
    /* Seed-Coder */
    {"seed-coder",
     {"(?:'[sS]|'[tT]|'[rR][eE]|'[vV][eE]|'[mM]|'[lL][lL]|'[dD])|[^\\r\\n\\p{L}\\p{N}]?\\p{L}+|\\p{"
      "N}{1}| ?[^\\s\\p{L}\\p{N}\\r\\n]+|\\s*[\\r\\n]+|\\s+(?!\\S)|\\s+"},
     false},
    /* Hunyuan */
    {"hunyuan",
     {"(?:'[sS]|'[tT]|'[rR][eE]|'[vV][eE]|'[mM]|'[lL][lL]|'[dD])|[^\\r\\n\\p{L}\\p{N}]?\\p{L}+|\\p{"
      "N}| ?[^\\s\\p{L}\\p{N}]+[\\r\\n]*|\\s*[\\r\\n]+|\\s+(?!\\S)|\\s+"},
     false},
    /* ufakzeka */
    {"ufakzeka",
     {"[^\\r\\n\\p{L}\\p{N}]?\\p{L}+|\\p{N}| "
      "?[^\\s\\p{L}\\p{N}]+[\\r\\n]*|\\s*[\\r\\n]+|\\s+(?!\\S)|\\s+"},
     false},
    /* Grok 2 */
    {"grok-2",
     {"(?:'[sS]|'[tT]|'[rR][eE]|'[vV][eE]|'[mM]|'[lL][lL]|'[dD])|[^\\r\\n\\p{L}\\p{N}]?\\p{L}+|\\p{"
      "N}| ?[^\\s\\p{L}\\p{N}]+[\\r\\n]*|\\s*[\\r\\n]+|\\s+(?!\\S)|\\s+"},
     false},
    /* Laguna */
    {"laguna",
     {"[^\\n]+|[\\n]+",
      "(?:'[sS]|'[tT]|'[rR][eE]|'[vV][eE]|'[mM]|'[lL][lL]|'[dD])|[^\\r\\n\\p{L}\\p{N}]?\\p{L}+|\\p{"
      "N}| ?[^\\s\\p{L}\\p{N}]+[\\r\\n]*|\\s*[\\r\\n]+|\\s+(?!\\S)|\\s+"},
     false},
    /* Solar Open */
    {"solar-open",
     {"(?:'[sS]|'[tT]|'[rR][eE]|'[vV][eE]|'[mM]|'[lL][lL]|'[dD])|[^\\r\\n\\p{L}\\p{N}]?\\p{L}+|\\p{"
      "N}| ?[^\\s\\p{L}\\p{N}]+[\\r\\n]*|\\s*[\\r\\n]+|\\s+(?!\\S)|\\s+"},
     false},
    /* Mellum 2 */
    {"mellum2",
     {"\\p{N}", "'s|'t|'re|'ve|'m|'ll|'d| ?\\p{L}+| ?\\p{N}+| ?[^\\s\\p{L}\\p{N}]+|\\s+(?!\\S)"},
     false},
    /* llama.cpp's own default (and a file without tokenizer.ggml.pre): punctuation runs, GPT-2's
     * expression, digit runs, then three digits at a time */
    {"default", {"[\\p{P}\\$\\+<=>\\^~\\|]+", PRE_GPT2, "\\p{N}+", "[0-9][0-9][0-9]"}, false},
    /* clang-format on */
};

/* the pre-tokenizer named pre (len bytes) as tokenizer.json's pre_tokenizer (new reference),
 * and whether whole-token pieces skip the merges; NULL when llama.cpp's name is not known */
static json_t *gguf_pre_tokenizer(const char *pre, size_t len, bool *ignore_merges)
{
    for (size_t i = 0; i < sizeof gguf_pre / sizeof gguf_pre[0]; i++) {
        const char *n = gguf_pre[i].names;
        bool found = false;
        while (*n && !found) {
            size_t w = strcspn(n, " ");
            found = w == len && !memcmp(n, pre, len);
            n += w + (n[w] == ' ');
        }
        if (!found)
            continue;
        *ignore_merges = gguf_pre[i].ignore_merges;
        bool own = !gguf_pre[i].regex[0];
        json_t *bl = json_pack("{s:s, s:b, s:b, s:b}", "type", "ByteLevel", "add_prefix_space", 0,
                               "trim_offsets", 1, "use_regex", own);
        if (own || !bl)
            return bl;
        json_t *seq = json_array();
        for (int k = 0; k < 6 && gguf_pre[i].regex[k] && seq; k++)
            json_array_append_new(seq, json_pack("{s:s, s:{s:s}, s:s, s:b}", "type", "Split",
                                                 "pattern", "Regex", gguf_pre[i].regex[k],
                                                 "behavior", "Isolated", "invert", 0));
        json_array_append_new(seq, bl);
        return seq ? json_pack("{s:s, s:o}", "type", "Sequence", "pretokenizers", seq) : NULL;
    }
    return NULL;
}

/* A pre-tokenizer as the expressions it splits by, in order, then "B" (ByteLevel's bytes;
 * its own GPT-2 expression, use_regex, written out as a split): Digits one by one is the split
 * \p{N}; tokenizers' (?i:'s|...) prefix is llama.cpp's spelled-out one. A byte 1 for anything
 * llama.cpp cannot express. */
static void pre_signature(const json_t *p, char *buf, size_t n, size_t *at)
{
#define PUT(...)                                                                                   \
    do {                                                                                           \
        int w_ = snprintf(buf + *at, n - *at, __VA_ARGS__);                                        \
        *at = w_ < 0 || (size_t)w_ >= n - *at ? n - 1 : *at + (size_t)w_;                          \
    } while (0)
    const char *type = json_string_value(json_object_get(p, "type"));
    if (!type) {
        PUT("\x01");
        return;
    }
    if (!strcmp(type, "Sequence")) {
        size_t i;
        const json_t *e;
        json_array_foreach(json_object_get(p, "pretokenizers"), i, e) pre_signature(e, buf, n, at);
    } else if (!strcmp(type, "Split")) {
        const char *re = json_string_value(json_object_get(json_object_get(p, "pattern"), "Regex"));
        const char *beh = json_string_value(json_object_get(p, "behavior"));
        if (!re || !beh || strcmp(beh, "Isolated") || json_is_true(json_object_get(p, "invert"))) {
            PUT("\x01");
            return;
        }
        static const char ci[] = "(?i:'s|'t|'re|'ve|'m|'ll|'d)";
        if (!strncmp(re, ci, sizeof ci - 1))
            PUT("S[(?:'[sS]|'[tT]|'[rR][eE]|'[vV][eE]|'[mM]|'[lL][lL]|'[dD])%s]",
                re + sizeof ci - 1);
        else
            PUT("S[%s]", re);
    } else if (!strcmp(type, "Digits") && json_is_true(json_object_get(p, "individual_digits")))
        PUT("S[\\p{N}]");
    else if (!strcmp(type, "ByteLevel") && !json_is_true(json_object_get(p, "add_prefix_space"))) {
        const json_t *ur = json_object_get(p, "use_regex");
        if (!ur || json_is_true(ur))
            PUT("S[%s]", PRE_GPT2);
        PUT("B");
    } else
        PUT("\x01");
#undef PUT
}

/* The first tokenizer.ggml.pre name whose pre-tokenizer is the tokenizer's (its expressions
 * and merges rule), NULL when none is. A byte-level tokenizer not read from tokenizer.json
 * (vocab.json and merges.txt) is GPT-2's. */
static const char *gguf_pre_name_of(const pq_tokenizer *tok, char *name, size_t n)
{
    bool byte_level, ignore_merges;
    const char *text = pq_tok_pre_json(tok, &byte_level, &ignore_merges);
    if (!byte_level)
        return NULL;
    if (!text)
        return "gpt-2";
    char want[2048] = "", have[2048];
    size_t at = 0;
    json_t *p = json_loads(text, 0, NULL);
    pre_signature(p, want, sizeof want, &at);
    json_decref(p);
    for (size_t i = 0; i < sizeof gguf_pre / sizeof gguf_pre[0]; i++) {
        bool im;
        json_t *c = gguf_pre_tokenizer(gguf_pre[i].names, strcspn(gguf_pre[i].names, " "), &im);
        at = 0;
        have[0] = 0;
        if (c)
            pre_signature(c, have, sizeof have, &at);
        json_decref(c);
        if (c && im == ignore_merges && !strcmp(want, have) && !strchr(want, '\x01')) {
            snprintf(name, n, "%.*s", (int)strcspn(gguf_pre[i].names, " "), gguf_pre[i].names);
            return name;
        }
    }
    return NULL;
}

/* The names gguf_pre knows, for a message. */
static void gguf_pre_names(char *buf, size_t n)
{
    size_t at = 0;
    buf[0] = 0;
    for (size_t i = 0; i < sizeof gguf_pre / sizeof gguf_pre[0] && at < n; i++)
        at += (size_t)snprintf(buf + at, n - at, "%s%s", i ? " " : "", gguf_pre[i].names);
}

/* tokenizer.ggml.*: "gpt2" (byte-level BPE with one of llama.cpp's pre-tokenizers) or "llama"
 * (sentencepiece BPE, merges from the pieces as for tokenizer.model) as a tokenizer.json
 * document. */
static int gguf_tokenizer(const pq_gguf *g, json_t **out, polyq_err *err)
{
    *out = NULL;
    const char *model = NULL, *pre = NULL;
    size_t ml = 0, pl = 0, n = 0, nm = 0;
    polyq_err ignore = {0};
    if (pq_gguf_get_str(g, "tokenizer.ggml.model", &model, &ml, err))
        return -1;
    bool llama = ml == 5 && !memcmp(model, "llama", 5), gpt2 = ml == 4 && !memcmp(model, "gpt2", 4);
    if (!llama && !gpt2)
        return pq_fail(err, POLYQ_UNSUPPORTED,
                       "%s: tokenizer.ggml.model \"%.*s\" (polyq reads \"gpt2\" and \"llama\")",
                       g->path, (int)ml, model);
    bool ignore_merges = false;
    json_t *pretok = NULL;
    if (gpt2) { /* llama.cpp reads a file without tokenizer.ggml.pre as "default" */
        if (pq_gguf_get_str(g, "tokenizer.ggml.pre", &pre, &pl, &ignore)) {
            pre = "default";
            pl = 7;
        }
        if (!(pretok = gguf_pre_tokenizer(pre, pl, &ignore_merges))) {
            char names[512];
            gguf_pre_names(names, sizeof names);
            return pq_fail(err, POLYQ_UNSUPPORTED,
                           "%s: tokenizer.ggml.pre \"%.*s\" is a pre-tokenizer of llama.cpp's that "
                           "polyq does not read (it reads: %s)",
                           g->path, (int)pl, pre, names);
        }
    }
    const char **tok = NULL, **mer = NULL;
    size_t *tl = NULL, *mlen = NULL;
    int32_t *types = NULL;
    float *scores = NULL;
    int64_t unk = 0, bos = 1;
    int rc = kv_strs(g, "tokenizer.ggml.tokens", &tok, &tl, &n, err);
    if (!rc)
        rc = kv_arr(g, "tokenizer.ggml.token_type", PQ_GGUF_I32, n, (void **)&types, err);
    if (!rc && llama) {
        bool space = true;
        const pq_gguf_kv *sp = pq_gguf_find_kv(g, "tokenizer.ggml.add_space_prefix");
        if (sp && sp->type == PQ_GGUF_BOOL)
            space = sp->at[0] != 0;
        pq_gguf_get_int(g, "tokenizer.ggml.unknown_token_id", &unk, &ignore);
        pq_gguf_get_int(g, "tokenizer.ggml.bos_token_id", &bos, &ignore);
        rc = kv_arr(g, "tokenizer.ggml.scores", PQ_GGUF_F32, n, (void **)&scores, err);
        if (!rc)
            rc =
                pq_legacy_spm_pieces(out, g->path, tok, tl, scores, types, n, unk, bos, space, err);
    } else if (!rc) {
        rc = kv_strs(g, "tokenizer.ggml.merges", &mer, &mlen, &nm, err);
        json_t *vocab = json_object(), *merges = json_array(), *added = json_array();
        for (size_t i = 0; !rc && i < n; i++) {
            char *s = c_str(tok[i], tl[i]);
            if (!s || !pq_utf8_valid(s, tl[i], NULL) || strlen(s) != tl[i])
                rc = s ? pq_fail(err, POLYQ_FORMAT, "%s: token %zu is not UTF-8 text", g->path, i)
                       : pq_fail(err, POLYQ_NOMEM, "out of memory");
            else {
                if (!json_object_get(vocab, s))
                    json_object_set_new(vocab, s, json_integer((json_int_t)i));
                if (types && types[i] == 3)
                    json_array_append_new(added, json_pack("{s:I, s:s, s:b, s:b, s:b, s:b, s:b}",
                                                           "id", (json_int_t)i, "content", s,
                                                           "single_word", 0, "lstrip", 0, "rstrip",
                                                           0, "normalized", 0, "special", 1));
            }
            free(s);
        }
        for (size_t i = 0; !rc && i < nm; i++)
            json_array_append_new(merges, json_stringn(mer[i], mlen[i]));
        json_t *root = json_pack("{s:o, s:n, s:o, s:n, s:{s:s, s:b, s:b, s:b},"
                                 " s:{s:s, s:n, s:n, s:s, s:s, s:b, s:b, s:b, s:o, s:o}}",
                                 "added_tokens", added, "normalizer", "pre_tokenizer", pretok,
                                 "post_processor", "decoder", "type", "ByteLevel",
                                 "add_prefix_space", 1, "trim_offsets", 1, "use_regex", 1, "model",
                                 "type", "BPE", "dropout", "unk_token", "continuing_subword_prefix",
                                 "", "end_of_word_suffix", "", "fuse_unk", 0, "byte_fallback", 0,
                                 "ignore_merges", ignore_merges, "vocab", vocab, "merges", merges);
        pretok = NULL; /* the document holds it */
        if (!rc && !root)
            rc = pq_fail(err, POLYQ_NOMEM, "out of memory");
        if (!rc)
            *out = root;
        else
            json_decref(root);
    }
    json_decref(pretok);
    free(tok);
    free(tl);
    free(mer);
    free(mlen);
    free(types);
    free(scores);
    return rc;
}

int pq_gguf_open_tokenizer(pq_tokenizer **out, const char *path, polyq_err *err)
{
    *out = NULL;
    pq_gguf g = {0};
    json_t *tj = NULL;
    char *text = NULL;
    int rc = pq_gguf_open(&g, path, err);
    if (!rc)
        rc = gguf_tokenizer(&g, &tj, err);
    if (!rc && !(text = json_dumps(tj, JSON_COMPACT)))
        rc = pq_fail(err, POLYQ_NOMEM, "out of memory");
    if (!rc)
        rc = pq_tok_load_json_buffer(out, path, text, strlen(text), err);
    free(text);
    json_decref(tj);
    pq_gguf_close(&g);
    return rc;
}

int pq_model_open_gguf(pq_model **out, const char *path, polyq_err *err)
{
    *out = NULL;
    pq_model *m = calloc(1, sizeof *m);
    pq_gguf g = {0};
    json_t *cfg = NULL, *tj = NULL;
    char *text = NULL;
    int rc = m && (m->dir = pq_strdup(path)) ? 0 : pq_fail(err, POLYQ_NOMEM, "out of memory");
    if (!rc)
        rc = pq_gguf_open(&g, path, err);
    const char *arch = NULL;
    size_t alen = 0;
    if (!rc)
        rc = pq_gguf_get_str(&g, "general.architecture", &arch, &alen, err);
    const pq_arch *fa = rc ? NULL : pq_arch_find_gguf(arch, alen);
    const pq_gguf_family *fam = fa ? fa->gguf : NULL;
    if (!rc && !fam) {
        char list[256];
        pq_arch_list(list, sizeof list, true);
        rc = pq_fail(err, POLYQ_UNSUPPORTED,
                     "%s: general.architecture \"%.*s\" (polyq reads GGUF files of %s)", path,
                     (int)alen, arch, list);
    }
    /* the configuration Hugging Face would have, from the file's metadata */
    pq_gguf_meta meta = {.bos = -1, .eos = -1, .theta = 10000};
    polyq_err ignore = {0};
    char key[96];
#define KEY(k) (snprintf(key, sizeof key, "%s." k, fam->arch), key)
    if (!rc && (pq_gguf_get_int(&g, KEY("block_count"), &meta.n_layer, err) ||
                pq_gguf_get_int(&g, KEY("embedding_length"), &meta.n_embd, err) ||
                pq_gguf_get_int(&g, KEY("attention.head_count"), &meta.n_head, err) ||
                pq_gguf_get_int(&g, KEY("feed_forward_length"), &meta.n_ff, err)))
        rc = -1;
    if (!rc) {
        meta.eps = fam->default_eps;
        if (pq_gguf_get_int(&g, KEY("attention.head_count_kv"), &meta.n_kv_head, &ignore))
            meta.n_kv_head = meta.n_head;
        if (pq_gguf_get_int(&g, KEY("context_length"), &meta.n_ctx, &ignore))
            meta.n_ctx = fam->default_ctx;
        if (pq_gguf_get_int(&g, KEY("attention.key_length"), &meta.head_dim, &ignore))
            meta.head_dim = 0;
        if (pq_gguf_get_int(&g, KEY("attention.sliding_window"), &meta.window, &ignore))
            meta.window = 0;
        if (pq_gguf_get_int(&g, KEY("rope.dimension_count"), &meta.rot, &ignore))
            meta.rot = 0;
        kv_f32(&g,
               fam->rms_norm ? KEY("attention.layer_norm_rms_epsilon")
                             : KEY("attention.layer_norm_epsilon"),
               &meta.eps);
        kv_f32(&g, KEY("rope.freq_base"), &meta.theta);
        kv_f32(&g, KEY("attn_logit_softcapping"), &meta.attn_softcap);
        kv_f32(&g, KEY("final_logit_softcapping"), &meta.final_softcap);
        kv_f32(&g, KEY("logit_scale"), &meta.logit_scale);
        kv_f32(&g, KEY("rope.freq_base_swa"), &meta.theta_swa);
        const pq_gguf_kv *pat = pq_gguf_find_kv(&g, KEY("attention.sliding_window_pattern"));
        int64_t every = 0;
        if (pat && pat->type == PQ_GGUF_ARR) { /* one flag (or 0/1 number) per layer */
            size_t w = pat->arr_type == PQ_GGUF_BOOL                                  ? 1
                       : pat->arr_type == PQ_GGUF_U32 || pat->arr_type == PQ_GGUF_I32 ? 4
                                                                                      : 0;
            if (!w || pat->n != (uint64_t)meta.n_layer || meta.n_layer > 1024)
                rc = pq_fail(err, POLYQ_FORMAT,
                             "%s: %s is not one flag per layer (%lld layers, %llu entries)", path,
                             key, (long long)meta.n_layer, (unsigned long long)pat->n);
            for (size_t l = 0; !rc && l < pat->n; l++) {
                uint32_t v = 0;
                memcpy(&v, pat->at + l * w, w); /* little-endian, as GGUF stores */
                meta.swa_layers[l] = v != 0;
            }
            meta.has_swa_layers = !rc;
        } else if (pat &&
                   !pq_gguf_get_int(&g, KEY("attention.sliding_window_pattern"), &every, &ignore)) {
            if (every < 1 || every > 1024)
                rc = pq_fail(err, POLYQ_FORMAT, "%s: %s is %lld (1 to 1024)", path, key,
                             (long long)every);
            meta.swa_every = (int)every;
        }
        pq_gguf_get_int(&g, "tokenizer.ggml.bos_token_id", &meta.bos, &ignore);
        pq_gguf_get_int(&g, "tokenizer.ggml.eos_token_id", &meta.eos, &ignore);
        const char *st = NULL;
        size_t sl = 0;
        if (fam->rope && (!pq_gguf_get_str(&g, KEY("rope.scaling.type"), &st, &sl, &ignore) &&
                          !(sl == 4 && !memcmp(st, "none", 4))))
            rc = !(sl == 6 && !memcmp(st, "linear", 6)) ||
                         kv_f32(&g, KEY("rope.scaling.factor"), &meta.rope_linear)
                     ? pq_fail(err, POLYQ_UNSUPPORTED,
                               "%s: rope scaling \"%.*s\" (polyq reads linear)", path, (int)sl, st)
                     : 0;
        const pq_gguf_tensor *emb = pq_gguf_find_tensor(&g, "token_embd.weight");
        if (!rc && (!emb || emb->n_dims != 2))
            rc = pq_fail(err, POLYQ_FORMAT, "%s: no token_embd.weight matrix", path);
        meta.n_vocab = rc ? 0 : (int64_t)emb->ne[1];
        meta.tied = !pq_gguf_find_tensor(&g, "output.weight");
        if (!rc && !(cfg = fam->config(&meta)))
            rc = pq_fail(err, POLYQ_NOMEM, "out of memory");
        for (int k = 0; k < 2; k++) /* negative ids: absent */
            if (!rc &&
                json_integer_value(json_object_get(cfg, k ? "eos_token_id" : "bos_token_id")) < 0)
                json_object_del(cfg, k ? "eos_token_id" : "bos_token_id");
    }
#undef KEY
    if (!rc && (meta.n_head <= 0 || meta.head_dim < 0 || meta.head_dim > (1 << 14) ||
                (!meta.head_dim && meta.n_embd % meta.n_head)))
        rc = pq_fail(err, POLYQ_FORMAT, "%s: embedding length %lld is not whole heads of %lld",
                     path, (long long)meta.n_embd, (long long)meta.n_head);
    if (!rc) { /* the linears' format names the model's dtype, e.g. Q4_K: the first block linear's
                */
        m->spec.none = true;
        snprintf(m->spec.name, sizeof m->spec.name, "fp32");
        const pq_gguf_kv *ab = pq_gguf_find_kv(&g, "tokenizer.ggml.add_bos_token");
        m->add_bos = ab && ab->type == PQ_GGUF_BOOL ? ab->at[0] != 0 : -1;
        const pq_gguf_tensor *t = NULL;
        for (const pq_gguf_name *e = fam->names; e->gg && !t; e++)
            if (e->field >= PQ_GF_LINEAR && e->field < PQ_GF_BIAS) {
                char n[128];
                snprintf(n, sizeof n, "blk.0.%s", e->gg);
                t = pq_gguf_find_tensor(&g, n);
            }
        ggml_name(t ? t->type : PQ_GGML_F32, m->dtype, sizeof m->dtype);
        /* llama.cpp's general.file_type names the file's mixture better than one tensor */
        static const struct {
            int ftype;
            const char *name;
        } ftypes[] = {{0, "F32"},     {1, "F16"},     {2, "Q4_0"},    {3, "Q4_1"},
                      {7, "Q8_0"},    {8, "Q5_0"},    {9, "Q5_1"},    {10, "Q2_K"},
                      {11, "Q3_K_S"}, {12, "Q3_K_M"}, {13, "Q3_K_L"}, {14, "Q4_K_S"},
                      {15, "Q4_K_M"}, {16, "Q5_K_S"}, {17, "Q5_K_M"}, {18, "Q6_K"},
                      {32, "BF16"}};
        int64_t ft;
        if (pq_gguf_get_int(&g, "general.file_type", &ft, NULL) == 0)
            for (size_t k = 0; k < sizeof ftypes / sizeof ftypes[0]; k++)
                if (ftypes[k].ftype == ft)
                    snprintf(m->dtype, sizeof m->dtype, "%s", ftypes[k].name);
        m->arch = fa;
        const char *mt = json_string_value(json_object_get(cfg, "model_type"));
        const char *an =
            json_string_value(json_array_get(json_object_get(cfg, "architectures"), 0));
        snprintf(m->cfg.model_type, sizeof m->cfg.model_type, "%s", mt ? mt : fa->model_type);
        snprintf(m->cfg.architecture, sizeof m->cfg.architecture, "%s", an ? an : "");
        /* the tensors are views into this table's own map of the file */
        struct pq_st_file *f = calloc(1, sizeof *f);
        if (!f || !(f->path = pq_strdup(path))) {
            free(f);
            rc = pq_fail(err, POLYQ_NOMEM, "out of memory");
        } else {
            f->map = g.map;
            memset(&g.map, 0, sizeof g.map);
            m->ts.files = f;
            m->ts.n_files = 1;
            rc = add_tensors(&m->ts, &g, fam,
                             meta.head_dim ? (int)meta.head_dim : (int)(meta.n_embd / meta.n_head),
                             err);
            for (size_t i = 0; i < m->ts.n; i++)
                m->ts.t[i].file = f->path;
        }
    }
    if (!rc)
        m->cfg.encoder = m->arch->scoring == PQ_SCORE_PLL;
    if (!rc)
        rc = m->arch->load(m, cfg, err);
    if (!rc)
        rc = gguf_tokenizer(&g, &tj, err);
    if (!rc && !(text = json_dumps(tj, JSON_COMPACT)))
        rc = pq_fail(err, POLYQ_NOMEM, "out of memory");
    if (!rc)
        rc = pq_tok_load_json_buffer(&m->tok, path, text, strlen(text), err);
    if (!rc && pq_tok_vocab_size(m->tok) > m->cfg.n_vocab)
        rc = pq_fail(err, POLYQ_FORMAT, "%s: the tokenizer has %d ids but the model only %d", path,
                     pq_tok_vocab_size(m->tok), m->cfg.n_vocab);
    if (!rc && (pq_model_bos(m) < 0 || pq_model_bos(m) >= m->cfg.n_vocab))
        rc =
            pq_fail(err, POLYQ_FORMAT, "%s: no usable BOS/EOS token to start sequences with", path);
    free(text);
    json_decref(tj);
    json_decref(cfg);
    pq_gguf_close(&g);
    if (rc) {
        pq_model_free(m);
        return -1;
    }
    *out = m;
    return 0;
}
