/* GPT-2 (transformers GPT2LMHeadModel; mGPT uses the same code): learned positions,
 * pre-LayerNorm blocks, fused qkv, GELU MLP, final LayerNorm, LM head tied to wte unless
 * tie_word_embeddings is false. Conv1D weights are stored [in, out] and are transposed to
 * [out, in] at load. Reference: transformers/models/gpt2/modeling_gpt2.py.
 *
 * Hugging Face tensor names (prefix "transformer." optional; C = n_embd, I = n_inner):
 *   wte.weight [V, C]  wpe.weight [n_positions, C]  ln_f.{weight,bias} [C]  lm_head.weight [V, C]
 *   h.L.ln_1.{weight,bias} [C]          h.L.ln_2.{weight,bias} [C]
 *   h.L.attn.c_attn.weight [C, 3C]  .bias [3C]     h.L.attn.c_proj.weight [C, C]  .bias [C]
 *   h.L.mlp.c_fc.weight [C, I]      .bias [I]      h.L.mlp.c_proj.weight [I, C]   .bias [C] */
#include <math.h>
#include <stdio.h>
#include <string.h>

#include "format/json.h"
#include "model/model.h"

/* names[0] = "transformer.<name>", names[1] = "<name>" */
#define NAMES(buf, ...)                                                                            \
    char buf##_a[160], buf##_b[160];                                                               \
    snprintf(buf##_a, sizeof buf##_a, "transformer." __VA_ARGS__);                                 \
    snprintf(buf##_b, sizeof buf##_b, __VA_ARGS__);                                                \
    const char *const buf[] = {buf##_a, buf##_b, NULL}

static int read_config(pq_config *c, const json_t *j, const char *what, polyq_err *err)
{
    int rc;
    const pq_cfg_int dims[] = {
        {"n_embd", NULL, &c->n_embd, true, 1, 1 << 16, 0},
        {"n_head", NULL, &c->n_head, true, 1, 1 << 10, 0},
        {"n_layer", NULL, &c->n_layer, true, 1, 1 << 10, 0},
        {"vocab_size", NULL, &c->n_vocab, true, 1, 1 << 24, 0},
        {"n_positions", NULL, &c->n_ctx, false, 1, 1 << 20, 1024},
        {"bos_token_id", NULL, &c->bos_id, false, 0, 1 << 24, -1},
        {"eos_token_id", NULL, &c->eos_id, false, 0, 1 << 24, -1},
    };
    if ((rc = pq_config_ints(j, dims, sizeof dims / sizeof dims[0], what, err)))
        return rc;
    const pq_cfg_int inner = {"n_inner", NULL,    &c->n_inner,           false,
                              1,         1 << 20, 4 * (int64_t)c->n_embd};
    if ((rc = pq_config_ints(j, &inner, 1, what, err)))
        return rc;
    if (c->n_embd % c->n_head)
        return pq_fail(err, POLYQ_FORMAT, "%s: n_embd %d is not a multiple of n_head %d", what,
                       c->n_embd, c->n_head);
    double eps = 1e-5;
    if ((rc = pq_json_real(j, "layer_norm_epsilon", false, &eps, what, err)))
        return rc;
    c->ln_eps = (float)eps;
    if ((rc = pq_config_act(j, "activation_function", "gelu_new", &c->act, what, err)))
        return rc;
    c->scale_attn_weights = true;
    c->tie_word_embeddings = true;
    if ((rc = pq_json_bool(j, "scale_attn_weights", false, &c->scale_attn_weights, what, err)) ||
        (rc = pq_json_bool(j, "scale_attn_by_inverse_layer_idx", false,
                           &c->scale_attn_by_inverse_layer_idx, what, err)) ||
        (rc = pq_json_bool(j, "tie_word_embeddings", false, &c->tie_word_embeddings, what, err)))
        return rc;
    return 0;
}

static int linear_conv1d(pq_model *m, pq_linear *lin, const char *base, int l, int k, int n,
                         polyq_err *err)
{
    NAMES(wn, "h.%d.%s.weight", l, base);
    NAMES(bn, "h.%d.%s.bias", l, base);
    int64_t bshape[1] = {n}, wshape[2] = {k, n};
    lin->n_in = k;
    lin->n_out = n;
    if (pq_model_packed(m, wn)) /* a quantized GGUF's rows: [out, in] */
        return pq_model_get_linear(m, lin, wn, bn, n, k, err);
    lin->wt = true; /* used as stored, [in, out] */
    int rc = pq_model_get_f32(m, wn, 2, wshape, &lin->w, err);
    return rc ? rc : pq_model_get_f32(m, bn, 1, bshape, &lin->bias, err);
}

static int gpt2_load(pq_model *m, const json_t *config, polyq_err *err)
{
    pq_config *c = &m->cfg;
    char what[4200];
    snprintf(what, sizeof what, "%s/config.json", m->dir);
    int rc = read_config(c, config, what, err);
    if (rc)
        return rc;
    int C = c->n_embd, I = c->n_inner;
    int64_t s_wte[2] = {c->n_vocab, C}, s_wpe[2] = {c->n_ctx, C}, s_c[1] = {C};
    NAMES(wte, "wte.weight");
    NAMES(wpe, "wpe.weight");
    NAMES(lnfw, "ln_f.weight");
    NAMES(lnfb, "ln_f.bias");
    if ((rc = pq_model_get_embeddings(m, wte, s_wte, err)) ||
        (rc = pq_model_get_f32(m, wpe, 2, s_wpe, &m->wpe, err)) ||
        (rc = pq_model_get_f32(m, lnfw, 1, s_c, &m->lnf_w, err)) ||
        (rc = pq_model_get_f32(m, lnfb, 1, s_c, &m->lnf_b, err)))
        return rc;
    m->layers = calloc((size_t)c->n_layer, sizeof *m->layers);
    if (!m->layers)
        return pq_fail(err, POLYQ_NOMEM, "out of memory");
    for (int l = 0; l < c->n_layer; l++) {
        pq_layer *L = &m->layers[l];
        NAMES(l1w, "h.%d.ln_1.weight", l);
        NAMES(l1b, "h.%d.ln_1.bias", l);
        NAMES(l2w, "h.%d.ln_2.weight", l);
        NAMES(l2b, "h.%d.ln_2.bias", l);
        if ((rc = pq_model_get_f32(m, l1w, 1, s_c, &L->ln1_w, err)) ||
            (rc = pq_model_get_f32(m, l1b, 1, s_c, &L->ln1_b, err)) ||
            (rc = pq_model_get_f32(m, l2w, 1, s_c, &L->ln2_w, err)) ||
            (rc = pq_model_get_f32(m, l2b, 1, s_c, &L->ln2_b, err)) ||
            (rc = linear_conv1d(m, &L->qkv, "attn.c_attn", l, C, 3 * C, err)) ||
            (rc = linear_conv1d(m, &L->attn_out, "attn.c_proj", l, C, C, err)) ||
            (rc = linear_conv1d(m, &L->up, "mlp.c_fc", l, C, I, err)) ||
            (rc = linear_conv1d(m, &L->down, "mlp.c_proj", l, I, C, err)))
            return rc;
    }
    /* An untied model must ship lm_head.weight; a tied one may store a copy of wte. */
    return pq_model_lm_head(m, C, err);
}

static void gpt2_forward(const pq_model *m, pq_ops *ops, pq_acts *a, const int32_t *tokens,
                         const int *seq_start, int n_seq, float *logits)
{
    const pq_config *c = &m->cfg;
    int C = c->n_embd, M = seq_start[n_seq];
    /* x (M,C) = wte[token] + wpe[position in its sequence] */
    pq_model_embed(m, a->x, tokens, M);
    for (int s = 0; s < n_seq; s++)
        for (int r = seq_start[s]; r < seq_start[s + 1]; r++) {
            const float *pe = m->wpe + (size_t)(r - seq_start[s]) * C;
            for (int i = 0; i < C; i++)
                a->x[(size_t)r * C + i] += pe[i];
        }
    for (int l = 0; l < c->n_layer; l++) {
        const pq_layer *L = &m->layers[l];
        pq_attn at = pq_config_attn(c);
        if (!c->scale_attn_weights)
            at.scale = 1.0f;
        if (c->scale_attn_by_inverse_layer_idx)
            at.scale /= (float)(l + 1);
        /* attention block: x += c_proj(attn(c_attn(ln_1(x)))) */
        pq_layernorm_fwd(ops, a->xn, a->x, L->ln1_w, L->ln1_b, M, C, c->ln_eps);
        pq_layer_qkv(ops, L, a->qkv, a->xn, M, &at);
        pq_attention_fwd(ops, a->att, a->qkv, seq_start, n_seq, &at);
        pq_linear_fwd(ops, a->xn, a->att, M, &L->attn_out);
        pq_add(a->x, a->xn, (size_t)M * C);
        /* MLP block: x += c_proj(act(c_fc(ln_2(x)))) */
        pq_layernorm_fwd(ops, a->xn, a->x, L->ln2_w, L->ln2_b, M, C, c->ln_eps);
        pq_linear_fwd(ops, a->h, a->xn, M, &L->up);
        pq_activation_fwd(ops, a->h, (size_t)M * c->n_inner, c->act);
        pq_linear_fwd(ops, a->xn, a->h, M, &L->down);
        pq_add(a->x, a->xn, (size_t)M * C);
        pq_acts_check(a, l, (size_t)M * C);
    }
    pq_layernorm_fwd(ops, a->xn, a->x, m->lnf_w, m->lnf_b, M, C, c->ln_eps);
    pq_linear_fwd(ops, logits, a->xn, M, &m->lm_head); /* logits (M,V) */
}

/* AWQ: the references do not cover GPT-2; every linear or group is measured at its outputs */
static int gpt2_awq_groups(const pq_model *m, pq_awq_group *g)
{
    return pq_awq_groups_std(g, PQ_AWQ_LINEARS, PQ_AWQ_LINEARS, PQ_AWQ_LINEARS);
}

/* GGUF: llama.cpp's "gpt2" names; matrices are [out][in] there, Conv1D's [in][out] here */
static const pq_gguf_name gpt2_gguf_names[] = {
    {"token_embd.weight", "transformer.wte.weight", 'v', PQ_GF_WTE},
    {"position_embd.weight", "transformer.wpe.weight", 'v', PQ_GF_WPE},
    {"attn_norm.weight", "transformer.h.%d.ln_1.weight", 'v', PQ_GF_LN1_W},
    {"attn_norm.bias", "transformer.h.%d.ln_1.bias", 'v', PQ_GF_LN1_B},
    {"ffn_norm.weight", "transformer.h.%d.ln_2.weight", 'v', PQ_GF_LN2_W},
    {"ffn_norm.bias", "transformer.h.%d.ln_2.bias", 'v', PQ_GF_LN2_B},
    {"attn_qkv.weight", "transformer.h.%d.attn.c_attn.weight", 't', PQ_GF_LINEAR + PQ_ROLE_QKV},
    {"attn_qkv.bias", "transformer.h.%d.attn.c_attn.bias", 'v', PQ_GF_BIAS + PQ_ROLE_QKV},
    {"attn_output.bias", "transformer.h.%d.attn.c_proj.bias", 'v', PQ_GF_BIAS + PQ_ROLE_ATTN_OUT},
    {"ffn_up.bias", "transformer.h.%d.mlp.c_fc.bias", 'v', PQ_GF_BIAS + PQ_ROLE_UP},
    {"ffn_down.bias", "transformer.h.%d.mlp.c_proj.bias", 'v', PQ_GF_BIAS + PQ_ROLE_DOWN},
    {"attn_output.weight", "transformer.h.%d.attn.c_proj.weight", 't',
     PQ_GF_LINEAR + PQ_ROLE_ATTN_OUT},
    {"ffn_up.weight", "transformer.h.%d.mlp.c_fc.weight", 't', PQ_GF_LINEAR + PQ_ROLE_UP},
    {"ffn_down.weight", "transformer.h.%d.mlp.c_proj.weight", 't', PQ_GF_LINEAR + PQ_ROLE_DOWN},
    {"output_norm.weight", "transformer.ln_f.weight", 'v', PQ_GF_LNF_W},
    {"output_norm.bias", "transformer.ln_f.bias", 'v', PQ_GF_LNF_B},
    {"output.weight", "lm_head.weight", 'v', PQ_GF_HEAD},
    {NULL, NULL, 0, 0}};

static json_t *gpt2_gguf_config(const pq_gguf_meta *g)
{
    return json_pack("{s:s, s:[s], s:I, s:I, s:I, s:I, s:I, s:I, s:f, s:s, s:b, s:I, s:I}",
                     "model_type", "gpt2", "architectures", "GPT2LMHeadModel", "vocab_size",
                     (json_int_t)g->n_vocab, "n_positions", (json_int_t)g->n_ctx, "n_embd",
                     (json_int_t)g->n_embd, "n_layer", (json_int_t)g->n_layer, "n_head",
                     (json_int_t)g->n_head, "n_inner", (json_int_t)g->n_ff, "layer_norm_epsilon",
                     g->eps, "activation_function", "gelu_new", "tie_word_embeddings", g->tied,
                     "bos_token_id", (json_int_t)g->bos, "eos_token_id", (json_int_t)g->eos);
}

static const pq_gguf_family gpt2_gguf = {.arch = "gpt2",
                                         .vocab = "gpt2",
                                         .rms_norm = false,
                                         .rope = false,
                                         .default_ctx = 1024,
                                         .default_eps = 1e-5,
                                         .names = gpt2_gguf_names,
                                         .config = gpt2_gguf_config};

const pq_arch pq_arch_gpt2 = {
    .model_type = "gpt2",
    .description = "GPT-2, mGPT (learned positions, fused qkv, GELU)",
    .load = gpt2_load,
    .forward = gpt2_forward,
    .block_name = "transformer.h.%d",
    .scoring = PQ_SCORE_CAUSAL,
    .awq_groups = gpt2_awq_groups,
    .gguf = &gpt2_gguf,
    .mem_linears_copied = true, /* Conv1D weights are held transposed, beside the file */
};
