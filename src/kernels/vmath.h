/* Vectorized element-wise functions with the meaning of their ops_ref.c counterparts. */
#ifndef PQ_VMATH_H
#define PQ_VMATH_H

#include <stddef.h>

#include "kernels/ops.h"

void pq_vec_activation(float *x, size_t n, pq_act act);
void pq_vec_gated(float *g, const float *u, size_t n, pq_act act);

#endif
