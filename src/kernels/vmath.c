/* Activation functions over long vectors, with an AVX-512 version chosen at run time.
 * Both forms are written so that tanh-GELU and SiLU are x * sigmoid(t):
 *   0.5 x (1 + tanh(u)) = x / (1 + exp(-2u)),   silu(x) = x / (1 + exp(-x)),
 * which has no cancellation near u = 0. The vector exp reduces x = n ln2 + r (|r| <= ln2/2,
 * ln2 split in a high and a low part), sums the Taylor series of exp(r) to r^7 (truncation
 * below 6e-9 relative) and scales by 2^n; its results are within a few float ulps of expf. */
#include <math.h>
#include <stddef.h>
#include <string.h>

#include "base/base.h"

#include "kernels/ops.h"
#include "kernels/vmath.h"

#if defined(__x86_64__) && (defined(__GNUC__) || defined(__clang__))
#include <immintrin.h>
#define PQ_HAVE_AVX512 1

__attribute__((target("avx512f"))) static inline __m512 exp16(__m512 x)
{
    x = _mm512_max_ps(_mm512_min_ps(x, _mm512_set1_ps(88.0f)), _mm512_set1_ps(-103.0f));
    __m512 n = _mm512_roundscale_ps(_mm512_mul_ps(x, _mm512_set1_ps(1.44269504088896341f)),
                                    _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
    __m512 r = _mm512_fnmadd_ps(n, _mm512_set1_ps(0.693145751953125f), x);
    r = _mm512_fnmadd_ps(n, _mm512_set1_ps(1.428606765330187045e-06f), r);
    __m512 p = _mm512_set1_ps(1.0f / 5040);
    p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(1.0f / 720));
    p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(1.0f / 120));
    p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(1.0f / 24));
    p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(1.0f / 6));
    p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(0.5f));
    p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(1.0f));
    p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(1.0f));
    return _mm512_scalef_ps(p, n);
}

/* x (n) = x * sigmoid(a x + b x^3), 16 at a time; returns how many were done */
__attribute__((target("avx512f"))) static size_t xsigmoid_avx512(float *x, size_t n, float a,
                                                                 float b)
{
    size_t i = 0;
    const __m512 one = _mm512_set1_ps(1.0f), va = _mm512_set1_ps(a), vb = _mm512_set1_ps(b);
    for (; i + 16 <= n; i += 16) {
        __m512 v = _mm512_loadu_ps(x + i);
        __m512 t = _mm512_mul_ps(v, _mm512_fmadd_ps(vb, _mm512_mul_ps(v, v), va));
        __m512 e = exp16(_mm512_sub_ps(_mm512_setzero_ps(), t));
        _mm512_storeu_ps(x + i, _mm512_div_ps(v, _mm512_add_ps(one, e)));
    }
    return i;
}

/* s (n) = exp(scale s - max) / sum, 16 at a time with a masked tail */
__attribute__((target("avx512f"))) static void softmax_avx512(float *s, size_t n, float scale)
{
    const __m512 vs = _mm512_set1_ps(scale);
    __m512 mx = _mm512_set1_ps(-INFINITY), sum = _mm512_setzero_ps();
    for (size_t i = 0; i < n; i += 16) {
        __mmask16 k = n - i >= 16 ? 0xffff : (__mmask16)((1u << (n - i)) - 1);
        __m512 v = _mm512_mul_ps(_mm512_maskz_loadu_ps(k, s + i), vs);
        _mm512_mask_storeu_ps(s + i, k, v);
        mx = _mm512_mask_max_ps(mx, k, mx, v);
    }
    const __m512 m = _mm512_set1_ps(_mm512_reduce_max_ps(mx));
    for (size_t i = 0; i < n; i += 16) {
        __mmask16 k = n - i >= 16 ? 0xffff : (__mmask16)((1u << (n - i)) - 1);
        __m512 e = exp16(_mm512_sub_ps(_mm512_maskz_loadu_ps(k, s + i), m));
        _mm512_mask_storeu_ps(s + i, k, e);
        sum = _mm512_mask_add_ps(sum, k, sum, e);
    }
    const __m512 inv = _mm512_set1_ps(1.0f / _mm512_reduce_add_ps(sum));
    for (size_t i = 0; i < n; i += 16) {
        __mmask16 k = n - i >= 16 ? 0xffff : (__mmask16)((1u << (n - i)) - 1);
        _mm512_mask_storeu_ps(s + i, k, _mm512_mul_ps(_mm512_maskz_loadu_ps(k, s + i), inv));
    }
}

__attribute__((target("avx512f"))) static void add_avx512(float *y, const float *x, size_t n)
{
    for (size_t i = 0; i < n; i += 16) {
        __mmask16 k = n - i >= 16 ? 0xffff : (__mmask16)((1u << (n - i)) - 1);
        _mm512_mask_storeu_ps(
            y + i, k,
            _mm512_add_ps(_mm512_maskz_loadu_ps(k, y + i), _mm512_maskz_loadu_ps(k, x + i)));
    }
}

__attribute__((target("avx512f"))) static size_t f16_avx512(const uint16_t *h, float *out, size_t n)
{
    size_t i = 0;
    for (; i + 16 <= n; i += 16)
        _mm512_storeu_ps(out + i, _mm512_cvtph_ps(_mm256_loadu_si256((const __m256i *)(h + i))));
    return i;
}
#endif

static int use_avx512(void)
{
#ifdef PQ_HAVE_AVX512
    static int have = -1;
    if (have < 0)
        have = __builtin_cpu_supports("avx512f") ? 1 : 0;
    return have;
#else
    return 0;
#endif
}

/* x * sigmoid(a x + b x^3) for the tail and for CPUs without AVX-512 */
static void xsigmoid_scalar(float *x, size_t i, size_t n, float a, float b)
{
    for (; i < n; i++)
        x[i] = x[i] / (1.0f + expf(-(x[i] * (a + b * x[i] * x[i]))));
}

void pq_vec_activation(float *x, size_t n, pq_act act)
{
    const float k2 = 2.0f * 0.7978845608028654f; /* 2 sqrt(2/pi) */
    float a, b;
    switch (act) {
    case PQ_ACT_GELU_TANH:
        a = k2, b = k2 * 0.044715f;
        break;
    case PQ_ACT_SILU:
        a = 1.0f, b = 0.0f;
        break;
    default:
        pq_activation(x, n, act);
        return;
    }
    size_t i = 0;
#ifdef PQ_HAVE_AVX512
    if (use_avx512())
        i = xsigmoid_avx512(x, n, a, b);
#endif
    xsigmoid_scalar(x, i, n, a, b);
}

void pq_vec_gated(float *g, const float *u, size_t n, pq_act act)
{
    pq_vec_activation(g, n, act);
    for (size_t i = 0; i < n; i++)
        g[i] *= u[i];
}

void pq_vec_add(float *y, const float *x, size_t n)
{
#ifdef PQ_HAVE_AVX512
    if (use_avx512()) {
        add_avx512(y, x, n);
        return;
    }
#endif
    for (size_t i = 0; i < n; i++)
        y[i] += x[i];
}

void pq_vec_softmax(float *s, size_t n, float scale)
{
    if (n == 0)
        return;
#ifdef PQ_HAVE_AVX512
    if (use_avx512()) {
        softmax_avx512(s, n, scale);
        return;
    }
#endif
    float mx = -INFINITY, sum = 0;
    for (size_t i = 0; i < n; i++) {
        s[i] *= scale;
        mx = fmaxf(mx, s[i]);
    }
    for (size_t i = 0; i < n; i++) {
        s[i] = expf(s[i] - mx);
        sum += s[i];
    }
    float inv = 1.0f / sum;
    for (size_t i = 0; i < n; i++)
        s[i] *= inv;
}

void pq_vec_half_to_f32(const uint16_t *h, float *out, size_t n, bool bf16)
{
    size_t i = 0;
    if (bf16) {
        for (; i < n; i++) {
            uint32_t bits = (uint32_t)h[i] << 16;
            memcpy(out + i, &bits, 4);
        }
        return;
    }
#ifdef PQ_HAVE_AVX512
    if (use_avx512())
        i = f16_avx512(h, out, n);
#endif
    for (; i < n; i++)
        out[i] = pq_f16_to_f32(h[i]);
}
