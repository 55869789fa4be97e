/* GPTQ (Frantar et al. 2022, "GPTQ: Accurate Post-Training Quantization for Generative
 * Pre-trained Transformers"), as its reference implementation (gptq.py, fasterquant) runs it:
 *   H = 2 X X^T / n from the layer's calibration inputs; columns with H_ii = 0 are zeroed;
 *   optionally columns in order of decreasing H_ii (act-order, with the group parameters
 *   fixed up front from the unquantized weights: "static groups"); dampening
 *   percdamp * mean(diag H) on the diagonal; U = upper Cholesky factor of H^-1; then in blocks
 *   of 128 columns, each column quantized and its error (w - q) / U_ii spread over the
 *   remaining columns of the block by row i of U, and the block's errors over the later
 *   columns at once (lazy batch updates). Group parameters (non-static) come from the
 *   weights as updated by earlier blocks when the group's first column is reached.
 * Quantizer (GPTQ's): asymmetric range [min(x, 0), max(x, 0)], scale = (max - min) / (2^b - 1),
 * zero = round(-min / scale); symmetric: scale = 2 amax / (2^b - 1), zero = 2^(b-1);
 * level = clamp(round(x / scale) + zero, 0, 2^b - 1), x / scale in f32 and round as torch.round
 * (ties to even), as GPTQ's quantizer computes them. The result is stored in polyq's packed
 * integer layout (qformat.h). */
#ifndef PQ_GPTQ_H
#define PQ_GPTQ_H

#include <math.h>
#include <stdbool.h>

#include "base/status.h"
#include "quant/qformat.h"
#include "quant/round.h"

typedef struct pq_gptq_opts {
    double percdamp; /* 0: 0.01 */
    int block;       /* 0: 128 */
    bool act_order;
} pq_gptq_opts;

/* w [n_out, K] row-major; h [K, K] (2 X X^T / n, any positive scale), overwritten. spec: an
 * int spec (bits, group or channel, sym). */
int pq_gptq(const float *w, int n_out, int K, double *h, const pq_qspec *spec,
            const pq_gptq_opts *o, pq_qweight **out, polyq_err *err);

/* GPTQ's quantizer parameters for x[0..n) */
void pq_gptq_params(const float *x, int n, int bits, bool sym, float *scale, int *zero);
static inline int pq_gptq_level(float x, float scale, int zero, int maxq)
{
    int q = pq_round_even(x / scale) + zero;
    return q < 0 ? 0 : q > maxq ? maxq : q;
}

#endif
