/* The fast kernels against the scalar references they stand for: blocked attention (every
 * mask kind), the vectorized activations, and the matrix products (the integer one exactly). */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "base/base.h"
#include "kernels/gemm.h"
#include "kernels/ops.h"
#include "kernels/vmath.h"
#include "test.h"

static float frand(unsigned *s)
{
    *s = *s * 1664525u + 1013904223u;
    return (float)((*s >> 8) & 0xffff) / 32768.0f - 1.0f;
}

static double max_abs_diff(const float *a, const float *b, size_t n)
{
    double m = 0;
    for (size_t i = 0; i < n; i++) {
        double d = fabs((double)a[i] - b[i]);
        if (!(d <= m)) /* NaN counts */
            m = isnan(d) ? INFINITY : d;
    }
    return m;
}

TEST(kernels_attention_blocked_matches_reference)
{
    /* lengths straddle the 64-row query blocks; the batch packs them back to back */
    static const int lens[] = {1, 5, 64, 65, 130, 3, 200};
    enum { NSEQ = 7 };
    int seq[NSEQ + 1] = {0};
    for (int s = 0; s < NSEQ; s++)
        seq[s + 1] = seq[s] + lens[s];
    int M = seq[NSEQ];
    float slopes[4] = {0.5f, 0.25f, 0.125f, 0.0625f};
    struct {
        const char *what;
        pq_attn a;
    } cases[] = {
        {"causal", {4, 4, 16, 0.25f, 0, NULL, false, 0}},
        {"grouped-query", {4, 2, 16, 0.25f, 0, NULL, false, 0}},
        {"sliding window 7", {4, 1, 16, 0.25f, 7, NULL, false, 0}},
        {"sliding window 100", {4, 4, 16, 0.25f, 100, NULL, false, 0}},
        {"alibi", {4, 4, 16, 0.25f, 0, slopes, false, 0}},
        {"bidirectional", {4, 4, 16, 0.25f, 0, NULL, true, 0}},
        {"soft-capped, window 5", {4, 2, 16, 0.25f, 5, NULL, false, 0.5f}},
    };
    for (size_t c = 0; c < sizeof cases / sizeof cases[0]; c++) {
        const pq_attn *a = &cases[c].a;
        int ld = pq_attn_ld(a), C = a->H * a->D;
        float *qkv = malloc(sizeof(float) * (size_t)M * ld);
        float *ref = malloc(sizeof(float) * (size_t)M * C),
              *fast = malloc(sizeof(float) * (size_t)M * C);
        unsigned s = 7 + (unsigned)c;
        for (size_t i = 0; i < (size_t)M * ld; i++)
            qkv[i] = 3.0f * frand(&s);
        pq_ref_attention(ref, qkv, seq, NSEQ, a);
        for (int th = 1; th <= 2; th++) {
            pq_ops ops;
            CHECK(pq_ops_init(&ops, th, 16, 256) == 0);
            memset(fast, 0xff,
                   sizeof(float) * (size_t)M * C); /* NaN: every output must be written */
            pq_attention_fwd(&ops, fast, qkv, seq, NSEQ, a);
            double d = max_abs_diff(ref, fast, (size_t)M * C);
            if (!(d < 2e-5))
                FAILF("%s, %d thread(s): max |fast - reference| = %g", cases[c].what, th, d);
            pq_ops_free(&ops);
        }
        free(qkv);
        free(ref);
        free(fast);
    }
}

TEST(kernels_activations_match_reference)
{
    enum { N = 20011 }; /* not a multiple of the vector width: the tail takes the scalar path */
    float *x = malloc(sizeof(float) * N), *ref = malloc(sizeof(float) * N),
          *vec = malloc(sizeof(float) * N);
    float *u = malloc(sizeof(float) * N);
    unsigned s = 3;
    for (int i = 0; i < N; i++) {
        x[i] = 12.0f * frand(&s) * fabsf(frand(&s));
        u[i] = frand(&s);
    }
    static const float edge[] = {0.0f,   -0.0f,  1e-30f,  -1e-30f, 80.0f,
                                 -80.0f, 200.0f, -200.0f, 1e4f,    -1e4f};
    memcpy(x, edge, sizeof edge);
    static const pq_act acts[] = {PQ_ACT_GELU_TANH, PQ_ACT_GELU_ERF, PQ_ACT_RELU, PQ_ACT_SILU};
    static const char *names[] = {"gelu tanh", "gelu erf", "relu", "silu"};
    for (int gated = 0; gated < 2; gated++)
        for (int k = 0; k < 4; k++) {
            memcpy(ref, x, sizeof(float) * N);
            memcpy(vec, x, sizeof(float) * N);
            if (gated) {
                pq_gated(ref, u, N, acts[k]);
                pq_vec_gated(vec, u, N, acts[k]);
            } else {
                pq_activation(ref, N, acts[k]);
                pq_vec_activation(vec, N, acts[k]);
            }
            int bad = 0;
            for (int i = 0; i < N; i++) {
                /* a few ulps of the result, plus the reference's own cancellation: torch's
                 * 0.5 x (1 + tanh u) loses up to one ulp of 1 (times |x| / 2) where tanh u
                 * nears -1, which x * sigmoid(2u) does not */
                double tol =
                    4e-7 * fabs(ref[i]) + 1.2e-7 * fabs(x[i]) * (gated ? fabs(u[i]) : 1) + 1e-30;
                if (!(fabs((double)vec[i] - ref[i]) <= tol)) {
                    if (!bad)
                        FAILF("%s%s(%g): vector %.9g, reference %.9g", names[k],
                              gated ? " gated" : "", x[i], vec[i], ref[i]);
                    bad++;
                }
            }
            CHECK_INT(bad, 0);
        }
    free(x);
    free(ref);
    free(vec);
    free(u);
}

/* The vector softmax against softmax in double: every length up to 70 (whole vectors and masked
 * tails) and a long row, scores up to +-60 after the scale (results below float's normal range
 * count as 0). */
TEST(kernels_softmax_matches_double)
{
    enum { NMAX = 1000 };
    float *s = malloc(sizeof(float) * NMAX), *x = malloc(sizeof(float) * NMAX);
    double *e = malloc(sizeof(double) * NMAX);
    unsigned seed = 11;
    for (int n = 1; n <= NMAX; n = n < 70 ? n + 1 : NMAX) {
        const float scale = 0.125f;
        for (int i = 0; i < n; i++)
            x[i] = s[i] = 480.0f * frand(&seed) * fabsf(frand(&seed));
        pq_vec_softmax(s, (size_t)n, scale);
        double mx = -INFINITY, sum = 0, worst = 0;
        for (int i = 0; i < n; i++)
            mx = fmax(mx, (double)(x[i] * scale));
        for (int i = 0; i < n; i++)
            sum += e[i] = exp((double)(x[i] * scale) - mx);
        /* a few ulps, plus the float difference s - max: its rounding (an ulp of |s - max|)
         * is an absolute error of the exponent, a relative one of the result */
        for (int i = 0; i < n; i++) {
            double want = e[i] / sum, rel = 1.2e-7 * (8 + (mx - x[i] * scale));
            worst = fmax(worst, fabs(s[i] - want) - rel * want);
        }
        if (!(worst <= 1e-38))
            FAILF("length %d: an element off by %g beyond its tolerance", n, worst);
        if (n == NMAX)
            break;
    }
    free(s);
    free(x);
    free(e);
}

/* llama.cpp's tanh GELU through its F16 table (ggml_vec_gelu_f32 with GGML_GELU_FP16): the
 * input rounded to F16, ggml_gelu_f32 of it, the result rounded to F16; x itself beyond 10 and
 * 0 below -10. Every F16 value and random floats, against that formula written out. */
TEST(kernels_gelu_f16_table_matches_ggml_formula)
{
    enum { N = 65536 + 20000 };
    float *x = malloc(sizeof(float) * N), *want = malloc(sizeof(float) * N);
    unsigned s = 5;
    for (int i = 0; i < N; i++)
        x[i] = i < 65536 ? pq_f16_to_f32((uint16_t)i) : 24.0f * frand(&s);
    const float k = 0.7978845608028654f;
    for (int i = 0; i < N; i++) {
        float v = x[i];
        if (v <= -10.0f || v >= 10.0f) {
            want[i] = v <= -10.0f ? 0.0f : v;
            continue;
        }
        v = pq_f16_to_f32(pq_f32_to_f16(v));
        v = 0.5f * v * (1.0f + tanhf(k * v * (1.0f + 0.044715f * v * v)));
        want[i] = pq_f16_to_f32(pq_f32_to_f16(v));
    }
    pq_activation(x, N, PQ_ACT_GELU_TANH_F16);
    int bad = 0;
    for (int i = 0; i < N; i++)
        if (memcmp(&x[i], &want[i], sizeof(float)) && !(isnan(x[i]) && isnan(want[i])) &&
            bad++ == 0)
            FAILF("gelu f16 at input %d: %.9g, the formula %.9g", i, x[i], want[i]);
    CHECK_INT(bad, 0);
    free(x);
    free(want);
}

TEST(kernels_gemm_match_naive_products)
{
    enum { M = 37, N = 70, K = 131 };
    float *a = malloc(sizeof(float) * M * K), *b = malloc(sizeof(float) * N * K);
    float *c = malloc(sizeof(float) * M * N), *bt = malloc(sizeof(float) * K * N);
    int8_t *a8 = malloc(M * K), *b8 = malloc(N * K);
    int32_t *c32 = malloc(sizeof(int32_t) * M * N);
    unsigned s = 11;
    for (int i = 0; i < M * K; i++) {
        a[i] = frand(&s);
        a8[i] = (int8_t)(i % 255 - 127);
    }
    for (int i = 0; i < N * K; i++) {
        b[i] = frand(&s);
        b8[i] = (int8_t)((i * 37) % 256 - 128);
    }
    for (int n = 0; n < N; n++)
        for (int k = 0; k < K; k++)
            bt[(size_t)k * N + n] = b[(size_t)n * K + k];
    double err_nt = 0, err_nn = 0;
    int bad_int = 0;
    pq_sgemm_nt(M, N, K, a, K, b, K, c, N);
    for (int m = 0; m < M; m++)
        for (int n = 0; n < N; n++) {
            double r = 0;
            for (int k = 0; k < K; k++)
                r += (double)a[m * K + k] * b[n * K + k];
            err_nt = fmax(err_nt, fabs(r - c[m * N + n]));
        }
    pq_sgemm_nn(M, N, K, a, K, bt, N, c, N);
    CHECK_INT(pq_igemm_nt(M, N, K, a8, K, b8, K, c32, N), 0);
    for (int m = 0; m < M; m++)
        for (int n = 0; n < N; n++) {
            double r = 0;
            int32_t ri = 0;
            for (int k = 0; k < K; k++) {
                r += (double)a[m * K + k] * bt[k * N + n];
                ri += (int32_t)a8[m * K + k] * b8[n * K + k];
            }
            err_nn = fmax(err_nn, fabs(r - c[m * N + n]));
            bad_int += ri != c32[m * N + n];
        }
    CHECK(err_nt < 1e-4);
    CHECK(err_nn < 1e-4);
    CHECK_INT(bad_int, 0);
    /* sums beyond 2^24 and pairs of extreme bytes: exact all the same */
    enum { KL = 2100 };
    int8_t *al = malloc(2 * KL), *bl = malloc(3 * KL);
    int32_t cl[6];
    for (int k = 0; k < 2 * KL; k++)
        al[k] = (int8_t)(k < KL ? -128 : (k % 3 ? 127 : -128));
    for (int k = 0; k < 3 * KL; k++)
        bl[k] = (int8_t)(k < KL ? -128 : k < 2 * KL ? 127 : (k % 7) - 3);
    CHECK_INT(pq_igemm_nt(2, 3, KL, al, KL, bl, KL, cl, 3), 0);
    bad_int = 0;
    for (int m = 0; m < 2; m++)
        for (int n = 0; n < 3; n++) {
            int64_t r = 0;
            for (int k = 0; k < KL; k++)
                r += (int64_t)al[m * KL + k] * bl[n * KL + k];
            bad_int += r != cl[m * 3 + n];
        }
    CHECK_INT(bad_int, 0);
    free(al);
    free(bl);
    free(a);
    free(b);
    free(c);
    free(bt);
    free(a8);
    free(b8);
    free(c32);
}
