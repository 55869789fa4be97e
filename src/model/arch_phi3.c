/* Phi-3 (transformers Phi3ForCausalLM): the Llama block with q, k and v in one projection
 * (self_attn.qkv_proj, rows [q | k | v]) and gate and up in one (mlp.gate_up_proj, rows
 * [gate | up]), rotary over the leading partial_rotary_factor of each head, sliding-window
 * attention in every layer when sliding_window is set, an untied head. Rope scaling other than
 * linear/llama3 (Phi-3's longrope and su of the 128k models) is refused by name. Reference:
 * transformers/models/phi3/modeling_phi3.py. The loader and forward pass are the Llama family's
 * (arch_llama.c): the fused qkv is held as one linear, gate_up as two views of its halves.
 *
 * GGUF: llama.cpp's "phi3" names; attn_qkv as stored (llama.cpp's Phi-3 rotary is NEOX-style),
 * ffn_up holding gate and up one after the other. llama.cpp ignores Phi-3's sliding window (it
 * warns so), so beyond sliding_window tokens its numbers and transformers' part. */
#include "model/model.h"

static const pq_gguf_name phi3_gguf_names[] = {
    {"token_embd.weight", "model.embed_tokens.weight", 'v', PQ_GF_WTE},
    {"attn_norm.weight", "model.layers.%d.input_layernorm.weight", 'v', PQ_GF_LN1_W},
    {"attn_qkv.weight", "model.layers.%d.self_attn.qkv_proj.weight", 'v',
     PQ_GF_LINEAR + PQ_ROLE_QKV},
    {"attn_output.weight", "model.layers.%d.self_attn.o_proj.weight", 'v',
     PQ_GF_LINEAR + PQ_ROLE_ATTN_OUT},
    {"ffn_norm.weight", "model.layers.%d.post_attention_layernorm.weight", 'v', PQ_GF_LN2_W},
    /* 'g': the gate linear's rows, then the up linear's */
    {"ffn_up.weight", "model.layers.%d.mlp.gate_up_proj.weight", 'g', PQ_GF_LINEAR + PQ_ROLE_GATE},
    {"ffn_down.weight", "model.layers.%d.mlp.down_proj.weight", 'v', PQ_GF_LINEAR + PQ_ROLE_DOWN},
    {"output_norm.weight", "model.norm.weight", 'v', PQ_GF_LNF_W},
    {"output.weight", "lm_head.weight", 'v', PQ_GF_HEAD},
    {NULL, NULL, 0, 0}};

static json_t *phi3_gguf_config(const pq_gguf_meta *g)
{
    json_t *c = pq_llama_gguf_config_as(g, "phi3", "Phi3ForCausalLM");
    int64_t D = g->n_head > 0 ? g->n_embd / g->n_head : 0;
    bool bad = !c;
    if (!bad && g->rot > 0 && D > 0 && g->rot != D)
        bad = json_object_set_new(c, "partial_rotary_factor", json_real((double)g->rot / D));
    if (!bad && g->window > 0)
        bad = json_object_set_new(c, "sliding_window", json_integer((json_int_t)g->window));
    if (bad) {
        json_decref(c);
        return NULL;
    }
    return c;
}

static const pq_gguf_family phi3_gguf = {.arch = "phi3",
                                         .vocab = "llama",
                                         .rms_norm = true,
                                         .rope = true,
                                         .default_ctx = 4096,
                                         .default_eps = 1e-5,
                                         .names = phi3_gguf_names,
                                         .config = phi3_gguf_config};

static int phi3_load(pq_model *m, const json_t *config, polyq_err *err)
{
    static const pq_llama_variant v = {.window = true, .fused = true};
    return pq_llama_load(m, config, &v, err);
}

const pq_arch pq_arch_phi3 = {
    .model_type = "phi3",
    .description = "Phi-3 (Llama with fused qkv and gate_up projections, partial rotary)",
    .load = phi3_load,
    .forward = pq_llama_forward,
    .block_name = "model.layers.%d",
    .scoring = PQ_SCORE_CAUSAL,
    .awq_groups = pq_llama_awq_groups,
    .awq_attention = pq_llama_attention_module,
    .gguf = &phi3_gguf,
};
