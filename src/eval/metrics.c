/* Per-language metrics, disparity and paired bootstrap (definitions: METRICS.md).
 * Bootstrap: B resamples; resample b draws N sentence indices with replacement from a
 * splitmix64 stream seeded by (seed, b), shared by all languages of the same N. Intervals
 * are the 2.5th and 97.5th percentiles (linear interpolation between order statistics). */
#include "eval/metrics.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "base/base.h"

const char *const pq_explain_name[PQ_N_EXPLAIN] = {"fertility_bytes", "fertility_chars", "fp_bpb",
                                                   "bytes_per_sentence", "fallback_rate"};

static const double *cmp_vals;
static int cmp_by_value(const void *a, const void *b)
{
    double x = cmp_vals[*(const size_t *)a], y = cmp_vals[*(const size_t *)b];
    return (x > y) - (x < y);
}

/* average ranks (1-based) of v into r; idx (n) is workspace */
static void ranks(const double *v, size_t n, double *r, size_t *idx)
{
    for (size_t i = 0; i < n; i++)
        idx[i] = i;
    cmp_vals = v; /* the comparison reads it: not reentrant */
    qsort(idx, n, sizeof *idx, cmp_by_value);
    for (size_t i = 0; i < n;) {
        size_t j = i;
        while (j + 1 < n && v[idx[j + 1]] == v[idx[i]])
            j++;
        for (size_t k = i; k <= j; k++)
            r[idx[k]] = (double)(i + j) / 2 + 1;
        i = j + 1;
    }
}

/* Spearman with caller workspace: rx, ry (n doubles), idx (n) */
static double spearman_ws(const double *x, const double *y, size_t n, double *rx, double *ry,
                          size_t *idx)
{
    for (size_t i = 0; i < n; i++)
        if (!isfinite(x[i]) || !isfinite(y[i]))
            return NAN;
    if (n < 3)
        return NAN;
    ranks(x, n, rx, idx);
    ranks(y, n, ry, idx);
    double mx = 0, my = 0, sxy = 0, sxx = 0, syy = 0;
    for (size_t i = 0; i < n; i++) {
        mx += rx[i];
        my += ry[i];
    }
    mx /= (double)n;
    my /= (double)n;
    for (size_t i = 0; i < n; i++) {
        sxy += (rx[i] - mx) * (ry[i] - my);
        sxx += (rx[i] - mx) * (rx[i] - mx);
        syy += (ry[i] - my) * (ry[i] - my);
    }
    return sxx > 0 && syy > 0 ? sxy / sqrt(sxx * syy) : NAN;
}

double pq_spearman(const double *x, const double *y, size_t n)
{
    double *rx = pq_alloc_array(n ? n : 1, sizeof *rx), *ry = pq_alloc_array(n ? n : 1, sizeof *ry);
    size_t *idx = pq_alloc_array(n ? n : 1, sizeof *idx);
    double rho = rx && ry && idx ? spearman_ws(x, y, n, rx, ry, idx) : NAN;
    free(rx);
    free(ry);
    free(idx);
    return rho;
}

static int cmp_float(const void *a, const void *b)
{
    float x = *(const float *)a, y = *(const float *)b;
    return (x > y) - (x < y);
}

/* type-7 percentile of sorted v */
void pq_kl_percentiles(const float *kl, size_t n, float *scratch, double out[3])
{
    memcpy(scratch, kl, n * sizeof *scratch);
    qsort(scratch, n, sizeof *scratch, cmp_float);
    out[0] = pq_percentile_sorted(scratch, n, 0.50);
    out[1] = pq_percentile_sorted(scratch, n, 0.90);
    out[2] = pq_percentile_sorted(scratch, n, 0.99);
}

double pq_percentile_sorted(const float *v, size_t n, double p)
{
    if (!n)
        return NAN;
    double h = (double)(n - 1) * p;
    size_t f = (size_t)h;
    return f + 1 < n ? v[f] + (h - (double)f) * (v[f + 1] - v[f]) : v[f];
}

const char *const pq_kld_stat_name[10] = {"max",    "p99.9", "p99", "p95", "p90",
                                          "median", "p10",   "p5",  "p1",  "min"};

const char *const pq_basis_name[PQ_N_BASES] = {"delta_bits_per_sentence", "rel_degradation",
                                               "delta_nll_per_token"};

static uint64_t splitmix64(uint64_t *s)
{
    uint64_t z = (*s += 0x9e3779b97f4a7c15ULL);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
    return z ^ (z >> 31);
}

void pq_bootstrap_indices(uint64_t seed, int b, size_t n, uint32_t *idx)
{
    uint64_t st = seed ^ (0x5851f42d4c957f2dULL * (uint64_t)(b + 1));
    for (size_t k = 0; k < n; k++)
        idx[k] = (uint32_t)(((splitmix64(&st) >> 32) * (uint64_t)n) >> 32);
}

/* Sums over one set of sentence indices (idx NULL: all). */
typedef struct sums {
    double T, B, N, fp, q, kl, agree, dp, dp2;
} sums;

static sums sum_lang(const pq_lang_eval *e, int qi, const uint32_t *idx)
{
    sums s = {0};
    for (size_t k = 0; k < e->n_sent; k++) {
        size_t i = idx ? idx[k] : k;
        s.T += e->tokens[i];
        s.B += e->sbytes[i];
        s.fp += e->nll_fp[i];
        if (qi >= 0) {
            s.q += e->nll_q[qi][i];
            s.kl += e->kld_q[qi][i];
            s.agree += e->agree_q[qi][i];
            s.dp += e->dp_q ? e->dp_q[qi][i] : NAN;
            s.dp2 += e->dp2_q ? e->dp2_q[qi][i] : NAN;
        }
    }
    s.N = (double)e->n_sent;
    return s;
}

/* The measures on sums: the order of the enum below is the order of vals[] */
enum { M_DTOK, M_DBPB, M_DBPS, M_REL, M_KLD, M_KLDS, M_TOP1, M_DP, M_RMSDP, N_M };

static void measures(const sums *s, double *v)
{
    double d = s->q - s->fp;
    v[M_DTOK] = s->T > 0 ? d / s->T : NAN;
    v[M_DBPB] = s->B > 0 ? d / (s->B * M_LN2) : NAN;
    v[M_DBPS] = d / (s->N * M_LN2);
    v[M_REL] = s->fp > 0 ? d / s->fp : NAN;
    v[M_KLD] = s->T > 0 ? s->kl / s->T : NAN;
    v[M_KLDS] = s->kl / s->N;
    v[M_TOP1] = s->T > 0 ? s->agree / s->T : NAN;
    v[M_DP] = s->T > 0 ? s->dp / s->T : NAN;
    v[M_RMSDP] = s->T > 0 ? sqrt(s->dp2 / s->T) : NAN;
}

static const int basis_measure[PQ_N_BASES] = {M_DBPS, M_REL, M_DTOK};

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

void pq_percentile_interval(double *v, int n, double *lo, double *hi)
{
    int k = 0;
    for (int i = 0; i < n; i++)
        if (isfinite(v[i]))
            v[k++] = v[i];
    if (k == 0) {
        *lo = *hi = NAN;
        return;
    }
    qsort(v, (size_t)k, sizeof *v, cmp_double);
    double p[2] = {0.025, 0.975}, *o[2] = {lo, hi};
    for (int j = 0; j < 2; j++) {
        double h = (k - 1) * p[j];
        int f = (int)floor(h);
        *o[j] = f + 1 < k ? v[f] + (h - f) * (v[f + 1] - v[f]) : v[f];
    }
}

void pq_metrics_free(pq_lang_metrics *m, size_t n_lang)
{
    for (size_t i = 0; m && i < n_lang; i++) {
        free(m[i].q);
        m[i].q = NULL;
    }
}

int pq_metrics_compute(const pq_lang_eval *ev, size_t n_lang, int n_q, const pq_metrics_opts *o,
                       pq_lang_metrics *out, pq_disparity_summary *summary, polyq_err *err)
{
    int B = o->n_boot > 0 ? o->n_boot : 1000, ref = o->ref;
    memset(out, 0, n_lang * sizeof *out);
    for (size_t l = 0; l < n_lang; l++) {
        const pq_lang_eval *e = &ev[l];
        pq_lang_metrics *m = &out[l];
        snprintf(m->lang, sizeof m->lang, "%s", e->lang);
        sums s = sum_lang(e, -1, NULL);
        m->n_sent = e->n_sent;
        m->tokens = (uint64_t)s.T;
        m->bytes = e->bytes;
        m->chars = e->chars;
        m->words = e->words;
        m->spaced = e->spaced;
        m->nll = s.fp;
        m->ppl = s.T > 0 ? exp(s.fp / s.T) : NAN;
        m->bpb = s.B > 0 ? s.fp / (s.B * M_LN2) : NAN;
        m->bits_per_sentence = s.fp / (s.N * M_LN2);
        m->fertility_bytes = s.B > 0 ? s.T / s.B : NAN;
        m->fertility_chars = e->chars ? s.T / (double)e->chars : NAN;
        m->fertility_words = e->spaced && e->words ? s.T / (double)e->words : NAN;
        const char *us = strrchr(e->lang, '_');
        snprintf(m->script, sizeof m->script, "%s", us ? us + 1 : "");
        m->bytes_per_sentence = s.B / s.N;
        m->fallback_rate = s.T > 0 ? (double)e->fallback / s.T : NAN;
        if (n_q && !(m->q = calloc((size_t)n_q, sizeof *m->q))) {
            pq_metrics_free(out, n_lang);
            return pq_fail(err, POLYQ_NOMEM, "out of memory");
        }
    }
    /* boot[l][b][measure] for one quant spec at a time */
    double *boot = pq_alloc_array(n_lang * (size_t)B * N_M, sizeof(double));
    double *tmp = pq_alloc_array((size_t)B, sizeof(double));
    size_t max_n = 0;
    for (size_t l = 0; l < n_lang; l++)
        max_n = ev[l].n_sent > max_n ? ev[l].n_sent : max_n;
    uint32_t *idx = pq_alloc_array(max_n ? max_n : 1, sizeof *idx);
    size_t max_t = 0, nl = n_lang ? n_lang : 1;
    for (size_t l = 0; l < n_lang; l++)
        max_t = out[l].tokens > max_t ? out[l].tokens : max_t;
    float *kl = pq_alloc_array(max_t ? max_t : 1, sizeof *kl);
    double *wd = pq_alloc_array(nl, sizeof *wd), *wx = pq_alloc_array(nl, sizeof *wx);
    double *wrx = pq_alloc_array(nl, sizeof *wrx), *wry = pq_alloc_array(nl, sizeof *wry);
    size_t *widx = pq_alloc_array(nl, sizeof *widx);
    if (!boot || !tmp || !idx || !kl || !wd || !wx || !wrx || !wry || !widx) {
        free(kl);
        free(wd);
        free(wx);
        free(wrx);
        free(wry);
        free(widx);
        free(boot);
        free(tmp);
        free(idx);
        pq_metrics_free(out, n_lang);
        return pq_fail(err, POLYQ_NOMEM, "out of memory for %d bootstrap resamples", B);
    }
    for (int qi = 0; qi < n_q; qi++) {
        for (size_t l = 0; l < n_lang; l++) {
            size_t N = ev[l].n_sent;
            for (int b = 0; b < B; b++) {
                pq_bootstrap_indices(o->seed, b, N, idx);
                sums s = sum_lang(&ev[l], qi, idx);
                measures(&s, boot + ((size_t)l * B + b) * N_M);
            }
        }
        double pv_ref[N_M];
        if (ref >= 0) {
            sums s = sum_lang(&ev[ref], qi, NULL);
            measures(&s, pv_ref);
        }
        for (size_t l = 0; l < n_lang; l++) {
            pq_q_metrics *q = &out[l].q[qi];
            sums s = sum_lang(&ev[l], qi, NULL);
            double pv[N_M];
            measures(&s, pv);
            q->nll = s.q;
            q->ppl = s.T > 0 ? exp(s.q / s.T) : NAN;
            q->bpb = s.B > 0 ? s.q / (s.B * M_LN2) : NAN;
            q->bits_per_sentence = s.q / (s.N * M_LN2);
            pq_ci *ci[N_M] = {&q->delta_nll_per_token, &q->delta_bpb, &q->delta_bits_per_sentence,
                              &q->rel_degradation,     &q->kld,       &q->kld_per_sentence,
                              &q->top1_agree,          &q->delta_p,   &q->rms_delta_p};
            for (int k = 0; k < N_M; k++) {
                for (int b = 0; b < B; b++)
                    tmp[b] = boot[((size_t)l * B + b) * N_M + k];
                ci[k]->value = pv[k];
                pq_percentile_interval(tmp, B, &ci[k]->lo, &ci[k]->hi);
            }
            q->kld_p50 = q->kld_p90 = q->kld_p99 = NAN;
            size_t T = (size_t)s.T;
            for (int k = 0; k < 10; k++)
                q->kld_stats[k] = NAN;
            if (ev[l].kl_pos && ev[l].kl_pos[qi]) {
                double p[3];
                pq_kl_percentiles(ev[l].kl_pos[qi], T, kl, p); /* kl is left sorted */
                q->kld_p50 = p[0], q->kld_p90 = p[1], q->kld_p99 = p[2];
                static const double at[10] = {1.0,  0.999, 0.99, 0.95, 0.90,
                                              0.50, 0.10,  0.05, 0.01, 0.0};
                for (int k = 0; k < 10 && T; k++)
                    q->kld_stats[k] = pq_percentile_sorted(kl, T, at[k]);
            }
            for (int bs = 0; bs < PQ_N_BASES; bs++) {
                int k = basis_measure[bs];
                q->disparity[bs] = q->diff_vs_ref[bs] = (pq_ci){NAN, NAN, NAN};
                if (ref < 0)
                    continue;
                q->disparity[bs].value = pv[k] / pv_ref[k];
                q->diff_vs_ref[bs].value = pv[k] - pv_ref[k];
                for (int b = 0; b < B; b++)
                    tmp[b] =
                        boot[((size_t)l * B + b) * N_M + k] / boot[((size_t)ref * B + b) * N_M + k];
                pq_percentile_interval(tmp, B, &q->disparity[bs].lo, &q->disparity[bs].hi);
                for (int b = 0; b < B; b++)
                    tmp[b] =
                        boot[((size_t)l * B + b) * N_M + k] - boot[((size_t)ref * B + b) * N_M + k];
                pq_percentile_interval(tmp, B, &q->diff_vs_ref[bs].lo, &q->diff_vs_ref[bs].hi);
            }
        }
        /* unstable: the reference's own interval contains 0, or its value is <= 0 */
        if (ref >= 0)
            for (size_t l = 0; l < n_lang; l++)
                for (int bs = 0; bs < PQ_N_BASES; bs++) {
                    const pq_q_metrics *r = &out[ref].q[qi];
                    const pq_ci *d = bs == PQ_BASIS_BITS_PER_SENTENCE ? &r->delta_bits_per_sentence
                                     : bs == PQ_BASIS_REL             ? &r->rel_degradation
                                                                      : &r->delta_nll_per_token;
                    out[l].q[qi].unstable[bs] = !(d->value > 0) || !(d->lo > 0);
                }
        /* across languages, on delta_bits_per_sentence */
        pq_disparity_summary *sm = &summary[qi];
        memset(sm, 0, sizeof *sm);
        double mn = INFINITY, mx = -INFINITY, mean = 0, var = 0, gsum = 0;
        double mn_lo = NAN;
        for (size_t l = 0; l < n_lang; l++) {
            double d = out[l].q[qi].delta_bits_per_sentence.value;
            if (d < mn) {
                mn = d;
                mn_lo = out[l].q[qi].delta_bits_per_sentence.lo;
                snprintf(sm->best_lang, sizeof sm->best_lang, "%s", out[l].lang);
            }
            if (d > mx) {
                mx = d;
                snprintf(sm->worst_lang, sizeof sm->worst_lang, "%s", out[l].lang);
            }
            mean += d;
        }
        mean /= (double)n_lang;
        for (size_t l = 0; l < n_lang; l++) {
            double d = out[l].q[qi].delta_bits_per_sentence.value;
            var += (d - mean) * (d - mean);
            for (size_t k = 0; k < n_lang; k++)
                gsum += fabs(d - out[k].q[qi].delta_bits_per_sentence.value);
        }
        sm->worst_ratio = mn > 0 ? mx / mn : NAN;
        sm->worst_ratio_unstable = mn > 0 && !(mn_lo > 0);
        /* explanations and per-script means */
        for (int v = 0; v < PQ_N_EXPLAIN; v++) {
            for (size_t l = 0; l < n_lang; l++) {
                const pq_lang_metrics *lm = &out[l];
                wd[l] = lm->q[qi].delta_bits_per_sentence.value;
                wx[l] = v == PQ_X_FERTILITY_BYTES      ? lm->fertility_bytes
                        : v == PQ_X_FERTILITY_CHARS    ? lm->fertility_chars
                        : v == PQ_X_FP_BPB             ? lm->bpb
                        : v == PQ_X_BYTES_PER_SENTENCE ? lm->bytes_per_sentence
                                                       : lm->fallback_rate;
            }
            sm->spearman[v] = spearman_ws(wd, wx, n_lang, wrx, wry, widx);
        }
        sm->n_scripts = 0;
        for (size_t l = 0; l < n_lang; l++) {
            int k = 0;
            while (k < sm->n_scripts && strcmp(sm->scripts[k].script, out[l].script))
                k++;
            if (k == sm->n_scripts) {
                if (k == PQ_MAX_SCRIPTS)
                    continue;
                snprintf(sm->scripts[k].script, sizeof sm->scripts[k].script, "%s", out[l].script);
                sm->n_scripts++;
            }
            sm->scripts[k].n_langs++;
            sm->scripts[k].mean_delta_bits_per_sentence +=
                out[l].q[qi].delta_bits_per_sentence.value;
        }
        for (int k = 0; k < sm->n_scripts; k++)
            sm->scripts[k].mean_delta_bits_per_sentence /= sm->scripts[k].n_langs;
        sm->cv = n_lang > 1 && mean != 0 ? sqrt(var / (double)(n_lang - 1)) / fabs(mean) : NAN;
        /* Gini describes how a non-negative quantity is shared: n/a when some language gains */
        sm->gini =
            mean > 0 && mn >= 0 ? gsum / (2.0 * (double)n_lang * (double)n_lang * mean) : NAN;
    }
    free(kl);
    free(wd);
    free(wx);
    free(wrx);
    free(wry);
    free(widx);
    free(boot);
    free(tmp);
    free(idx);
    return 0;
}
