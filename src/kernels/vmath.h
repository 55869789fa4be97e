/* Vectorized element-wise functions with the meaning of their ops_ref.c counterparts. */
#ifndef PQ_VMATH_H
#define PQ_VMATH_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "kernels/ops.h"

void pq_vec_activation(float *x, size_t n, pq_act act);
void pq_vec_gated(float *g, const float *u, size_t n, pq_act act);
/* y (n) += x (n) */
void pq_vec_add(float *y, const float *x, size_t n);
/* s (n) = softmax(scale s): exp(scale s - max) over its sum (n > 0; scale > 0) */
void pq_vec_softmax(float *s, size_t n, float scale);
/* out (n) = F16 (or BF16) values h (n) as f32, exactly */
void pq_vec_half_to_f32(const uint16_t *h, float *out, size_t n, bool bf16);

#endif
