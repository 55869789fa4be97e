/* BLOOM (transformers BloomForCausalLM): ALiBi instead of position embeddings, a LayerNorm
 * right after the word embeddings, per-head fused qkv, tanh GELU, LM head tied to the word
 * embeddings; the residual comes from before the LayerNorm unless
 * apply_residual_connection_post_layernorm. Reference: transformers/models/bloom/modeling_bloom.py.
 *
 * Hugging Face tensor names (prefix "transformer." optional; C = hidden_size):
 *   word_embeddings.weight [V, C]   word_embeddings_layernorm.{weight,bias} [C] ln_f.{weight,bias}
 *   h.L.input_layernorm.{weight,bias}, h.L.post_attention_layernorm.{weight,bias} [C]
 *   h.L.self_attention.query_key_value.{weight [3C, C], bias [3C]}: rows per head h hold q, k,
 *       v of D rows each (h*3D + part*D + d), regrouped at load into [q | k | v]
 *   h.L.self_attention.dense.{weight [C, C], bias}
 *   h.L.mlp.dense_h_to_4h.{weight [4C, C], bias}   h.L.mlp.dense_4h_to_h.{weight [C, 4C], bias} */
#include <math.h>
#include <stdio.h>
#include <string.h>

#include "format/json.h"
#include "model/model.h"

static int read_config(pq_config *c, const json_t *j, const char *what, polyq_err *err)
{
    int rc;
    const pq_cfg_int dims[] = {
        {"hidden_size", "n_embed", &c->n_embd, true, 1, 1 << 16, 0},
        {"n_head", "num_attention_heads", &c->n_head, true, 1, 1 << 10, 0},
        {"n_layer", "num_hidden_layers", &c->n_layer, true, 1, 1 << 10, 0},
        {"vocab_size", NULL, &c->n_vocab, true, 1, 1 << 24, 0},
        {"seq_length", "max_position_embeddings", &c->n_ctx, false, 1, 1 << 20, 2048},
        {"bos_token_id", NULL, &c->bos_id, false, 0, 1 << 24, 1},
        {"eos_token_id", NULL, &c->eos_id, false, 0, 1 << 24, 2},
    };
    if ((rc = pq_config_ints(j, dims, sizeof dims / sizeof dims[0], what, err)))
        return rc;
    if (c->n_embd % c->n_head)
        return pq_fail(err, POLYQ_FORMAT, "%s: hidden_size %d is not a multiple of n_head %d", what,
                       c->n_embd, c->n_head);
    c->n_inner = 4 * c->n_embd;
    double eps = 1e-5;
    if ((rc = pq_json_real(j, "layer_norm_epsilon", false, &eps, what, err)))
        return rc;
    c->ln_eps = (float)eps;
    c->act = PQ_ACT_GELU_TANH; /* BloomGelu: the tanh approximation */
    c->tie_word_embeddings = true;
    if ((rc = pq_json_bool(j, "apply_residual_connection_post_layernorm", false, &c->post_ln, what,
                           err)) ||
        (rc = pq_json_bool(j, "tie_word_embeddings", false, &c->tie_word_embeddings, what, err)))
        return rc;
    return 0;
}

#define NAMES(buf, ...)                                                                            \
    char buf##_a[160], buf##_b[160];                                                               \
    snprintf(buf##_a, sizeof buf##_a, "transformer." __VA_ARGS__);                                 \
    snprintf(buf##_b, sizeof buf##_b, __VA_ARGS__);                                                \
    const char *const buf[] = {buf##_a, buf##_b, NULL}

static int linear(pq_model *m, pq_linear *lin, int l, const char *base, int n, int k,
                  polyq_err *err)
{
    NAMES(wn, "h.%d.%s.weight", l, base);
    NAMES(bn, "h.%d.%s.bias", l, base);
    return pq_model_get_linear(m, lin, wn, bn, n, k, err);
}

/* ALiBi slopes as transformers' build_alibi_tensor computes them (in float). */
static void alibi_slopes(float *out, int H)
{
    int p2 = 1;
    while (p2 * 2 <= H)
        p2 *= 2;
    float base = (float)pow(2.0, -pow(2.0, -(log2((double)p2) - 3)));
    for (int i = 0; i < p2; i++)
        out[i] = powf(base, (float)(i + 1));
    if (p2 != H) {
        float extra = (float)pow(2.0, -pow(2.0, -(log2(2.0 * p2) - 3)));
        int rest = H - p2 < p2 ? H - p2 : p2;
        for (int i = 0; i < rest; i++)
            out[p2 + i] = powf(extra, (float)(2 * i + 1));
    }
}

static int bloom_load(pq_model *m, const json_t *config, polyq_err *err)
{
    pq_config *c = &m->cfg;
    char what[4200];
    snprintf(what, sizeof what, "%s/config.json", m->dir);
    int rc = read_config(c, config, what, err);
    if (rc)
        return rc;
    int C = c->n_embd;
    int64_t s_emb[2] = {c->n_vocab, C}, s_c[1] = {C};
    NAMES(emb, "word_embeddings.weight");
    NAMES(ew, "word_embeddings_layernorm.weight");
    NAMES(eb, "word_embeddings_layernorm.bias");
    NAMES(fw, "ln_f.weight");
    NAMES(fb, "ln_f.bias");
    float *slopes = pq_model_alloc(m, (size_t)c->n_head);
    if (!slopes)
        return pq_fail(err, POLYQ_NOMEM, "out of memory");
    alibi_slopes(slopes, c->n_head);
    m->alibi = slopes;
    if ((rc = pq_model_get_f32(m, emb, 2, s_emb, &m->wte, err)) ||
        (rc = pq_model_get_f32(m, ew, 1, s_c, &m->emb_ln_w, err)) ||
        (rc = pq_model_get_f32(m, eb, 1, s_c, &m->emb_ln_b, err)) ||
        (rc = pq_model_get_f32(m, fw, 1, s_c, &m->lnf_w, err)) ||
        (rc = pq_model_get_f32(m, fb, 1, s_c, &m->lnf_b, err)))
        return rc;
    if ((rc = pq_model_lm_head(m, C, err)))
        return rc;
    m->layers = calloc((size_t)c->n_layer, sizeof *m->layers);
    if (!m->layers)
        return pq_fail(err, POLYQ_NOMEM, "out of memory");
    for (int l = 0; l < c->n_layer; l++) {
        pq_layer *L = &m->layers[l];
        NAMES(l1w, "h.%d.input_layernorm.weight", l);
        NAMES(l1b, "h.%d.input_layernorm.bias", l);
        NAMES(l2w, "h.%d.post_attention_layernorm.weight", l);
        NAMES(l2b, "h.%d.post_attention_layernorm.bias", l);
        if ((rc = pq_model_get_f32(m, l1w, 1, s_c, &L->ln1_w, err)) ||
            (rc = pq_model_get_f32(m, l1b, 1, s_c, &L->ln1_b, err)) ||
            (rc = pq_model_get_f32(m, l2w, 1, s_c, &L->ln2_w, err)) ||
            (rc = pq_model_get_f32(m, l2b, 1, s_c, &L->ln2_b, err)) ||
            (rc = linear(m, &L->qkv, l, "self_attention.query_key_value", 3 * C, C, err)) ||
            (rc = pq_model_regroup_qkv(m, &L->qkv, c->n_head, err)) ||
            (rc = linear(m, &L->attn_out, l, "self_attention.dense", C, C, err)) ||
            (rc = linear(m, &L->up, l, "mlp.dense_h_to_4h", 4 * C, C, err)) ||
            (rc = linear(m, &L->down, l, "mlp.dense_4h_to_h", C, 4 * C, err)))
            return rc;
    }
    return 0;
}

static void bloom_forward(const pq_model *m, pq_ops *ops, pq_acts *a, const int32_t *tokens,
                          const int *seq_start, int n_seq, float *logits)
{
    const pq_config *c = &m->cfg;
    int C = c->n_embd, M = seq_start[n_seq];
    pq_attn at = pq_config_attn(c);
    at.alibi = m->alibi;
    /* x (M,C) = word_embeddings_layernorm(word_embeddings[token]) */
    pq_embed(a->x, m->wte, tokens, M, C);
    pq_layernorm_fwd(ops, a->x, a->x, m->emb_ln_w, m->emb_ln_b, M, C, c->ln_eps);
    for (int l = 0; l < c->n_layer; l++) {
        const pq_layer *L = &m->layers[l];
        /* attention: x = residual + dense(attn(input_layernorm(x))), residual = x (or the
         * LayerNorm output with apply_residual_connection_post_layernorm) */
        pq_layernorm_fwd(ops, a->xn, a->x, L->ln1_w, L->ln1_b, M, C, c->ln_eps);
        if (c->post_ln)
            memcpy(a->x, a->xn, sizeof(float) * (size_t)M * C);
        pq_layer_qkv(ops, L, a->qkv, a->xn, M, &at);
        pq_attention_fwd(ops, a->att, a->qkv, seq_start, n_seq, &at);
        pq_linear_fwd(ops, a->xn, a->att, M, &L->attn_out);
        pq_add(a->x, a->xn, (size_t)M * C);
        /* MLP: the same around dense_4h_to_h(gelu(dense_h_to_4h(post_attention_layernorm(x)))) */
        pq_layernorm_fwd(ops, a->xn, a->x, L->ln2_w, L->ln2_b, M, C, c->ln_eps);
        if (c->post_ln)
            memcpy(a->x, a->xn, sizeof(float) * (size_t)M * C);
        pq_linear_fwd(ops, a->h, a->xn, M, &L->up);
        pq_activation_fwd(ops, a->h, (size_t)M * c->n_inner, c->act);
        pq_linear_fwd(ops, a->xn, a->h, M, &L->down);
        pq_add(a->x, a->xn, (size_t)M * C);
        pq_acts_check(a, l, (size_t)M * C);
    }
    pq_layernorm_fwd(ops, a->xn, a->x, m->lnf_w, m->lnf_b, M, C, c->ln_eps);
    pq_linear_fwd(ops, logits, a->xn, M, &m->lm_head); /* logits (M,V) */
}

/* AWQ as AutoAWQ's BLOOM, but for its first groups: the reference measures the fused qkv and the
 * MLP's first linear on the whole block's output, polyq at the linears; the attention output is
 * not scaled */
static int bloom_awq_groups(const pq_model *m, pq_awq_group *g)
{
    return pq_awq_groups_std(g, PQ_AWQ_LINEARS, PQ_AWQ_NONE, PQ_AWQ_LINEARS);
}

const pq_arch pq_arch_bloom = {
    .model_type = "bloom",
    .description = "BLOOM (ALiBi, embedding LayerNorm, fused qkv)",
    .load = bloom_load,
    .forward = bloom_forward,
    .block_name = "h.%d",
    .scoring = PQ_SCORE_CAUSAL,
    .awq_groups = bloom_awq_groups,
    .mem_copied = "query_key_value", /* the fused qkv is regrouped into a copy */
};
