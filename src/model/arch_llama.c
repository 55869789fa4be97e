/* Llama (transformers LlamaForCausalLM) and Mistral (MistralForCausalLM): RMSNorm, rotary
 * embeddings over the whole head (rope_theta), grouped-query attention
 * (num_key_value_heads), SwiGLU MLP, no biases unless attention_bias / mlp_bias, untied LM
 * head; Mistral adds sliding-window attention (sliding_window). References:
 * transformers/models/llama/modeling_llama.py, models/mistral/modeling_mistral.py.
 *
 * Hugging Face tensor names (C = hidden_size, I = intermediate_size, H heads and KVH kv
 * heads of D = C / H):
 *   model.embed_tokens.weight [V, C]   model.norm.weight [C]   lm_head.weight [V, C]
 *   model.layers.L.input_layernorm.weight [C]   .post_attention_layernorm.weight [C]
 *   model.layers.L.self_attn.q_proj.weight [H*D, C]   .k_proj/.v_proj.weight [KVH*D, C]
 *   model.layers.L.self_attn.o_proj.weight [C, H*D]
 *   model.layers.L.mlp.gate_proj.weight [I, C]   .up_proj.weight [I, C]   .down_proj.weight [C, I]
 */
#include <math.h>
#include <stdio.h>
#include <string.h>

#include "format/json.h"
#include "model/model.h"

/* Layers of sliding-window attention in a Qwen-style config (use_sliding_window with
 * max_window_layers, or layer_types): refused, all layers attend to the whole context here. */
static int check_layer_types(const pq_config *c, const json_t *j, const char *what, polyq_err *err)
{
    const json_t *lt = json_object_get(j, "layer_types"),
                 *use = json_object_get(j, "use_sliding_window");
    size_t i;
    json_t *v;
    json_array_foreach(lt, i,
                       v) if (!json_is_string(v) || strcmp(json_string_value(v), "full_attention"))
    {
        return pq_fail(err, POLYQ_UNSUPPORTED,
                       "%s: layer_types[%zu] is %s; sliding-window layers are not implemented "
                       "for %s (every layer must be \"full_attention\")",
                       what, i, json_is_string(v) ? json_string_value(v) : "not text",
                       c->model_type);
    }
    int mwl = c->n_layer;
    const pq_cfg_int k = {"max_window_layers", NULL, &mwl, false, 0, 1 << 10, c->n_layer};
    int rc = pq_config_ints(j, &k, 1, what, err);
    if (rc)
        return rc;
    if (!json_is_array(lt) && json_is_true(use) &&
        !json_is_null(json_object_get(j, "sliding_window")) && mwl < c->n_layer)
        return pq_fail(err, POLYQ_UNSUPPORTED,
                       "%s: use_sliding_window with max_window_layers %d of %d layers; "
                       "sliding-window layers are not implemented for %s",
                       what, mwl, c->n_layer, c->model_type);
    return 0;
}

static int read_config(pq_config *c, const json_t *j, const char *what, const pq_llama_variant *var,
                       bool *attn_bias, bool *mlp_bias, polyq_err *err)
{
    int rc, head_dim = 0;
    const pq_cfg_int dims[] = {
        {"hidden_size", NULL, &c->n_embd, true, 1, 1 << 16, 0},
        {"num_attention_heads", NULL, &c->n_head, true, 1, 1 << 10, 0},
        {"num_hidden_layers", NULL, &c->n_layer, true, 1, 1 << 10, 0},
        {"vocab_size", NULL, &c->n_vocab, true, 1, 1 << 24, 0},
        {"intermediate_size", NULL, &c->n_inner, true, 1, 1 << 20, 0},
        {"max_position_embeddings", NULL, &c->n_ctx, false, 1, 1 << 24, 2048},
        {"bos_token_id", NULL, &c->bos_id, false, 0, 1 << 24, -1},
        {"eos_token_id", NULL, &c->eos_id, false, 0, 1 << 24, -1},
        {"sliding_window", NULL, &c->window, false, 0, 1 << 24, 0},
        {"head_dim", NULL, &head_dim, false, 0, 1 << 14, 0},
    };
    if ((rc = pq_config_ints(j, dims, sizeof dims / sizeof dims[0], what, err)))
        return rc;
    const pq_cfg_int kv = {
        "num_key_value_heads", NULL, &c->n_kv_head, false, 1, 1 << 10, c->n_head};
    if ((rc = pq_config_ints(j, &kv, 1, what, err)))
        return rc;
    if (!head_dim)
        head_dim = var->head_dim;
    if ((!head_dim && c->n_embd % c->n_head) || c->n_head % c->n_kv_head)
        return pq_fail(
            err, POLYQ_FORMAT,
            "%s: hidden_size %d, num_attention_heads %d and num_key_value_heads %d do not divide",
            what, c->n_embd, c->n_head, c->n_kv_head);
    if (head_dim % 2)
        return pq_fail(err, POLYQ_FORMAT, "%s: head_dim %d is odd (rotary pairs need it even)",
                       what, head_dim);
    c->head_dim = head_dim == c->n_embd / c->n_head && !(c->n_embd % c->n_head) ? 0 : head_dim;
    if (!var->window)
        c->window = 0; /* Llama has no sliding window */
    if (var->layer_types && (rc = check_layer_types(c, j, what, err)))
        return rc;
    double eps = 1e-6, theta = 10000;
    if ((rc = pq_json_real(j, "rms_norm_eps", false, &eps, what, err)) ||
        (rc = pq_config_act(j, "hidden_act", "silu", &c->act, what, err)) ||
        (rc = pq_json_real(j, "rope_theta", false, &theta, what, err)))
        return rc;
    const json_t *rp = json_object_get(j, "rope_parameters");
    const json_t *rs = json_object_get(j, "rope_scaling");
    if (json_is_object(rp) && (rc = pq_json_real(rp, "rope_theta", false, &theta, what, err)))
        return rc;
    const json_t *scaling = json_is_object(rs) ? rs : rp;
    if (theta <= 0)
        return pq_fail(err, POLYQ_FORMAT, "%s: rope_theta %g is not positive", what, theta);
    c->rope = (pq_rope){.theta = (float)theta};
    if (json_is_object(scaling) &&
        (rc = pq_config_rope_scaling(scaling, c->n_ctx, &c->rope, what, err)))
        return rc;
    c->ln_eps = (float)eps;
    c->rotary_dims = head_dim ? head_dim : c->n_embd / c->n_head;
    if (var->fused) { /* Phi-3: rotary over the leading partial_rotary_factor of each head */
        double f = 1;
        if ((rc = pq_json_real(j, "partial_rotary_factor", false, &f, what, err)) ||
            (json_is_object(rp) &&
             (rc = pq_json_real(rp, "partial_rotary_factor", false, &f, what, err))))
            return rc;
        int rot = (int)(c->rotary_dims * f);
        if (!(f > 0 && f <= 1) || rot < 2 || rot % 2)
            return pq_fail(err, POLYQ_FORMAT,
                           "%s: partial_rotary_factor %g of a head of %d gives no even rotary "
                           "width",
                           what, f, c->rotary_dims);
        c->rotary_dims = rot;
    }
    c->qk_norm = var->qk_norm;
    c->gated = true;
    c->tie_word_embeddings = false;
    *attn_bias = *mlp_bias = false;
    if ((rc = pq_json_bool(j, "tie_word_embeddings", false, &c->tie_word_embeddings, what, err)) ||
        (!var->qkv_bias && (rc = pq_json_bool(j, "attention_bias", false, attn_bias, what, err))) ||
        (rc = pq_json_bool(j, "mlp_bias", false, mlp_bias, what, err)))
        return rc;
    return 0;
}

#define NAME(buf, ...)                                                                             \
    char buf##_s[160];                                                                             \
    snprintf(buf##_s, sizeof buf##_s, __VA_ARGS__);                                                \
    const char *const buf[] = {buf##_s, NULL}

static int linear(pq_model *m, pq_linear *lin, int l, const char *base, int n, int k, bool bias,
                  polyq_err *err)
{
    NAME(wn, "model.layers.%d.%s.weight", l, base);
    NAME(bn, "model.layers.%d.%s.bias", l, base);
    return pq_model_get_linear(m, lin, wn, bias ? bn : NULL, n, k, err);
}

int pq_llama_load(pq_model *m, const json_t *config, const pq_llama_variant *var, polyq_err *err)
{
    pq_config *c = &m->cfg;
    char what[4200];
    snprintf(what, sizeof what, "%s/config.json", m->dir);
    bool ab, mb;
    int rc = read_config(c, config, what, var, &ab, &mb, err);
    if (rc)
        return rc;
    pq_attn at = pq_config_attn(c);
    int C = c->n_embd, I = c->n_inner, Q = at.H * at.D, KV = at.KVH * at.D;
    bool qkv_b = ab || var->qkv_bias; /* Qwen2: q, k, v with biases, o without */
    int64_t s_emb[2] = {c->n_vocab, C}, s_c[1] = {C}, s_d[1] = {at.D};
    const char *const emb[] = {"model.embed_tokens.weight", NULL};
    const char *const norm[] = {"model.norm.weight", NULL};
    if ((rc = pq_model_get_embeddings(m, emb, s_emb, err)) ||
        (rc = pq_model_get_f32(m, norm, 1, s_c, &m->lnf_w, err)))
        return rc;
    if ((rc = pq_model_lm_head(m, C, err)))
        return rc;
    m->layers = calloc((size_t)c->n_layer, sizeof *m->layers);
    if (!m->layers)
        return pq_fail(err, POLYQ_NOMEM, "out of memory");
    for (int l = 0; l < c->n_layer; l++) {
        pq_layer *L = &m->layers[l];
        NAME(n1, "model.layers.%d.input_layernorm.weight", l);
        NAME(n2, "model.layers.%d.post_attention_layernorm.weight", l);
        if ((rc = pq_model_get_f32(m, n1, 1, s_c, &L->ln1_w, err)) ||
            (rc = pq_model_get_f32(m, n2, 1, s_c, &L->ln2_w, err)) ||
            (rc = linear(m, &L->attn_out, l, "self_attn.o_proj", C, Q, ab, err)) ||
            (rc = linear(m, &L->down, l, "mlp.down_proj", C, I, mb, err)))
            return rc;
        if (var->fused) { /* qkv as one linear ([q | k | v]); gate_up's halves apart */
            pq_linear gu = {0};
            if ((rc = linear(m, &L->qkv, l, "self_attn.qkv_proj", Q + 2 * KV, C, ab, err)) ||
                (rc = linear(m, &gu, l, "mlp.gate_up_proj", 2 * I, C, mb, err)))
                return rc;
            if ((rc = pq_linear_rows(m, &gu, 0, I, &L->gate, err)) ||
                (rc = pq_linear_rows(m, &gu, I, I, &L->up, err)))
                return rc;
        } else if ((rc = linear(m, &L->q, l, "self_attn.q_proj", Q, C, qkv_b, err)) ||
                   (rc = linear(m, &L->k, l, "self_attn.k_proj", KV, C, qkv_b, err)) ||
                   (rc = linear(m, &L->v, l, "self_attn.v_proj", KV, C, qkv_b, err)) ||
                   (rc = linear(m, &L->gate, l, "mlp.gate_proj", I, C, mb, err)) ||
                   (rc = linear(m, &L->up, l, "mlp.up_proj", I, C, mb, err)))
            return rc;
        if (c->qk_norm) {
            NAME(qn, "model.layers.%d.self_attn.q_norm.weight", l);
            NAME(kn, "model.layers.%d.self_attn.k_norm.weight", l);
            if ((rc = pq_model_get_f32(m, qn, 1, s_d, &L->q_norm_w, err)) ||
                (rc = pq_model_get_f32(m, kn, 1, s_d, &L->k_norm_w, err)))
                return rc;
        }
    }
    return 0;
}

static int llama_load(pq_model *m, const json_t *config, polyq_err *err)
{
    static const pq_llama_variant v = {0};
    return pq_llama_load(m, config, &v, err);
}

static int mistral_load(pq_model *m, const json_t *config, polyq_err *err)
{
    static const pq_llama_variant v = {.window = true};
    return pq_llama_load(m, config, &v, err);
}

/* q and k of every token from xn, each head RMS-normalized when the family does (Qwen3),
 * rotated */
static void attention_inputs(const pq_model *m, pq_ops *ops, const pq_layer *L, float *qkv,
                             const float *xn, const int *starts, int n, const pq_attn *at)
{
    const pq_config *c = &m->cfg;
    pq_layer_qkv(ops, L, qkv, xn, starts[n], at);
    if (L->q_norm_w) {
        int ld = pq_attn_ld(at);
        pq_head_rmsnorm_fwd(ops, qkv, starts[n], ld, at->H, at->D, L->q_norm_w, c->ln_eps);
        pq_head_rmsnorm_fwd(ops, qkv + (size_t)at->H * at->D, starts[n], ld, at->KVH, at->D,
                            L->k_norm_w, c->ln_eps);
    }
    pq_rope_neox(qkv, starts, n, at, c->rotary_dims, &c->rope);
}

void pq_llama_forward(const pq_model *m, pq_ops *ops, pq_acts *a, const int32_t *tokens,
                      const int *seq_start, int n_seq, float *logits)
{
    const pq_config *c = &m->cfg;
    int C = c->n_embd, M = seq_start[n_seq];
    pq_attn at = pq_config_attn(c);
    pq_model_embed(m, a->x, tokens, M); /* x (M,C) = embed_tokens[token] */
    for (int l = 0; l < c->n_layer; l++) {
        const pq_layer *L = &m->layers[l];
        /* x += o_proj(attn(rope(q, k), v)) on rmsnorm(x) */
        pq_rmsnorm_fwd(ops, a->xn, a->x, L->ln1_w, M, C, c->ln_eps);
        attention_inputs(m, ops, L, a->qkv, a->xn, seq_start, n_seq, &at);
        pq_attention_fwd(ops, a->att, a->qkv, seq_start, n_seq, &at);
        pq_linear_fwd(ops, a->xn, a->att, M, &L->attn_out);
        pq_add(a->x, a->xn, (size_t)M * C);
        /* x += down(act(gate(h)) * up(h)), h = rmsnorm(x) */
        pq_rmsnorm_fwd(ops, a->xn, a->x, L->ln2_w, M, C, c->ln_eps);
        pq_linear_fwd(ops, a->h, a->xn, M, &L->gate);
        pq_linear_fwd(ops, a->h2, a->xn, M, &L->up);
        pq_gated_fwd(ops, a->h, a->h2, (size_t)M * c->n_inner, c->act);
        pq_linear_fwd(ops, a->xn, a->h, M, &L->down);
        pq_add(a->x, a->xn, (size_t)M * C);
        pq_acts_check(a, l, (size_t)M * C);
    }
    pq_rmsnorm_fwd(ops, a->xn, a->x, m->lnf_w, M, C, c->ln_eps);
    pq_linear_fwd(ops, logits, a->xn, M, &m->lm_head); /* logits (M,V) */
}

void pq_llama_attention_module(const pq_model *m, pq_ops *ops, const pq_layer *L, const float *xn,
                               const int *starts, int n, float *qkv, float *att, float *out)
{
    pq_attn at = pq_config_attn(&m->cfg);
    attention_inputs(m, ops, L, qkv, xn, starts, n, &at);
    pq_attention_fwd(ops, att, qkv, starts, n, &at);
    pq_linear_fwd(ops, out, att, starts[n], &L->attn_out);
}

/* AWQ as AutoAWQ's get_layers_for_scaling: q k v on the attention's output, o_proj alone where
 * v and o have the same shape (not under grouped-query attention, where it is not scaled), gate
 * up on the MLP's output, down alone. */
int pq_llama_awq_groups(const pq_model *m, pq_awq_group *g)
{
    const pq_layer *L = &m->layers[0];
    bool gqa = L->v.n_out != L->attn_out.n_out || L->v.n_in != L->attn_out.n_in;
    return pq_awq_groups_std(g, PQ_AWQ_ATTENTION, gqa ? PQ_AWQ_NONE : PQ_AWQ_LINEARS,
                             L->gate.n_out ? PQ_AWQ_MLP : PQ_AWQ_LINEARS);
}

/* GGUF: llama.cpp's "llama" names; q and k rows in ggml's interleaved rotary order */
static const pq_gguf_name llama_gguf_names[] = {
    {"token_embd.weight", "model.embed_tokens.weight", 'v', PQ_GF_WTE},
    {"attn_norm.weight", "model.layers.%d.input_layernorm.weight", 'v', PQ_GF_LN1_W},
    {"ffn_norm.weight", "model.layers.%d.post_attention_layernorm.weight", 'v', PQ_GF_LN2_W},
    {"attn_q.weight", "model.layers.%d.self_attn.q_proj.weight", 'q', PQ_GF_LINEAR + PQ_ROLE_Q},
    {"attn_k.weight", "model.layers.%d.self_attn.k_proj.weight", 'k', PQ_GF_LINEAR + PQ_ROLE_K},
    {"attn_v.weight", "model.layers.%d.self_attn.v_proj.weight", 'v', PQ_GF_LINEAR + PQ_ROLE_V},
    {"ffn_gate.weight", "model.layers.%d.mlp.gate_proj.weight", 'v', PQ_GF_LINEAR + PQ_ROLE_GATE},
    {"attn_output.weight", "model.layers.%d.self_attn.o_proj.weight", 'v',
     PQ_GF_LINEAR + PQ_ROLE_ATTN_OUT},
    {"ffn_up.weight", "model.layers.%d.mlp.up_proj.weight", 'v', PQ_GF_LINEAR + PQ_ROLE_UP},
    {"ffn_down.weight", "model.layers.%d.mlp.down_proj.weight", 'v', PQ_GF_LINEAR + PQ_ROLE_DOWN},
    {"output_norm.weight", "model.norm.weight", 'v', PQ_GF_LNF_W},
    {"output.weight", "lm_head.weight", 'v', PQ_GF_HEAD},
    {NULL, NULL, 0, 0}};

json_t *pq_llama_gguf_config_as(const pq_gguf_meta *g, const char *model_type,
                                const char *architecture)
{
    json_t *c = json_pack(
        "{s:s, s:[s], s:I, s:I, s:I, s:I, s:I, s:I, s:I, s:f, s:f, s:s, s:b, s:I, s:I}",
        "model_type", model_type, "architectures", architecture, "vocab_size",
        (json_int_t)g->n_vocab, "max_position_embeddings", (json_int_t)g->n_ctx, "hidden_size",
        (json_int_t)g->n_embd, "num_hidden_layers", (json_int_t)g->n_layer, "num_attention_heads",
        (json_int_t)g->n_head, "num_key_value_heads", (json_int_t)g->n_kv_head, "intermediate_size",
        (json_int_t)g->n_ff, "rms_norm_eps", g->eps, "rope_theta", g->theta, "hidden_act", "silu",
        "tie_word_embeddings", g->tied, "bos_token_id", (json_int_t)g->bos, "eos_token_id",
        (json_int_t)g->eos);
    if (c && g->rope_linear > 0 && g->rope_linear != 1 &&
        json_object_set_new(
            c, "rope_scaling",
            json_pack("{s:s, s:f}", "rope_type", "linear", "factor", g->rope_linear))) {
        json_decref(c);
        return NULL;
    }
    return c;
}

static json_t *llama_gguf_config(const pq_gguf_meta *g)
{
    return pq_llama_gguf_config_as(g, "llama", "LlamaForCausalLM");
}

static const pq_gguf_family llama_gguf = {.arch = "llama",
                                          .vocab = "llama",
                                          .rms_norm = true,
                                          .rope = true,
                                          .default_ctx = 2048,
                                          .default_eps = 1e-6,
                                          .names = llama_gguf_names,
                                          .config = llama_gguf_config};

#define LLAMA_LIKE(type, desc, load_fn)                                                            \
    {                                                                                              \
        .model_type = type, .description = desc, .load = load_fn, .forward = pq_llama_forward,     \
        .block_name = "model.layers.%d", .scoring = PQ_SCORE_CAUSAL,                               \
        .awq_groups = pq_llama_awq_groups, .awq_attention = pq_llama_attention_module,             \
        .gguf = &llama_gguf                                                                        \
    }

const pq_arch pq_arch_llama =
    LLAMA_LIKE("llama", "Llama (RMSNorm, rotary, grouped-query attention, SwiGLU)", llama_load);
/* Written to GGUF as llama.cpp writes Mistral: the "llama" architecture with a sliding window */
const pq_arch pq_arch_mistral =
    LLAMA_LIKE("mistral", "Mistral (Llama with sliding-window attention)", mistral_load);
