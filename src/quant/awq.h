/* AWQ (Lin et al. 2023, "AWQ: Activation-aware Weight Quantization"), its scale search: for
 * linears that read the same input X, per-input-channel scales s = mean|x|^a (at least 1e-4),
 * normalized by sqrt(max s * min s), for a in {0, 1/n, .., (n-1)/n} (n = 20 as the reference's
 * n_grid); the weights W diag(s) are quantized by round-to-nearest and used as
 * Q(W diag(s)) diag(s)^-1, and the a whose summed output error ||(W - W^) X||^2 over the
 * linears is least wins (ties: the smaller a; a = 0 is plain round-to-nearest, so the chosen
 * scales never do worse than it on the calibration inputs). The error is measured at the
 * linears' outputs (the reference measures the enclosing module's output). The inverse scales
 * are kept per input channel (pq_qweight.in_scale); in a deployed model they fold into the
 * operation before. No clipping search. */
#ifndef PQ_AWQ_H
#define PQ_AWQ_H

#include "base/status.h"
#include "quant/qformat.h"

/* ws[i] [n_out[i], K]; h [K, K] = X^T X / rows (any positive scale); xmean [K] = mean |x|.
 * out[i] receive the quantized linears. *best_a, *err_best, *err_rtn may be NULL. */
int pq_awq(const float *const *ws, const int *n_out, int n_lin, int K, const double *h,
           const double *xmean, const pq_qspec *spec, int n_grid, pq_qweight **out, double *best_a,
           double *err_best, double *err_rtn, polyq_err *err);

#endif
