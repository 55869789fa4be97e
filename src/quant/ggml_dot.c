/* llama.cpp's integer dot products (ggml_dot.h). The activation quantizers follow the x86
 * backend that llama.cpp builds with AVX2 (its quantize_row_q8_0/q8_1: scale max|x| / 127,
 * codes round-half-even of x * 127 / max|x|; quantize_row_q8_K: the reference, scale from the
 * value of largest magnitude, codes round-half-even clamped to 127, float scale kept). */
#include "quant/ggml_dot.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "base/base.h"

#if defined(__x86_64__) && (defined(__GNUC__) || defined(__clang__))
#include <immintrin.h>
#define PQ_HAVE_AVX2 1
#endif

static int block_of(pq_dot_act k)
{
    return k == PQ_DOT_Q8_K ? 256 : 32;
}

int pq_qact_reserve(pq_qact *a, pq_dot_act kind, int M, int K)
{
    int B = block_of(kind);
    if (kind == PQ_DOT_NONE || M < 0 || K <= 0 || K % B)
        return -1;
    size_t nq = (size_t)M * (size_t)K, nd = (size_t)M * (size_t)(K / 16);
    if (nq > a->cap_q) {
        int8_t *q = realloc(a->q, nq ? nq : 1);
        if (!q)
            return -1;
        a->q = q;
        a->cap_q = nq;
    }
    if (nd > a->cap_d) { /* K / 16 per row bounds every kind's scales and sums */
        float *d = realloc(a->d, sizeof(float) * nd),
              *s = d ? realloc(a->s, sizeof(float) * nd) : NULL;
        if (d)
            a->d = d;
        if (s)
            a->s = s;
        int32_t *b = s ? realloc(a->bsum, sizeof(int32_t) * nd) : NULL;
        if (!b)
            return -1;
        a->bsum = b;
        a->cap_d = nd;
    }
#ifdef PQ_HAVE_AVX2
    a->avx2 = __builtin_cpu_supports("avx2");
#endif
    a->kind = kind;
    a->M = M;
    a->K = K;
    a->block = B;
    return 0;
}

void pq_qact_free(pq_qact *a)
{
    free(a->q);
    free(a->d);
    free(a->s);
    free(a->bsum);
    memset(a, 0, sizeof *a);
}

static float f16_round(float v)
{
    return pq_f16_to_f32(pq_f32_to_f16(v));
}

/* llama.cpp's nearest_int: round half to even through the float adder */
static int nearest_int(float v)
{
    float t = v + 12582912.f;
    int32_t i;
    memcpy(&i, &t, sizeof i);
    return (i & 0x007fffff) - 0x00400000;
}

void pq_qact_row(pq_qact *a, int m, const float *x)
{
    int K = a->K, B = a->block, nb = K / B;
    int8_t *q = a->q + (size_t)m * K;
    for (int b = 0; b < nb; b++, x += B, q += B) {
        size_t at = (size_t)m * nb + b;
        if (a->kind == PQ_DOT_Q8_K) {
            float amax = 0, max = 0;
            for (int j = 0; j < B; j++)
                if (fabsf(x[j]) > amax) {
                    amax = fabsf(x[j]);
                    max = x[j];
                }
            int32_t *bs = a->bsum + (size_t)m * (K / 16) + (size_t)b * (B / 16);
            if (!amax) {
                memset(q, 0, (size_t)B);
                memset(bs, 0, sizeof *bs * (size_t)(B / 16));
                a->d[at] = 0;
                continue;
            }
            float iscale = -127.f / max;
            for (int j = 0; j < B; j++) {
                int v = nearest_int(iscale * x[j]);
                q[j] = (int8_t)(v < 127 ? v : 127);
            }
            for (int j = 0; j < B / 16; j++) {
                int32_t s = 0;
                for (int l = 0; l < 16; l++)
                    s += q[16 * j + l];
                bs[j] = s;
            }
            a->d[at] = 1 / iscale;
            continue;
        }
        float amax = 0;
        for (int j = 0; j < B; j++)
            amax = fmaxf(amax, fabsf(x[j]));
        float d = amax / 127.f, id = amax != 0.0f ? 127.f / amax : 0.0f;
        int32_t sum = 0;
        for (int j = 0; j < B; j++) {
            q[j] = (int8_t)lrintf(x[j] * id);
            sum += q[j];
        }
        a->d[at] = f16_round(d);
        if (a->kind == PQ_DOT_Q8_1)
            a->s[at] = f16_round(d * (float)sum);
    }
}

/* The integer sums, portable: one super-block's S = sum over sub-blocks of sc times the codes'
 * products, and one 32-block's products. */
static int32_t kdot_scalar(const int8_t *x, const int8_t *y, const int16_t *sc, int sub)
{
    int32_t S = 0;
    for (int j = 0; j < 256 / sub; j++) {
        int32_t p = 0;
        for (int l = 0; l < sub; l++)
            p += (int32_t)x[j * sub + l] * (int32_t)y[j * sub + l];
        S += sc[j] * p;
    }
    return S;
}

static int32_t dot32_scalar(const int8_t *x, const int8_t *y)
{
    int32_t p = 0;
    for (int l = 0; l < 32; l++)
        p += (int32_t)x[l] * (int32_t)y[l];
    return p;
}

/* A row of 32-blocks: block b's terms (d_w d_a S, and m_w s_a) into lane b mod 4, the lanes
 * summed pairwise at the end (the order rowdot32_avx2 keeps). */
static float rowdot32_scalar(const int8_t *wq, const pq_dec *wh, const int8_t *x, const float *d,
                             const float *s, int nb)
{
    double lane[4] = {0, 0, 0, 0};
    for (int b = 0; b < nb; b++) {
        lane[b & 3] +=
            (double)wh[b].d * d[b] * dot32_scalar(wq + (size_t)b * 32, x + (size_t)b * 32);
        if (s)
            lane[b & 3] += (double)wh[b].dmin * s[b];
    }
    return (float)((lane[0] + lane[1]) + (lane[2] + lane[3]));
}

#ifdef PQ_HAVE_AVX2
/* The same with AVX2, as llama.cpp forms them: |x| times y with x's sign as unsigned-by-signed
 * byte pairs (at most 2 * 128 * 127, within int16; y is never -128, both activation quantizers
 * stay within -127..127), then int32 lanes. Exact, so the same integers. */
__attribute__((target("avx2"))) static inline __m256i pairs32(const int8_t *x, const int8_t *y)
{
    __m256i a = _mm256_loadu_si256((const __m256i *)(const void *)x),
            b = _mm256_loadu_si256((const __m256i *)(const void *)y);
    return _mm256_madd_epi16(_mm256_maddubs_epi16(_mm256_sign_epi8(a, a), _mm256_sign_epi8(b, a)),
                             _mm256_set1_epi16(1));
}

/* the sum of eight int32 lanes */
__attribute__((target("avx2"))) static inline int32_t hsum8(__m256i v)
{
    __m128i h = _mm_add_epi32(_mm256_castsi256_si128(v), _mm256_extracti128_si256(v, 1));
    h = _mm_add_epi32(h, _mm_shuffle_epi32(h, 0x4e));
    h = _mm_add_epi32(h, _mm_shuffle_epi32(h, 0xb1));
    return _mm_cvtsi128_si32(h);
}

__attribute__((target("avx2"))) static int32_t kdot_avx2(const int8_t *x, const int8_t *y,
                                                         const int16_t *sc, int sub)
{
    __m256i acc = _mm256_setzero_si256();
    for (int i = 0; i < 256; i += 32) {
        /* lanes 0-3 hold sub-block i / sub's sums, 4-7 the next one's when sub is 16 */
        __m256i s = sub == 16 ? _mm256_setr_epi32(sc[i / 16], sc[i / 16], sc[i / 16], sc[i / 16],
                                                  sc[i / 16 + 1], sc[i / 16 + 1], sc[i / 16 + 1],
                                                  sc[i / 16 + 1])
                              : _mm256_set1_epi32(sc[i / 32]);
        acc = _mm256_add_epi32(acc, _mm256_mullo_epi32(pairs32(x + i, y + i), s));
    }
    return hsum8(acc);
}

__attribute__((target("avx2"))) static int32_t dot32_avx2(const int8_t *x, const int8_t *y)
{
    return hsum8(pairs32(x, y));
}

/* A row of 32-blocks as rowdot32_scalar sums it: block b's terms into lane b mod 4, four
 * blocks at a time, the lanes summed pairwise at the end. */
__attribute__((target("avx2"))) static float rowdot32_avx2(const int8_t *wq, const pq_dec *wh,
                                                           const int8_t *x, const float *d,
                                                           const float *s, int nb)
{
    __m256d acc = _mm256_setzero_pd();
    int b = 0;
    for (; b + 4 <= nb; b += 4, wq += 128, x += 128, wh += 4, d += 4) {
        __m256i p0 = pairs32(wq, x), p1 = pairs32(wq + 32, x + 32), p2 = pairs32(wq + 64, x + 64),
                p3 = pairs32(wq + 96, x + 96);
        __m256i h = _mm256_hadd_epi32(_mm256_hadd_epi32(p0, p1), _mm256_hadd_epi32(p2, p3));
        __m128i sums = _mm_add_epi32(_mm256_castsi256_si128(h), _mm256_extracti128_si256(h, 1));
        __m256d scale = _mm256_setr_pd((double)wh[0].d * d[0], (double)wh[1].d * d[1],
                                       (double)wh[2].d * d[2], (double)wh[3].d * d[3]);
        acc = _mm256_add_pd(acc, _mm256_mul_pd(scale, _mm256_cvtepi32_pd(sums)));
        if (s) {
            __m256d mn = _mm256_setr_pd(wh[0].dmin, wh[1].dmin, wh[2].dmin, wh[3].dmin);
            acc = _mm256_add_pd(acc, _mm256_mul_pd(mn, _mm256_cvtps_pd(_mm_loadu_ps(s + b))));
        }
    }
    double lane[4];
    _mm256_storeu_pd(lane, acc);
    for (; b < nb; b++, wq += 32, x += 32, wh++, d++) {
        lane[b & 3] += (double)wh->d * d[0] * dot32_avx2(wq, x);
        if (s)
            lane[b & 3] += (double)wh->dmin * s[b];
    }
    return (float)((lane[0] + lane[1]) + (lane[2] + lane[3]));
}

/* One activation row's terms of four 32-blocks (w, with |w| in aw) added to acc in the
 * order rowdot32_avx2 adds them. */
__attribute__((target("avx2"))) static inline __m256d
add4_avx2(__m256d acc, __m256i w0, __m256i w1, __m256i w2, __m256i w3, __m256i a0, __m256i a1,
          __m256i a2, __m256i a3, const int8_t *y, __m256d wd, __m256d mn, const float *d,
          const float *s)
{
    const __m256i ones = _mm256_set1_epi16(1);
#define PQ_PAIRS(a, w, k)                                                                          \
    _mm256_madd_epi16(                                                                             \
        _mm256_maddubs_epi16(                                                                      \
            a,                                                                                     \
            _mm256_sign_epi8(_mm256_loadu_si256((const __m256i *)(const void *)(y + 32 * k)), w)), \
        ones)
    __m256i h = _mm256_hadd_epi32(_mm256_hadd_epi32(PQ_PAIRS(a0, w0, 0), PQ_PAIRS(a1, w1, 1)),
                                  _mm256_hadd_epi32(PQ_PAIRS(a2, w2, 2), PQ_PAIRS(a3, w3, 3)));
#undef PQ_PAIRS
    __m128i sums = _mm_add_epi32(_mm256_castsi256_si128(h), _mm256_extracti128_si256(h, 1));
    __m256d scale = _mm256_mul_pd(wd, _mm256_cvtps_pd(_mm_loadu_ps(d)));
    acc = _mm256_add_pd(acc, _mm256_mul_pd(scale, _mm256_cvtepi32_pd(sums)));
    if (s)
        acc = _mm256_add_pd(acc, _mm256_mul_pd(mn, _mm256_cvtps_pd(_mm_loadu_ps(s))));
    return acc;
}

/* The same for four activation rows at once (r0 .. r0+3 of a), each row's bits those of
 * rowdot32_avx2: the weight blocks loaded and their signs taken once for the four. */
__attribute__((target("avx2"))) static void rowdot32x4_avx2(const int8_t *wq, const pq_dec *wh,
                                                            const pq_qact *a, int r0, int nb,
                                                            float *out, size_t stride)
{
    int K = a->K;
    const int8_t *x0 = a->q + (size_t)r0 * K, *x1 = x0 + K, *x2 = x1 + K, *x3 = x2 + K;
    const float *d0 = a->d + (size_t)r0 * nb, *d1 = d0 + nb, *d2 = d1 + nb, *d3 = d2 + nb;
    const float *s0 = a->kind == PQ_DOT_Q8_1 ? a->s + (size_t)r0 * nb : NULL;
    const float *s1 = s0 ? s0 + nb : NULL, *s2 = s0 ? s1 + nb : NULL, *s3 = s0 ? s2 + nb : NULL;
    __m256d c0 = _mm256_setzero_pd(), c1 = c0, c2 = c0, c3 = c0;
    int b = 0;
    for (; b + 4 <= nb; b += 4) {
        const int8_t *w = wq + (size_t)b * 32;
        __m256i w0 = _mm256_loadu_si256((const __m256i *)(const void *)w),
                w1 = _mm256_loadu_si256((const __m256i *)(const void *)(w + 32)),
                w2 = _mm256_loadu_si256((const __m256i *)(const void *)(w + 64)),
                w3 = _mm256_loadu_si256((const __m256i *)(const void *)(w + 96));
        __m256i a0 = _mm256_sign_epi8(w0, w0), a1 = _mm256_sign_epi8(w1, w1),
                a2 = _mm256_sign_epi8(w2, w2), a3 = _mm256_sign_epi8(w3, w3);
        __m256d wd = _mm256_setr_pd(wh[b].d, wh[b + 1].d, wh[b + 2].d, wh[b + 3].d);
        __m256d mn = _mm256_setr_pd(wh[b].dmin, wh[b + 1].dmin, wh[b + 2].dmin, wh[b + 3].dmin);
        size_t o = (size_t)b * 32;
        c0 = add4_avx2(c0, w0, w1, w2, w3, a0, a1, a2, a3, x0 + o, wd, mn, d0 + b,
                       s0 ? s0 + b : NULL);
        c1 = add4_avx2(c1, w0, w1, w2, w3, a0, a1, a2, a3, x1 + o, wd, mn, d1 + b,
                       s1 ? s1 + b : NULL);
        c2 = add4_avx2(c2, w0, w1, w2, w3, a0, a1, a2, a3, x2 + o, wd, mn, d2 + b,
                       s2 ? s2 + b : NULL);
        c3 = add4_avx2(c3, w0, w1, w2, w3, a0, a1, a2, a3, x3 + o, wd, mn, d3 + b,
                       s3 ? s3 + b : NULL);
    }
    const int8_t *x[4] = {x0, x1, x2, x3};
    const float *d[4] = {d0, d1, d2, d3}, *s[4] = {s0, s1, s2, s3};
    __m256d c[4] = {c0, c1, c2, c3};
    for (int r = 0; r < 4; r++) {
        double lane[4];
        _mm256_storeu_pd(lane, c[r]);
        for (int k = b; k < nb; k++) {
            lane[k & 3] +=
                (double)wh[k].d * d[r][k] * dot32_avx2(wq + (size_t)k * 32, x[r] + (size_t)k * 32);
            if (s[r])
                lane[k & 3] += (double)wh[k].dmin * s[r][k];
        }
        out[(size_t)r * stride] = (float)((lane[0] + lane[1]) + (lane[2] + lane[3]));
    }
}
#endif

float pq_ggml_dot(const pq_qfmt_traits *t, const int8_t *wq, const pq_dec *wh, const pq_qact *a,
                  int m)
{
    int K = a->K, B = t->block, nb = K / B, sub = t->dot_sub, ns = B / sub;
    const int8_t *x = a->q + (size_t)m * K;
    const float *d = a->d + (size_t)m * nb;
    if (a->kind == PQ_DOT_Q8_K) { /* super-blocks in order */
        const int32_t *bs = a->bsum + (size_t)m * (K / 16);
        double acc = 0;
        for (int b = 0; b < nb; b++, wq += B, x += B, wh++, bs += B / 16) {
#ifdef PQ_HAVE_AVX2
            int32_t S = a->avx2 ? kdot_avx2(wq, x, wh->sc, sub) : kdot_scalar(wq, x, wh->sc, sub);
#else
            int32_t S = kdot_scalar(wq, x, wh->sc, sub);
#endif
            int32_t Mn = 0;
            for (int j = 0; j < ns; j++) {
                int32_t cs = 0;
                for (int u = 0; u < sub / 16; u++)
                    cs += bs[j * (sub / 16) + u];
                Mn += wh->mn[j] * cs;
            }
            acc += (double)d[b] * ((double)wh->d * S - (double)wh->dmin * Mn);
        }
        return (float)acc;
    }
    const float *s = a->kind == PQ_DOT_Q8_1 ? a->s + (size_t)m * nb : NULL;
#ifdef PQ_HAVE_AVX2
    if (a->avx2)
        return rowdot32_avx2(wq, wh, x, d, s, nb);
#endif
    return rowdot32_scalar(wq, wh, x, d, s, nb);
}

void pq_ggml_dot_rows(const pq_qfmt_traits *t, const int8_t *wq, const pq_dec *wh, const pq_qact *a,
                      int m0, int n, float *out, size_t stride)
{
    int i = 0;
#ifdef PQ_HAVE_AVX2
    if (a->avx2 && a->kind != PQ_DOT_Q8_K)
        for (; i + 4 <= n; i += 4)
            rowdot32x4_avx2(wq, wh, a, m0 + i, a->K / 32, out + (size_t)i * stride, stride);
#endif
    for (; i < n; i++)
        out[(size_t)i * stride] = pq_ggml_dot(t, wq, wh, a, m0 + i);
}
