/* llama.cpp's CPU numerics for its block formats (the "-llamacpp" specs): instead of the
 * dequantized weights times f32 activations, each row of activations is quantized per block as
 * llama.cpp's x86 backend quantizes it for the format's dot product (quantize_row_q8_0,
 * quantize_row_q8_1, quantize_row_q8_K), and each output is the exact integer dot product of
 * codes times the blocks' scales:
 *   Q8_0 .. Q5_0   sum over blocks  d_w d_a S                 S = sum of q_w q_a
 *   Q4_1, Q5_1     sum over blocks  d_w d_a S + m_w s_a       s_a = the block's f16 d_a sum q_a
 *   k-quants       sum over blocks  d_a (d_w S - dmin_w M)    S = sum over sub-blocks of
 *                                   sc S_sub, M = sum of mn times the sub-block's code sum
 * The integer sums are exact; the scaled terms are summed in double, so the result does not
 * depend on the vector width (llama.cpp sums them in f32 lanes: its own rounding is what
 * differs, measured in tests against its numbers on the same files). */
#ifndef PQ_GGML_DOT_H
#define PQ_GGML_DOT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "quant/qformat.h"

/* A batch of activation rows quantized for one kind of dot product. */
typedef struct pq_qact {
    pq_dot_act kind;
    int M, K, block; /* block: 32 (Q8_0, Q8_1) or 256 (Q8_K) */
    int8_t *q;       /* [M][K] codes */
    float *d;        /* [M][K / block] scales, as the dot product reads them (Q8_0, Q8_1: f16) */
    float *s;        /* Q8_1: [M][K / 32] d times the sum of the block's codes, as f16 */
    int32_t *bsum;   /* Q8_K: [M][K / 16] sums of each 16 codes; Q8_0, Q8_1 with vnni:
                      * [M][K / 32] -128 times each block's sum */
    int8_t *qi;      /* [M][K] the codes in the AVX-512 VNNI kernel's order (vnni only) */
    size_t cap_q, cap_d; /* room allocated in q (and qi), and in d, s and bsum */
    bool avx2;           /* the integer sums by AVX2 (the same integers), set by reserve */
    bool vnni;           /* the sums by AVX-512 VNNI over interleaved codes (qi), set by reserve */
} pq_qact;

/* One row of K activations (K a multiple of the kind's block) quantized into row m of a. */
void pq_qact_row(pq_qact *a, int m, const float *x);
/* a sized for M rows of K of this kind (reusing its memory); -1 when out of memory or K is not
 * whole blocks. */
int pq_qact_reserve(pq_qact *a, pq_dot_act kind, int M, int K);
void pq_qact_free(pq_qact *a);

/* The dot product of one weight row of format t, decoded (pq_qweight_decode_row: K codes and
 * K / t->block headers), with activation row m of a (of t->dot_act). */
float pq_ggml_dot(const pq_qfmt_traits *t, const int8_t *wq, const pq_dec *wh, const pq_qact *a,
                  int m);
/* A decoded weight row (K codes, headers wh) put in the order pq_ggml_dot_rows reads (in
 * place; nothing to do unless a->vnni: then runs of 16, 8 and 4 blocks are interleaved, 4
 * codes of each block in turn, so that each 32-bit lane of a vector sums one block; given wh,
 * the row is weights: their interleaved codes are stored as w + 128, and for 32-blocks the
 * headers' d and dmin as doubles into wd[0 .. nb) and wd[nb .. 2 nb), nb = K / 32). */
void pq_ggml_rows_layout(const pq_qact *a, int8_t *wq, const pq_dec *wh, double *wd);
/* The same as pq_ggml_dot for activation rows m0 .. m0+n-1, into out[0], out[stride], ...: the
 * same bits, several rows per pass over the weights, wq and wd from pq_ggml_rows_layout (wd
 * read only for 32-blocks with a->vnni). */
void pq_ggml_dot_rows(const pq_qfmt_traits *t, const int8_t *wq, const pq_dec *wh, const double *wd,
                      const pq_qact *a, int m0, int n, float *out, size_t stride);
/* The same for nw weight rows laid out one after another (codes K apart, headers K / t->block
 * apart, wd 2 K / 32 apart): activation row m0 + i times weight row j into out[i * ldo + j]. */
void pq_ggml_dot_tile(const pq_qfmt_traits *t, const int8_t *wq, const pq_dec *wh, const double *wd,
                      int nw, const pq_qact *a, int m0, int n, float *out, size_t ldo);

#endif
