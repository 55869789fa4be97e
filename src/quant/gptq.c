/* GPTQ (see gptq.h). Linear algebra in double through LAPACKE (dpotrf, dpotri; OpenBLAS's
 * LAPACK behind it). */
#include "quant/gptq.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include <lapacke.h>

#include "base/base.h"

void pq_gptq_params(const float *x, int n, int bits, bool sym, float *scale, int *zero)
{
    int maxq = (1 << bits) - 1;
    float lo = 0, hi = 0;
    for (int i = 0; i < n; i++) {
        lo = fminf(lo, x[i]);
        hi = fmaxf(hi, x[i]);
    }
    if (sym) {
        hi = fmaxf(-lo, hi);
        if (lo < 0)
            lo = -hi;
    }
    if (lo == 0 && hi == 0) {
        lo = -1;
        hi = 1;
    }
    *scale = (hi - lo) / (float)maxq;
    *zero = sym ? (maxq + 1) / 2 : pq_round_even(-lo / *scale);
}

typedef struct {
    double d;
    int i;
} keyed;

static int by_desc(const void *a, const void *b)
{
    const keyed *x = a, *y = b;
    if (x->d != y->d)
        return x->d > y->d ? -1 : 1;
    return (x->i > y->i) - (x->i < y->i); /* stable */
}

int pq_gptq(const float *w, int n_out, int K, double *h, const pq_qspec *spec,
            const pq_gptq_opts *o, pq_qweight **out, polyq_err *err)
{
    *out = NULL;
    if (spec->fmt != PQ_QF_INT || spec->none || spec->gran == PQ_GRAN_TENSOR)
        return pq_fail(err, POLYQ_INVALID_ARG,
                       "GPTQ needs an integer spec per channel or in groups, not %s", spec->name);
    int bits = spec->bits, maxq = (1 << bits) - 1, B = o && o->block > 0 ? o->block : 128;
    int G = spec->gran == PQ_GRAN_GROUP && spec->group < K ? spec->group : K;
    double percdamp = o && o->percdamp > 0 ? o->percdamp : 0.01;
    bool act = o && o->act_order;
    size_t nW = (size_t)n_out * K;
    double *W = pq_alloc_array(nW, sizeof *W),
           *Err = pq_alloc_array((size_t)n_out * B, sizeof *Err),
           *Wb = pq_alloc_array((size_t)n_out * B, sizeof *Wb);
    int *perm = pq_alloc_array((size_t)K, sizeof *perm), *lev = pq_alloc_array(nW, sizeof *lev);
    int n_groups = (K + G - 1) / G;
    float *gscale = pq_alloc_array((size_t)n_out * n_groups, sizeof *gscale);
    int *gzero = pq_alloc_array((size_t)n_out * n_groups, sizeof *gzero);
    float *col = pq_alloc_array((size_t)(n_out > G ? n_out : G), sizeof *col);
    keyed *kd = pq_alloc_array((size_t)K, sizeof *kd);
    double *hp = NULL;
    pq_qweight *q = NULL;
    int rc = 0;
    if (!W || !Err || !Wb || !perm || !lev || !gscale || !gzero || !col || !kd) {
        rc = pq_fail(err, POLYQ_NOMEM, "out of memory for GPTQ on a [%d, %d] matrix", n_out, K);
        goto out;
    }
    for (size_t i = 0; i < nW; i++)
        W[i] = w[i];
    /* dead inputs */
    for (int i = 0; i < K; i++)
        if (h[(size_t)i * K + i] == 0) {
            h[(size_t)i * K + i] = 1;
            for (int r = 0; r < n_out; r++)
                W[(size_t)r * K + i] = 0;
        }
    /* static group parameters (act-order) from the weights before any update */
    if (act && G < K)
        for (int r = 0; r < n_out; r++)
            for (int g = 0; g < n_groups; g++) {
                int i0 = g * G, n = K - i0 < G ? K - i0 : G;
                for (int i = 0; i < n; i++)
                    col[i] = (float)W[(size_t)r * K + i0 + i];
                pq_gptq_params(col, n, bits, spec->sym, &gscale[(size_t)r * n_groups + g],
                               &gzero[(size_t)r * n_groups + g]);
            }
    for (int i = 0; i < K; i++)
        perm[i] = i;
    if (act) {
        for (int i = 0; i < K; i++)
            kd[i] = (keyed){h[(size_t)i * K + i], i};
        qsort(kd, (size_t)K, sizeof *kd, by_desc);
        for (int i = 0; i < K; i++)
            perm[i] = kd[i].i;
    }
    /* permuted H (symmetric) and W columns */
    if (!(hp = pq_alloc_array((size_t)K * K, sizeof *hp))) {
        rc = pq_fail(err, POLYQ_NOMEM, "out of memory for GPTQ's [%d, %d] Hessian", K, K);
        goto out;
    }
    double mean_diag = 0;
    for (int i = 0; i < K; i++) {
        for (int j = 0; j < K; j++)
            hp[(size_t)i * K + j] = h[(size_t)perm[i] * K + perm[j]];
        mean_diag += hp[(size_t)i * K + i];
    }
    mean_diag /= K;
    for (int i = 0; i < K; i++)
        hp[(size_t)i * K + i] += percdamp * mean_diag;
    for (int r = 0; r < n_out; r++) {
        double *row = W + (size_t)r * K;
        for (int i = 0; i < K; i++)
            kd[i].d = row[perm[i]];
        for (int i = 0; i < K; i++)
            row[i] = kd[i].d;
    }
    /* U: upper Cholesky factor of H^-1. LAPACK is column-major; H and H^-1 are symmetric. */
    lapack_int info = LAPACKE_dpotrf(LAPACK_COL_MAJOR, 'L', K, hp, K);
    if (!info)
        info = LAPACKE_dpotri(LAPACK_COL_MAJOR, 'L', K, hp, K);
    if (info) {
        rc = pq_fail(err, POLYQ_NUMERIC,
                     "GPTQ: the dampened Hessian is not positive definite (LAPACK info %d)",
                     (int)info);
        goto out;
    }
    for (int j = 0; j < K; j++) /* column-major lower -> full symmetric */
        for (int i = j + 1; i < K; i++)
            hp[(size_t)i + (size_t)j * K] = hp[(size_t)j + (size_t)i * K] =
                hp[(size_t)i + (size_t)j * K];
    info = LAPACKE_dpotrf(LAPACK_COL_MAJOR, 'U', K, hp, K);
    if (info) {
        rc = pq_fail(err, POLYQ_NUMERIC, "GPTQ: H^-1 is not positive definite (LAPACK info %d)",
                     (int)info);
        goto out;
    }
#define U(i, j) hp[(size_t)(i) + (size_t)(j)*K] /* upper: i <= j */
    for (int i1 = 0; i1 < K; i1 += B) {
        int i2 = i1 + B < K ? i1 + B : K, cnt = i2 - i1;
        for (int r = 0; r < n_out; r++) /* the block as it stands before its own updates */
            memcpy(Wb + (size_t)r * B, W + (size_t)r * K + i1, sizeof(double) * (size_t)cnt);
        for (int i = 0; i < cnt; i++) {
            int c = i1 + i;
            if ((!act || G == K) && c % G == 0) {
                /* group parameters from the weights as the reference reads them: updated by
                 * earlier blocks, not yet by this one */
                int g = c / G, m = K - c < G ? K - c : G;
                for (int r = 0; r < n_out; r++) {
                    for (int k = 0; k < m; k++) {
                        int idx = c + k;
                        col[k] = (float)(idx < i2 ? Wb[(size_t)r * B + (idx - i1)]
                                                  : W[(size_t)r * K + idx]);
                    }
                    pq_gptq_params(col, m, bits, spec->sym, &gscale[(size_t)r * n_groups + g],
                                   &gzero[(size_t)r * n_groups + g]);
                }
            }
            double d = U(c, c);
            int g = (act && G < K ? perm[c] : c) / G;
            for (int r = 0; r < n_out; r++) {
                double *row = W + (size_t)r * K;
                float s = gscale[(size_t)r * n_groups + g];
                int z = gzero[(size_t)r * n_groups + g];
                int u = pq_gptq_level((float)row[c], s, z, maxq);
                lev[(size_t)r * K + c] = u;
                double e = (row[c] - (double)(s * (float)(u - z))) / d;
                for (int j = c + 1; j < i2; j++)
                    row[j] -= e * U(c, j);
                Err[(size_t)r * B + i] = e;
            }
        }
        for (int r = 0; r < n_out; r++) /* lazy update of the later columns */
            for (int j = i2; j < K; j++) {
                double s = 0;
                for (int i = 0; i < cnt; i++)
                    s += Err[(size_t)r * B + i] * U(i1 + i, j);
                W[(size_t)r * K + j] -= s;
            }
    }
#undef U
    /* pack in the original column order */
    q = calloc(1, sizeof *q);
    if (!q) {
        rc = pq_fail(err, POLYQ_NOMEM, "out of memory");
        goto out;
    }
    q->fmt = PQ_QF_INT;
    q->bits = bits;
    q->n_out = n_out;
    q->n_in = K;
    q->gran = G < K ? PQ_GRAN_GROUP : PQ_GRAN_CHANNEL;
    q->group = G;
    q->n_groups = n_groups;
    q->sym = spec->sym;
    q->row_bytes = ((size_t)K * (size_t)bits + 7) / 8;
    q->data = pq_calloc_array((size_t)n_out, q->row_bytes);
    q->scale = pq_alloc_array((size_t)n_out * n_groups, sizeof *q->scale);
    q->zero = spec->sym ? NULL : pq_alloc_array((size_t)n_out * n_groups, 1);
    if (!q->data || !q->scale || (!spec->sym && !q->zero)) {
        rc = pq_fail(err, POLYQ_NOMEM, "out of memory");
        goto out;
    }
    for (size_t i = 0; i < (size_t)n_out * n_groups; i++) {
        q->scale[i] = gscale[i];
        if (q->zero)
            q->zero[i] = (uint8_t)gzero[i];
    }
    for (int r = 0; r < n_out; r++)
        for (int c = 0; c < K; c++)
            pq_pack(q->data + (size_t)r * q->row_bytes, bits, (size_t)perm[c],
                    (unsigned)lev[(size_t)r * K + c]);
    *out = q;
    q = NULL;
out:
    pq_qweight_free(q);
    free(W);
    free(Err);
    free(Wb);
    free(perm);
    free(lev);
    free(gscale);
    free(gzero);
    free(col);
    free(kd);
    free(hp);
    return rc;
}
