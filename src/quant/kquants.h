/* llama.cpp's k-quants Q2_K .. Q6_K (kquants.c): one super-block of 256 weights at a time,
 * laid out as blocks.h's pq_block_q*_k. */
#ifndef PQ_KQUANTS_H
#define PQ_KQUANTS_H

#include <stdint.h>

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

#endif
