/* A language model: its configuration, its weights (views into the mapped safetensors files
 * where the dtype and layout allow, converted copies otherwise), its tokenizer, and one
 * forward pass per family (arch_<family>.c). A quantized model is a copy of a base model
 * whose linear layers are packed integers; it borrows everything else from the base. */
#ifndef PQ_MODEL_H
#define PQ_MODEL_H

#include <jansson.h>
#include <stdbool.h>

#include "format/safetensors.h"
#include "kernels/ops.h"
#include "quant/qformat.h"
#include "tok/tokenizer.h"

typedef struct pq_config {
    char architecture[64]; /* config.json "architectures"[0] */
    char model_type[32];
    int n_vocab, n_ctx, n_embd, n_head, n_layer, n_inner;
    int n_kv_head;       /* key/value heads (grouped-query attention); = n_head otherwise */
    int head_dim;        /* width of one attention head; 0: n_embd / n_head */
    bool qk_norm;        /* RMSNorm of each query and key head before rotary (Qwen3) */
    float attn_scale;    /* the attention scores' scale; 0: 1 / sqrt(head width) */
    float embed_scale;   /* the token embeddings are multiplied by it (Gemma: sqrt(hidden)); 0: 1 */
    float attn_softcap;  /* > 0: attention scores soft-capped, cap * tanh(s / cap) (Gemma 2) */
    float final_softcap; /* > 0: the logits soft-capped the same way (Gemma 2) */
    float logit_scale;   /* the logits are multiplied by it (Cohere); 0: 1 */
    pq_rope rope_local;  /* rotary of the sliding-window layers (Gemma 3) */
    unsigned char sliding[1024]; /* per layer: attends through the window (Gemma 3) */
    int window;                  /* sliding-window attention span, 0 = none (Mistral) */
    bool gated;                  /* MLP is down(act(gate(x)) * up(x)) (Llama) */
    int n_embd_proj;             /* OPT word_embed_proj_dim when it differs from n_embd, else 0 */
    float ln_eps;
    pq_act act;
    bool scale_attn_weights, scale_attn_by_inverse_layer_idx, tie_word_embeddings;
    bool parallel_residual; /* GPT-NeoX use_parallel_residual */
    bool one_norm;          /* attention and MLP both read the block's one norm (Cohere) */
    bool qk_norm_heads;     /* the q/k norms are LayerNorms with a weight per head, [heads, D]
                               (Cohere's use_qk_norm) */
    bool post_ln;           /* OPT do_layer_norm_before = false */
    bool final_ln;          /* OPT: a final LayerNorm before the head */
    int rotary_dims;        /* GPT-NeoX: leading dims of each head that are rotated */
    pq_rope rope;           /* rotary base and scaling */
    int bos_id, eos_id;     /* from config.json; -1 when absent */
    bool encoder;   /* bidirectional masked LM (BERT, XLM-R): scored by pseudo-log-likelihood */
    int pos_offset; /* position ids start here (XLM-R: padding_idx + 1) */
} pq_config;

/* One block. Attention inputs come from qkv (one fused [3C, C] matrix laid out as
 * [q | k | v]) or from separate q, k, v; the unused form has n_out 0. A LayerNorm without
 * affine parameters has NULL weight and bias. */
typedef struct pq_layer {
    const float *ln1_w, *ln1_b, *ln2_w, *ln2_b;
    const float *q_norm_w, *k_norm_w;      /* per-head query and key RMSNorm (qk_norm), else NULL */
    const float *post_attn_w, *post_ffn_w; /* Gemma: RMSNorm of the attention and MLP outputs */
    int index; /* the block's position (for modules that differ per block: Gemma 3) */
    pq_linear qkv, q, k, v, attn_out, gate, up, down;
} pq_layer;

/* A block's linears, in the order of pq_role (quant/qformat.h). */
#define PQ_LAYER_LINEARS(L)                                                                        \
    {                                                                                              \
        &(L)->qkv, &(L)->q, &(L)->k, &(L)->v, &(L)->attn_out, &(L)->gate, &(L)->up, &(L)->down     \
    }
#define PQ_N_LAYER_LINEARS 8

typedef struct pq_model pq_model;
struct pq_acts;

/* How a family's text is scored: next-token log-likelihood (decoders) or pseudo-log-likelihood
 * with each token masked in turn (masked-LM encoders). */
typedef enum { PQ_SCORE_CAUSAL, PQ_SCORE_PLL } pq_scoring;

/* What AWQ's scale search of a group of linears reading one input measures, as its reference
 * implementations (llm-awq, AutoAWQ) choose per family: the group's own outputs, the attention
 * module's output (q, k, v with the full-precision output projection after them: the family's
 * awq_attention), the gated MLP's output (gate and up with the full-precision down projection),
 * or no scaling at all (round-to-nearest). */
typedef enum {
    PQ_AWQ_LINEARS,
    PQ_AWQ_ATTENTION,
    PQ_AWQ_MLP,
    PQ_AWQ_NONE,
    PQ_AWQ_BLOCK /* the whole block (the family's awq_block) run on the group's input */
} pq_awq_target;
#define PQ_AWQ_MAX_LINEARS 5
typedef struct pq_awq_group {
    int idx[PQ_AWQ_MAX_LINEARS]; /* linears of PQ_LAYER_LINEARS, -1 unused */
    pq_awq_target target;
} pq_awq_group;
#define PQ_AWQ_MAX_GROUPS 8
/* The usual five groups of a block (qkv alone; q k v; the attention output; gate up; down)
 * measured as given: for a family's awq_groups. Returns the count. */
int pq_awq_groups_std(pq_awq_group *g, pq_awq_target qkv, pq_awq_target attn_out,
                      pq_awq_target mlp);

/* The tensors of a family in GGUF files, as llama.cpp's convert_hf_to_gguf.py names them.
 * field says what a tensor is in pq_model (PQ_GF_LINEAR + i: weight of linear i of
 * PQ_LAYER_LINEARS, PQ_GF_BIAS + i its bias); how: 'v' as stored, 't' transposed (GPT-2's
 * Conv1D), 'q'/'k' rows in ggml's interleaved rotary order, 'g' the gate linear's rows followed
 * by the up linear's in one tensor (Phi-3's gate_up_proj, loaded whole and split by the family).
 * Block tensors' names follow "blk.N." and their Hugging Face names hold %d for the block. */
enum {
    PQ_GF_WTE,
    PQ_GF_WPE,
    PQ_GF_LNF_W,
    PQ_GF_LNF_B,
    PQ_GF_HEAD,
    PQ_GF_LN1_W,
    PQ_GF_LN1_B,
    PQ_GF_LN2_W,
    PQ_GF_LN2_B,
    PQ_GF_LINEAR,
    PQ_GF_BIAS = PQ_GF_LINEAR + 8,
    PQ_GF_Q_NORM = PQ_GF_BIAS + 8, /* per-head query RMSNorm of a block (qk_norm), [head_dim] */
    PQ_GF_K_NORM,
    PQ_GF_POST_ATTN, /* Gemma: the RMSNorms of the attention's and the MLP's outputs */
    PQ_GF_POST_FFN
};
typedef struct pq_gguf_name {
    const char *gg, *hf;
    char how;
    int field;
} pq_gguf_name;
/* A family's GGUF metadata as numbers (missing keys: the family's defaults), from which it
 * makes the Hugging Face config.json it would have. */
typedef struct pq_gguf_meta {
    int64_t n_vocab, n_ctx, n_embd, n_layer, n_head, n_kv_head, n_ff, bos, eos;
    int64_t head_dim;                   /* attention.key_length; 0 when absent (n_embd / n_head) */
    int64_t window;                     /* attention.sliding_window; 0 when absent */
    int64_t rot;                        /* rope.dimension_count; 0 when absent */
    double eps, theta, rope_linear;     /* rope_linear: linear rope scaling factor, 0 when none */
    double attn_softcap, final_softcap; /* attn_/final_logit_softcapping; 0 when absent */
    double logit_scale;                 /* logit_scale; 0 when absent */
    double theta_swa;                   /* rope.freq_base_swa (local layers' base); 0 absent */
    int swa_every;                      /* attention.sliding_window_pattern as one number, or 0 */
    bool has_swa_layers;            /* attention.sliding_window_pattern as one flag per layer: */
    unsigned char swa_layers[1024]; /* 1 where a layer attends through the window */
    bool tied;
} pq_gguf_meta;
typedef struct pq_gguf_family {
    const char *arch; /* general.architecture */
    const char
        *vocab;    /* tokenizer.ggml.model: "gpt2" (byte-level BPE) or "llama" (sentencepiece) */
    bool rms_norm; /* attention.layer_norm_rms_epsilon, else attention.layer_norm_epsilon */
    bool rope;     /* head_count_kv, rope.freq_base, rope.dimension_count, sliding_window */
    int64_t default_ctx; /* context_length when the file has none */
    double default_eps;
    const pq_gguf_name *names; /* ends with {NULL}; in the order tensors are written */
    json_t *(*config)(
        const pq_gguf_meta *g); /* the Hugging Face config (new reference), NULL: out of memory */
    /* attention.sliding_window_pattern (a flag per layer) and rope.freq_base_swa are written */
    bool swa_layers;
    /* a model that llama.cpp would read otherwise than it computes is refused (may be NULL) */
    int (*writable)(const pq_model *m, const char *path, polyq_err *err);
} pq_gguf_family;

typedef struct pq_model pq_model;
struct pq_acts;
struct pq_ops;

/* Everything polyq knows about one family: one entry of the table in model.c (the families'
 * entries live in their arch_<family>.c). */
typedef struct pq_arch {
    const char *model_type;  /* config.json "model_type" */
    const char *description; /* for polyq models and polyq info, e.g. "GPT-2, mGPT" */
    int (*load)(pq_model *m, const json_t *config, polyq_err *err);
    void (*forward)(const pq_model *m, pq_ops *ops, struct pq_acts *acts, const int32_t *tokens,
                    const int *seq_start, int n_seq, float *logits);
    const char *block_name; /* printf format of a block's tensor prefix, for messages */
    pq_scoring scoring;
    /* AWQ: the groups of a block (at most PQ_AWQ_MAX_GROUPS; count returned), and the attention
     * module's output out (M, C) from its input xn (M, C) for PQ_AWQ_ATTENTION groups (qkv and
     * att are (M, 3C) and (M, C) scratch; sequences start at starts[0..n]) */
    int (*awq_groups)(const pq_model *m, pq_awq_group *g);
    void (*awq_attention)(const pq_model *m, pq_ops *ops, const pq_layer *L, const float *xn,
                          const int *starts, int n, float *qkv, float *att, float *out);
    /* for PQ_AWQ_BLOCK groups (AutoAWQ's Cohere: q k v gate up measured on the decoder layer):
     * the block's output out (M, C) from the input x (M, C); qkv, att, h, h2 are scratch of the
     * widths of awq_attention's and the MLP's buffers */
    void (*awq_block)(const pq_model *m, pq_ops *ops, const pq_layer *L, const float *x,
                      const int *starts, int n, float *qkv, float *att, float *h, float *h2,
                      float *out);
    const pq_gguf_family *gguf; /* NULL: no GGUF for this family */
    /* memory estimate before loading: linears held as f32 copies beside the file (GPT-2's
     * transposed Conv1D), and a tensor-name part whose tensors are held as f32 copies */
    bool mem_linears_copied;
    const char *mem_copied;
} pq_arch;

/* The family of a model_type, or NULL. */
const pq_arch *pq_arch_find(const char *model_type);
/* The first family written to GGUF as general.architecture `arch` (n bytes), or NULL. */
const pq_arch *pq_arch_find_gguf(const char *arch, size_t n);
/* Family i of the table (i from 0), NULL past the end. */
const pq_arch *pq_arch_at(int i);
/* "gpt2, gpt_neox, ..." (every model_type, or those with GGUF) for messages */
void pq_arch_list(char *buf, size_t size, bool gguf_only);
/* Adds a family at run time, before any model is opened: its model_type must be new. */
int pq_arch_register(const pq_arch *a, polyq_err *err);

/* Activation buffers for batches of up to max_tokens tokens. */
typedef struct pq_acts {
    int max_tokens;
    float *x, *xn, *qkv, *att, *h;
    float *proj;   /* (M, n_embd_proj) when the model has projections */
    float *h2;     /* (M, n_inner) for gated MLPs */
    int bad_block; /* first block whose output was not finite in the last forward, or -1 */
} pq_acts;

/* For arch files, after each block: notes the first block whose output x (n) holds a NaN or
 * an infinity, so the forward can name it. */
void pq_acts_check(pq_acts *a, int block, size_t n);

struct pq_model {
    pq_config cfg;
    const pq_arch *arch;
    const float *wte, *wpe, *lnf_w, *lnf_b;
    pq_qweight *wte_q; /* the token embeddings when stored packed (wte NULL): a view m owns */
    const float *emb_ln_w, *emb_ln_b; /* BLOOM word_embeddings_layernorm */
    const float *alibi;               /* BLOOM ALiBi slopes per head */
    const float *type_emb;            /* encoders: token type 0's embedding row */
    pq_linear head_dense;             /* encoders: the MLM head's transform (n_out 0 if none) */
    const float *head_ln_w, *head_ln_b;
    pq_linear lm_head, proj_in, proj_out; /* proj_*: OPT, n_out 0 when absent */
    pq_layer *layers;
    /* what this model owns */
    pq_tensors ts;
    float **owned;
    size_t n_owned;
    pq_qweight **qowned;
    size_t n_qowned;
    pq_tokenizer *tok; /* owned by the base model */
    const pq_model *base;
    /* provenance */
    char *dir;
    char dtype[8];           /* stored dtype of the weights, e.g. "BF16" */
    signed char add_bos;     /* the file's tokenizer.ggml.add_bos_token: 1, 0, or -1 (not said) */
    bool text_of_multimodal; /* the text model of a multimodal checkpoint: tensors named under
                                its language model (Gemma 3 4B and up) */
    pq_qspec spec;           /* fp32 for a base model */
    double linear_bits;      /* bits of the quantized linears (data + scales + zeros) */
    double linear_params;
    /* quantized linears per storage format as stored (a k-quant's fallback counted as what it
     * fell back to), and those left in full precision because no block fits their rows */
    int n_linear_fmt[PQ_QF_MAX], n_linear_fp;
    size_t n_params;
};

/* Opens a Hugging Face model directory (config.json, safetensors, tokenizer files). */
int pq_model_open_dir(pq_model **out, const char *dir, polyq_err *err);
/* New model whose linear layers are quantized per spec; base must outlive it. */
int pq_model_quantize(pq_model **out, const pq_model *base, const pq_qspec *spec, polyq_err *err);
void pq_model_free(pq_model *m);
/* Makes lin (a linear of q, a quantized copy) use qw, which q then owns. */
int pq_model_set_qweight(pq_model *q, pq_linear *lin, pq_qweight *qw, polyq_err *err);

/* Calibration text: token sequences (each with the model's start token, or an encoder's
 * special tokens around it), described for the results. */
typedef struct pq_calib {
    const int32_t *tokens;
    const int *seq_start; /* n_seq + 1 offsets */
    int n_seq;
    int batch_tokens; /* sequences per forward pass add up to at most this many tokens */
} pq_calib;
/* GPTQ, block by block: each block's linears see the inputs the already-quantized blocks
 * before them produce on the calibration text (one forward pass over it per block), then
 * are quantized by pq_gptq. -head quantizes the LM head by round-to-nearest. */
int pq_model_gptq(pq_model **out, const pq_model *base, const pq_qspec *spec, const pq_calib *cal,
                  int n_threads, polyq_err *err);
/* AWQ block by block as its reference implementations run a model (calib.c, awq_groups): for
 * each group of linears reading one input, the scales searched on the full-precision model's
 * inputs and measured where the references measure them (Llama/Mistral: q k v on the
 * attention's output, gate up on the MLP's, o_proj alone or, under grouped-query attention,
 * not scaled, down alone; OPT: q k v on the attention, the rest alone; GPT-NeoX, BLOOM: the
 * attention output not scaled, the rest alone; GPT-2 and encoders: every group alone), every
 * group on the block as it was; -clip then searches each linear's clipping but q's, k's and a
 * fused qkv's. */
int pq_model_awq(pq_model **out, const pq_model *base, const pq_qspec *spec, const pq_calib *cal,
                 int n_threads, polyq_err *err);
/* Quantized models on disk (qfile.c): dir/polyq-quant.safetensors with every quantized linear
 * of q as stored in memory, and meta_json (an object with at least "version" 1 and "spec").
 * Loading rebuilds the quantized copy of base (the same model it was made from, checked by
 * shapes); *meta_json receives the stored description (heap). */
int pq_qfile_write(const char *dir, const pq_model *q, const char *meta_json, polyq_err *err);
int pq_qfile_load(pq_model **out, const pq_model *base, const char *dir, char **meta_json,
                  polyq_err *err);

/* GGUF (gguf_model.c): q (a quantized copy in llama.cpp block formats, or a base model) written
 * as llama.cpp reads GPT-2 and Llama-family models, spec_name kept in polyq.quant_spec; and
 * such a file read back as a quantized copy of base (the model it was made from, checked by
 * shapes), *spec_name receiving the spec it names (heap). */
int pq_gguf_write_model(const char *path, const pq_model *q, const char *spec_name, polyq_err *err);
/* A GGUF file of the gpt2 or llama architecture (llama.cpp's names and layouts, as written by
 * convert_hf_to_gguf.py and llama-quantize, or by pq_gguf_write_model) as a model of its own:
 * the configuration from its metadata, the tokenizer from tokenizer.ggml.*, F32/F16/BF16
 * tensors used in place, the quantized blocks of linears and token embeddings held packed as
 * stored (each product and lookup dequantizing rows by the format's reference dequantizer, so
 * the model computes with exactly the file's weight values), other quantized tensors
 * dequantized to f32. */
int pq_model_open_gguf(pq_model **out, const char *path, polyq_err *err);
/* The tokenizer of a GGUF file alone (tokenizer.ggml.*, as pq_model_open_gguf reads it). */
int pq_gguf_open_tokenizer(pq_tokenizer **out, const char *path, polyq_err *err);
int pq_gguf_load_quantized(pq_model **out, const pq_model *base, const char *path, char **spec_name,
                           polyq_err *err);

/* SmoothQuant (Xiao et al. 2022): per block, s_j = max|x_j|^alpha / max|w_j|^(1 - alpha) over the
 * calibration text for the inputs of the attention's and the MLP's first linears, x / s folded
 * into the LayerNorm (RMSNorm) before them and W diag(s) into the linears; then every block
 * linear as int8 per channel (weights), run with per-token int8 activations (acts). Pre-LN
 * decoders only. */
typedef struct pq_smooth_opts {
    float alpha;
    bool smooth, weights, acts;
} pq_smooth_opts;
int pq_model_smoothquant(pq_model **out, const pq_model *base, const pq_qspec *spec,
                         const pq_smooth_opts *o, const pq_calib *cal, int n_threads,
                         polyq_err *err);

/* Bits per weight of the linear layers (32 for a full-precision model). */
double pq_model_bits_per_weight(const pq_model *m);
/* The storage formats of a quantized model's linears as a JSON object of counts
 * ({"q4_k": 60, "q6_k": 12, "f32": 2}: "f32" for linears left in full precision); "{}" for a
 * base model. */
void pq_model_formats_json(const pq_model *m, char *buf, size_t n);
/* When some linears are stored in a format the spec does not name (a k-quant's fallback for
 * rows that are not whole super-blocks, as llama-quantize falls back), one sentence saying how
 * many went to each, in buf; false (buf "") when none did. */
bool pq_model_fallbacks(const pq_model *m, char *buf, size_t n);
/* Floats per row of the forward's output: n_vocab logits, or n_embd for an encoder without
 * its MLM head (the last hidden state). */
int pq_model_out_dim(const pq_model *m);
/* The token each scored sequence starts with: tokenizer bos, else eos, else config ids. */
int32_t pq_model_bos(const pq_model *m);

int pq_acts_init(pq_acts *a, const pq_config *cfg, int max_tokens);
void pq_acts_free(pq_acts *a);

/* logits (M, pq_model_out_dim) for tokens (M) packed as n_seq sequences (seq_start, n_seq+1
 * offsets), each starting at position 0. Checks ids and lengths before computing. */
int pq_model_forward(const pq_model *m, pq_ops *ops, pq_acts *acts, const int32_t *tokens,
                     const int *seq_start, int n_seq, float *logits, polyq_err *err);

/* For arch files: a float tensor by name (first of the candidates found), checked against
 * the expected shape (dims < 0 are unchecked); zero-copy when it is aligned F32. */
int pq_model_get_f32(pq_model *m, const char *const *names, int n_dims, const int64_t *shape,
                     const float **out, polyq_err *err);

/* For arch files: the attention shape of a configuration (scale 1/sqrt(D), its window). */
pq_attn pq_config_attn(const pq_config *c);
/* The width of one token's attention output (heads x head width) and of its q, k and v
 * together (at least 3 n_embd, the fused layout's), for buffers. */
size_t pq_config_att_width(const pq_config *c);
size_t pq_config_qkv_width(const pq_config *c);
/* qkv (M, (H+2KVH)D) from xn (M,C) through the layer's fused or separate projections. */
void pq_layer_qkv(pq_ops *ops, const pq_layer *L, float *qkv, const float *xn, int M,
                  const pq_attn *a);
/* For arch files: integer config keys read in order. A key missing from the file takes
 * `dflt` (an error when required); `alt` is an alternative name, or NULL. */
typedef struct pq_cfg_int {
    const char *key, *alt;
    int *dst;
    bool required;
    int64_t lo, hi, dflt;
} pq_cfg_int;
int pq_config_ints(const json_t *j, const pq_cfg_int *list, size_t n, const char *what,
                   polyq_err *err);
/* layer_types (each "sliding_attention" or "full_attention") into c->sliding, or when absent
 * every pattern-th layer global, the others local (transformers' sliding_window_pattern). */
int pq_config_layer_types(pq_config *c, const json_t *j, int pattern, const char *what,
                          polyq_err *err);
/* The activation named by key (dflt when absent): gelu (erf), gelu_new / gelu_fast /
 * gelu_pytorch_tanh (tanh), relu, silu / swish. */
int pq_config_act(const json_t *j, const char *key, const char *dflt, pq_act *out, const char *what,
                  polyq_err *err);
/* Fused qkv rows laid out per head ([h][q,k,v][d], GPT-NeoX and BLOOM) regrouped into
 * [q | k | v], weight and bias, as model-owned copies. */
int pq_model_regroup_qkv(pq_model *m, pq_linear *lin, int H, polyq_err *err);
/* For arch files: a linear layer W [n, k] from the first of wnames found, and its bias [n]
 * from bnames (NULL: no bias). */
int pq_model_get_linear(pq_model *m, pq_linear *lin, const char *const *wnames,
                        const char *const *bnames, int n, int k, polyq_err *err);
/* Rows r0 .. r0 + n of an untransposed linear of m as a linear of their own (a view of the same
 * weights and bias, packed ones included), for fused projections kept apart (Phi-3's
 * gate_up_proj). */
int pq_linear_rows(pq_model *m, const pq_linear *whole, int r0, int n, pq_linear *part,
                   polyq_err *err);
/* The weight alone: F16 and BF16 stay as stored in the file's map (lin->w16), aligned F32 is
 * used in place, a packed tensor (a quantized GGUF's) stays packed in the map (lin->q, a view
 * m owns), anything else becomes an owned f32 copy. */
int pq_model_get_weight(pq_model *m, pq_linear *lin, const char *const *wnames, int n, int k,
                        polyq_err *err);
/* After a linear of base has been quantized: lets go of its file-mapped pages (they come back
 * from the file if base reads them again), so quantizing does not keep the f32/f16 model
 * resident beside the packed one. */
void pq_linear_release(const pq_model *base, const pq_linear *lin);
/* The LM head over n_in inputs: lm_head.weight when the model ships one or is untied
 * (then it is required), else the token embeddings (wte, already loaded). */
int pq_model_lm_head(pq_model *m, int n_in, polyq_err *err);
/* The token embeddings (names, shape [n_vocab, width]): m->wte, or m->wte_q where the file
 * stores them packed (a quantized GGUF's), rows dequantized as tokens look them up. */
int pq_model_get_embeddings(pq_model *m, const char *const *names, const int64_t *shape,
                            polyq_err *err);
/* x (M, width) = the embeddings of tokens */
void pq_model_embed(const pq_model *m, float *x, const int32_t *tokens, int M);
/* Whether the LM head is the token embeddings themselves (tied and not quantized apart). */
bool pq_model_head_is_embeddings(const pq_model *m);
/* Whether the first of names found is stored packed (pq_model_get_weight keeps it so;
 * pq_model_get_f32 dequantizes it). */
bool pq_model_packed(const pq_model *m, const char *const *names);
/* An n-float buffer owned (and freed) by the model; NULL when out of memory. */
float *pq_model_alloc(pq_model *m, size_t n);
/* Reads an optional tensor: *out = NULL (and 0) when no candidate name exists. */
int pq_model_get_f32_opt(pq_model *m, const char *const *names, int n_dims, const int64_t *shape,
                         const float **out, polyq_err *err);

/* rope_scaling / rope_parameters (type or rope_type) into r: default, dynamic (no change within
 * n_ctx), linear, llama3; others refused. */
int pq_config_rope_scaling(const json_t *s, int n_ctx, pq_rope *r, const char *what,
                           polyq_err *err);

/* For arch files: the Llama family's loader, forward pass and AWQ groups, which Mistral, Qwen2
 * and Qwen3 share, with what each changes. */
typedef struct pq_llama_variant {
    bool window;      /* sliding_window applies to every layer (Mistral) */
    bool qkv_bias;    /* q, k and v have biases, o_proj none (Qwen2) */
    bool qk_norm;     /* self_attn.q_norm / k_norm: RMSNorm of each head (Qwen3) */
    int head_dim;     /* head width when config.json gives none; 0: hidden_size / heads */
    bool layer_types; /* Qwen's use_sliding_window / layer_types: sliding layers refused */
    bool fused;       /* self_attn.qkv_proj and mlp.gate_up_proj ([gate | up]) fused (Phi-3),
                         and partial_rotary_factor read */
} pq_llama_variant;
int pq_llama_load(pq_model *m, const json_t *config, const pq_llama_variant *v, polyq_err *err);
void pq_llama_forward(const pq_model *m, pq_ops *ops, struct pq_acts *a, const int32_t *tokens,
                      const int *seq_start, int n_seq, float *logits);
int pq_llama_awq_groups(const pq_model *m, pq_awq_group *g);
/* The Llama family's Hugging Face configuration of a GGUF's metadata under another model_type
 * and class (new reference, NULL: out of memory), for Llama-like families to add to. */
json_t *pq_llama_gguf_config_as(const pq_gguf_meta *g, const char *model_type,
                                const char *architecture);
/* For arch files: the Llama family's attention module (RoPE over q and k, then attention and
 * o_proj), which Mistral and other Llama-like families share for AWQ. */
void pq_llama_attention_module(const pq_model *m, pq_ops *ops, const pq_layer *L, const float *xn,
                               const int *starts, int n, float *qkv, float *att, float *out);

extern const pq_arch pq_arch_gpt2, pq_arch_gpt_neox, pq_arch_opt, pq_arch_llama, pq_arch_mistral,
    pq_arch_qwen2, pq_arch_qwen3, pq_arch_phi3, pq_arch_gemma2, pq_arch_gemma3, pq_arch_gemma3_mm,
    pq_arch_cohere, pq_arch_cohere2, pq_arch_bloom, pq_arch_bert, pq_arch_xlm_roberta;

#endif
