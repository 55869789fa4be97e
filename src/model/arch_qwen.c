/* Qwen2 / Qwen2.5 (transformers Qwen2ForCausalLM) and Qwen3 (Qwen3ForCausalLM): the Llama
 * block (RMSNorm, rotary over the whole head, grouped-query attention, SwiGLU) with
 *   Qwen2: biases on q_proj, k_proj and v_proj (none on o_proj), tied embeddings in the small
 *          checkpoints;
 *   Qwen3: no attention biases (unless attention_bias), an RMSNorm of every query and key head
 *          (self_attn.q_norm / k_norm, [head_dim]) before the rotation, and head_dim apart from
 *          hidden_size / heads (128 when config.json gives none, as transformers' Qwen3Config).
 * Sliding-window layers (use_sliding_window with max_window_layers, or layer_types) are
 * refused by name; the published checkpoints attend to the whole context. References:
 * transformers/models/qwen2/modeling_qwen2.py, models/qwen3/modeling_qwen3.py. The loader and
 * forward pass are the Llama family's (arch_llama.c), told what differs. */
#include "model/model.h"

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
};
