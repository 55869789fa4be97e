/* llama.cpp's k-quants Q2_K .. Q6_K (kquants.c): one super-block of 256 weights at a time,
 * laid out as blocks.h's pq_block_q*_k. */
#ifndef PQ_KQUANTS_H
#define PQ_KQUANTS_H

#include <stdbool.h>
#include <stdint.h>

#include "quant/qformat.h"

void pq_q2_k_quantize(const float *x, uint8_t *y);
void pq_q3_k_quantize(const float *x, uint8_t *y);
void pq_q4_k_quantize(const float *x, uint8_t *y);
void pq_q5_k_quantize(const float *x, uint8_t *y);
void pq_q6_k_quantize(const float *x, uint8_t *y);
void pq_q2_k_dequant(const uint8_t *y, float *out);
void pq_q3_k_dequant(const uint8_t *y, float *out);
void pq_q4_k_dequant(const uint8_t *y, float *out);
void pq_q5_k_dequant(const uint8_t *y, float *out);
void pq_q6_k_dequant(const uint8_t *y, float *out);
/* Each super-block as integer codes and its sub-blocks' integer scales (pq_dec; Q2_K, Q3_K and
 * Q6_K in sub-blocks of 16, Q4_K and Q5_K of 32), for llama.cpp's integer dot products. */
void pq_q2_k_decode(const uint8_t *y, int8_t *q, pq_dec *h);
void pq_q3_k_decode(const uint8_t *y, int8_t *q, pq_dec *h);
void pq_q4_k_decode(const uint8_t *y, int8_t *q, pq_dec *h);
void pq_q5_k_decode(const uint8_t *y, int8_t *q, pq_dec *h);
void pq_q6_k_decode(const uint8_t *y, int8_t *q, pq_dec *h);
/* A row of nb Q4_K or Q6_K blocks dequantized with AVX-512 (the caller has checked the CPU),
 * the same bits as the block functions; false for other formats. */
bool pq_kquant_dequant_row_avx512(pq_qfmt fmt, const uint8_t *y, int nb, float *out);

#endif
