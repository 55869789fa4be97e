/* GPT-NeoX (transformers GPTNeoXForCausalLM; Pythia): rotary embeddings on the first
 * rotary_pct of each head (rotate_half layout), a parallel residual when
 * use_parallel_residual, erf GELU, an untied output matrix embed_out.
 * Reference: transformers/models/gpt_neox/modeling_gpt_neox.py.
 *
 * Hugging Face tensor names (C = hidden_size, I = intermediate_size, H heads of D):
 *   gpt_neox.embed_in.weight [V, C]      gpt_neox.final_layer_norm.{weight,bias} [C]
 *   embed_out.weight [V, C]
 *   gpt_neox.layers.L.input_layernorm.{weight,bias}, .post_attention_layernorm.{weight,bias} [C]
 *   gpt_neox.layers.L.attention.query_key_value.weight [3C, C] .bias [3C]
 *       rows grouped per head: head h holds q, k, v of D rows each (h*3D + part*D + d);
 *       they are regrouped at load into [q | k | v] (part*C + h*D + d)
 *   gpt_neox.layers.L.attention.dense.{weight [C, C], bias}
 *   gpt_neox.layers.L.mlp.dense_h_to_4h.{weight [I, C], bias}  .dense_4h_to_h.{weight [C, I], bias}
 */
#include <math.h>
#include <stdio.h>
#include <string.h>

#include "format/json.h"
#include "model/model.h"

static int read_config(pq_config *c, const json_t *j, const char *what, polyq_err *err)
{
    int rc;
    const pq_cfg_int dims[] = {
        {"hidden_size", NULL, &c->n_embd, true, 1, 1 << 16, 0},
        {"num_attention_heads", NULL, &c->n_head, true, 1, 1 << 10, 0},
        {"num_hidden_layers", NULL, &c->n_layer, true, 1, 1 << 10, 0},
        {"vocab_size", NULL, &c->n_vocab, true, 1, 1 << 24, 0},
        {"intermediate_size", NULL, &c->n_inner, true, 1, 1 << 20, 0},
        {"max_position_embeddings", NULL, &c->n_ctx, false, 1, 1 << 20, 2048},
        {"bos_token_id", NULL, &c->bos_id, false, 0, 1 << 24, -1},
        {"eos_token_id", NULL, &c->eos_id, false, 0, 1 << 24, -1},
    };
    if ((rc = pq_config_ints(j, dims, sizeof dims / sizeof dims[0], what, err)))
        return rc;
    if (c->n_embd % c->n_head)
        return pq_fail(err, POLYQ_FORMAT,
                       "%s: hidden_size %d is not a multiple of num_attention_heads %d", what,
                       c->n_embd, c->n_head);
    double eps = 1e-5, pct = 0.25, theta = 10000;
    if ((rc = pq_json_real(j, "layer_norm_eps", false, &eps, what, err)) ||
        (rc = pq_config_act(j, "hidden_act", "gelu", &c->act, what, err)))
        return rc;
    /* rotary settings: transformers 5 "rope_parameters", older "rotary_pct"/"rotary_emb_base" */
    const json_t *rp = json_object_get(j, "rope_parameters");
    if (!rp)
        rp = json_object_get(j, "rope_scaling");
    if (json_is_object(rp)) {
        const char *type = "default";
        if ((rc = pq_json_str(rp, "rope_type", false, &type, what, err)) ||
            (rc = pq_json_real(rp, "partial_rotary_factor", false, &pct, what, err)) ||
            (rc = pq_json_real(rp, "rope_theta", false, &theta, what, err)))
            return rc;
        (void)type;
    }
    if ((rc = pq_json_real(j, "rotary_pct", false, &pct, what, err)) ||
        (rc = pq_json_real(j, "partial_rotary_factor", false, &pct, what, err)) ||
        (rc = pq_json_real(j, "rotary_emb_base", false, &theta, what, err)) ||
        (rc = pq_json_real(j, "rope_theta", false, &theta, what, err)))
        return rc;
    if (pct < 0 || pct > 1 || theta <= 0)
        return pq_fail(err, POLYQ_FORMAT, "%s: rotary fraction %g or base %g out of range", what,
                       pct, theta);
    c->ln_eps = (float)eps;
    c->rope = (pq_rope){.theta = (float)theta};
    if (json_is_object(rp) && (rc = pq_config_rope_scaling(rp, c->n_ctx, &c->rope, what, err)))
        return rc;
    c->rotary_dims = (int)((c->n_embd / c->n_head) * pct); /* int(head_size * rotary_pct) */
    c->rotary_dims &= ~1;
    c->parallel_residual = true;
    c->tie_word_embeddings = false;
    bool bias = true;
    if ((rc = pq_json_bool(j, "use_parallel_residual", false, &c->parallel_residual, what, err)) ||
        (rc = pq_json_bool(j, "tie_word_embeddings", false, &c->tie_word_embeddings, what, err)) ||
        (rc = pq_json_bool(j, "attention_bias", false, &bias, what, err)))
        return rc;
    if (!bias)
        return pq_fail(err, POLYQ_UNSUPPORTED, "%s: attention_bias false is not supported", what);
    return 0;
}

#define NAME(buf, ...)                                                                             \
    char buf##_s[160];                                                                             \
    snprintf(buf##_s, sizeof buf##_s, __VA_ARGS__);                                                \
    const char *const buf[] = {buf##_s, NULL}

static int linear(pq_model *m, pq_linear *lin, int l, const char *base, int n, int k,
                  polyq_err *err)
{
    NAME(wn, "gpt_neox.layers.%d.%s.weight", l, base);
    NAME(bn, "gpt_neox.layers.%d.%s.bias", l, base);
    return pq_model_get_linear(m, lin, wn, bn, n, k, err);
}

static int neox_load(pq_model *m, const json_t *config, polyq_err *err)
{
    pq_config *c = &m->cfg;
    char what[4200];
    snprintf(what, sizeof what, "%s/config.json", m->dir);
    int rc = read_config(c, config, what, err);
    if (rc)
        return rc;
    int C = c->n_embd, I = c->n_inner;
    int64_t s_emb[2] = {c->n_vocab, C}, s_c[1] = {C};
    const char *const emb[] = {"gpt_neox.embed_in.weight", NULL};
    const char *const head[] = {"embed_out.weight", NULL};
    const char *const lfw[] = {"gpt_neox.final_layer_norm.weight", NULL};
    const char *const lfb[] = {"gpt_neox.final_layer_norm.bias", NULL};
    if ((rc = pq_model_get_f32(m, emb, 2, s_emb, &m->wte, err)) ||
        (rc = pq_model_get_f32(m, lfw, 1, s_c, &m->lnf_w, err)) ||
        (rc = pq_model_get_f32(m, lfb, 1, s_c, &m->lnf_b, err)))
        return rc;
    m->lm_head = (pq_linear){.n_out = c->n_vocab, .n_in = C, .w = m->wte};
    if (!c->tie_word_embeddings &&
        (rc = pq_model_get_weight(m, &m->lm_head, head, c->n_vocab, C, err)))
        return rc;
    m->layers = calloc((size_t)c->n_layer, sizeof *m->layers);
    if (!m->layers)
        return pq_fail(err, POLYQ_NOMEM, "out of memory");
    for (int l = 0; l < c->n_layer; l++) {
        pq_layer *L = &m->layers[l];
        NAME(l1w, "gpt_neox.layers.%d.input_layernorm.weight", l);
        NAME(l1b, "gpt_neox.layers.%d.input_layernorm.bias", l);
        NAME(l2w, "gpt_neox.layers.%d.post_attention_layernorm.weight", l);
        NAME(l2b, "gpt_neox.layers.%d.post_attention_layernorm.bias", l);
        if ((rc = pq_model_get_f32(m, l1w, 1, s_c, &L->ln1_w, err)) ||
            (rc = pq_model_get_f32(m, l1b, 1, s_c, &L->ln1_b, err)) ||
            (rc = pq_model_get_f32(m, l2w, 1, s_c, &L->ln2_w, err)) ||
            (rc = pq_model_get_f32(m, l2b, 1, s_c, &L->ln2_b, err)) ||
            (rc = linear(m, &L->qkv, l, "attention.query_key_value", 3 * C, C, err)) ||
            (rc = pq_model_regroup_qkv(m, &L->qkv, c->n_head, err)) ||
            (rc = linear(m, &L->attn_out, l, "attention.dense", C, C, err)) ||
            (rc = linear(m, &L->up, l, "mlp.dense_h_to_4h", I, C, err)) ||
            (rc = linear(m, &L->down, l, "mlp.dense_4h_to_h", C, I, err)))
            return rc;
    }
    return 0;
}

static void neox_forward(const pq_model *m, pq_ops *ops, pq_acts *a, const int32_t *tokens,
                         const int *seq_start, int n_seq, float *logits)
{
    const pq_config *c = &m->cfg;
    int C = c->n_embd, M = seq_start[n_seq];
    pq_attn at = pq_config_attn(c);
    pq_embed(a->x, m->wte, tokens, M, C); /* x (M,C) = embed_in[token] */
    for (int l = 0; l < c->n_layer; l++) {
        const pq_layer *L = &m->layers[l];
        /* attention on input_layernorm(x), rotary on q and k */
        pq_layernorm_fwd(ops, a->xn, a->x, L->ln1_w, L->ln1_b, M, C, c->ln_eps);
        pq_layer_qkv(ops, L, a->qkv, a->xn, M, &at);
        pq_rope_neox(a->qkv, seq_start, n_seq, &at, c->rotary_dims, &c->rope);
        pq_attention_fwd(ops, a->att, a->qkv, seq_start, n_seq, &at);
        pq_linear_fwd(ops, a->xn, a->att, M, &L->attn_out); /* xn = attention output */
        if (c->parallel_residual) {
            /* x = x + attn(ln1(x)) + mlp(ln2(x)) */
            pq_layernorm_fwd(ops, a->att, a->x, L->ln2_w, L->ln2_b, M, C, c->ln_eps);
            pq_add(a->x, a->xn, (size_t)M * C);
        } else {
            /* x = x + attn(ln1(x)); x = x + mlp(ln2(x)) */
            pq_add(a->x, a->xn, (size_t)M * C);
            pq_layernorm_fwd(ops, a->att, a->x, L->ln2_w, L->ln2_b, M, C, c->ln_eps);
        }
        pq_linear_fwd(ops, a->h, a->att, M, &L->up);
        pq_activation_fwd(ops, a->h, (size_t)M * c->n_inner, c->act);
        pq_linear_fwd(ops, a->xn, a->h, M, &L->down);
        pq_add(a->x, a->xn, (size_t)M * C);
        pq_acts_check(a, l, (size_t)M * C);
    }
    pq_layernorm_fwd(ops, a->xn, a->x, m->lnf_w, m->lnf_b, M, C, c->ln_eps);
    pq_linear_fwd(ops, logits, a->xn, M, &m->lm_head); /* logits (M,V) */
}

/* AWQ as AutoAWQ's GPT-NeoX: the fused qkv and the MLP's linears alone, the attention output
 * not scaled (the references measure these at the linears' outputs too) */
static int neox_awq_groups(const pq_model *m, pq_awq_group *g)
{
    return pq_awq_groups_std(g, PQ_AWQ_LINEARS, PQ_AWQ_NONE, PQ_AWQ_LINEARS);
}

const pq_arch pq_arch_gpt_neox = {
    .model_type = "gpt_neox",
    .description = "GPT-NeoX, Pythia (partial rotary, parallel or sequential residual)",
    .load = neox_load,
    .forward = neox_forward,
    .block_name = "gpt_neox.layers.%d",
    .scoring = PQ_SCORE_CAUSAL,
    .awq_groups = neox_awq_groups,
    .mem_copied = "query_key_value", /* the fused qkv is regrouped into a copy */
};
