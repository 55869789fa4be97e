/* Gemma 2 (transformers Gemma2ForCausalLM) and Gemma 3 text models (Gemma3ForCausalLM,
 * model_type gemma3_text).
 *
 * Gemma 3: RMSNorm that
 * scales by (1 + weight), token embeddings multiplied by sqrt(hidden_size), an RMSNorm before
 * and after both the attention and the MLP, per-head q/k RMSNorm (also 1 + weight) before the
 * rotation, attention scores scaled by query_pre_attn_scalar^-1/2, a GeGLU MLP with tanh-GELU,
 * and layers of two kinds (layer_types, or every sliding_window_pattern-th layer global): local
 * ones attend through sliding_window with their own rotary base, global ones to the whole
 * context with the global base and its scaling. Tied head, no soft-capping (refused when a
 * config asks for it). Reference: transformers/models/gemma3/modeling_gemma3.py.
 *
 * Gemma 2: the same block without the q/k norm, one rotary for every layer, layers alternating
 * local (even) and global (odd) unless layer_types says otherwise, and soft-capping: each
 * attention score s (after the scale) becomes cap * tanh(s / cap) with attn_logit_softcapping,
 * the logits the same with final_logit_softcapping (either null: none). Reference:
 * transformers/models/gemma2/modeling_gemma2.py.
 *
 * Hugging Face tensor names (C = hidden_size, I = intermediate_size, H heads and KVH kv heads
 * of D = head_dim):
 *   model.embed_tokens.weight [V, C]   model.norm.weight [C]
 *   model.layers.L.input_layernorm / post_attention_layernorm / pre_feedforward_layernorm /
 *     post_feedforward_layernorm .weight [C]
 *   model.layers.L.self_attn.q_proj.weight [H*D, C]   .k_proj/.v_proj.weight [KVH*D, C]
 *   model.layers.L.self_attn.o_proj.weight [C, H*D]   .q_norm/.k_norm.weight [D]
 *   model.layers.L.mlp.gate_proj.weight [I, C]   .up_proj.weight [I, C]   .down_proj.weight [C, I]
 */
#include <math.h>
#include <stdio.h>
#include <string.h>

#include "format/json.h"
#include "model/model.h"

#define NAME(buf, ...)                                                                             \
    char buf##_s[160];                                                                             \
    snprintf(buf##_s, sizeof buf##_s, __VA_ARGS__);                                                \
    const char *const buf[] = {buf##_s, NULL}

/* one of rope_parameters' two entries ("full_attention", "sliding_attention"), or the whole
 * of it when it has no entry per layer kind (Gemma 2), else the legacy keys (rope_theta with
 * rope_scaling; rope_local_base_freq) */
static int read_rope(const json_t *j, bool local, bool v2, int n_ctx, pq_rope *r, const char *what,
                     polyq_err *err)
{
    const json_t *all = json_object_get(j, "rope_parameters");
    const json_t *rp = json_object_get(all, local ? "sliding_attention" : "full_attention");
    if (json_is_object(all) && !rp && !json_object_get(all, "sliding_attention"))
        rp = all;
    double theta = local || v2 ? 10000 : 1000000;
    int rc = json_is_object(rp) ? pq_json_real(rp, "rope_theta", false, &theta, what, err)
                                : pq_json_real(j, local ? "rope_local_base_freq" : "rope_theta",
                                               false, &theta, what, err);
    if (rc)
        return rc;
    if (!(theta > 0))
        return pq_fail(err, POLYQ_FORMAT, "%s: a rope_theta of %g is not positive", what, theta);
    *r = (pq_rope){.theta = (float)theta};
    const json_t *scaling = json_is_object(rp) ? rp
                            : local            ? NULL
                                               : json_object_get(j, "rope_scaling");
    return json_is_object(scaling) ? pq_config_rope_scaling(scaling, n_ctx, r, what, err) : 0;
}

/* a configuration made from a GGUF file says its norm weights already hold the 1 (llama.cpp's
 * converter adds it) */
#define NORMS_SHIFTED "polyq_norm_weights_include_one"

/* a soft-capping key: absent gives Gemma 2's default, null none (0), else a positive cap */
static int read_softcap(const json_t *j, const char *key, double dflt, float *out, const char *what,
                        polyq_err *err)
{
    const json_t *v = json_object_get(j, key);
    double cap = dflt;
    if (json_is_null(v)) {
        *out = 0;
        return 0;
    }
    int rc = pq_json_real(j, key, false, &cap, what, err);
    if (!rc && !(cap > 0 && isfinite(cap)))
        return pq_fail(err, POLYQ_FORMAT, "%s: %s %g is not positive", what, key, cap);
    *out = (float)cap;
    return rc;
}

static int read_config(pq_config *c, const json_t *j, const char *what, bool v2, bool *shifted,
                       polyq_err *err)
{
    int rc, pattern = v2 ? 2 : 6;
    *shifted = json_is_true(json_object_get(j, NORMS_SHIFTED));
    double eps = 1e-6, qpas = 256;
    c->head_dim = 256;
    c->tie_word_embeddings = true;
    const pq_cfg_int dims[] = {
        {"hidden_size", NULL, &c->n_embd, true, 1, 1 << 16, 0},
        {"num_attention_heads", NULL, &c->n_head, true, 1, 1 << 10, 0},
        {"num_hidden_layers", NULL, &c->n_layer, true, 1, 1 << 10, 0},
        {"vocab_size", NULL, &c->n_vocab, true, 1, 1 << 24, 0},
        {"intermediate_size", NULL, &c->n_inner, true, 1, 1 << 20, 0},
        {"max_position_embeddings", NULL, &c->n_ctx, false, 1, 1 << 24, 131072},
        {"head_dim", NULL, &c->head_dim, false, 2, 1 << 14, 256},
        {"bos_token_id", NULL, &c->bos_id, false, 0, 1 << 24, 2},
        {"eos_token_id", NULL, &c->eos_id, false, 0, 1 << 24, 1},
        {"sliding_window", NULL, &c->window, false, 1, 1 << 24, 4096},
        {"sliding_window_pattern", NULL, &pattern, false, 1, 1 << 10, pattern},
    };
    if ((rc = pq_config_ints(j, dims, sizeof dims / sizeof dims[0], what, err)))
        return rc;
    const pq_cfg_int kv = {
        "num_key_value_heads", NULL, &c->n_kv_head, false, 1, 1 << 10, c->n_head};
    if ((rc = pq_config_ints(j, &kv, 1, what, err)))
        return rc;
    if (c->n_head % c->n_kv_head || c->head_dim % 2)
        return pq_fail(err, POLYQ_FORMAT,
                       "%s: num_attention_heads %d, num_key_value_heads %d and head_dim %d do not "
                       "fit",
                       what, c->n_head, c->n_kv_head, c->head_dim);
    if ((rc = pq_json_real(j, "rms_norm_eps", false, &eps, what, err)) ||
        (rc = pq_json_real(j, "query_pre_attn_scalar", false, &qpas, what, err)) ||
        (rc = pq_config_act(j, "hidden_activation", "gelu_pytorch_tanh", &c->act, what, err)) ||
        (rc = pq_json_bool(j, "tie_word_embeddings", false, &c->tie_word_embeddings, what, err)) ||
        (rc = read_rope(j, false, v2, c->n_ctx, &c->rope, what, err)))
        return rc;
    if (v2) { /* one rotary for all layers; soft-capping on by default */
        c->rope_local = c->rope;
        double local = c->rope.theta;
        if ((rc = pq_json_real(j, "rope_local_base_freq", false, &local, what, err)))
            return rc;
        if (fabs(local - c->rope.theta) > 1e-6 * c->rope.theta)
            return pq_fail(err, POLYQ_UNSUPPORTED,
                           "%s: rope_local_base_freq %g differs from rope_theta %g; Gemma 2 with "
                           "a rotary of its own for local layers is not implemented",
                           what, local, (double)c->rope.theta);
        if ((rc = read_softcap(j, "attn_logit_softcapping", 50, &c->attn_softcap, what, err)) ||
            (rc = read_softcap(j, "final_logit_softcapping", 30, &c->final_softcap, what, err)))
            return rc;
    } else {
        if ((rc = read_rope(j, true, false, c->n_ctx, &c->rope_local, what, err)))
            return rc;
        static const char *const refused[] = {"final_logit_softcapping", "attn_logit_softcapping"};
        for (int k = 0; k < 2; k++)
            if (!json_is_null(json_object_get(j, refused[k])) && json_object_get(j, refused[k]))
                return pq_fail(err, POLYQ_UNSUPPORTED,
                               "%s: %s is set; Gemma 3 has no soft-capping and polyq does not "
                               "apply it to %s",
                               what, refused[k], c->model_type);
    }
    if (json_is_true(json_object_get(j, "use_bidirectional_attention")))
        return pq_fail(err, POLYQ_UNSUPPORTED,
                       "%s: use_bidirectional_attention is set (an embedding model, not a causal "
                       "LM)",
                       what);
    if (!(qpas > 0))
        return pq_fail(err, POLYQ_FORMAT, "%s: query_pre_attn_scalar %g is not positive", what,
                       qpas);
    /* transformers: every pattern-th layer is global when layer_types is absent (Gemma 2: every
     * second) */
    if ((rc = pq_config_layer_types(c, j, pattern, what, err)))
        return rc;
    c->ln_eps = (float)eps;
    c->attn_scale = (float)(1.0 / sqrt(qpas));
    c->embed_scale = sqrtf((float)c->n_embd);
    c->rotary_dims = c->head_dim;
    c->qk_norm = !v2;
    c->gated = true;
    return 0;
}

/* an RMSNorm weight w as Gemma applies it, 1 + w, in a model-owned copy (as stored when the
 * file holds it so) */
static int norm(pq_model *m, const char *name, int64_t n, bool shifted, const float **out,
                polyq_err *err)
{
    const char *const names[] = {name, NULL};
    const float *w;
    int rc = pq_model_get_f32(m, names, 1, &n, &w, err);
    if (!rc && shifted) {
        *out = w;
        return 0;
    }
    float *o = rc ? NULL : pq_model_alloc(m, (size_t)n);
    if (!rc && !o)
        rc = pq_fail(err, POLYQ_NOMEM, "out of memory");
    for (int64_t i = 0; !rc && i < n; i++)
        o[i] = 1.0f + w[i];
    *out = o;
    return rc;
}

static int linear(pq_model *m, pq_linear *lin, int l, const char *base, int n, int k,
                  polyq_err *err)
{
    NAME(wn, "model.layers.%d.%s.weight", l, base);
    return pq_model_get_linear(m, lin, wn, NULL, n, k, err);
}

static int gemma_load(pq_model *m, const json_t *config, bool v2, polyq_err *err)
{
    pq_config *c = &m->cfg;
    char what[4200];
    snprintf(what, sizeof what, "%s/config.json", m->dir);
    bool sh;
    int rc = read_config(c, config, what, v2, &sh, err);
    if (rc)
        return rc;
    pq_attn at = pq_config_attn(c);
    int C = c->n_embd, I = c->n_inner, Q = at.H * at.D, KV = at.KVH * at.D;
    int64_t s_emb[2] = {c->n_vocab, C};
    const char *const emb[] = {"model.embed_tokens.weight", NULL};
    if ((rc = pq_model_get_embeddings(m, emb, s_emb, err)) ||
        (rc = norm(m, "model.norm.weight", C, sh, &m->lnf_w, err)) ||
        (rc = pq_model_lm_head(m, C, err)))
        return rc;
    m->layers = calloc((size_t)c->n_layer, sizeof *m->layers);
    if (!m->layers)
        return pq_fail(err, POLYQ_NOMEM, "out of memory");
    for (int l = 0; l < c->n_layer && !rc; l++) {
        pq_layer *L = &m->layers[l];
        L->index = l;
        char n[6][128];
        static const char *const part[6] = {
            "input_layernorm",           "post_attention_layernorm",
            "pre_feedforward_layernorm", "post_feedforward_layernorm",
            "self_attn.q_norm",          "self_attn.k_norm"};
        const float **dst[6] = {&L->ln1_w,      &L->post_attn_w, &L->ln2_w,
                                &L->post_ffn_w, &L->q_norm_w,    &L->k_norm_w};
        for (int k = 0; k < (c->qk_norm ? 6 : 4) && !rc; k++) {
            snprintf(n[k], sizeof n[k], "model.layers.%d.%s.weight", l, part[k]);
            rc = norm(m, n[k], k < 4 ? C : at.D, sh, dst[k], err);
        }
        if (!rc && ((rc = linear(m, &L->q, l, "self_attn.q_proj", Q, C, err)) ||
                    (rc = linear(m, &L->k, l, "self_attn.k_proj", KV, C, err)) ||
                    (rc = linear(m, &L->v, l, "self_attn.v_proj", KV, C, err)) ||
                    (rc = linear(m, &L->attn_out, l, "self_attn.o_proj", C, Q, err)) ||
                    (rc = linear(m, &L->gate, l, "mlp.gate_proj", I, C, err)) ||
                    (rc = linear(m, &L->up, l, "mlp.up_proj", I, C, err)) ||
                    (rc = linear(m, &L->down, l, "mlp.down_proj", C, I, err))))
            break;
    }
    return rc;
}

static int gemma2_load(pq_model *m, const json_t *config, polyq_err *err)
{
    return gemma_load(m, config, true, err);
}

static int gemma3_load(pq_model *m, const json_t *config, polyq_err *err)
{
    return gemma_load(m, config, false, err);
}

/* Gemma 3 of 4B and more parameters (Gemma3ForConditionalGeneration, model_type gemma3): the
 * text model of text_config, whose keys default to transformers' Gemma3TextConfig (the published
 * text_config names only what differs), its tensors under the language model's names; the
 * vision tower is not read (text is scored without images). */
static int gemma3_mm_load(pq_model *m, const json_t *config, polyq_err *err)
{
    const json_t *tc = json_object_get(config, "text_config");
    if (!json_is_object(tc))
        return pq_fail(err, POLYQ_FORMAT,
                       "%s/config.json: model_type gemma3 without a text_config object", m->dir);
    json_t *t = json_deep_copy(tc);
    static const struct {
        const char *key;
        json_int_t v;
    } dflt[] = {{"vocab_size", 262208},
                {"hidden_size", 2304},
                {"intermediate_size", 9216},
                {"num_hidden_layers", 26},
                {"num_attention_heads", 8},
                {"num_key_value_heads", 4},
                {"head_dim", 256},
                {"query_pre_attn_scalar", 256},
                {"max_position_embeddings", 131072}};
    bool bad = !t;
    for (size_t i = 0; !bad && i < sizeof dflt / sizeof dflt[0]; i++)
        if (!json_object_get(t, dflt[i].key))
            bad = json_object_set_new(t, dflt[i].key, json_integer(dflt[i].v)) != 0;
    /* the checkpoint's own tie setting is the outer one */
    const json_t *tie = json_object_get(config, "tie_word_embeddings");
    if (!bad && json_is_boolean(tie) && !json_object_get(tc, "tie_word_embeddings"))
        bad = json_object_set(t, "tie_word_embeddings", (json_t *)tie) != 0;
    if (bad) {
        json_decref(t);
        return pq_fail(err, POLYQ_NOMEM, "out of memory");
    }
    m->text_of_multimodal = true;
    int rc = gemma_load(m, t, false, err);
    json_decref(t);
    return rc;
}

/* The attention of block l from its normalized input xn: q, k, v; each q and k head
 * normalized; rotated by the layer kind's rotary; attention (through the window on local
 * layers); o_proj; the post-attention norm. out (M, C). */
static void attention(const pq_model *m, pq_ops *ops, int l, const pq_layer *L, const float *xn,
                      const int *starts, int n, float *qkv, float *att, float *out)
{
    const pq_config *c = &m->cfg;
    pq_attn at = pq_config_attn(c);
    at.window = c->sliding[l] ? c->window : 0;
    int M = starts[n], ld = pq_attn_ld(&at);
    pq_layer_qkv(ops, L, qkv, xn, M, &at);
    if (L->q_norm_w) {
        pq_head_rmsnorm_fwd(ops, qkv, M, ld, at.H, at.D, L->q_norm_w, c->ln_eps);
        pq_head_rmsnorm_fwd(ops, qkv + (size_t)at.H * at.D, M, ld, at.KVH, at.D, L->k_norm_w,
                            c->ln_eps);
    }
    pq_rope_neox(qkv, starts, n, &at, c->rotary_dims, c->sliding[l] ? &c->rope_local : &c->rope);
    pq_attention_fwd(ops, att, qkv, starts, n, &at);
    pq_linear_fwd(ops, out, att, M, &L->attn_out);
    pq_rmsnorm_fwd(ops, out, out, L->post_attn_w, M, c->n_embd, c->ln_eps);
}

static void gemma_forward(const pq_model *m, pq_ops *ops, pq_acts *a, const int32_t *tokens,
                          const int *seq_start, int n_seq, float *logits)
{
    const pq_config *c = &m->cfg;
    int C = c->n_embd, M = seq_start[n_seq];
    pq_model_embed(m, a->x, tokens, M); /* x = embed_tokens[token] * sqrt(hidden) */
    for (size_t i = 0; i < (size_t)M * C; i++)
        a->x[i] *= c->embed_scale;
    for (int l = 0; l < c->n_layer; l++) {
        const pq_layer *L = &m->layers[l];
        /* x += post_norm(attn(norm(x))) */
        pq_rmsnorm_fwd(ops, a->xn, a->x, L->ln1_w, M, C, c->ln_eps);
        attention(m, ops, l, L, a->xn, seq_start, n_seq, a->qkv, a->att, a->xn);
        pq_add(a->x, a->xn, (size_t)M * C);
        /* x += post_norm(down(gelu_tanh(gate(h)) * up(h))), h = pre_norm(x) */
        pq_rmsnorm_fwd(ops, a->xn, a->x, L->ln2_w, M, C, c->ln_eps);
        pq_linear_fwd(ops, a->h, a->xn, M, &L->gate);
        pq_linear_fwd(ops, a->h2, a->xn, M, &L->up);
        pq_gated_fwd(ops, a->h, a->h2, (size_t)M * c->n_inner, c->act);
        pq_linear_fwd(ops, a->xn, a->h, M, &L->down);
        pq_rmsnorm_fwd(ops, a->xn, a->xn, L->post_ffn_w, M, C, c->ln_eps);
        pq_add(a->x, a->xn, (size_t)M * C);
        pq_acts_check(a, l, (size_t)M * C);
    }
    pq_rmsnorm_fwd(ops, a->xn, a->x, m->lnf_w, M, C, c->ln_eps);
    pq_linear_fwd(ops, logits, a->xn, M, &m->lm_head);
    if (c->final_softcap > 0) /* Gemma 2: tanh(logits / cap) * cap */
        for (size_t i = 0; i < (size_t)M * c->n_vocab; i++)
            logits[i] = tanhf(logits[i] / c->final_softcap) * c->final_softcap;
}

/* AWQ's attention module of a block (L may be a trial copy of the block: its index says which
 * kind of layer it is) */
static void gemma_attention_module(const pq_model *m, pq_ops *ops, const pq_layer *L,
                                   const float *xn, const int *starts, int n, float *qkv,
                                   float *att, float *out)
{
    attention(m, ops, L->index, L, xn, starts, n, qkv, att, out);
}

/* GGUF: llama.cpp's "gemma3" names; its converter stores every norm weight plus one, and
 * llama.cpp takes the local layers' rotary base (10000), their pattern (every sixth layer
 * global) and the attention scale (1 / sqrt(head width), the 27B's 1 / sqrt(hidden / heads))
 * as given, not from the file. */
/* the tensors of a block both write (the q/k norms are Gemma 3's) */
#define GEMMA_GGUF_BLOCK                                                                           \
    {"attn_norm.weight", "model.layers.%d.input_layernorm.weight", 'v', PQ_GF_LN1_W},              \
        {"attn_q.weight", "model.layers.%d.self_attn.q_proj.weight", 'v',                          \
         PQ_GF_LINEAR + PQ_ROLE_Q},                                                                \
        {"attn_k.weight", "model.layers.%d.self_attn.k_proj.weight", 'v',                          \
         PQ_GF_LINEAR + PQ_ROLE_K},                                                                \
        {"attn_v.weight", "model.layers.%d.self_attn.v_proj.weight", 'v',                          \
         PQ_GF_LINEAR + PQ_ROLE_V},                                                                \
        {"attn_output.weight", "model.layers.%d.self_attn.o_proj.weight", 'v',                     \
         PQ_GF_LINEAR + PQ_ROLE_ATTN_OUT},                                                         \
        {"post_attention_norm.weight", "model.layers.%d.post_attention_layernorm.weight", 'v',     \
         PQ_GF_POST_ATTN},                                                                         \
        {"ffn_norm.weight", "model.layers.%d.pre_feedforward_layernorm.weight", 'v', PQ_GF_LN2_W}, \
        {"ffn_gate.weight", "model.layers.%d.mlp.gate_proj.weight", 'v',                           \
         PQ_GF_LINEAR + PQ_ROLE_GATE},                                                             \
        {"ffn_up.weight", "model.layers.%d.mlp.up_proj.weight", 'v', PQ_GF_LINEAR + PQ_ROLE_UP},   \
        {"ffn_down.weight", "model.layers.%d.mlp.down_proj.weight", 'v',                           \
         PQ_GF_LINEAR + PQ_ROLE_DOWN},                                                             \
    {                                                                                              \
        "post_ffw_norm.weight", "model.layers.%d.post_feedforward_layernorm.weight", 'v',          \
            PQ_GF_POST_FFN                                                                         \
    }

static const pq_gguf_name gemma2_gguf_names[] = {
    {"token_embd.weight", "model.embed_tokens.weight", 'v', PQ_GF_WTE},
    GEMMA_GGUF_BLOCK,
    {"output_norm.weight", "model.norm.weight", 'v', PQ_GF_LNF_W},
    {"output.weight", "lm_head.weight", 'v', PQ_GF_HEAD},
    {NULL, NULL, 0, 0}};

static const pq_gguf_name gemma3_gguf_names[] = {
    {"token_embd.weight", "model.embed_tokens.weight", 'v', PQ_GF_WTE},
    GEMMA_GGUF_BLOCK,
    {"attn_q_norm.weight", "model.layers.%d.self_attn.q_norm.weight", 'v', PQ_GF_Q_NORM},
    {"attn_k_norm.weight", "model.layers.%d.self_attn.k_norm.weight", 'v', PQ_GF_K_NORM},
    {"output_norm.weight", "model.norm.weight", 'v', PQ_GF_LNF_W},
    {"output.weight", "lm_head.weight", 'v', PQ_GF_HEAD},
    {NULL, NULL, 0, 0}};

/* llama.cpp's attention scale: 1 / sqrt(head width), but 1 / sqrt(hidden / heads) for the 27B
 * models (Gemma 2's of 46 layers, Gemma 3's of 62) */
static bool is_27b(int64_t n_layer, bool v2)
{
    return n_layer == (v2 ? 46 : 62);
}

static json_t *gemma_gguf_config(const pq_gguf_meta *g, bool v2)
{
    int64_t hd = g->head_dim ? g->head_dim : g->n_head > 0 ? g->n_embd / g->n_head : 0;
    double qpas = is_27b(g->n_layer, v2) && g->n_head > 0 ? (double)g->n_embd / (double)g->n_head
                                                          : (double)hd;
    json_t *c = json_pack(
        "{s:s, s:[s], s:I, s:I, s:I, s:I, s:I, s:I, s:I, s:I, s:f, s:f, s:f, s:I, s:b, s:I, s:I,"
        " s:b}",
        "model_type", v2 ? "gemma2" : "gemma3_text", "architectures",
        v2 ? "Gemma2ForCausalLM" : "Gemma3ForCausalLM", "vocab_size", (json_int_t)g->n_vocab,
        "max_position_embeddings", (json_int_t)g->n_ctx, "hidden_size", (json_int_t)g->n_embd,
        "num_hidden_layers", (json_int_t)g->n_layer, "num_attention_heads", (json_int_t)g->n_head,
        "num_key_value_heads", (json_int_t)g->n_kv_head, "intermediate_size", (json_int_t)g->n_ff,
        "head_dim", (json_int_t)hd, "rms_norm_eps", g->eps, "rope_theta", g->theta,
        "query_pre_attn_scalar", qpas, "sliding_window",
        (json_int_t)(g->window > 0 ? g->window : 4096), "tie_word_embeddings", g->tied,
        "bos_token_id", (json_int_t)g->bos, "eos_token_id", (json_int_t)g->eos, NORMS_SHIFTED, 1);
    bool bad = !c;
    if (!bad && g->rope_linear > 0 && g->rope_linear != 1)
        bad = json_object_set_new(
            c, "rope_scaling",
            json_pack("{s:s, s:f}", "rope_type", "linear", "factor", g->rope_linear));
    if (!bad && g->has_swa_layers) { /* the file's per-layer flags as layer_types */
        json_t *lt = json_array();
        bad = !lt || json_object_set_new(c, "layer_types", lt);
        for (int64_t l = 0; !bad && l < g->n_layer; l++)
            bad = json_array_append_new(
                lt, json_string(g->swa_layers[l] ? "sliding_attention" : "full_attention"));
    } else if (!bad && g->swa_every > 0)
        bad = json_object_set_new(c, "sliding_window_pattern", json_integer(g->swa_every));
    if (!bad && g->theta_swa > 0)
        bad = json_object_set_new(c, "rope_local_base_freq", json_real(g->theta_swa));
    /* Gemma 2: a cap the file does not give is llama.cpp's default (Gemma 2's: 50 and 30) */
    if (!bad && v2 && g->attn_softcap != 0)
        bad = json_object_set_new(c, "attn_logit_softcapping", json_real(g->attn_softcap));
    if (!bad && v2 && g->final_softcap != 0)
        bad = json_object_set_new(c, "final_logit_softcapping", json_real(g->final_softcap));
    if (bad) {
        json_decref(c);
        return NULL;
    }
    return c;
}

static json_t *gemma2_gguf_config(const pq_gguf_meta *g)
{
    return gemma_gguf_config(g, true);
}

static json_t *gemma3_gguf_config(const pq_gguf_meta *g)
{
    return gemma_gguf_config(g, false);
}

/* what llama.cpp takes as given must be what the model has (the local layers and their rotary
 * base are written): Gemma 2 soft-caps; Gemma 3's local rotary is unscaled; both scale attention
 * as is_27b says */
static int gemma_gguf_writable(const pq_model *m, const char *path, bool v2, polyq_err *err)
{
    const pq_config *c = &m->cfg;
    pq_attn at = pq_config_attn(c);
    double scale =
        is_27b(c->n_layer, v2) ? sqrt((double)c->n_embd / c->n_head) : sqrt((double)at.D);
    bool rope_ok = v2 || c->rope_local.kind == PQ_ROPE_DEFAULT;
    /* llama.cpp's Gemma 2 has no cap-free mode and reads no output.weight (the head is the
     * token embeddings) */
    bool caps_ok =
        !v2 || (c->attn_softcap > 0 && c->final_softcap > 0 && pq_model_head_is_embeddings(m));
    if (!rope_ok || !caps_ok || fabs(1.0 / c->attn_scale - scale) > 1e-3 * scale)
        return pq_fail(err, POLYQ_UNSUPPORTED,
                       v2 ? "%s: llama.cpp reads Gemma 2 with both soft-caps, the token embeddings "
                            "as its head and query_pre_attn_scalar = head_dim; this model differs, "
                            "so its GGUF would compute otherwise"
                          : "%s: llama.cpp reads Gemma 3 with unscaled local rotary and "
                            "query_pre_attn_scalar = head_dim; this model differs, so its GGUF "
                            "would compute otherwise",
                       path);
    return 0;
}

static int gemma2_gguf_writable(const pq_model *m, const char *path, polyq_err *err)
{
    return gemma_gguf_writable(m, path, true, err);
}

static int gemma3_gguf_writable(const pq_model *m, const char *path, polyq_err *err)
{
    return gemma_gguf_writable(m, path, false, err);
}

static const pq_gguf_family gemma2_gguf = {.arch = "gemma2",
                                           .vocab = "llama",
                                           .rms_norm = true,
                                           .rope = true,
                                           .default_ctx = 8192,
                                           .default_eps = 1e-6,
                                           .swa_layers = true,
                                           .names = gemma2_gguf_names,
                                           .config = gemma2_gguf_config,
                                           .writable = gemma2_gguf_writable};

static const pq_gguf_family gemma3_gguf = {.arch = "gemma3",
                                           .vocab = "llama",
                                           .rms_norm = true,
                                           .rope = true,
                                           .default_ctx = 131072,
                                           .default_eps = 1e-6,
                                           .swa_layers = true,
                                           .names = gemma3_gguf_names,
                                           .config = gemma3_gguf_config,
                                           .writable = gemma3_gguf_writable};

const pq_arch pq_arch_gemma2 = {
    .model_type = "gemma2",
    .description = "Gemma 2 (RMSNorm 1+w around attention and MLP, soft-capping, alternating "
                   "local and global layers, GeGLU)",
    .load = gemma2_load,
    .forward = gemma_forward,
    .block_name = "model.layers.%d",
    .scoring = PQ_SCORE_CAUSAL,
    .awq_groups = pq_llama_awq_groups,
    .awq_attention = gemma_attention_module,
    .gguf = &gemma2_gguf,
};

const pq_arch pq_arch_gemma3_mm = {
    .model_type = "gemma3",
    .description = "Gemma 3 4B+ (the text model of Gemma3ForConditionalGeneration; images not "
                   "read)",
    .load = gemma3_mm_load,
    .forward = gemma_forward,
    .block_name = "model.layers.%d",
    .scoring = PQ_SCORE_CAUSAL,
    .awq_groups = pq_llama_awq_groups,
    .awq_attention = gemma_attention_module,
    .gguf = &gemma3_gguf,
};

const pq_arch pq_arch_gemma3 = {
    .model_type = "gemma3_text",
    .description = "Gemma 3 text (RMSNorm 1+w around attention and MLP, q/k norm, local:global "
                   "layers, GeGLU)",
    .load = gemma3_load,
    .forward = gemma_forward,
    .block_name = "model.layers.%d",
    .scoring = PQ_SCORE_CAUSAL,
    .awq_groups = pq_llama_awq_groups,
    .awq_attention = gemma_attention_module,
    .gguf = &gemma3_gguf,
};
