/* AWQ scale search (see awq.h). */
#include "quant/awq.h"

#include <cblas.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "base/base.h"

/* Quantizes the linears with scales s (NULL: none) into q[]; returns the summed output error
 * sum over rows of d^T h d, d = w - w^, or -1 on failure (err set). */
static double try_scales(const float *const *ws, const int *n_out, int n_lin, int K,
                         const double *h, const float *s, const pq_qspec *spec, pq_qweight **q,
                         float *tmp, double *d, double *e, polyq_err *err)
{
    double total = 0;
    for (int l = 0; l < n_lin; l++) {
        int N = n_out[l];
        for (int n = 0; n < N; n++)
            for (int k = 0; k < K; k++)
                tmp[(size_t)n * K + k] =
                    s ? ws[l][(size_t)n * K + k] * s[k] : ws[l][(size_t)n * K + k];
        if (pq_qweight_rtn(tmp, N, K, spec, &q[l], err))
            return -1;
        if (s) {
            if (!(q[l]->in_scale = pq_alloc_array((size_t)K, sizeof(float)))) {
                pq_fail(err, POLYQ_NOMEM, "out of memory");
                return -1;
            }
            for (int k = 0; k < K; k++)
                q[l]->in_scale[k] = 1.0f / s[k];
        }
        float *row = tmp;
        for (int n = 0; n < N; n++) {
            pq_qweight_dequant_row(q[l], n, row);
            for (int k = 0; k < K; k++)
                d[(size_t)n * K + k] = (double)ws[l][(size_t)n * K + k] - row[k];
        }
        cblas_dsymm(CblasRowMajor, CblasRight, CblasUpper, N, K, 1.0, h, K, d, K, 0.0, e, K);
        for (size_t i = 0; i < (size_t)N * K; i++)
            total += d[i] * e[i];
    }
    return total;
}

/* s = mean|x|^a, or with duo scaling mean|x|^a / (wmean^(1-a) + 1e-4), at least 1e-4, normalized
 * by sqrt(max s * min s) */
void pq_awq_scales(float *s, const double *xmean, const float *wmean, int K, float a)
{
    float mx = 0, mn = INFINITY;
    for (int k = 0; k < K; k++) {
        float v = powf((float)xmean[k], a);
        if (wmean)
            v /= powf(wmean[k], 1 - a) + 1e-4f;
        s[k] = fmaxf(v, 1e-4f);
        mx = fmaxf(mx, s[k]);
        mn = fminf(mn, s[k]);
    }
    float norm = sqrtf(mx * mn);
    for (int k = 0; k < K; k++)
        s[k] /= norm;
}

/* AutoAWQ's w_mean: over the rows of all the linears, |w| relative to its group's max |w|
 * (+ 1e-6), averaged per input channel */
void pq_awq_wmean(float *wmean, const float *const *ws, const int *n_out, int n_lin, int K,
                  int group)
{
    double *acc = calloc((size_t)K, sizeof *acc);
    size_t rows = 0;
    if (group <= 0 || group > K)
        group = K;
    for (int l = 0; acc && l < n_lin; l++)
        for (int n = 0; n < n_out[l]; n++, rows++) {
            const float *w = ws[l] + (size_t)n * K;
            for (int g0 = 0; g0 < K; g0 += group) {
                float m = 0;
                for (int k = g0; k < g0 + group && k < K; k++)
                    m = fmaxf(m, fabsf(w[k]));
                for (int k = g0; k < g0 + group && k < K; k++)
                    acc[k] += fabsf(w[k]) / (m + 1e-6f);
            }
        }
    for (int k = 0; k < K; k++)
        wmean[k] = acc && rows ? (float)(acc[k] / (double)rows) : 1.0f;
    free(acc);
}

/* d^T h_gg d over the group's columns [i0, i0 + n), h scaled by 1/(s_i s_j) */
static double group_err(const double *d, const double *h, const float *s, int K, int i0, int n)
{
    double e = 0;
    for (int i = 0; i < n; i++) {
        double r = 0;
        for (int j = 0; j < n; j++)
            r += h[(size_t)(i0 + i) * K + i0 + j] * d[j] / (s ? (double)s[i0 + j] : 1.0);
        e += d[i] * r / (s ? (double)s[i0 + i] : 1.0);
    }
    return e;
}

int pq_awq_clip(const float *w, int n_out, int K, const float *s, const double *h,
                const pq_qspec *spec, float *wc, double *err_groups, double *err_groups0,
                polyq_err *err)
{
    int G = spec->gran == PQ_GRAN_GROUP && spec->group < K ? spec->group : K;
    float *x = pq_alloc_array((size_t)G, sizeof *x),
          *best = pq_alloc_array((size_t)G, sizeof *best);
    uint8_t *u = pq_alloc_array((size_t)G, 1);
    double *d = pq_alloc_array((size_t)G, sizeof *d), total = 0, total0 = 0;
    if (!x || !best || !u || !d) {
        free(x);
        free(best);
        free(u);
        free(d);
        return pq_fail(err, POLYQ_NOMEM, "out of memory for AWQ's clipping search");
    }
    int mid = 1 << (spec->bits - 1);
    for (int r = 0; r < n_out; r++)
        for (int i0 = 0; i0 < K; i0 += G) {
            int n = K - i0 < G ? K - i0 : G;
            const float *src = w + (size_t)r * K + i0;
            float org = 0;
            for (int i = 0; i < n; i++)
                org = fmaxf(org, fabsf(s ? src[i] * s[i0 + i] : src[i]));
            double best_e = INFINITY;
            for (int step = 0; step < 10; step++) { /* max_shrink 0.5 of n_grid 20 */
                float m = org * (1.0f - (float)step / 20.0f);
                for (int i = 0; i < n; i++) {
                    float v = s ? src[i] * s[i0 + i] : src[i];
                    x[i] = fminf(fmaxf(v, -m), m);
                }
                float sc;
                uint8_t z = 0;
                pq_rtn_group_spec(x, n, spec, &sc, &z, u);
                for (int i = 0; i < n; i++) {
                    float q = (float)((int)u[i] - (spec->sym ? mid : z)) * sc;
                    d[i] = (double)(s ? src[i] * s[i0 + i] : src[i]) - q;
                }
                double e = group_err(d, h, s, K, i0, n);
                if (step == 0)
                    total0 += e;
                if (e < best_e) {
                    best_e = e;
                    memcpy(best, x, sizeof(float) * (size_t)n);
                }
            }
            total += best_e;
            memcpy(wc + (size_t)r * K + i0, best, sizeof(float) * (size_t)n);
        }
    if (err_groups)
        *err_groups = total;
    if (err_groups0)
        *err_groups0 = total0;
    free(x);
    free(best);
    free(u);
    free(d);
    return 0;
}

int pq_awq(const float *const *ws, const int *n_out, int n_lin, int K, const double *h,
           const double *xmean, const pq_qspec *spec, int n_grid, pq_qweight **out, double *best_a,
           double *err_best, double *err_rtn, polyq_err *err)
{
    int max_n = 0;
    for (int l = 0; l < n_lin; l++) {
        out[l] = NULL;
        max_n = n_out[l] > max_n ? n_out[l] : max_n;
    }
    if (n_grid < 1)
        n_grid = 20;
    size_t nk = (size_t)max_n * K;
    float *tmp = pq_alloc_array(nk, sizeof *tmp), *s = pq_alloc_array((size_t)K, sizeof *s),
          *wmean = spec->duo ? pq_alloc_array((size_t)K, sizeof *wmean) : NULL;
    double *d = pq_alloc_array(nk, sizeof *d), *e = pq_alloc_array(nk, sizeof *e);
    pq_qweight **cand = calloc((size_t)n_lin, sizeof *cand);
    int rc = 0, best = -1;
    double best_err = INFINITY;
    if (!tmp || !s || !d || !e || !cand || (spec->duo && !wmean)) {
        rc = pq_fail(err, POLYQ_NOMEM, "out of memory for AWQ on %d inputs", K);
        goto done;
    }
    if (wmean)
        pq_awq_wmean(wmean, ws, n_out, n_lin, K, spec->gran == PQ_GRAN_GROUP ? spec->group : K);
    /* a = 0 is round-to-nearest, except with duo scaling (scales from the weights alone) */
    for (int g = 0; g < n_grid && !rc; g++) {
        pq_awq_scales(s, xmean, wmean, K, (float)g / (float)n_grid);
        double t =
            try_scales(ws, n_out, n_lin, K, h, g || wmean ? s : NULL, spec, cand, tmp, d, e, err);
        if (t < 0) {
            rc = err->code ? err->code : POLYQ_NOMEM;
        } else if (g == 0 || t < best_err) {
            if (g == 0 && err_rtn)
                *err_rtn = t;
            best_err = t;
            best = g;
            for (int l = 0; l < n_lin; l++) {
                pq_qweight_free(out[l]);
                out[l] = cand[l];
                cand[l] = NULL;
            }
        }
        for (int l = 0; l < n_lin; l++) {
            pq_qweight_free(cand[l]);
            cand[l] = NULL;
        }
    }
    bool scaled = best > 0 || wmean;
    if (!rc && spec->clip) { /* the clipping search on the chosen scales */
        pq_awq_scales(s, xmean, wmean, K, (float)best / (float)n_grid);
        pq_qspec plain = *spec;
        plain.clip = false;
        for (int l = 0; l < n_lin && !rc; l++) {
            if ((rc = pq_awq_clip(ws[l], n_out[l], K, scaled ? s : NULL, h, &plain, tmp, NULL, NULL,
                                  err)))
                break;
            pq_qweight *q = NULL;
            if ((rc = pq_qweight_rtn(tmp, n_out[l], K, &plain, &q, err)))
                break;
            if (scaled && !(q->in_scale = pq_alloc_array((size_t)K, sizeof(float)))) {
                pq_qweight_free(q);
                rc = pq_fail(err, POLYQ_NOMEM, "out of memory");
                break;
            }
            for (int k = 0; scaled && k < K; k++)
                q->in_scale[k] = 1.0f / s[k];
            pq_qweight_free(out[l]);
            out[l] = q;
        }
    }
    if (!rc) {
        if (best_a)
            *best_a = (double)best / n_grid;
        if (err_best)
            *err_best = best_err;
    }
done:
    if (rc)
        for (int l = 0; l < n_lin; l++) {
            pq_qweight_free(out[l]);
            out[l] = NULL;
        }
    for (int l = 0; cand && l < n_lin; l++)
        pq_qweight_free(cand[l]);
    free(cand);
    free(tmp);
    free(s);
    free(wmean);
    free(d);
    free(e);
    return rc;
}
