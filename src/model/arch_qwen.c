/* Qwen2 / Qwen2.5 (transformers Qwen2ForCausalLM) and Qwen3 (Qwen3ForCausalLM): the Llama
 * block (RMSNorm, rotary over the whole head, grouped-query attention, SwiGLU) with
 *   Qwen2: biases on q_proj, k_proj and v_proj (none on o_proj), tied embeddings in the small
 *          checkpoints;
 *   Qwen3: no attention biases (unless attention_bias), an RMSNorm of every query and key head
 *          (self_attn.q_norm / k_norm, [head_dim]) before the rotation, and head_dim apart from
 *          hidden_size / heads (128 when config.json gives none, as transformers' Qwen3Config).
 * Sliding-window layers (use_sliding_window with max_window_layers, or layer_types) are
 * refused by name; the published checkpoints attend to the whole context. GGUF in and out under
 * llama.cpp's "qwen2" and "qwen3" architectures. References:
 * transformers/models/qwen2/modeling_qwen2.py, models/qwen3/modeling_qwen3.py. The loader and
 * forward pass are the Llama family's (arch_llama.c), told what differs. */
#include "model/model.h"

/* GGUF: llama.cpp's "qwen2" and "qwen3" names. Their rotary is NEOX-style (the halves of each
 * head), so convert_hf_to_gguf.py stores q and k rows as Hugging Face has them. */
#define QWEN_GGUF_BLOCK                                                                            \
    {"attn_norm.weight", "model.layers.%d.input_layernorm.weight", 'v', PQ_GF_LN1_W},              \
        {"attn_q.weight", "model.layers.%d.self_attn.q_proj.weight", 'v',                          \
         PQ_GF_LINEAR + PQ_ROLE_Q},                                                                \
        {"attn_k.weight", "model.layers.%d.self_attn.k_proj.weight", 'v',                          \
         PQ_GF_LINEAR + PQ_ROLE_K},                                                                \
        {"attn_v.weight", "model.layers.%d.self_attn.v_proj.weight", 'v',                          \
         PQ_GF_LINEAR + PQ_ROLE_V},                                                                \
        {"attn_output.weight", "model.layers.%d.self_attn.o_proj.weight", 'v',                     \
         PQ_GF_LINEAR + PQ_ROLE_ATTN_OUT},                                                         \
        {"ffn_norm.weight", "model.layers.%d.post_attention_layernorm.weight", 'v', PQ_GF_LN2_W},  \
        {"ffn_gate.weight", "model.layers.%d.mlp.gate_proj.weight", 'v',                           \
         PQ_GF_LINEAR + PQ_ROLE_GATE},                                                             \
        {"ffn_up.weight", "model.layers.%d.mlp.up_proj.weight", 'v', PQ_GF_LINEAR + PQ_ROLE_UP},   \
    {                                                                                              \
        "ffn_down.weight", "model.layers.%d.mlp.down_proj.weight", 'v',                            \
            PQ_GF_LINEAR + PQ_ROLE_DOWN                                                            \
    }

static const pq_gguf_name qwen2_gguf_names[] = {
    {"token_embd.weight", "model.embed_tokens.weight", 'v', PQ_GF_WTE},
    QWEN_GGUF_BLOCK,
    {"attn_q.bias", "model.layers.%d.self_attn.q_proj.bias", 'v', PQ_GF_BIAS + PQ_ROLE_Q},
    {"attn_k.bias", "model.layers.%d.self_attn.k_proj.bias", 'v', PQ_GF_BIAS + PQ_ROLE_K},
    {"attn_v.bias", "model.layers.%d.self_attn.v_proj.bias", 'v', PQ_GF_BIAS + PQ_ROLE_V},
    {"output_norm.weight", "model.norm.weight", 'v', PQ_GF_LNF_W},
    {"output.weight", "lm_head.weight", 'v', PQ_GF_HEAD},
    {NULL, NULL, 0, 0}};

static const pq_gguf_name qwen3_gguf_names[] = {
    {"token_embd.weight", "model.embed_tokens.weight", 'v', PQ_GF_WTE},
    QWEN_GGUF_BLOCK,
    {"attn_q_norm.weight", "model.layers.%d.self_attn.q_norm.weight", 'v', PQ_GF_Q_NORM},
    {"attn_k_norm.weight", "model.layers.%d.self_attn.k_norm.weight", 'v', PQ_GF_K_NORM},
    {"output_norm.weight", "model.norm.weight", 'v', PQ_GF_LNF_W},
    {"output.weight", "lm_head.weight", 'v', PQ_GF_HEAD},
    {NULL, NULL, 0, 0}};

/* The Hugging Face configuration of a qwen2 or qwen3 GGUF (new reference, NULL: no memory). */
static json_t *qwen_config(const pq_gguf_meta *g, bool qwen3)
{
    json_t *c = json_pack(
        "{s:s, s:[s], s:I, s:I, s:I, s:I, s:I, s:I, s:I, s:f, s:f, s:s, s:b, s:I, s:I, s:b}",
        "model_type", qwen3 ? "qwen3" : "qwen2", "architectures",
        qwen3 ? "Qwen3ForCausalLM" : "Qwen2ForCausalLM", "vocab_size", (json_int_t)g->n_vocab,
        "max_position_embeddings", (json_int_t)g->n_ctx, "hidden_size", (json_int_t)g->n_embd,
        "num_hidden_layers", (json_int_t)g->n_layer, "num_attention_heads", (json_int_t)g->n_head,
        "num_key_value_heads", (json_int_t)g->n_kv_head, "intermediate_size", (json_int_t)g->n_ff,
        "rms_norm_eps", g->eps, "rope_theta", g->theta, "hidden_act", "silu", "tie_word_embeddings",
        g->tied, "bos_token_id", (json_int_t)g->bos, "eos_token_id", (json_int_t)g->eos,
        "use_sliding_window", 0);
    int64_t hd = g->head_dim ? g->head_dim : g->n_head > 0 ? g->n_embd / g->n_head : 0;
    if (c && qwen3 && json_object_set_new(c, "head_dim", json_integer((json_int_t)hd))) {
        json_decref(c);
        return NULL;
    }
    return c;
}

static json_t *qwen2_gguf_config(const pq_gguf_meta *g)
{
    return qwen_config(g, false);
}

static json_t *qwen3_gguf_config(const pq_gguf_meta *g)
{
    return qwen_config(g, true);
}

static const pq_gguf_family qwen2_gguf = {.arch = "qwen2",
                                          .vocab = "gpt2",
                                          .rms_norm = true,
                                          .rope = true,
                                          .default_ctx = 32768,
                                          .default_eps = 1e-6,
                                          .names = qwen2_gguf_names,
                                          .config = qwen2_gguf_config};

static const pq_gguf_family qwen3_gguf = {.arch = "qwen3",
                                          .vocab = "gpt2",
                                          .rms_norm = true,
                                          .rope = true,
                                          .default_ctx = 40960,
                                          .default_eps = 1e-6,
                                          .names = qwen3_gguf_names,
                                          .config = qwen3_gguf_config};

static int qwen2_load(pq_model *m, const json_t *config, polyq_err *err)
{
    static const pq_llama_variant v = {.qkv_bias = true, .layer_types = true};
    return pq_llama_load(m, config, &v, err);
}

static int qwen3_load(pq_model *m, const json_t *config, polyq_err *err)
{
    static const pq_llama_variant v = {.qk_norm = true, .head_dim = 128, .layer_types = true};
    return pq_llama_load(m, config, &v, err);
}

const pq_arch pq_arch_qwen2 = {
    .model_type = "qwen2",
    .description = "Qwen2, Qwen2.5 (Llama with q/k/v biases)",
    .load = qwen2_load,
    .forward = pq_llama_forward,
    .block_name = "model.layers.%d",
    .scoring = PQ_SCORE_CAUSAL,
    .awq_groups = pq_llama_awq_groups,
    .awq_attention = pq_llama_attention_module,
    .gguf = &qwen2_gguf,
};

const pq_arch pq_arch_qwen3 = {
    .model_type = "qwen3",
    .description = "Qwen3 (Llama with per-head q/k RMSNorm, free head_dim)",
    .load = qwen3_load,
    .forward = pq_llama_forward,
    .block_name = "model.layers.%d",
    .scoring = PQ_SCORE_CAUSAL,
    .awq_groups = pq_llama_awq_groups,
    .awq_attention = pq_llama_attention_module,
    .gguf = &qwen3_gguf,
};
