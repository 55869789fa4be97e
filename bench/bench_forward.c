/* Forward-pass speed, reported as ratios: the fast kernels against the scalar reference
 * (same model, same tokens) and against this machine's measured sgemm peak; plus peak RSS.
 * usage: bench_forward MODEL_DIR [--tokens N] [--threads N] [--quant SPEC] [--ref-tokens N] */
#include <cblas.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <unistd.h>

#include "base/base.h"
#include "model/model.h"

/* Peak f32 GEMM rate of this machine with n threads, from a square sgemm per thread. */
static double sgemm_peak(int threads)
{
    int n = 1024;
    float *a = calloc((size_t)n * n, 4), *b = calloc((size_t)n * n, 4), *c = calloc((size_t)n * n, 4);
    openblas_set_num_threads(threads);
    cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, n, n, n, 1, a, n, b, n, 0, c, n);
    double t0 = pq_now();
    int reps = 5;
    for (int r = 0; r < reps; r++)
        cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, n, n, n, 1, a, n, b, n, 0, c, n);
    double dt = pq_now() - t0;
    openblas_set_num_threads(1);
    free(a);
    free(b);
    free(c);
    return 2.0 * n * n * (double)n * reps / dt / 1e9;
}

static double run(const pq_model *m, int threads, int reference, int T, int reps, polyq_err *err)
{
    pq_ops ops;
    pq_acts acts;
    if (pq_ops_init(&ops, threads, m->cfg.n_inner, m->cfg.n_ctx) || pq_acts_init(&acts, &m->cfg, T))
        return -1;
    ops.reference = reference;
    float *logits = malloc(sizeof(float) * (size_t)T * m->cfg.n_vocab);
    int32_t *tok = malloc(sizeof(int32_t) * (size_t)T);
    for (int i = 0; i < T; i++)
        tok[i] = (i * 7919 + 13) % m->cfg.n_vocab;
    int ss[2] = {0, T};
    double best = 1e30;
    for (int r = 0; r < reps; r++) {
        double t0 = pq_now();
        if (pq_model_forward(m, &ops, &acts, tok, ss, 1, logits, err))
            return -1;
        double dt = pq_now() - t0;
        best = dt < best ? dt : best;
    }
    free(logits);
    free(tok);
    pq_acts_free(&acts);
    pq_ops_free(&ops);
    return T / best;
}

int main(int argc, char **argv)
{
    if (argc < 2) {
        fprintf(stderr, "usage: bench_forward MODEL_DIR [--tokens N] [--threads N] [--quant SPEC] [--ref-tokens N]\n");
        return 2;
    }
    int T = 256, threads = (int)sysconf(_SC_NPROCESSORS_ONLN), ref_T = 32;
    const char *quant = "fp32";
    for (int i = 2; i + 1 < argc; i += 2) {
        if (!strcmp(argv[i], "--tokens"))
            T = atoi(argv[i + 1]);
        else if (!strcmp(argv[i], "--threads"))
            threads = atoi(argv[i + 1]);
        else if (!strcmp(argv[i], "--quant"))
            quant = argv[i + 1];
        else if (!strcmp(argv[i], "--ref-tokens"))
            ref_T = atoi(argv[i + 1]);
    }
    polyq_err err = {0};
    pq_model *base = NULL, *m = NULL;
    pq_qspec spec;
    if (pq_qspec_parse(quant, &spec, &err) || pq_model_open_dir(&base, argv[1], &err) ||
        pq_model_quantize(&m, base, &spec, &err)) {
        fprintf(stderr, "bench_forward: %s\n", err.msg);
        return 1;
    }
    if (T > base->cfg.n_ctx)
        T = base->cfg.n_ctx;
    if (ref_T > T)
        ref_T = T;
    double flop_per_tok = 2.0 * (double)base->n_params;
    double fast = run(m, threads, 0, T, 3, &err);
    double fast1 = run(m, 1, 0, T, 3, &err);
    double ref = run(m, 1, 1, ref_T, 1, &err);
    double peak = sgemm_peak(threads);
    struct rusage ru;
    getrusage(RUSAGE_SELF, &ru);
    printf("model %s (%s, %zu params), quant %s (%.3f bits/weight), %d tokens per pass\n", argv[1],
           base->dtype, base->n_params, quant, pq_model_bits_per_weight(m), T);
    printf("fast, %d thread(s):      %9.1f tokens/s  %7.2f GFLOP/s = %.2f of the sgemm peak (%.1f GFLOP/s)\n",
           threads, fast, fast * flop_per_tok / 1e9, fast * flop_per_tok / 1e9 / peak, peak);
    printf("fast, 1 thread:          %9.1f tokens/s  (%d-thread scaling %.2fx)\n", fast1, threads, fast / fast1);
    printf("scalar reference, 1 thr: %9.1f tokens/s  (fast 1-thread / reference = %.1fx)\n", ref, fast1 / ref);
    printf("peak RSS: %.1f MiB\n", ru.ru_maxrss / 1024.0);
    pq_model_free(m);
    pq_model_free(base);
    return 0;
}
