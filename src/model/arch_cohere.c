/* Cohere (transformers CohereForCausalLM: Command R, Aya 23, Aya Expanse) and Cohere2
 * (Cohere2ForCausalLM: Command R7B, Command A, Aya Vision's text model).
 *
 * Cohere: one LayerNorm without bias (mean removed, weight only) before each block, from which
 * attention and the SwiGLU MLP both read, their outputs added to the block's input together
 * (x + attn(n) + mlp(n), n = norm(x)); rotary embeddings in the interleaved layout (dims 2i and
 * 2i + 1 rotate together, GPT-J's); optionally (use_qk_norm, Command R+) a LayerNorm of each
 * query and key head with a weight per head; the logits multiplied by logit_scale; tied head.
 * Reference: transformers/models/cohere/modeling_cohere.py.
 *
 * Cohere2: the same block, layers of two kinds (layer_types, or every sliding_window_pattern-th
 * layer global, 4 by default): local layers attend through sliding_window with rotary, global
 * ones to the whole context with no positional encoding at all. No q/k norm.
 * Reference: transformers/models/cohere2/modeling_cohere2.py.
 *
 * Hugging Face tensor names (C = hidden_size, I = intermediate_size, H heads and KVH kv heads
 * of D = C / H):
 *   model.embed_tokens.weight [V, C]   model.norm.weight [C]
 *   model.layers.L.input_layernorm.weight [C]
 *   model.layers.L.self_attn.q_proj.weight [H*D, C]   .k_proj/.v_proj.weight [KVH*D, C]
 *   model.layers.L.self_attn.o_proj.weight [C, H*D]   (biases when attention_bias)
 *   model.layers.L.self_attn.q_norm.weight [H, D]   .k_norm.weight [KVH, D]   (use_qk_norm)
 *   model.layers.L.mlp.gate_proj.weight [I, C]   .up_proj.weight [I, C]   .down_proj.weight [C, I]
 *
 * GGUF: llama.cpp's "command-r" and "cohere2". Its rotary is the interleaved one ggml calls
 * normal, so q and k are stored as they are; the head is always the token embeddings; q/k norms
 * are read only by models of 64 layers or more (Command R+), and Cohere2's local layers follow
 * attention.sliding_window_pattern (every fourth layer global when absent).
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

static int read_layer_types(pq_config *c, const json_t *j, const char *what, polyq_err *err)
{
    int pattern = 4;
    const pq_cfg_int k = {"sliding_window_pattern", NULL, &pattern, false, 1, 1 << 10, 4};
    int rc = pq_config_ints(j, &k, 1, what, err);
    return rc ? rc : pq_config_layer_types(c, j, pattern, what, err);
}

static int read_config(pq_config *c, const json_t *j, const char *what, bool v2, bool *bias,
                       polyq_err *err)
{
    int rc;
    const pq_cfg_int dims[] = {
        {"hidden_size", NULL, &c->n_embd, true, 1, 1 << 16, 0},
        {"num_attention_heads", NULL, &c->n_head, true, 1, 1 << 10, 0},
        {"num_hidden_layers", NULL, &c->n_layer, true, 1, 1 << 10, 0},
        {"vocab_size", NULL, &c->n_vocab, true, 1, 1 << 24, 0},
        {"intermediate_size", NULL, &c->n_inner, true, 1, 1 << 20, 0},
        {"max_position_embeddings", NULL, &c->n_ctx, false, 1, 1 << 24, 8192},
        {"bos_token_id", NULL, &c->bos_id, false, 0, 1 << 24, 5},
        {"eos_token_id", NULL, &c->eos_id, false, 0, 1 << 24, 255001},
        {"sliding_window", NULL, &c->window, false, 1, 1 << 24, 4096},
    };
    if ((rc = pq_config_ints(j, dims, sizeof dims / sizeof dims[0], what, err)))
        return rc;
    const pq_cfg_int kv = {
        "num_key_value_heads", NULL, &c->n_kv_head, false, 1, 1 << 10, c->n_head};
    if ((rc = pq_config_ints(j, &kv, 1, what, err)))
        return rc;
    if (c->n_embd % c->n_head || c->n_head % c->n_kv_head || (c->n_embd / c->n_head) % 2)
        return pq_fail(err, POLYQ_FORMAT,
                       "%s: hidden_size %d, num_attention_heads %d and num_key_value_heads %d do "
                       "not divide into heads of an even width",
                       what, c->n_embd, c->n_head, c->n_kv_head);
    double eps = 1e-5, theta = 10000, scale = 0.0625, partial = 1;
    bool qk = false;
    c->tie_word_embeddings = true;
    *bias = false;
    const json_t *rp = json_object_get(j, "rope_parameters");
    if ((rc = pq_json_real(j, "layer_norm_eps", false, &eps, what, err)) ||
        (rc = pq_json_real(j, "logit_scale", false, &scale, what, err)) ||
        (rc = pq_json_real(j, "rope_theta", false, &theta, what, err)) ||
        (json_is_object(rp) && (rc = pq_json_real(rp, "rope_theta", false, &theta, what, err))) ||
        (rc = pq_json_real(j, "partial_rotary_factor", false, &partial, what, err)) ||
        (json_is_object(rp) &&
         (rc = pq_json_real(rp, "partial_rotary_factor", false, &partial, what, err))) ||
        (rc = pq_config_act(j, "hidden_act", "silu", &c->act, what, err)) ||
        (rc = pq_json_bool(j, "tie_word_embeddings", false, &c->tie_word_embeddings, what, err)) ||
        (rc = pq_json_bool(j, "attention_bias", false, bias, what, err)) ||
        (rc = pq_json_bool(j, "use_qk_norm", false, &qk, what, err)))
        return rc;
    if (!(theta > 0))
        return pq_fail(err, POLYQ_FORMAT, "%s: rope_theta %g is not positive", what, theta);
    if (!(scale > 0 && isfinite(scale)))
        return pq_fail(err, POLYQ_FORMAT, "%s: logit_scale %g is not positive", what, scale);
    if (partial != 1)
        return pq_fail(err, POLYQ_UNSUPPORTED,
                       "%s: partial_rotary_factor %g; %s rotates whole heads here", what, partial,
                       c->model_type);
    c->rope = (pq_rope){.theta = (float)theta};
    const json_t *rs = json_object_get(j, "rope_scaling");
    const json_t *scaling = json_is_object(rs) ? rs : rp;
    if (json_is_object(scaling) &&
        (rc = pq_config_rope_scaling(scaling, c->n_ctx, &c->rope, what, err)))
        return rc;
    if (v2 && qk)
        return pq_fail(err, POLYQ_UNSUPPORTED, "%s: use_qk_norm is set; Cohere2 has no q/k norm",
                       what);
    if (v2 && (rc = read_layer_types(c, j, what, err)))
        return rc;
    if (!v2)
        c->window = 0;
    c->rope_local = c->rope;
    c->ln_eps = (float)eps;
    c->logit_scale = (float)scale;
    c->rotary_dims = c->n_embd / c->n_head;
    c->qk_norm = c->qk_norm_heads = qk;
    c->gated = true;
    c->one_norm = true;
    return 0;
}

static int linear(pq_model *m, pq_linear *lin, int l, const char *base, int n, int k, bool bias,
                  polyq_err *err)
{
    NAME(wn, "model.layers.%d.%s.weight", l, base);
    NAME(bn, "model.layers.%d.%s.bias", l, base);
    return pq_model_get_linear(m, lin, wn, bias ? bn : NULL, n, k, err);
}

static int cohere_load_as(pq_model *m, const json_t *config, bool v2, polyq_err *err)
{
    pq_config *c = &m->cfg;
    char what[4200];
    snprintf(what, sizeof what, "%s/config.json", m->dir);
    bool ab;
    int rc = read_config(c, config, what, v2, &ab, err);
    if (rc)
        return rc;
    pq_attn at = pq_config_attn(c);
    int C = c->n_embd, I = c->n_inner, Q = at.H * at.D, KV = at.KVH * at.D;
    int64_t s_emb[2] = {c->n_vocab, C}, s_c[1] = {C}, s_qn[2] = {at.H, at.D},
            s_kn[2] = {at.KVH, at.D};
    const char *const emb[] = {"model.embed_tokens.weight", NULL};
    const char *const norm[] = {"model.norm.weight", NULL};
    if ((rc = pq_model_get_embeddings(m, emb, s_emb, err)) ||
        (rc = pq_model_get_f32(m, norm, 1, s_c, &m->lnf_w, err)) ||
        (rc = pq_model_lm_head(m, C, err)))
        return rc;
    m->layers = calloc((size_t)c->n_layer, sizeof *m->layers);
    if (!m->layers)
        return pq_fail(err, POLYQ_NOMEM, "out of memory");
    for (int l = 0; l < c->n_layer && !rc; l++) {
        pq_layer *L = &m->layers[l];
        L->index = l;
        NAME(n1, "model.layers.%d.input_layernorm.weight", l);
        if ((rc = pq_model_get_f32(m, n1, 1, s_c, &L->ln1_w, err)) ||
            (rc = linear(m, &L->q, l, "self_attn.q_proj", Q, C, ab, err)) ||
            (rc = linear(m, &L->k, l, "self_attn.k_proj", KV, C, ab, err)) ||
            (rc = linear(m, &L->v, l, "self_attn.v_proj", KV, C, ab, err)) ||
            (rc = linear(m, &L->attn_out, l, "self_attn.o_proj", C, Q, ab, err)) ||
            (rc = linear(m, &L->gate, l, "mlp.gate_proj", I, C, false, err)) ||
            (rc = linear(m, &L->up, l, "mlp.up_proj", I, C, false, err)) ||
            (rc = linear(m, &L->down, l, "mlp.down_proj", C, I, false, err)))
            break;
        if (c->qk_norm) {
            NAME(qn, "model.layers.%d.self_attn.q_norm.weight", l);
            NAME(kn, "model.layers.%d.self_attn.k_norm.weight", l);
            if ((rc = pq_model_get_f32(m, qn, 2, s_qn, &L->q_norm_w, err)) ||
                (rc = pq_model_get_f32(m, kn, 2, s_kn, &L->k_norm_w, err)))
                break;
        }
    }
    return rc;
}

static int cohere_load(pq_model *m, const json_t *config, polyq_err *err)
{
    return cohere_load_as(m, config, false, err);
}

static int cohere2_load(pq_model *m, const json_t *config, polyq_err *err)
{
    return cohere_load_as(m, config, true, err);
}

/* each of n heads of D floats in the M rows of x (ld apart) LayerNorm-ed with its own weights
 * w[h * D ..] (Cohere's q_norm / k_norm), in place */
static void head_layernorm(float *x, int M, int ld, int n, int D, const float *w, float eps)
{
    for (int r = 0; r < M; r++)
        for (int h = 0; h < n; h++) {
            float *v = x + (size_t)r * ld + (size_t)h * D;
            pq_layernorm(v, v, w + (size_t)h * D, NULL, 1, D, eps);
        }
}

/* The attention of block L from its normalized input n: q, k, v; the per-head norms; the
 * interleaved rotary (none on Cohere2's global layers); attention (through the window on local
 * layers); o_proj. out (M, C). */
static void attention(const pq_model *m, pq_ops *ops, const pq_layer *L, const float *n,
                      const int *starts, int n_seq, float *qkv, float *att, float *out)
{
    const pq_config *c = &m->cfg;
    pq_attn at = pq_config_attn(c);
    bool local = c->window > 0 && c->sliding[L->index];
    at.window = local ? c->window : 0;
    int M = starts[n_seq], ld = pq_attn_ld(&at);
    pq_layer_qkv(ops, L, qkv, n, M, &at);
    if (L->q_norm_w) {
        head_layernorm(qkv, M, ld, at.H, at.D, L->q_norm_w, c->ln_eps);
        head_layernorm(qkv + (size_t)at.H * at.D, M, ld, at.KVH, at.D, L->k_norm_w, c->ln_eps);
    }
    if (c->window == 0 || local) /* Cohere2: global layers have no positional encoding */
        pq_rope_interleaved(qkv, starts, n_seq, &at, c->rotary_dims, &c->rope);
    pq_attention_fwd(ops, att, qkv, starts, n_seq, &at);
    pq_linear_fwd(ops, out, att, M, &L->attn_out);
}

/* h = act(gate(n)) * up(n) */
static void mlp_hidden(const pq_model *m, pq_ops *ops, const pq_layer *L, const float *n, int M,
                       float *h, float *h2)
{
    pq_linear_fwd(ops, h, n, M, &L->gate);
    pq_linear_fwd(ops, h2, n, M, &L->up);
    pq_gated_fwd(ops, h, h2, (size_t)M * m->cfg.n_inner, m->cfg.act);
}

static void cohere_forward(const pq_model *m, pq_ops *ops, pq_acts *a, const int32_t *tokens,
                           const int *seq_start, int n_seq, float *logits)
{
    const pq_config *c = &m->cfg;
    int C = c->n_embd, M = seq_start[n_seq];
    pq_model_embed(m, a->x, tokens, M);
    for (int l = 0; l < c->n_layer; l++) {
        const pq_layer *L = &m->layers[l];
        /* x = x + attn(n) + down(act(gate(n)) * up(n)), n = norm(x) */
        pq_layernorm_fwd(ops, a->xn, a->x, L->ln1_w, NULL, M, C, c->ln_eps);
        mlp_hidden(m, ops, L, a->xn, M, a->h, a->h2);
        attention(m, ops, L, a->xn, seq_start, n_seq, a->qkv, a->att, a->xn);
        pq_add(a->x, a->xn, (size_t)M * C);
        pq_linear_fwd(ops, a->xn, a->h, M, &L->down);
        pq_add(a->x, a->xn, (size_t)M * C);
        pq_acts_check(a, l, (size_t)M * C);
    }
    pq_layernorm_fwd(ops, a->xn, a->x, m->lnf_w, NULL, M, C, c->ln_eps);
    pq_linear_fwd(ops, logits, a->xn, M, &m->lm_head);
    for (size_t i = 0; i < (size_t)M * c->n_vocab; i++)
        logits[i] *= c->logit_scale;
}

/* AWQ's module for q k v gate up (AutoAWQ's Cohere: the decoder layer, run on the input those
 * linears read, which the layer normalizes again): out = x + attn(n) + mlp(n), n = norm(x).
 * qkv holds at least C floats a row (H * D = C), so it takes the MLP's output. */
static void cohere_awq_block(const pq_model *m, pq_ops *ops, const pq_layer *L, const float *x,
                             const int *starts, int n, float *qkv, float *att, float *h, float *h2,
                             float *out)
{
    const pq_config *c = &m->cfg;
    int C = c->n_embd, M = starts[n];
    pq_layernorm_fwd(ops, out, x, L->ln1_w, NULL, M, C, c->ln_eps);
    mlp_hidden(m, ops, L, out, M, h, h2);
    attention(m, ops, L, out, starts, n, qkv, att, out);
    pq_linear_fwd(ops, qkv, h, M, &L->down);
    for (size_t i = 0; i < (size_t)M * C; i++)
        out[i] = (x[i] + out[i]) + qkv[i];
}

/* AutoAWQ's groups: q k v gate up on the decoder layer's output; o_proj alone where v and o have
 * the same shape (else not scaled); down alone */
static int cohere_awq_groups(const pq_model *m, pq_awq_group *g)
{
    const pq_layer *L = &m->layers[0];
    bool gqa = L->v.n_out != L->attn_out.n_out || L->v.n_in != L->attn_out.n_in;
    int n = 0;
    g[n++] = (pq_awq_group){{1, 2, 3, 5, 6}, PQ_AWQ_BLOCK};
    g[n++] = (pq_awq_group){{4, -1, -1, -1, -1}, gqa ? PQ_AWQ_NONE : PQ_AWQ_LINEARS};
    g[n++] = (pq_awq_group){{7, -1, -1, -1, -1}, PQ_AWQ_LINEARS};
    return n;
}

static const pq_gguf_name cohere_gguf_names[] = {
    {"token_embd.weight", "model.embed_tokens.weight", 'v', PQ_GF_WTE},
    {"attn_norm.weight", "model.layers.%d.input_layernorm.weight", 'v', PQ_GF_LN1_W},
    {"attn_q.weight", "model.layers.%d.self_attn.q_proj.weight", 'v', PQ_GF_LINEAR + PQ_ROLE_Q},
    {"attn_k.weight", "model.layers.%d.self_attn.k_proj.weight", 'v', PQ_GF_LINEAR + PQ_ROLE_K},
    {"attn_v.weight", "model.layers.%d.self_attn.v_proj.weight", 'v', PQ_GF_LINEAR + PQ_ROLE_V},
    {"attn_output.weight", "model.layers.%d.self_attn.o_proj.weight", 'v',
     PQ_GF_LINEAR + PQ_ROLE_ATTN_OUT},
    {"attn_q_norm.weight", "model.layers.%d.self_attn.q_norm.weight", 'v', PQ_GF_Q_NORM},
    {"attn_k_norm.weight", "model.layers.%d.self_attn.k_norm.weight", 'v', PQ_GF_K_NORM},
    {"ffn_gate.weight", "model.layers.%d.mlp.gate_proj.weight", 'v', PQ_GF_LINEAR + PQ_ROLE_GATE},
    {"ffn_up.weight", "model.layers.%d.mlp.up_proj.weight", 'v', PQ_GF_LINEAR + PQ_ROLE_UP},
    {"ffn_down.weight", "model.layers.%d.mlp.down_proj.weight", 'v', PQ_GF_LINEAR + PQ_ROLE_DOWN},
    {"output_norm.weight", "model.norm.weight", 'v', PQ_GF_LNF_W},
    {"output.weight", "lm_head.weight", 'v', PQ_GF_HEAD},
    {NULL, NULL, 0, 0}};

static json_t *cohere_gguf_config(const pq_gguf_meta *g, bool v2)
{
    json_t *c = json_pack(
        "{s:s, s:[s], s:I, s:I, s:I, s:I, s:I, s:I, s:I, s:f, s:f, s:f, s:b, s:b, s:I, s:I}",
        "model_type", v2 ? "cohere2" : "cohere", "architectures",
        v2 ? "Cohere2ForCausalLM" : "CohereForCausalLM", "vocab_size", (json_int_t)g->n_vocab,
        "max_position_embeddings", (json_int_t)g->n_ctx, "hidden_size", (json_int_t)g->n_embd,
        "num_hidden_layers", (json_int_t)g->n_layer, "num_attention_heads", (json_int_t)g->n_head,
        "num_key_value_heads", (json_int_t)g->n_kv_head, "intermediate_size", (json_int_t)g->n_ff,
        "layer_norm_eps", g->eps, "rope_theta", g->theta,
        /* llama.cpp: no logit_scale key, no scaling */
        "logit_scale", g->logit_scale > 0 ? g->logit_scale : 1.0, "tie_word_embeddings", 1,
        /* llama.cpp reads q/k norms from models of 64 layers or more */
        "use_qk_norm", !v2 && g->n_layer >= 64, "bos_token_id", (json_int_t)g->bos, "eos_token_id",
        (json_int_t)g->eos);
    int64_t D = g->n_head > 0 ? g->n_embd / g->n_head : 0;
    bool bad = !c;
    if (!bad && g->rot > 0 && D > 0 && g->rot != D)
        bad = json_object_set_new(c, "partial_rotary_factor", json_real((double)g->rot / D));
    if (!bad && g->rope_linear > 0 && g->rope_linear != 1)
        bad = json_object_set_new(
            c, "rope_scaling",
            json_pack("{s:s, s:f}", "rope_type", "linear", "factor", g->rope_linear));
    if (!bad && v2) {
        json_t *lt = json_array();
        bad = !lt || json_object_set_new(c, "layer_types", lt) ||
              json_object_set_new(c, "sliding_window",
                                  json_integer((json_int_t)(g->window > 0 ? g->window : 4096)));
        int every = g->swa_every > 0 ? g->swa_every : 4; /* llama.cpp's default pattern */
        for (int64_t l = 0; !bad && l < g->n_layer; l++) {
            bool local = g->has_swa_layers ? g->swa_layers[l] != 0 : l % every < every - 1;
            bad = json_array_append_new(
                lt, json_string(local ? "sliding_attention" : "full_attention"));
        }
    }
    if (bad) {
        json_decref(c);
        return NULL;
    }
    return c;
}

static json_t *cohere1_gguf_config(const pq_gguf_meta *g)
{
    return cohere_gguf_config(g, false);
}

static json_t *cohere2_gguf_config(const pq_gguf_meta *g)
{
    return cohere_gguf_config(g, true);
}

/* llama.cpp's head is the token embeddings; it has no biases here, reads q/k norms only from
 * models of 64 layers or more, and rotates local layers with the global base */
static int cohere_gguf_writable(const pq_model *m, const char *path, polyq_err *err)
{
    const pq_config *c = &m->cfg;
    const pq_layer *L = &m->layers[0];
    if (!pq_model_head_is_embeddings(m))
        return pq_fail(err, POLYQ_UNSUPPORTED,
                       "%s: llama.cpp reads %s with the token embeddings as its head; this model's "
                       "head is its own (untied or quantized), so its GGUF would compute otherwise",
                       path, c->model_type);
    if (L->q.bias || L->attn_out.bias)
        return pq_fail(err, POLYQ_UNSUPPORTED,
                       "%s: llama.cpp reads %s without attention biases; this model has them", path,
                       c->model_type);
    if (c->qk_norm != (c->n_layer >= 64))
        return pq_fail(err, POLYQ_UNSUPPORTED,
                       "%s: llama.cpp reads %s q/k norms exactly when a model has 64 layers or "
                       "more; this one has %d layers and %s",
                       path, c->model_type, c->n_layer, c->qk_norm ? "q/k norms" : "none");
    return 0;
}

static const pq_gguf_family cohere_gguf = {.arch = "command-r",
                                           .vocab = "gpt2",
                                           .rms_norm = false,
                                           .rope = true,
                                           .default_ctx = 8192,
                                           .default_eps = 1e-5,
                                           .names = cohere_gguf_names,
                                           .config = cohere1_gguf_config,
                                           .writable = cohere_gguf_writable};

static const pq_gguf_family cohere2_gguf = {.arch = "cohere2",
                                            .vocab = "gpt2",
                                            .rms_norm = false,
                                            .rope = true,
                                            .default_ctx = 8192,
                                            .default_eps = 1e-5,
                                            .swa_layers = true,
                                            .names = cohere_gguf_names,
                                            .config = cohere2_gguf_config,
                                            .writable = cohere_gguf_writable};

const pq_arch pq_arch_cohere = {
    .model_type = "cohere",
    .description = "Cohere: Command R, Aya (LayerNorm without bias, parallel attention and MLP, "
                   "interleaved rotary, logit scale)",
    .load = cohere_load,
    .forward = cohere_forward,
    .block_name = "model.layers.%d",
    .scoring = PQ_SCORE_CAUSAL,
    .awq_groups = cohere_awq_groups,
    .awq_block = cohere_awq_block,
    .gguf = &cohere_gguf,
};

const pq_arch pq_arch_cohere2 = {
    .model_type = "cohere2",
    .description = "Cohere2: Command R7B, Command A (Cohere with local layers and global layers "
                   "without rotary)",
    .load = cohere2_load,
    .forward = cohere_forward,
    .block_name = "model.layers.%d",
    .scoring = PQ_SCORE_CAUSAL,
    .awq_groups = cohere_awq_groups,
    .awq_block = cohere_awq_block,
    .gguf = &cohere2_gguf,
};
