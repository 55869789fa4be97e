/* Transformer building blocks. Legend used in shape comments, stated once:
 *   M = tokens in the batch (all sequences packed back to back), K = inputs, N = outputs,
 *   C = model width, H = heads, D = C / H head width, T = tokens of one sequence.
 * Each op has a plain scalar reference (ops_ref.c, the source of truth) and, where speed
 * matters, a fast version with the same meaning (ops.c: oneDNN's products, gemm.c, over fixed
 * column chunks on the thread pool). Chunking never depends on the thread count, so results
 * are bit-identical for any number of threads. */
#ifndef PQ_OPS_H
#define PQ_OPS_H

#include <stddef.h>
#include <stdint.h>

#include "kernels/pool.h"
#include "quant/ggml_dot.h"
#include "quant/qformat.h"

/* y = x W^T + b with W [N, K] as f32 rows or packed integer rows. */
typedef struct pq_linear {
    int n_out, n_in;
    const float *w;      /* [N, K] f32 ([K, N] when wt), or NULL when w16 or q is set */
    bool wt;             /* w is stored transposed, inputs by outputs (GPT-2's Conv1D) */
    const uint16_t *w16; /* [N, K] F16 (or BF16 when w16_bf16) as stored in the file */
    bool w16_bf16;
    const float *bias;   /* [N] or NULL */
    const pq_qweight *q; /* packed weights, or NULL */
} pq_linear;

/* PQ_ACT_GELU_TANH_F16: the tanh GELU as llama.cpp's CPU backend computes it (its f16 table):
 * f16(gelu(f16(x))) for -10 < x < 10, 0 at or below -10, x at or above 10; what GELU_TANH
 * becomes in llama.cpp's numerics (pq_ops.llama_numerics). */
typedef enum {
    PQ_ACT_GELU_TANH,
    PQ_ACT_GELU_ERF,
    PQ_ACT_RELU,
    PQ_ACT_SILU,
    PQ_ACT_GELU_TANH_F16
} pq_act;

/* Calibration: while set on the ops, every product with one of these linears adds 2 x x^T of
 * each input row x to its h (K x K, upper triangle, double) and counts the rows. */
#define PQ_CAPTURE_MAX 8
typedef struct pq_capture {
    int n;
    const struct pq_linear *lin[PQ_CAPTURE_MAX];
    double *h[PQ_CAPTURE_MAX];
    double *absx[PQ_CAPTURE_MAX];    /* optional (K): sum over rows of |x| per input channel */
    double *amax[PQ_CAPTURE_MAX];    /* optional (K): max over rows of |x| per input channel */
    float *raw[PQ_CAPTURE_MAX];      /* optional: the input rows themselves, one after another */
    size_t raw_rows[PQ_CAPTURE_MAX]; /* room in raw, in rows */
    size_t rows[PQ_CAPTURE_MAX];
    double *buf; /* scratch: rows converted to double */
    size_t buf_len;
    int failed; /* out of memory while capturing */
} pq_capture;
void pq_capture_add(pq_capture *c, const struct pq_linear *lin, const float *in, int M);

/* Per-run state of the fast ops: the pool and one scratch buffer per thread. */
typedef struct pq_ops {
    pq_pool *pool;
    int n_threads;
    float **scratch; /* [n_threads][scratch_len] */
    size_t scratch_len;
    int reference;       /* nonzero: run the scalar reference kernels instead */
    pq_capture *capture; /* calibration statistics to gather, or NULL */
    int8_t *a8;          /* W8A8: the batch's activations as int8, and their per-row scales */
    float *a8_scale;
    size_t a8_cap;
    int oom;             /* set when a kernel could not get memory; the forward reports it */
    bool llama_numerics; /* the products as llama.cpp's CPU backend computes them (ggml_dot.h;
                          * set by the forward from the model's spec): ggml formats with
                          * quantized activations, F16/BF16 weights with activations rounded */
    pq_qact qact;        /* the batch's activations quantized for those products */
    float *act_half;     /* or rounded to F16/BF16 (as floats) */
    size_t act_half_cap;
    const int *seq_start; /* the batch's sequences (set by the forward): LLM.int8() finds */
    int n_seq;            /* outlier features per sequence, as one forward of it would */
} pq_ops;

/* Per-token dynamic int8 (SmoothQuant, LLM.int8()): scale = max|x| / 127, q = round(x / scale)
 * in -127..127 (all 0 with scale 0 for a zero row). */
void pq_quant_act_row(const float *x, int K, int8_t *q, float *scale);

/* LLM.int8() (Dettmers et al. 2022, bitsandbytes' MatMul8bitLt): in each sequence, the input
 * features where some token reaches |x| >= threshold are outliers; the rest go through the
 * int8 product (per-token activation scales of the non-outlier features, per-channel weight
 * scales), the outlier features are multiplied in float by the dequantized weight columns and
 * added. seq_start NULL: the M rows are one sequence. Fast and reference give the same bits.
 * With no threshold (lin->q->outlier 0) this is the W8A8 product, the fast path of
 * pq_ref_linear_w8a8. */
void pq_linear_llm_int8(pq_ops *ops, float *out, int ldo, const float *in, int M,
                        const pq_linear *lin, bool parallel);

/* llama.cpp's numerics for a weight in a ggml block format of whole blocks (ggml_dot.h): the
 * batch's rows quantized once to the format's activation kind, then chunks of output features
 * decoded to integer codes and dotted with every row, in parallel or not (the same bits). */
bool pq_linear_ggml_ok(const pq_linear *lin);
void pq_linear_ggml(pq_ops *ops, float *out, int ldo, const float *in, int M, const pq_linear *lin,
                    bool parallel);

/* Output features per product of a linear layer in f32 (and rows of weights each thread
 * expands at a time): fixed, so results do not depend on the thread count. */
#define PQ_OPS_CHUNK 192

/* Creates the pool; max_k bounds K of any linear and max_t the tokens of a sequence. Each
 * thread holds PQ_OPS_CHUNK x max_k floats of scratch. */
int pq_ops_init(pq_ops *ops, int n_threads, int max_k, int max_t);
void pq_ops_free(pq_ops *ops);

/* Row n of the weights as f32 (any storage: f32, F16/BF16, packed). */
void pq_linear_row_f32(const pq_linear *lin, int n, float *row);
/* All of lin's weights as f32 [N, K]: lin->w itself, or a converted copy returned in *tmp as
 * well (the caller frees it); NULL when out of memory. */
const float *pq_linear_f32(const pq_linear *lin, float **tmp);

/* out (M,N), in (M,K) */
void pq_ref_linear(float *out, const float *in, int M, const pq_linear *lin);
void pq_linear_fwd(pq_ops *ops, float *out, const float *in, int M, const pq_linear *lin);
/* The same writing rows of out ldo floats apart (into columns of a wider matrix). */
void pq_ref_linear_ld(float *out, int ldo, const float *in, int M, const pq_linear *lin);
/* W8A8: int32 sums of int8 activations times int8 weights, then
 * out = sum * (activation scale * weight scale) + bias. The scalar reference. */
void pq_ref_linear_w8a8(float *out, int ldo, const float *in, int M, const pq_linear *lin);
void pq_linear_fwd_ld(pq_ops *ops, float *out, int ldo, const float *in, int M,
                      const pq_linear *lin);

/* out (M,C), in (M,C), w (C) and b (C), b NULL (a gain without bias: Cohere) or both NULL (no
 * affine); out may alias in */
void pq_layernorm(float *out, const float *in, const float *w, const float *b, int M, int C,
                  float eps);
/* The same, rows spread over the pool (identical bits) */
void pq_layernorm_fwd(pq_ops *ops, float *out, const float *in, const float *w, const float *b,
                      int M, int C, float eps);
/* x (n) in place */
void pq_activation(float *x, size_t n, pq_act act);
/* The same vectorized and spread over the pool (the reference when ops->reference). */
void pq_activation_fwd(pq_ops *ops, float *x, size_t n, pq_act act);
/* x (M,C) = table[tokens[m]] rows: embedding lookup */
void pq_embed(float *x, const float *table, const int32_t *tokens, int M, int C);
/* x (n) += y (n): residual connections */
void pq_add(float *x, const float *y, size_t n);

/* Causal self-attention for packed sequences.
 * out (M,C), qkv (M,3C) = [q | k | v], seq_start (n_seq+1) row offsets; scale multiplies q.k */
/* Causal self-attention over packed sequences. Each row of qkv holds q (H heads of D),
 * then k and v (KVH heads of D each: grouped-query attention when KVH < H, query head h
 * reading kv head h / (H / KVH)). scale multiplies q.k; window > 0 limits each query to the
 * last `window` positions, itself included (sliding-window attention); alibi adds
 * slope_h * j to the score of key position j (ALiBi). */
typedef struct pq_attn {
    int H, KVH, D;
    float scale;
    int window;
    const float *alibi; /* per query head, or NULL: adds slope * key position (BLOOM) */
    bool bidirectional; /* every position sees the whole sequence (encoders: BERT, XLM-R) */
    float softcap;      /* > 0: each scaled score s becomes softcap * tanh(s / softcap) (Gemma 2) */
} pq_attn;

static inline int pq_attn_ld(const pq_attn *a)
{
    return (a->H + 2 * a->KVH) * a->D;
}

/* Rotary frequencies: theta^(-2i/rot), then scaled as transformers' rope types do.
 * linear: every frequency / factor. llama3: wavelengths 2 pi / f above orig_ctx / low_freq
 * are divided by factor, those below orig_ctx / high_freq kept, those between interpolated.
 * (dynamic NTK changes nothing within max_position_embeddings, the longest polyq runs.) */
typedef enum { PQ_ROPE_DEFAULT, PQ_ROPE_LINEAR, PQ_ROPE_LLAMA3 } pq_rope_kind;
typedef struct pq_rope {
    float theta;
    pq_rope_kind kind;
    float factor, low_freq, high_freq, orig_ctx;
} pq_rope;

/* inv (rot / 2) = the rotary frequencies, in float as transformers computes them */
void pq_rope_inv_freq(float *inv, int rot, const pq_rope *r);

/* Rotary position embedding, rotate_half layout (GPT-NeoX, Llama), on q and k of qkv in
 * place: in each head the first rot dims are rotated by position * inv_freq[i], positions
 * counted from each sequence's start. */
void pq_rope_neox(float *qkv, const int *seq_start, int n_seq, const pq_attn *a, int rot,
                  const pq_rope *r);

/* The same in the interleaved layout (GPT-J, Cohere, ggml's default rope): dims 2i and 2i + 1
 * of the first rot of each head are rotated together by position * inv_freq[i]. */
void pq_rope_interleaved(float *qkv, const int *seq_start, int n_seq, const pq_attn *a, int rot,
                         const pq_rope *r);

/* out (M, H*D), qkv (M, (H+2KVH)*D), seq_start (n_seq+1) row offsets */
void pq_ref_attention(float *out, const float *qkv, const int *seq_start, int n_seq,
                      const pq_attn *a);
void pq_attention_fwd(pq_ops *ops, float *out, const float *qkv, const int *seq_start, int n_seq,
                      const pq_attn *a);

/* RMSNorm (Llama): out (M,C) = in / sqrt(mean(in^2) + eps) * w; out may alias in */
void pq_rmsnorm(float *out, const float *in, const float *w, int M, int C, float eps);
/* In place, for each of M rows of x (ld floats apart): n_heads consecutive heads of D floats,
 * each RMS-normalized and scaled by w[D] (Qwen3's q_norm and k_norm). */
void pq_head_rmsnorm_fwd(pq_ops *ops, float *x, int M, int ld, int n_heads, int D, const float *w,
                         float eps);
void pq_rmsnorm_fwd(pq_ops *ops, float *out, const float *in, const float *w, int M, int C,
                    float eps);
/* SwiGLU and friends: g (n) = act(g) * u, in place */
void pq_gated(float *g, const float *u, size_t n, pq_act act);
void pq_gated_fwd(pq_ops *ops, float *g, const float *u, size_t n, pq_act act);

#endif
