/* llama.cpp's k-quants Q2_K .. Q6_K (kquants.c): one super-block of 256 weights at a time. */
#ifndef PQ_KQUANTS_H
#define PQ_KQUANTS_H

#include <stddef.h>
#include <stdint.h>

#include "quant/qformat.h"

size_t pq_kq_block_bytes(pq_qfmt f); /* 0 for other formats */
void pq_kq_quantize_block(pq_qfmt f, const float *x, uint8_t *y);
void pq_kq_dequant_block(pq_qfmt f, const uint8_t *y, float *out);

#endif
