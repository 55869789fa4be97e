/* OPT (transformers OPTForCausalLM): learned positions offset by 2, ReLU MLP, pre- or
 * post-LayerNorm blocks (do_layer_norm_before), optional project_in/project_out when
 * word_embed_proj_dim differs from hidden_size, separate q/k/v projections with q scaled by
 * D^-1/2, LM head tied to embed_tokens. Reference: transformers/models/opt/modeling_opt.py.
 *
 * Hugging Face tensor names (prefix "model.decoder."; E = word_embed_proj_dim, F = ffn_dim):
 *   embed_tokens.weight [V, E]   embed_positions.weight [max_position_embeddings + 2, C]
 *   project_in.weight [C, E], project_out.weight [E, C] (no bias; only when E != C)
 *   final_layer_norm.{weight,bias} [C] (pre-LN models, unless _remove_final_layer_norm)
 *   layers.L.self_attn.{q,k,v,out}_proj.{weight [C, C], bias [C]}
 *   layers.L.self_attn_layer_norm.{weight,bias} [C]   layers.L.final_layer_norm.{weight,bias} [C]
 *   layers.L.fc1.{weight [F, C], bias}   layers.L.fc2.{weight [C, F], bias}
 *   lm_head.weight [V, E] (usually absent: tied) */
#include <math.h>
#include <stdio.h>
#include <string.h>

#include "format/json.h"
#include "model/model.h"

#define POS_OFFSET 2

static int read_config(pq_config *c, const json_t *j, const char *what, bool *affine, bool *bias,
                       polyq_err *err)
{
    int rc;
    *affine = *bias = true;
    const pq_cfg_int dims[] = {
        {"hidden_size", NULL, &c->n_embd, true, 1, 1 << 16, 0},
        {"num_attention_heads", NULL, &c->n_head, true, 1, 1 << 10, 0},
        {"num_hidden_layers", NULL, &c->n_layer, true, 1, 1 << 10, 0},
        {"vocab_size", NULL, &c->n_vocab, true, 1, 1 << 24, 0},
        {"ffn_dim", NULL, &c->n_inner, true, 1, 1 << 20, 0},
        {"max_position_embeddings", NULL, &c->n_ctx, false, 1, 1 << 20, 2048},
        {"bos_token_id", NULL, &c->bos_id, false, 0, 1 << 24, 2},
        {"eos_token_id", NULL, &c->eos_id, false, 0, 1 << 24, 2},
    };
    if ((rc = pq_config_ints(j, dims, sizeof dims / sizeof dims[0], what, err)))
        return rc;
    const pq_cfg_int proj = {
        "word_embed_proj_dim", NULL, &c->n_embd_proj, false, 1, 1 << 16, c->n_embd};
    if ((rc = pq_config_ints(j, &proj, 1, what, err)))
        return rc;
    if (c->n_embd_proj == c->n_embd)
        c->n_embd_proj = 0;
    if (c->n_embd % c->n_head)
        return pq_fail(err, POLYQ_FORMAT,
                       "%s: hidden_size %d is not a multiple of num_attention_heads %d", what,
                       c->n_embd, c->n_head);
    bool before = true, remove_final = false;
    c->tie_word_embeddings = true;
    if ((rc = pq_config_act(j, "activation_function", "relu", &c->act, what, err)) ||
        (rc = pq_json_bool(j, "do_layer_norm_before", false, &before, what, err)) ||
        (rc = pq_json_bool(j, "_remove_final_layer_norm", false, &remove_final, what, err)) ||
        (rc = pq_json_bool(j, "layer_norm_elementwise_affine", false, affine, what, err)) ||
        (rc = pq_json_bool(j, "enable_bias", false, bias, what, err)) ||
        (rc = pq_json_bool(j, "tie_word_embeddings", false, &c->tie_word_embeddings, what, err)))
        return rc;
    c->post_ln = !before;
    c->final_ln = before && !remove_final;
    c->ln_eps = 1e-5f; /* nn.LayerNorm default; OPT has no epsilon setting */
    return 0;
}

#define NAME(buf, ...)                                                                             \
    char buf##_s[160];                                                                             \
    snprintf(buf##_s, sizeof buf##_s, "model.decoder." __VA_ARGS__);                               \
    const char *const buf[] = {buf##_s, NULL}

static int linear(pq_model *m, pq_linear *lin, int l, const char *base, int n, int k, bool bias,
                  polyq_err *err)
{
    NAME(wn, "layers.%d.%s.weight", l, base);
    NAME(bn, "layers.%d.%s.bias", l, base);
    return pq_model_get_linear(m, lin, wn, bias ? bn : NULL, n, k, err);
}

static int layernorm(pq_model *m, const float **w, const float **b, const char *name, int C,
                     bool affine, polyq_err *err)
{
    if (!affine)
        return 0;
    int64_t s[1] = {C};
    NAME(wn, "%s.weight", name);
    NAME(bn, "%s.bias", name);
    int rc = pq_model_get_f32(m, wn, 1, s, w, err);
    return rc ? rc : pq_model_get_f32(m, bn, 1, s, b, err);
}

static int opt_load(pq_model *m, const json_t *config, polyq_err *err)
{
    pq_config *c = &m->cfg;
    char what[4200];
    snprintf(what, sizeof what, "%s/config.json", m->dir);
    bool affine, bias;
    int rc = read_config(c, config, what, &affine, &bias, err);
    if (rc)
        return rc;
    int C = c->n_embd, F = c->n_inner, E = c->n_embd_proj ? c->n_embd_proj : C;
    int64_t s_emb[2] = {c->n_vocab, E}, s_pos[2] = {c->n_ctx + POS_OFFSET, C};
    NAME(emb, "embed_tokens.weight");
    NAME(pos, "embed_positions.weight");
    if ((rc = pq_model_get_f32(m, emb, 2, s_emb, &m->wte, err)) ||
        (rc = pq_model_get_f32(m, pos, 2, s_pos, &m->wpe, err)))
        return rc;
    if (c->final_ln &&
        (rc = layernorm(m, &m->lnf_w, &m->lnf_b, "final_layer_norm", C, affine, err)))
        return rc;
    if (c->n_embd_proj) {
        NAME(pin, "project_in.weight");
        NAME(pout, "project_out.weight");
        if ((rc = pq_model_get_weight(m, &m->proj_in, pin, C, E, err)) ||
            (rc = pq_model_get_weight(m, &m->proj_out, pout, E, C, err)))
            return rc;
    }
    if ((rc = pq_model_lm_head(m, E, err)))
        return rc;
    m->layers = calloc((size_t)c->n_layer, sizeof *m->layers);
    if (!m->layers)
        return pq_fail(err, POLYQ_NOMEM, "out of memory");
    for (int l = 0; l < c->n_layer; l++) {
        pq_layer *L = &m->layers[l];
        char n1[64], n2[64];
        snprintf(n1, sizeof n1, "layers.%d.self_attn_layer_norm", l);
        snprintf(n2, sizeof n2, "layers.%d.final_layer_norm", l);
        if ((rc = layernorm(m, &L->ln1_w, &L->ln1_b, n1, C, affine, err)) ||
            (rc = layernorm(m, &L->ln2_w, &L->ln2_b, n2, C, affine, err)) ||
            (rc = linear(m, &L->q, l, "self_attn.q_proj", C, C, bias, err)) ||
            (rc = linear(m, &L->k, l, "self_attn.k_proj", C, C, bias, err)) ||
            (rc = linear(m, &L->v, l, "self_attn.v_proj", C, C, bias, err)) ||
            (rc = linear(m, &L->attn_out, l, "self_attn.out_proj", C, C, bias, err)) ||
            (rc = linear(m, &L->up, l, "fc1", F, C, bias, err)) ||
            (rc = linear(m, &L->down, l, "fc2", C, F, bias, err)))
            return rc;
    }
    return 0;
}

static void opt_forward(const pq_model *m, pq_ops *ops, pq_acts *a, const int32_t *tokens,
                        const int *seq_start, int n_seq, float *logits)
{
    const pq_config *c = &m->cfg;
    int C = c->n_embd, M = seq_start[n_seq], E = c->n_embd_proj;
    /* x (M,C) = project_in(embed_tokens[token]) + embed_positions[position + 2] */
    if (E) {
        pq_embed(a->proj, m->wte, tokens, M, E);
        pq_linear_fwd(ops, a->x, a->proj, M, &m->proj_in);
    } else {
        pq_embed(a->x, m->wte, tokens, M, C);
    }
    for (int s = 0; s < n_seq; s++)
        for (int r = seq_start[s]; r < seq_start[s + 1]; r++) {
            const float *pe = m->wpe + (size_t)(r - seq_start[s] + POS_OFFSET) * C;
            for (int i = 0; i < C; i++)
                a->x[(size_t)r * C + i] += pe[i];
        }
    pq_attn at = pq_config_attn(c);
    for (int l = 0; l < c->n_layer; l++) {
        const pq_layer *L = &m->layers[l];
        /* attention: pre-LN x += attn(ln1(x)); post-LN x = ln1(x + attn(x)) */
        if (c->post_ln)
            memcpy(a->xn, a->x, sizeof(float) * (size_t)M * C);
        else
            pq_layernorm_fwd(ops, a->xn, a->x, L->ln1_w, L->ln1_b, M, C, c->ln_eps);
        pq_layer_qkv(ops, L, a->qkv, a->xn, M, &at);
        pq_attention_fwd(ops, a->att, a->qkv, seq_start, n_seq, &at);
        pq_linear_fwd(ops, a->xn, a->att, M, &L->attn_out);
        pq_add(a->x, a->xn, (size_t)M * C);
        if (c->post_ln)
            pq_layernorm_fwd(ops, a->x, a->x, L->ln1_w, L->ln1_b, M, C, c->ln_eps);
        /* MLP: the same with fc2(relu(fc1(.))) and the block's final_layer_norm */
        if (c->post_ln)
            memcpy(a->xn, a->x, sizeof(float) * (size_t)M * C);
        else
            pq_layernorm_fwd(ops, a->xn, a->x, L->ln2_w, L->ln2_b, M, C, c->ln_eps);
        pq_linear_fwd(ops, a->h, a->xn, M, &L->up);
        pq_activation_fwd(ops, a->h, (size_t)M * c->n_inner, c->act);
        pq_linear_fwd(ops, a->xn, a->h, M, &L->down);
        pq_add(a->x, a->xn, (size_t)M * C);
        if (c->post_ln)
            pq_layernorm_fwd(ops, a->x, a->x, L->ln2_w, L->ln2_b, M, C, c->ln_eps);
        pq_acts_check(a, l, (size_t)M * C);
    }
    const float *h = a->x;
    if (c->final_ln) {
        pq_layernorm_fwd(ops, a->xn, a->x, m->lnf_w, m->lnf_b, M, C, c->ln_eps);
        h = a->xn;
    }
    if (E) {
        pq_linear_fwd(ops, a->proj, h, M, &m->proj_out);
        h = a->proj;
    }
    pq_linear_fwd(ops, logits, h, M, &m->lm_head); /* logits (M,V) */
}

/* AWQ's attention module for OPT: learned positions were added to the embeddings, so the
 * attention has no rotary step */
static void opt_attention_module(const pq_model *m, pq_ops *ops, const pq_layer *L, const float *xn,
                                 const int *starts, int n, float *qkv, float *att, float *out)
{
    pq_attn at = pq_config_attn(&m->cfg);
    pq_layer_qkv(ops, L, qkv, xn, starts[n], &at);
    pq_attention_fwd(ops, att, qkv, starts, n, &at);
    pq_linear_fwd(ops, out, att, starts[n], &L->attn_out);
}

/* AWQ as AutoAWQ's OPT: q k v on the attention's output, the rest alone */
static int opt_awq_groups(const pq_model *m, pq_awq_group *g)
{
    return pq_awq_groups_std(g, PQ_AWQ_ATTENTION, PQ_AWQ_LINEARS, PQ_AWQ_LINEARS);
}

const pq_arch pq_arch_opt = {
    .model_type = "opt",
    .description = "OPT (learned positions, pre- or post-LayerNorm, projections)",
    .load = opt_load,
    .forward = opt_forward,
    .block_name = "model.decoder.layers.%d",
    .scoring = PQ_SCORE_CAUSAL,
    .awq_groups = opt_awq_groups,
    .awq_attention = opt_attention_module,
};
