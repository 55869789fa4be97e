/* Every number polyq reports per language, named and defined as in METRICS.md, with 95%
 * paired-bootstrap percentile intervals: the same resampled sentence indices for every
 * language and both models (FLORES is parallel), so disparity ratios resample coherently.
 * Languages of unequal length are resampled on their own with the same seed. */
#ifndef PQ_METRICS_H
#define PQ_METRICS_H

#include <stdbool.h>
#include <stdint.h>

#include "eval/eval.h"

typedef struct pq_ci {
    double value, lo, hi;
} pq_ci;

enum { PQ_BASIS_BITS_PER_SENTENCE, PQ_BASIS_REL, PQ_BASIS_NLL_PER_TOKEN, PQ_N_BASES };
extern const char *const pq_basis_name[PQ_N_BASES];

typedef struct pq_q_metrics {
    double nll, ppl, bpb, bits_per_sentence;
    pq_ci delta_nll_per_token, delta_bpb, delta_bits_per_sentence, rel_degradation;
    pq_ci kld, kld_per_sentence, top1_agree;
    pq_ci disparity[PQ_N_BASES];      /* d_L / d_ref on each basis */
    bool unstable[PQ_N_BASES];        /* the interval of d_ref contains 0, or d_ref <= 0 */
    pq_ci diff_vs_ref[PQ_N_BASES];    /* d_L - d_ref */
    double kld_p50, kld_p90, kld_p99; /* percentiles of KL over scored positions */
    /* KL over scored positions as llama-perplexity prints it: max, 99.9%, 99%, 95%, 90%,
     * median, 10%, 5%, 1%, min (pq_kld_stat_name) */
    double kld_stats[10];
    /* the change in the probability of the token that comes, p_q - p_fp: its mean and root
     * mean square over scored positions, with intervals (NAN when not measured) */
    pq_ci delta_p, rms_delta_p;
} pq_q_metrics;
extern const char *const pq_kld_stat_name[10];

typedef struct pq_lang_metrics {
    char lang[64];
    uint64_t n_sent, tokens, bytes, chars, words;
    bool spaced;
    double nll, ppl, bpb, bits_per_sentence;
    double fertility_bytes, fertility_chars, fertility_words; /* words: NAN if unspaced */
    char script[16]; /* from the code's suffix (eng_Latn -> Latn), or "" */
    double bytes_per_sentence;
    double fallback_rate; /* share of tokens that are unk or byte-fallback */
    pq_q_metrics *q;      /* [n_q] */
} pq_lang_metrics;

/* What may explain a language's degradation: Spearman correlation across languages of
 * delta_bits_per_sentence with each of these. */
enum {
    PQ_X_FERTILITY_BYTES,
    PQ_X_FERTILITY_CHARS,
    PQ_X_FP_BPB,
    PQ_X_BYTES_PER_SENTENCE,
    PQ_X_FALLBACK_RATE,
    PQ_N_EXPLAIN
};
extern const char *const pq_explain_name[PQ_N_EXPLAIN];

#define PQ_MAX_SCRIPTS 48

/* Across languages, on delta_bits_per_sentence. */
typedef struct pq_disparity_summary {
    double worst_ratio;        /* max/min; NAN when min <= 0 */
    bool worst_ratio_unstable; /* the best language's (the denominator's) interval includes 0 */
    double cv, gini;
    char worst_lang[64], best_lang[64];
    double spearman[PQ_N_EXPLAIN]; /* NAN with fewer than 3 languages or a constant variable */
    int n_scripts;
    struct {
        char script[16];
        int n_langs;
        double mean_delta_bits_per_sentence;
    } scripts[PQ_MAX_SCRIPTS];
} pq_disparity_summary;

/* Spearman rank correlation of x and y (n values; average ranks for ties); NAN when
 * undefined. */
double pq_spearman(const double *x, const double *y, size_t n);
/* The p-quantile of v (n, ascending) by linear interpolation between order statistics; NAN
 * when n is 0. */
double pq_percentile_sorted(const float *v, size_t n, double p);
/* The 50th, 90th and 99th percentiles of the KL at n positions (scratch: n floats). */
void pq_kl_percentiles(const float *kl, size_t n, float *scratch, double out[3]);

/* The 95% percentile interval (2.5th and 97.5th, linear interpolation) of the finite values
 * of v[0..n), sorted in place; NAN and NAN when none is finite. */
void pq_percentile_interval(double *v, int n, double *lo, double *hi);

/* Resample b (0-based) of a bootstrap with this seed: n sentence indices drawn with
 * replacement from [0, n). Every language and every run with the same seed and n draws the
 * same indices, which pairs them. */
void pq_bootstrap_indices(uint64_t seed, int b, size_t n, uint32_t *idx);

typedef struct pq_metrics_opts {
    int n_boot; /* 0 = 1000 */
    uint64_t seed;
    int ref; /* index of the reference language, -1 if not evaluated */
} pq_metrics_opts;

/* out[n_lang] (q arrays allocated; free with pq_metrics_free), summary[n_q]. */
int pq_metrics_compute(const pq_lang_eval *ev, size_t n_lang, int n_q, const pq_metrics_opts *o,
                       pq_lang_metrics *out, pq_disparity_summary *summary, polyq_err *err);
void pq_metrics_free(pq_lang_metrics *m, size_t n_lang);

#endif
