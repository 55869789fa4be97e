/* AWQ (Lin et al. 2023, "AWQ: Activation-aware Weight Quantization"), its scale search: for
 * linears that read the same input X, per-input-channel scales s = mean|x|^a (at least 1e-4),
 * normalized by sqrt(max s * min s), for a in {0, 1/n, .., (n-1)/n} (n = 20 as the reference's
 * n_grid); the weights W diag(s) are quantized by round-to-nearest and used as
 * Q(W diag(s)) diag(s)^-1, and the a whose summed output error ||(W - W^) X||^2 over the
 * linears is least wins (ties: the smaller a; a = 0 is plain round-to-nearest, so the chosen
 * scales never do worse than it on the calibration inputs). With spec->duo (AutoAWQ's default
 * duo_scaling) s = mean|x|^a / (mean|w~|^(1-a) + 1e-4), w~ = |w| / (max |w| of its group +
 * 1e-6) averaged per input channel over every row of the linears; then a = 0 is not
 * round-to-nearest and that guarantee does not hold. pq_awq measures the error at the linears'
 * outputs, which is where the references measure it for a linear alone; for groups they
 * measure on a module's output (an attention, an MLP), model/calib.c runs that search with
 * pq_awq_scales and pq_awq_wmean. The inverse scales
 * are kept per input channel (pq_qweight.in_scale); in a deployed model they fold into the
 * operation before.
 * Clipping search (optional, the reference's auto_clip): for each group of each output row of
 * the scaled weights, the range [-m, m] with m = max|w| * (1 - i/20), i = 0..9, whose
 * quantized group gives the least error on that group's part of the output
 * (d^T H_gg d, inputs scaled by 1/s); i = 0 is no clipping. */
#ifndef PQ_AWQ_H
#define PQ_AWQ_H

#include "base/status.h"
#include "quant/qformat.h"

/* ws[i] [n_out[i], K]; h [K, K] = X^T X / rows (any positive scale); xmean [K] = mean |x|.
 * out[i] receive the quantized linears. *best_a, *err_best, *err_rtn may be NULL. */
int pq_awq(const float *const *ws, const int *n_out, int n_lin, int K, const double *h,
           const double *xmean, const pq_qspec *spec, int n_grid, pq_qweight **out, double *best_a,
           double *err_best, double *err_rtn, polyq_err *err);

/* The scales of grid point a (see above); wmean NULL without duo scaling. */
void pq_awq_scales(float *s, const double *xmean, const float *wmean, int K, float a);
/* Duo scaling's mean|w~| per input channel over the rows of the linears, groups of `group`. */
void pq_awq_wmean(float *wmean, const float *const *ws, const int *n_out, int n_lin, int K,
                  int group);

/* The clipping search alone on w [n_out, K] with input scales s (NULL: none): writes the
 * clipped scaled weights to wc [n_out, K]; *err_groups (may be NULL) receives the summed
 * per-group errors after clipping, *err_groups0 before. */
int pq_awq_clip(const float *w, int n_out, int K, const float *s, const double *h,
                const pq_qspec *spec, float *wc, double *err_groups, double *err_groups0,
                polyq_err *err);

#endif
