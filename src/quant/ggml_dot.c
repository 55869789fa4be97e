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
#ifdef PQ_HAVE_AVX2
    /* on such a CPU qi is kept as large as q, whatever the kind */
    bool vnni = __builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512bw") &&
                __builtin_cpu_supports("avx512vl") && __builtin_cpu_supports("avx512vnni");
#else
    bool vnni = false;
#endif
    if (nq > a->cap_q) {
        int8_t *q = realloc(a->q, nq ? nq : 1),
               *qi = q && vnni ? realloc(a->qi, nq ? nq : 1) : NULL;
        if (q)
            a->q = q;
        if (qi)
            a->qi = qi;
        if (!q || (vnni && !qi))
            return -1;
        a->cap_q = nq;
    }
    a->vnni = vnni;
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
    free(a->qi);
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

#ifdef PQ_HAVE_AVX2
#define PQ_AVX512 __attribute__((target("avx2,avx512f,avx512bw")))

/* The codes of 16 floats times id, rounded half to even (the default rounding mode, as lrintf
 * and nearest_int round), at most hi; their sum is returned. */
PQ_AVX512 static inline __m512i codes16(const float *x, __m512 id, int hi, int8_t *q)
{
    __m512i v = _mm512_cvtps_epi32(_mm512_mul_ps(_mm512_loadu_ps(x), id));
    v = _mm512_min_epi32(v, _mm512_set1_epi32(hi));
    _mm_storeu_si128((__m128i *)(void *)q, _mm512_cvtsepi32_epi8(v));
    return v;
}

/* One block of pq_qact_row with AVX-512, the same bits: 32 floats to Q8_0/Q8_1 codes (returns
 * their sum, d through *d), or 256 to Q8_K's (returns 0 when all are 0, else 1). */
PQ_AVX512 static int32_t q8_block_avx512(const float *x, int8_t *q, float *d)
{
    __m512 x0 = _mm512_loadu_ps(x), x1 = _mm512_loadu_ps(x + 16);
    float amax = _mm512_reduce_max_ps(_mm512_max_ps(_mm512_abs_ps(x0), _mm512_abs_ps(x1)));
    *d = amax / 127.f;
    __m512 id = _mm512_set1_ps(amax != 0.0f ? 127.f / amax : 0.0f);
    __m512i s = _mm512_add_epi32(codes16(x, id, 127, q), codes16(x + 16, id, 127, q + 16));
    return _mm512_reduce_add_epi32(s);
}

PQ_AVX512 static int q8k_block_avx512(const float *x, int8_t *q, int32_t *bs, float *d)
{
    __m512 m = _mm512_setzero_ps();
    for (int j = 0; j < 256; j += 16)
        m = _mm512_max_ps(m, _mm512_abs_ps(_mm512_loadu_ps(x + j)));
    float amax = _mm512_reduce_max_ps(m), max = 0;
    if (!amax)
        return 0;
    for (int j = 0; j < 256; j++) /* the first of largest magnitude, as the reference keeps */
        if (fabsf(x[j]) == amax) {
            max = x[j];
            break;
        }
    float iscale = -127.f / max;
    __m512 is = _mm512_set1_ps(iscale);
    for (int j = 0; j < 16; j++)
        bs[j] = _mm512_reduce_add_epi32(codes16(x + 16 * j, is, 127, q + 16 * j));
    *d = 1 / iscale;
    return 1;
}
#endif

void pq_qact_row(pq_qact *a, int m, const float *x)
{
    int K = a->K, B = a->block, nb = K / B;
    int8_t *q = a->q + (size_t)m * K;
    for (int b = 0; b < nb; b++, x += B, q += B) {
        size_t at = (size_t)m * nb + b;
#ifdef PQ_HAVE_AVX2
        if (a->vnni && a->kind == PQ_DOT_Q8_K) {
            int32_t *bs = a->bsum + (size_t)m * (K / 16) + (size_t)b * (B / 16);
            if (!q8k_block_avx512(x, q, bs, &a->d[at])) {
                memset(q, 0, (size_t)B);
                memset(bs, 0, sizeof *bs * (size_t)(B / 16));
                a->d[at] = 0;
            }
            continue;
        }
        if (a->vnni) {
            float d;
            int32_t sum = q8_block_avx512(x, q, &d);
            a->bsum[at] = -128 * sum; /* where the VNNI kernel's sums of w + 128 start */
            a->d[at] = f16_round(d);
            if (a->kind == PQ_DOT_Q8_1)
                a->s[at] = f16_round(d * (float)sum);
            continue;
        }
#endif
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
    if (a->vnni) {
        int8_t *qi = a->qi + (size_t)m * K;
        memcpy(qi, a->q + (size_t)m * K, (size_t)K);
        pq_ggml_rows_layout(a, qi, NULL, NULL);
    }
}

/* The runs of a row of 32-blocks that the VNNI kernel interleaves: 16 blocks while they last,
 * then 8, then 4 (G blocks from block b; 0 when fewer than 4 are left). */
static int vnni_run(int nb, int b)
{
    int left = nb - b;
    return left >= 16 ? 16 : left >= 8 ? 8 : left >= 4 ? 4 : 0;
}

/* w + 128 for n codes (a multiple of 8), eight at a time: the top bit of each byte flipped */
static void flip_signs(int8_t *p, size_t n)
{
    for (size_t i = 0; i < n; i += 8) {
        uint64_t v;
        memcpy(&v, p + i, 8);
        v ^= 0x8080808080808080ull;
        memcpy(p + i, &v, 8);
    }
}

void pq_ggml_rows_layout(const pq_qact *a, int8_t *wq, const pq_dec *wh, double *wd)
{
    if (!a->vnni)
        return;
    if (a->kind != PQ_DOT_Q8_K && wh && wd)
        for (int b = 0, nb = a->K / 32; b < nb; b++) {
            wd[b] = wh[b].d;
            wd[nb + b] = wh[b].dmin;
        }
    int8_t t[512];
    bool weights = wh != NULL;    /* weight codes are stored as w + 128 (unsigned bytes) */
    if (a->kind == PQ_DOT_Q8_K) { /* each super-block as 16 runs of 16 codes */
        for (int b = 0; b < a->K / 256; b++) {
            int8_t *p = wq + (size_t)b * 256;
            memcpy(t, p, 256);
            for (int s = 0; s < 4; s++)
                for (int j = 0; j < 16; j++)
                    memcpy(p + (s * 16 + j) * 4, t + j * 16 + 4 * s, 4);
            if (weights)
                flip_signs(p, 256);
        }
        return;
    }
    int nb = a->K / 32;
    for (int b = 0, G; (G = vnni_run(nb, b)) > 0; b += G) {
        int8_t *p = wq + (size_t)b * 32;
        memcpy(t, p, (size_t)G * 32);
        for (int s = 0; s < 8; s++) /* vector s: codes 4s .. 4s+3 of each block in turn */
            for (int j = 0; j < G; j++)
                memcpy(p + (size_t)(s * G + j) * 4, t + j * 32 + 4 * s, 4);
        if (weights)
            flip_signs(p, (size_t)G * 32);
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

/* Four rows' blocks b .. nb-1 one by one into their lanes (c[r], the terms of the blocks before
 * them), in row order, and each row's sum into out[r * stride]. */
__attribute__((target("avx2"), noinline)) static void
tail32x4(const __m256d c[4], const int8_t *wq, const pq_dec *wh, const int8_t *const x[4],
         const float *const d[4], const float *const s[4], int b, int nb, float *out, size_t stride)
{
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
    tail32x4(c, wq, wh, x, d, s, b, nb, out, stride);
}

/* G interleaved 32-blocks (pq_ggml_rows_layout) from block b of the weights times the same of
 * four activation rows: block b+j's exact sum in lane j of v0 .. v3. The weights are stored as
 * w + 128 (unsigned), so vpdpbusd sums four byte products of u = w + 128 by signed x to a
 * 32-bit lane (no saturation: at most 32 * 255 * 127), starting from -128 times the block's sum
 * of x (n0 .. n3, pq_qact_row's): sum u x - 128 sum x = sum w x, exactly. V is the vector
 * type of G blocks' lanes. */
#define PQ_VNNI_SUMS(V, LOAD, DP, BYTES)                                                           \
    V v0 = LOAD(n0 + b), v1 = LOAD(n1 + b), v2 = LOAD(n2 + b), v3 = LOAD(n3 + b);                  \
    for (int o = 0; o < (BYTES); o += (int)sizeof(V)) {                                            \
        V u = LOAD(wq + (size_t)b * 32 + o);                                                       \
        v0 = DP(v0, u, LOAD(x0 + (size_t)b * 32 + o));                                             \
        v1 = DP(v1, u, LOAD(x1 + (size_t)b * 32 + o));                                             \
        v2 = DP(v2, u, LOAD(x2 + (size_t)b * 32 + o));                                             \
        v3 = DP(v3, u, LOAD(x3 + (size_t)b * 32 + o));                                             \
    }
#define PQ_LD512(p) _mm512_loadu_si512((const void *)(p))
#define PQ_LD256(p) _mm256_loadu_si256((const __m256i *)(const void *)(p))
#define PQ_LD128(p) _mm_loadu_si128((const __m128i *)(const void *)(p))

#define PQ_VNNI __attribute__((target("avx2,avx512f,avx512bw,avx512vl,avx512vnni")))

/* One activation row's terms of blocks b .. b+3 (sums in S) added to c as add4_avx2 adds
 * them. */
PQ_VNNI static inline __m256d vnni_terms(__m256d c, __m256d wd, __m256d mn, __m128i S,
                                         const float *d, const float *s)
{
    __m256d scale = _mm256_mul_pd(wd, _mm256_cvtps_pd(_mm_loadu_ps(d)));
    c = _mm256_add_pd(c, _mm256_mul_pd(scale, _mm256_cvtepi32_pd(S)));
    if (s)
        c = _mm256_add_pd(c, _mm256_mul_pd(mn, _mm256_cvtps_pd(_mm_loadu_ps(s))));
    return c;
}

/* The same for blocks b .. b+7: the eight products at once, added to c four by four. */
PQ_VNNI static inline __m256d vnni_terms8(__m256d c, __m512d wd, __m512d mn, __m256i S,
                                          const float *d, const float *s)
{
    __m512d scale = _mm512_mul_pd(wd, _mm512_cvtps_pd(_mm256_loadu_ps(d)));
    __m512d t = _mm512_mul_pd(scale, _mm512_cvtepi32_pd(S));
    if (!s)
        return _mm256_add_pd(_mm256_add_pd(c, _mm512_castpd512_pd256(t)),
                             _mm512_extractf64x4_pd(t, 1));
    __m512d u = _mm512_mul_pd(mn, _mm512_cvtps_pd(_mm256_loadu_ps(s)));
    c = _mm256_add_pd(_mm256_add_pd(c, _mm512_castpd512_pd256(t)), _mm512_castpd512_pd256(u));
    return _mm256_add_pd(_mm256_add_pd(c, _mm512_extractf64x4_pd(t, 1)),
                         _mm512_extractf64x4_pd(u, 1));
}

/* Four activation rows (rows[0..3], repeats allowed) against one weight row in
 * pq_ggml_rows_layout's order: each row's bits those of rowdot32_avx2 (the terms of each four
 * blocks added to the lanes in block order, then the blocks left one by one). */
PQ_VNNI static inline __attribute__((always_inline)) void
rowdot32x4_vnni(const int8_t *wq, const pq_dec *wh, const double *wd, const pq_qact *a,
                const int rows[4], int nb, const bool q81, float res[4])
{
    size_t K = (size_t)a->K;
    const int8_t *x0 = a->qi + rows[0] * K, *x1 = a->qi + rows[1] * K, *x2 = a->qi + rows[2] * K,
                 *x3 = a->qi + rows[3] * K;
    const float *d0 = a->d + (size_t)rows[0] * nb, *d1 = a->d + (size_t)rows[1] * nb,
                *d2 = a->d + (size_t)rows[2] * nb, *d3 = a->d + (size_t)rows[3] * nb;
    const int32_t *n0 = a->bsum + (size_t)rows[0] * nb, *n1 = a->bsum + (size_t)rows[1] * nb,
                  *n2 = a->bsum + (size_t)rows[2] * nb, *n3 = a->bsum + (size_t)rows[3] * nb;
    const float *s0 = q81 ? a->s + (size_t)rows[0] * nb : NULL,
                *s1 = q81 ? a->s + (size_t)rows[1] * nb : NULL,
                *s2 = q81 ? a->s + (size_t)rows[2] * nb : NULL,
                *s3 = q81 ? a->s + (size_t)rows[3] * nb : NULL;
    __m256d c0 = _mm256_setzero_pd(), c1 = c0, c2 = c0, c3 = c0;
    int b = 0;
#define PQ_TERMS8(k, S0, S1, S2, S3)                                                               \
    do { /* eight blocks' products at once, added four by four */                                  \
        __m512d wdv = _mm512_loadu_pd(wd + (k)), mn = _mm512_loadu_pd(wd + nb + (k));              \
        c0 = vnni_terms8(c0, wdv, mn, S0, d0 + (k), s0 ? s0 + (k) : NULL);                         \
        c1 = vnni_terms8(c1, wdv, mn, S1, d1 + (k), s1 ? s1 + (k) : NULL);                         \
        c2 = vnni_terms8(c2, wdv, mn, S2, d2 + (k), s2 ? s2 + (k) : NULL);                         \
        c3 = vnni_terms8(c3, wdv, mn, S3, d3 + (k), s3 ? s3 + (k) : NULL);                         \
    } while (0)
    for (int G; (G = vnni_run(nb, b)) > 0; b += G) { /* the sums stay in registers */
        if (G == 16) {
            PQ_VNNI_SUMS(__m512i, PQ_LD512, _mm512_dpbusd_epi32, 512)
            PQ_TERMS8(b, _mm512_castsi512_si256(v0), _mm512_castsi512_si256(v1),
                      _mm512_castsi512_si256(v2), _mm512_castsi512_si256(v3));
            PQ_TERMS8(b + 8, _mm512_extracti64x4_epi64(v0, 1), _mm512_extracti64x4_epi64(v1, 1),
                      _mm512_extracti64x4_epi64(v2, 1), _mm512_extracti64x4_epi64(v3, 1));
        } else if (G == 8) {
            PQ_VNNI_SUMS(__m256i, PQ_LD256, _mm256_dpbusd_epi32, 256)
            PQ_TERMS8(b, v0, v1, v2, v3);
        } else {
            PQ_VNNI_SUMS(__m128i, PQ_LD128, _mm_dpbusd_epi32, 128)
            __m256d wdv = _mm256_loadu_pd(wd + b), mn = _mm256_loadu_pd(wd + nb + b);
            c0 = vnni_terms(c0, wdv, mn, v0, d0 + b, s0 ? s0 + b : NULL);
            c1 = vnni_terms(c1, wdv, mn, v1, d1 + b, s1 ? s1 + b : NULL);
            c2 = vnni_terms(c2, wdv, mn, v2, d2 + b, s2 ? s2 + b : NULL);
            c3 = vnni_terms(c3, wdv, mn, v3, d3 + b, s3 ? s3 + b : NULL);
        }
    }
#undef PQ_TERMS8
    if (b == nb) { /* no blocks left: the lanes summed pairwise, as tail32x4 sums them */
        __m256d h01 = _mm256_hadd_pd(c0, c1), h23 = _mm256_hadd_pd(c2, c3);
        /* h01 = [c0 l0+l1, c1 l0+l1, c0 l2+l3, c1 l2+l3], the same for h23 */
        __m256d t = _mm256_add_pd(_mm256_permute2f128_pd(h01, h23, 0x20),
                                  _mm256_permute2f128_pd(h01, h23, 0x31));
        /* t = [c0, c1, c2, c3] each (l0+l1) + (l2+l3) */
        _mm_storeu_ps(res, _mm256_cvtpd_ps(t));
        return;
    }
    const int8_t *x[4] = {x0, x1, x2, x3};
    const float *d[4] = {d0, d1, d2, d3}, *s[4] = {s0, s1, s2, s3};
    __m256d c[4] = {c0, c1, c2, c3};
    tail32x4(c, wq, wh, x, d, s, b, nb, res, 1); /* fewer than four blocks left */
}

/* Four activation rows against nw weight rows (codes K apart, headers nb apart, their doubles
 * 2 nb apart), weight row j's results into res[j], res[ldo + j], ...; q81 a constant to each
 * copy of the loop. */
PQ_VNNI static void tile32x4_vnni(const int8_t *wq, const pq_dec *wh, const double *wd, int nw,
                                  const pq_qact *a, const int rows[4], int valid, float *out,
                                  size_t ldo)
{
    int nb = a->K / 32;
    float res[4];
#define PQ_TILE32(Q81)                                                                             \
    for (int j = 0; j < nw; j++) {                                                                 \
        rowdot32x4_vnni(wq + (size_t)j * a->K, wh + (size_t)j * nb, wd + (size_t)j * 2 * nb, a,    \
                        rows, nb, Q81, res);                                                       \
        for (int r = 0; r < valid; r++)                                                            \
            out[(size_t)r * ldo + j] = res[r];                                                     \
    }
    if (a->kind == PQ_DOT_Q8_1)
        PQ_TILE32(true)
    else
        PQ_TILE32(false)
#undef PQ_TILE32
}

/* The sums of the lanes of a, b, c and d, in that order (integers: in any order the same) */
PQ_VNNI static inline __m128i sums4(__m512i a, __m512i b, __m512i c, __m512i d)
{
    __m512i ab = _mm512_add_epi32(_mm512_unpacklo_epi32(a, b), _mm512_unpackhi_epi32(a, b));
    __m512i cd = _mm512_add_epi32(_mm512_unpacklo_epi32(c, d), _mm512_unpackhi_epi32(c, d));
    __m512i v = _mm512_add_epi32(_mm512_unpacklo_epi64(ab, cd), _mm512_unpackhi_epi64(ab, cd));
    __m256i h = _mm256_add_epi32(_mm512_castsi512_si256(v), _mm512_extracti64x4_epi64(v, 1));
    return _mm_add_epi32(_mm256_castsi256_si128(h), _mm256_extracti128_si256(h, 1));
}

/* A super-block's per-sub-block values (scales or minimums) as its 16 runs of 16 codes take
 * them: run j takes value j (16-code sub-blocks) or j / 2 (32-code ones). */
PQ_VNNI static inline __m512i sub_lanes(const int16_t *v, int sub)
{
    if (sub == 16)
        return _mm512_cvtepi16_epi32(PQ_LD256(v));
    const __m512i pairs = _mm512_setr_epi32(0, 0, 1, 1, 2, 2, 3, 3, 4, 4, 5, 5, 6, 6, 7, 7);
    return _mm512_permutexvar_epi32(pairs,
                                    _mm512_castsi256_si512(_mm256_cvtepi16_epi32(PQ_LD128(v))));
}

/* Four activation rows (repeats allowed) against one weight row of k-quant super-blocks in
 * pq_ggml_rows_layout's order: each super-block's S from its 16 runs' exact sums times their
 * sub-block scales, M and the terms as pq_ggml_dot forms them, so the same bits. */
PQ_VNNI static void rowdotk_x4_vnni(const int8_t *wq, const pq_dec *wh, const pq_qact *a,
                                    const int rows[4], int sub, float res[4])
{
    size_t K = (size_t)a->K;
    int nb = a->K / 256;
    const int8_t *x[4];
    const float *d[4];
    const int32_t *bs[4];
    __m256d acc = _mm256_setzero_pd();
    for (int r = 0; r < 4; r++) {
        x[r] = a->qi + rows[r] * K;
        d[r] = a->d + (size_t)rows[r] * nb;
        bs[r] = a->bsum + rows[r] * (K / 16);
    }
    for (int b = 0; b < nb; b++) {
        const int8_t *w = wq + (size_t)b * 256;
        size_t o = (size_t)b * 256;
        /* M's minimums the same way: the sums of 16 codes times their sub-block's minimum */
        __m512i sc = sub_lanes(wh[b].sc, sub), mn = sub_lanes(wh[b].mn, sub);
        /* the codes are stored as w + 128: run j's lane starts from -128 times the sum of its
         * 16 activation codes (Q8_K's bsums), so it ends at the exact sum of w x */
        __m512i b0 = PQ_LD512(bs[0] + b * 16), b1 = PQ_LD512(bs[1] + b * 16),
                b2 = PQ_LD512(bs[2] + b * 16), b3 = PQ_LD512(bs[3] + b * 16),
                z = _mm512_setzero_si512();
        __m512i c0 = _mm512_sub_epi32(z, _mm512_slli_epi32(b0, 7)),
                c1 = _mm512_sub_epi32(z, _mm512_slli_epi32(b1, 7)),
                c2 = _mm512_sub_epi32(z, _mm512_slli_epi32(b2, 7)),
                c3 = _mm512_sub_epi32(z, _mm512_slli_epi32(b3, 7));
        for (int k = 0; k < 256; k += 64) {
            __m512i u = PQ_LD512(w + k);
            c0 = _mm512_dpbusd_epi32(c0, u, PQ_LD512(x[0] + o + k));
            c1 = _mm512_dpbusd_epi32(c1, u, PQ_LD512(x[1] + o + k));
            c2 = _mm512_dpbusd_epi32(c2, u, PQ_LD512(x[2] + o + k));
            c3 = _mm512_dpbusd_epi32(c3, u, PQ_LD512(x[3] + o + k));
        }
        __m128i S = sums4(_mm512_mullo_epi32(c0, sc), _mm512_mullo_epi32(c1, sc),
                          _mm512_mullo_epi32(c2, sc), _mm512_mullo_epi32(c3, sc));
        __m128i Mn = sums4(_mm512_mullo_epi32(b0, mn), _mm512_mullo_epi32(b1, mn),
                           _mm512_mullo_epi32(b2, mn), _mm512_mullo_epi32(b3, mn));
        /* acc += d * (wd * S - dmin * Mn), in double, one lane per row */
        __m256d t =
            _mm256_sub_pd(_mm256_mul_pd(_mm256_set1_pd(wh[b].d), _mm256_cvtepi32_pd(S)),
                          _mm256_mul_pd(_mm256_set1_pd(wh[b].dmin), _mm256_cvtepi32_pd(Mn)));
        __m256d dr = _mm256_cvtps_pd(_mm_setr_ps(d[0][b], d[1][b], d[2][b], d[3][b]));
        acc = _mm256_add_pd(acc, _mm256_mul_pd(dr, t));
    }
    _mm_storeu_ps(res, _mm256_cvtpd_ps(acc));
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

void pq_ggml_dot_tile(const pq_qfmt_traits *t, const int8_t *wq, const pq_dec *wh, const double *wd,
                      int nw, const pq_qact *a, int m0, int n, float *out, size_t ldo)
{
    int nb = a->K / t->block;
#ifdef PQ_HAVE_AVX2
    if (a->vnni) {
        for (int i = 0; i < n; i += 4) { /* a last group of fewer rows repeats its first */
            int rows[4], valid = n - i < 4 ? n - i : 4;
            for (int r = 0; r < 4; r++)
                rows[r] = m0 + i + (r < valid ? r : 0);
            float *o = out + (size_t)i * ldo;
            if (a->kind != PQ_DOT_Q8_K) {
                tile32x4_vnni(wq, wh, wd, nw, a, rows, valid, o, ldo);
                continue;
            }
            for (int j = 0; j < nw; j++) {
                float res[4];
                rowdotk_x4_vnni(wq + (size_t)j * a->K, wh + (size_t)j * nb, a, rows, t->dot_sub,
                                res);
                for (int r = 0; r < valid; r++)
                    o[(size_t)r * ldo + j] = res[r];
            }
        }
        return;
    }
#endif
    for (int j = 0; j < nw; j++) {
        const int8_t *w = wq + (size_t)j * a->K;
        const pq_dec *h = wh + (size_t)j * nb;
        int i = 0;
#ifdef PQ_HAVE_AVX2
        if (a->avx2 && a->kind != PQ_DOT_Q8_K)
            for (; i + 4 <= n; i += 4)
                rowdot32x4_avx2(w, h, a, m0 + i, nb, out + (size_t)i * ldo + j, ldo);
#endif
        for (; i < n; i++)
            out[(size_t)i * ldo + j] = pq_ggml_dot(t, w, h, a, m0 + i);
    }
}

void pq_ggml_dot_rows(const pq_qfmt_traits *t, const int8_t *wq, const pq_dec *wh, const double *wd,
                      const pq_qact *a, int m0, int n, float *out, size_t stride)
{
    pq_ggml_dot_tile(t, wq, wh, wd, 1, a, m0, n, out, stride);
}
