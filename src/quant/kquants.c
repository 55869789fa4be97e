/* llama.cpp's k-quants: super-blocks of 256 weights in sub-blocks of 16 or 32, the sub-block
 * scales (and minimums) themselves quantized against one f16 scale per super-block. Bytes as
 * ggml stores them (ggml-common.h) and values as its reference quantizers compute them
 * (ggml-quants.c, quantize_row_q*_K_ref: what llama-quantize runs without an importance
 * matrix); float expressions are evaluated in the reference's order so the bytes agree.
 *
 *   Q2_K  84 bytes  scales[16] (4-bit scale | 4-bit min << 4), qs[64] (2-bit), f16 d, dmin
 *                   x = d * (sc & 15) * q - dmin * (sc >> 4), 16 sub-blocks of 16
 *   Q3_K 110 bytes  hmask[32] (third bit), qs[64] (2 low bits), scales[12] (16 6-bit), f16 d
 *                   x = d * (sc - 32) * (q - 4), 16 sub-blocks of 16
 *   Q4_K 144 bytes  f16 d, dmin, scales[12] (8 6-bit scales + 8 6-bit mins), qs[128]
 *                   x = d * sc * q - dmin * m, 8 sub-blocks of 32
 *   Q5_K 176 bytes  f16 d, dmin, scales[12], qh[32] (fifth bit), qs[128]
 *   Q6_K 210 bytes  ql[128] (4 low bits), qh[64] (2 high bits), int8 scales[16], f16 d
 *                   x = d * sc * (q - 32), 16 sub-blocks of 16
 * Within 128 (Q2_K, Q3_K, Q6_K) or 64 (Q4_K, Q5_K) weights, the codes of weights l, l+32,
 * l+64, l+96 share byte l (lowest bits first); the 6-bit scales of Q4_K/Q5_K are packed as
 * ggml's get_scale_min_k4 reads them. */
#include <math.h>
#include <string.h>

#include "base/base.h"
#include "quant/blocks.h"
#include "quant/kquants.h"
#include "quant/round.h"

/* byte offsets of the fields of each super-block (blocks.h) */
#define Q2(f) PQ_AT(pq_block_q2_k, f)
#define Q3(f) PQ_AT(pq_block_q3_k, f)
#define Q4(f) PQ_AT(pq_block_q4_k, f)
#define Q5(f) PQ_AT(pq_block_q5_k, f)
#define Q6(f) PQ_AT(pq_block_q6_k, f)
_Static_assert(Q4(d) == Q5(d) && Q4(dmin) == Q5(dmin) && Q4(scales) == Q5(scales),
               "Q4_K and Q5_K share their scales");

#define QK 256

/* round to nearest, ties to even (ggml's nearest_int for |x| < 2^22); the block functions
 * below hold FE_TONEAREST around their work */
static int nearest(float x)
{
    return pq_round_even_fast(x);
}
static int clampi(int v, int lo, int hi)
{
    return v < lo ? lo : v > hi ? hi : v;
}

#define put_f16 pq_block_put_f16
#define get_f16 pq_block_get_f16

/* Symmetric levels in -nmax..nmax-1 for x[0..n): the scale starts at max / -nmax (max the
 * value of largest magnitude) and 18 nearby scales are tried, keeping the one that maximizes
 * (sum w x l)^2 / sum w l^2 with w = x^2. L gets l + nmax; returns the scale. */
/* The value of largest magnitude in x[0..n) (the first of equals), or 0 with L zeroed when
 * every magnitude is below 1e-15. */
static float signed_max(const float *x, int n, int8_t *L)
{
    float max = 0, amax = 0;
    for (int i = 0; i < n; i++)
        if (fabsf(x[i]) > amax) {
            amax = fabsf(x[i]);
            max = x[i];
        }
    if (amax < 1e-15f) {
        memset(L, 0, (size_t)n);
        return 0.0f;
    }
    return max;
}

/* Levels l in -nmax..nmax-1 of x[0..n) at inverse scale iscale and their sums with w = x^2:
 * *sumlx = sum w x l, *suml2 = sum w l^2 (in the reference's order); L (when given) gets
 * l + offset. */
static void sym_sums(int n, int nmax, const float *x, float iscale, int8_t *L, int offset,
                     float *sumlx, float *suml2)
{
    float slx = 0, sl2 = 0;
    for (int i = 0; i < n; i++) {
        int l = clampi(nearest(iscale * x[i]), -nmax, nmax - 1);
        if (L)
            L[i] = (int8_t)(l + offset);
        float w = x[i] * x[i];
        slx += w * x[i] * l;
        sl2 += w * l * l;
    }
    *sumlx = slx;
    *suml2 = sl2;
}

static float sym_levels(int n, int nmax, const float *x, int8_t *L)
{
    float max = signed_max(x, n, L);
    if (max == 0.0f)
        return 0.0f;
    float sumlx, suml2;
    sym_sums(n, nmax, x, -nmax / max, L, nmax, &sumlx, &suml2);
    float scale = suml2 ? sumlx / suml2 : 0.0f, best = scale * sumlx;
    for (int is = -9; is <= 9; is++) {
        if (is == 0)
            continue;
        float iscale = -(nmax + 0.1f * is) / max;
        sym_sums(n, nmax, x, iscale, NULL, 0, &sumlx, &suml2);
        if (suml2 > 0 && sumlx * sumlx > best * suml2) {
            for (int i = 0; i < n; i++)
                L[i] = (int8_t)(nmax + clampi(nearest(iscale * x[i]), -nmax, nmax - 1));
            scale = sumlx / suml2;
            best = scale * sumlx;
        }
    }
    return scale;
}

/* Q3_K's sub-block levels: the first guess at max / -nmax, then up to 5 sweeps that move one
 * level at a time when that raises (sum w x l)^2 / sum w l^2 (w = x^2). L gets l + nmax. */
static float q3_levels(int n, int nmax, const float *x, int8_t *L)
{
    float max = signed_max(x, n, L);
    if (max == 0.0f)
        return 0.0f;
    float sumlx, suml2;
    sym_sums(n, nmax, x, -nmax / max, L, 0, &sumlx, &suml2);
    for (int sweep = 0; sweep < 5; sweep++) {
        int changed = 0;
        for (int i = 0; i < n; i++) {
            float w = x[i] * x[i];
            float slx = sumlx - w * x[i] * L[i];
            if (slx > 0) {
                float sl2 = suml2 - w * L[i] * L[i];
                int nl = clampi(nearest(x[i] * sl2 / slx), -nmax, nmax - 1);
                if (nl != L[i]) {
                    slx += w * x[i] * nl;
                    sl2 += w * nl * nl;
                    if (sl2 > 0 && slx * slx * suml2 > sumlx * sumlx * sl2) {
                        L[i] = (int8_t)nl;
                        sumlx = slx;
                        suml2 = sl2;
                        changed++;
                    }
                }
            }
        }
        if (!changed)
            break;
    }
    for (int i = 0; i < n; i++)
        L[i] = (int8_t)(L[i] + nmax);
    return suml2 > 0.0f ? sumlx / suml2 : 0.0f;
}

/* Asymmetric levels 0..nmax with a minimum <= 0: starting from (max - min) / nmax, nstep + 1
 * scales (rmin + rdelta * is + nmax) / (max - min) are tried, each refit by weighted least
 * squares of scale and minimum, keeping the smallest weighted error (|d| when mad, else d^2).
 * Returns the scale; *neg_min = -minimum. */
static float asym_levels(int n, int nmax, const float *x, const float *wt, uint8_t *L,
                         float *neg_min, uint8_t *aux, float rmin, float rdelta, int nstep,
                         bool mad)
{
    float min = x[0], max = x[0], sum_w = wt[0], sum_x = sum_w * x[0];
    for (int i = 1; i < n; i++) {
        if (x[i] < min)
            min = x[i];
        if (x[i] > max)
            max = x[i];
        float w = wt[i];
        sum_w += w;
        sum_x += w * x[i];
    }
    if (min > 0)
        min = 0;
    if (max == min) {
        memset(L, 0, (size_t)n);
        *neg_min = -min;
        return 0.0f;
    }
    float iscale = nmax / (max - min), scale = 1 / iscale, best = 0;
    for (int i = 0; i < n; i++) {
        int l = clampi(nearest(iscale * (x[i] - min)), 0, nmax);
        L[i] = (uint8_t)l;
        float d = scale * L[i] + min - x[i];
        d = mad ? fabsf(d) : d * d;
        best += wt[i] * d;
    }
    for (int is = 0; is <= nstep; is++) {
        iscale = (rmin + rdelta * is + nmax) / (max - min);
        float sum_l = 0, sum_l2 = 0, sum_xl = 0;
        for (int i = 0; i < n; i++) {
            int l = clampi(nearest(iscale * (x[i] - min)), 0, nmax);
            aux[i] = (uint8_t)l;
            float w = wt[i];
            sum_l += w * l;
            sum_l2 += w * l * l;
            sum_xl += w * l * x[i];
        }
        float D = sum_w * sum_l2 - sum_l * sum_l;
        if (D > 0) {
            float s = (sum_w * sum_xl - sum_x * sum_l) / D;
            float m = (sum_l2 * sum_x - sum_l * sum_xl) / D;
            if (m > 0) {
                m = 0;
                s = sum_xl / sum_l2;
            }
            float e = 0;
            for (int i = 0; i < n; i++) {
                float d = s * aux[i] + m - x[i];
                d = mad ? fabsf(d) : d * d;
                e += wt[i] * d;
            }
            if (e < best) {
                memcpy(L, aux, (size_t)n);
                best = e;
                scale = s;
                min = m;
            }
        }
    }
    *neg_min = -min;
    return scale;
}

/* The 6-bit scale and minimum of sub-block j as Q4_K/Q5_K pack them in 12 bytes. */
static void k4_get(int j, const uint8_t *q, uint8_t *sc, uint8_t *m)
{
    if (j < 4) {
        *sc = q[j] & 63;
        *m = q[j + 4] & 63;
    } else {
        *sc = (uint8_t)((q[j + 4] & 0xF) | ((q[j - 4] >> 6) << 4));
        *m = (uint8_t)((q[j + 4] >> 4) | ((q[j] >> 6) << 4));
    }
}

static void k4_put(int j, uint8_t *q, uint8_t ls, uint8_t lm)
{
    if (j < 4) {
        q[j] = ls;
        q[j + 4] = lm;
    } else {
        q[j + 4] = (uint8_t)((ls & 0xF) | ((lm & 0xF) << 4));
        q[j - 4] |= (uint8_t)((ls >> 4) << 6);
        q[j] |= (uint8_t)((lm >> 4) << 6);
    }
}

static void q2k_block(const float *x, uint8_t *y)
{
    uint8_t L[QK], aux[16], *scales = y + Q2(scales), *qs = y + Q2(qs);
    float wt[16], mins[16], sc[16], max_scale = 0, max_min = 0;
    for (int j = 0; j < 16; j++) {
        for (int l = 0; l < 16; l++)
            wt[l] = fabsf(x[16 * j + l]);
        sc[j] =
            asym_levels(16, 3, x + 16 * j, wt, L + 16 * j, &mins[j], aux, -0.5f, 0.1f, 15, true);
        if (sc[j] > max_scale)
            max_scale = sc[j];
        if (mins[j] > max_min)
            max_min = mins[j];
    }
    memset(scales, 0, 16);
    if (max_scale > 0) {
        float iscale = 15.f / max_scale;
        for (int j = 0; j < 16; j++)
            scales[j] = (uint8_t)nearest(iscale * sc[j]);
        put_f16(y + Q2(d), max_scale / 15.f);
    } else
        put_f16(y + Q2(d), 0.0f);
    if (max_min > 0) {
        float iscale = 15.f / max_min;
        for (int j = 0; j < 16; j++)
            scales[j] |= (uint8_t)(nearest(iscale * mins[j]) << 4);
        put_f16(y + Q2(dmin), max_min / 15.f);
    } else
        put_f16(y + Q2(dmin), 0.0f);
    for (int j = 0; j < 16; j++) {
        const float d = get_f16(y + Q2(d)) * (scales[j] & 0xF);
        if (!d)
            continue;
        const float dm = get_f16(y + Q2(dmin)) * (scales[j] >> 4);
        for (int i = 0; i < 16; i++)
            L[16 * j + i] = (uint8_t)clampi(nearest((x[16 * j + i] + dm) / d), 0, 3);
    }
    for (int j = 0; j < QK; j += 128)
        for (int l = 0; l < 32; l++)
            qs[j / 4 + l] = (uint8_t)(L[j + l] | (L[j + l + 32] << 2) | (L[j + l + 64] << 4) |
                                      (L[j + l + 96] << 6));
}

/* Q3_K's 16 6-bit scales (stored + 32) in 12 bytes: low nibbles in bytes 0..7 (sub-blocks
 * j and j + 8), the two high bits of sub-block j in byte 8 + j % 4 at bit 2 * (j / 4). */
static int q3k_scale(const uint8_t *s, int j)
{
    int lo = j < 8 ? s[j] & 0xF : s[j - 8] >> 4;
    return (lo | (((s[8 + j % 4] >> (2 * (j / 4))) & 3) << 4)) - 32;
}

static void q3k_block(const float *x, uint8_t *y)
{
    int8_t L[QK];
    float sc[16], max_scale = 0, amax = 0;
    uint8_t *hmask = y + Q3(hmask), *qs = y + Q3(qs), *scales = y + Q3(scales);
    for (int j = 0; j < 16; j++) {
        sc[j] = q3_levels(16, 4, x + 16 * j, L + 16 * j);
        if (fabsf(sc[j]) > amax) {
            amax = fabsf(sc[j]);
            max_scale = sc[j];
        }
    }
    memset(scales, 0, 12);
    if (max_scale) {
        float iscale = -32.f / max_scale;
        for (int j = 0; j < 16; j++) {
            int l = clampi((int8_t)nearest(iscale * sc[j]), -32, 31) + 32;
            if (j < 8)
                scales[j] = (uint8_t)(l & 0xF);
            else
                scales[j - 8] |= (uint8_t)((l & 0xF) << 4);
            scales[j % 4 + 8] |= (uint8_t)((l >> 4) << (2 * (j / 4)));
        }
        put_f16(y + Q3(d), 1 / iscale);
    } else
        put_f16(y + Q3(d), 0.0f);
    for (int j = 0; j < 16; j++) {
        float d = get_f16(y + Q3(d)) * (float)(int8_t)q3k_scale(scales, j);
        if (!d)
            continue;
        for (int i = 0; i < 16; i++)
            L[16 * j + i] = (int8_t)(clampi(nearest(x[16 * j + i] / d), -4, 3) + 4);
    }
    memset(hmask, 0, 32);
    for (int j = 0, m = 0, bit = 0; j < QK;
         j++) { /* third bit: weight j at hmask[j % 32], bit j / 32 */
        if (L[j] > 3) {
            hmask[m] |= (uint8_t)(1u << bit);
            L[j] -= 4;
        }
        if (++m == 32) {
            m = 0;
            bit++;
        }
    }
    for (int j = 0; j < QK; j += 128)
        for (int l = 0; l < 32; l++)
            qs[j / 4 + l] = (uint8_t)(L[j + l] | (L[j + l + 32] << 2) | (L[j + l + 64] << 4) |
                                      (L[j + l + 96] << 6));
}

/* Q4_K (nmax 15) and Q5_K (nmax 31) */
static void q45k_block(const float *x, uint8_t *y, bool five)
{
    int nmax = five ? 31 : 15;
    uint8_t L[QK], aux[32], *scales = y + Q4(scales);
    float wt[32], mins[8], sc[8], max_scale = 0, max_min = 0;
    for (int j = 0; j < 8; j++) {
        float sum_x2 = 0;
        for (int l = 0; l < 32; l++)
            sum_x2 += x[32 * j + l] * x[32 * j + l];
        float av_x = sqrtf(sum_x2 / 32);
        for (int l = 0; l < 32; l++)
            wt[l] = av_x + fabsf(x[32 * j + l]);
        sc[j] = asym_levels(32, nmax, x + 32 * j, wt, L + 32 * j, &mins[j], aux,
                            five ? -0.5f : -1.f, 0.1f, five ? 15 : 20, false);
        if (sc[j] > max_scale)
            max_scale = sc[j];
        if (mins[j] > max_min)
            max_min = mins[j];
    }
    float inv_scale = max_scale > 0 ? 63.f / max_scale : 0.f;
    float inv_min = max_min > 0 ? 63.f / max_min : 0.f;
    memset(scales, 0, 12);
    for (int j = 0; j < 8; j++) {
        uint8_t ls = (uint8_t)nearest(inv_scale * sc[j]), lm = (uint8_t)nearest(inv_min * mins[j]);
        k4_put(j, scales, ls < 63 ? ls : 63, lm < 63 ? lm : 63);
    }
    put_f16(y + Q4(d), max_scale / 63.f);
    put_f16(y + Q4(dmin), max_min / 63.f);
    for (int j = 0; j < 8; j++) {
        uint8_t s, m;
        k4_get(j, scales, &s, &m);
        const float d = get_f16(y + Q4(d)) * s;
        if (!d)
            continue;
        const float dm = get_f16(y + Q4(dmin)) * m;
        for (int i = 0; i < 32; i++)
            L[32 * j + i] = (uint8_t)clampi(nearest((x[32 * j + i] + dm) / d), 0, nmax);
    }
    if (!five) {
        uint8_t *q = y + Q4(qs);
        for (int j = 0; j < QK; j += 64, q += 32)
            for (int l = 0; l < 32; l++)
                q[l] = (uint8_t)(L[j + l] | (L[j + l + 32] << 4));
        return;
    }
    uint8_t *qh = y + Q5(qh), *ql = y + Q5(qs);
    memset(qh, 0, 32);
    uint8_t m1 = 1, m2 = 2;
    for (int n = 0; n < QK; n += 64, ql += 32, m1 <<= 2, m2 <<= 2)
        for (int j = 0; j < 32; j++) {
            int l1 = L[n + j], l2 = L[n + j + 32];
            if (l1 > 15) {
                l1 -= 16;
                qh[j] |= m1;
            }
            if (l2 > 15) {
                l2 -= 16;
                qh[j] |= m2;
            }
            ql[j] = (uint8_t)(l1 | (l2 << 4));
        }
}

static void q6k_block(const float *x, uint8_t *y)
{
    int8_t L[QK];
    float sc[16], max_scale = 0, max_abs = 0;
    uint8_t *ql = y + Q6(ql), *qh = y + Q6(qh);
    int8_t *scales = (int8_t *)(y + Q6(scales));
    for (int b = 0; b < 16; b++) {
        sc[b] = sym_levels(16, 32, x + 16 * b, L + 16 * b);
        if (fabsf(sc[b]) > max_abs) {
            max_abs = fabsf(sc[b]);
            max_scale = sc[b];
        }
    }
    if (max_abs < 1e-15f) {
        memset(y, 0, sizeof(pq_block_q6_k));
        return;
    }
    float iscale = -128.f / max_scale;
    put_f16(y + Q6(d), 1 / iscale);
    for (int b = 0; b < 16; b++) {
        int v = nearest(iscale * sc[b]);
        scales[b] = (int8_t)(v < 127 ? v : 127);
    }
    for (int j = 0; j < 16; j++) {
        float d = get_f16(y + Q6(d)) * scales[j];
        if (!d)
            continue;
        for (int i = 0; i < 16; i++)
            L[16 * j + i] = (int8_t)(clampi(nearest(x[16 * j + i] / d), -32, 31) + 32);
    }
    for (int j = 0; j < QK; j += 128, ql += 64, qh += 32)
        for (int l = 0; l < 32; l++) {
            ql[l] = (uint8_t)((L[j + l] & 0xF) | ((L[j + l + 64] & 0xF) << 4));
            ql[l + 32] = (uint8_t)((L[j + l + 32] & 0xF) | ((L[j + l + 96] & 0xF) << 4));
            qh[l] = (uint8_t)((L[j + l] >> 4) | ((L[j + l + 32] >> 4) << 2) |
                              ((L[j + l + 64] >> 4) << 4) | ((L[j + l + 96] >> 4) << 6));
        }
}

void pq_q2_k_quantize(const float *x, uint8_t *y)
{
    int mode = pq_nearest_begin();
    q2k_block(x, y);
    pq_nearest_end(mode);
}
void pq_q3_k_quantize(const float *x, uint8_t *y)
{
    int mode = pq_nearest_begin();
    q3k_block(x, y);
    pq_nearest_end(mode);
}
void pq_q4_k_quantize(const float *x, uint8_t *y)
{
    int mode = pq_nearest_begin();
    q45k_block(x, y, false);
    pq_nearest_end(mode);
}
void pq_q5_k_quantize(const float *x, uint8_t *y)
{
    int mode = pq_nearest_begin();
    q45k_block(x, y, true);
    pq_nearest_end(mode);
}
void pq_q6_k_quantize(const float *x, uint8_t *y)
{
    int mode = pq_nearest_begin();
    q6k_block(x, y);
    pq_nearest_end(mode);
}

void pq_q2_k_dequant(const uint8_t *y, float *out)
{
    float d = get_f16(y + Q2(d)), dmin = get_f16(y + Q2(dmin));
    const uint8_t *q = y + Q2(qs);
    int is = 0;
    for (int n = 0; n < QK; n += 128, q += 32)
        for (int shift = 0; shift < 8; shift += 2)
            for (int half = 0; half < 2; half++) {
                uint8_t sc = y[Q2(scales) + is++];
                float dl = d * (sc & 0xF), ml = dmin * (sc >> 4);
                for (int l = 0; l < 16; l++)
                    *out++ = dl * (float)((q[l + 16 * half] >> shift) & 3) - ml;
            }
}

void pq_q3_k_dequant(const uint8_t *y, float *out)
{
    float d_all = get_f16(y + Q3(d));
    const uint8_t *hm = y + Q3(hmask), *q = y + Q3(qs);
    int is = 0;
    uint8_t m = 1;
    for (int n = 0; n < QK; n += 128, q += 32)
        for (int shift = 0; shift < 8; shift += 2, m <<= 1)
            for (int half = 0; half < 2; half++) {
                float dl = d_all * (float)q3k_scale(y + Q3(scales), is++);
                for (int l = 0; l < 16; l++) {
                    int k = l + 16 * half;
                    *out++ = dl * (float)((int)((q[k] >> shift) & 3) - ((hm[k] & m) ? 0 : 4));
                }
            }
}

static void q45k_dequant(const uint8_t *y, float *out, bool five)
{
    float d = get_f16(y + Q4(d)), dmin = get_f16(y + Q4(dmin));
    const uint8_t *qh = y + Q5(qh), *q = y + (five ? Q5(qs) : Q4(qs));
    uint8_t u1 = 1, u2 = 2;
    for (int j = 0, is = 0; j < QK; j += 64, q += 32, is += 2, u1 <<= 2, u2 <<= 2) {
        uint8_t sc, m;
        k4_get(is, y + Q4(scales), &sc, &m);
        float d1 = d * sc, m1 = dmin * m;
        k4_get(is + 1, y + Q4(scales), &sc, &m);
        float d2 = d * sc, m2 = dmin * m;
        for (int l = 0; l < 32; l++)
            *out++ = d1 * (float)((q[l] & 0xF) + (five && (qh[l] & u1) ? 16 : 0)) - m1;
        for (int l = 0; l < 32; l++)
            *out++ = d2 * (float)((q[l] >> 4) + (five && (qh[l] & u2) ? 16 : 0)) - m2;
    }
}

void pq_q6_k_dequant(const uint8_t *y, float *out)
{
    float d = get_f16(y + Q6(d));
    const uint8_t *ql = y + Q6(ql), *qh = y + Q6(qh);
    const int8_t *sc = (const int8_t *)(y + Q6(scales));
    for (int n = 0; n < QK; n += 128, out += 128, ql += 64, qh += 32, sc += 8)
        for (int l = 0; l < 32; l++) {
            int is = l / 16;
            int q1 = (int)((ql[l] & 0xF) | (((qh[l] >> 0) & 3) << 4)) - 32;
            int q2 = (int)((ql[l + 32] & 0xF) | (((qh[l] >> 2) & 3) << 4)) - 32;
            int q3 = (int)((ql[l] >> 4) | (((qh[l] >> 4) & 3) << 4)) - 32;
            int q4 = (int)((ql[l + 32] >> 4) | (((qh[l] >> 6) & 3) << 4)) - 32;
            out[l] = d * sc[is] * q1;
            out[l + 32] = d * sc[is + 2] * q2;
            out[l + 64] = d * sc[is + 4] * q3;
            out[l + 96] = d * sc[is + 6] * q4;
        }
}

void pq_q4_k_dequant(const uint8_t *y, float *out)
{
    q45k_dequant(y, out, false);
}
void pq_q5_k_dequant(const uint8_t *y, float *out)
{
    q45k_dequant(y, out, true);
}

/* ---- decoded for integer dot products: the dequantizers above, with the scales kept apart -- */

void pq_q2_k_decode(const uint8_t *y, int8_t *out, pq_dec *h)
{
    const uint8_t *q = y + Q2(qs);
    int is = 0;
    for (int n = 0; n < QK; n += 128, q += 32)
        for (int shift = 0; shift < 8; shift += 2)
            for (int half = 0; half < 2; half++, is++) {
                uint8_t sc = y[Q2(scales) + is];
                h->sc[is] = (int16_t)(sc & 0xF);
                h->mn[is] = (int16_t)(sc >> 4);
                for (int l = 0; l < 16; l++)
                    *out++ = (int8_t)((q[l + 16 * half] >> shift) & 3);
            }
    h->d = get_f16(y + Q2(d));
    h->dmin = get_f16(y + Q2(dmin));
}

void pq_q3_k_decode(const uint8_t *y, int8_t *out, pq_dec *h)
{
    const uint8_t *hm = y + Q3(hmask), *q = y + Q3(qs);
    int is = 0;
    uint8_t m = 1;
    for (int n = 0; n < QK; n += 128, q += 32)
        for (int shift = 0; shift < 8; shift += 2, m <<= 1)
            for (int half = 0; half < 2; half++, is++) {
                h->sc[is] = (int16_t)q3k_scale(y + Q3(scales), is);
                h->mn[is] = 0;
                for (int l = 0; l < 16; l++) {
                    int k = l + 16 * half;
                    *out++ = (int8_t)((int)((q[k] >> shift) & 3) - ((hm[k] & m) ? 0 : 4));
                }
            }
    h->d = get_f16(y + Q3(d));
    h->dmin = 0.0f;
}

static void q45k_decode(const uint8_t *y, int8_t *out, pq_dec *h, bool five)
{
    const uint8_t *qh = y + Q5(qh), *q = y + (five ? Q5(qs) : Q4(qs));
    uint8_t u1 = 1, u2 = 2;
    for (int j = 0, is = 0; j < QK; j += 64, q += 32, is += 2, u1 <<= 2, u2 <<= 2) {
        for (int t = 0; t < 2; t++) {
            uint8_t sc, mn;
            k4_get(is + t, y + Q4(scales), &sc, &mn);
            h->sc[is + t] = sc;
            h->mn[is + t] = mn;
        }
        for (int l = 0; l < 32; l++)
            *out++ = (int8_t)((q[l] & 0xF) + (five && (qh[l] & u1) ? 16 : 0));
        for (int l = 0; l < 32; l++)
            *out++ = (int8_t)((q[l] >> 4) + (five && (qh[l] & u2) ? 16 : 0));
    }
    h->d = get_f16(y + Q4(d));
    h->dmin = get_f16(y + Q4(dmin));
}

void pq_q4_k_decode(const uint8_t *y, int8_t *q, pq_dec *h)
{
    q45k_decode(y, q, h, false);
}
void pq_q5_k_decode(const uint8_t *y, int8_t *q, pq_dec *h)
{
    q45k_decode(y, q, h, true);
}

void pq_q6_k_decode(const uint8_t *y, int8_t *out, pq_dec *h)
{
    const uint8_t *ql = y + Q6(ql), *qh = y + Q6(qh);
    const int8_t *sc = (const int8_t *)(y + Q6(scales));
    for (int n = 0; n < QK; n += 128, out += 128, ql += 64, qh += 32)
        for (int l = 0; l < 32; l++) {
            out[l] = (int8_t)((int)((ql[l] & 0xF) | (((qh[l] >> 0) & 3) << 4)) - 32);
            out[l + 32] = (int8_t)((int)((ql[l + 32] & 0xF) | (((qh[l] >> 2) & 3) << 4)) - 32);
            out[l + 64] = (int8_t)((int)((ql[l] >> 4) | (((qh[l] >> 4) & 3) << 4)) - 32);
            out[l + 96] = (int8_t)((int)((ql[l + 32] >> 4) | (((qh[l] >> 6) & 3) << 4)) - 32);
        }
    for (int s = 0; s < 16; s++) { /* sub-block s (weights 16 s ..) has scale s */
        h->sc[s] = sc[s];
        h->mn[s] = 0;
    }
    h->d = get_f16(y + Q6(d));
    h->dmin = 0.0f;
}

#if defined(__x86_64__) && (defined(__GNUC__) || defined(__clang__))
#include <immintrin.h>
#define PQ_AVX512 __attribute__((target("avx2,avx512f,avx512bw,avx512vl")))

/* 16 codes (bytes, minus bias) as floats times d, minus m: the scalar code's d * q - m */
PQ_AVX512 static inline void kq_put16(float *out, __m128i codes, int bias, float d, float m)
{
    __m512 v =
        _mm512_cvtepi32_ps(_mm512_sub_epi32(_mm512_cvtepu8_epi32(codes), _mm512_set1_epi32(bias)));
    _mm512_storeu_ps(out, _mm512_sub_ps(_mm512_mul_ps(_mm512_set1_ps(d), v), _mm512_set1_ps(m)));
}

/* A row of nb Q4_K super-blocks, the bits of pq_q4_k_dequant block by block */
PQ_AVX512 static void q4_k_row_avx512(const uint8_t *y, int nb, float *out)
{
    const __m128i lo = _mm_set1_epi8(0x0f);
    for (int b = 0; b < nb; b++, y += sizeof(pq_block_q4_k)) {
        float d = get_f16(y + Q4(d)), dmin = get_f16(y + Q4(dmin));
        const uint8_t *q = y + Q4(qs);
        for (int is = 0; is < 8; is += 2, q += 32, out += 64) {
            uint8_t sc, m;
            k4_get(is, y + Q4(scales), &sc, &m);
            float d1 = d * sc, m1 = dmin * m;
            k4_get(is + 1, y + Q4(scales), &sc, &m);
            float d2 = d * sc, m2 = dmin * m;
            for (int l = 0; l < 32; l += 16) {
                __m128i v = _mm_loadu_si128((const __m128i *)(const void *)(q + l));
                kq_put16(out + l, _mm_and_si128(v, lo), 0, d1, m1);
                kq_put16(out + 32 + l, _mm_and_si128(_mm_srli_epi16(v, 4), lo), 0, d2, m2);
            }
        }
    }
}

/* A row of nb Q6_K super-blocks, the bits of pq_q6_k_dequant block by block */
PQ_AVX512 static void q6_k_row_avx512(const uint8_t *y, int nb, float *out)
{
    const __m128i lo = _mm_set1_epi8(0x0f), three = _mm_set1_epi8(3);
    for (int b = 0; b < nb; b++, y += sizeof(pq_block_q6_k)) {
        float d = get_f16(y + Q6(d));
        const uint8_t *ql = y + Q6(ql), *qh = y + Q6(qh);
        const int8_t *sc = (const int8_t *)(y + Q6(scales));
        for (int n = 0; n < QK; n += 128, out += 128, ql += 64, qh += 32, sc += 8)
            for (int l = 0; l < 32; l += 16) {
                int is = l / 16;
                __m128i a = _mm_loadu_si128((const __m128i *)(const void *)(ql + l)),
                        c = _mm_loadu_si128((const __m128i *)(const void *)(ql + l + 32)),
                        h = _mm_loadu_si128((const __m128i *)(const void *)(qh + l));
                __m128i h0 = _mm_slli_epi16(_mm_and_si128(h, three), 4),
                        h2 = _mm_slli_epi16(_mm_and_si128(_mm_srli_epi16(h, 2), three), 4),
                        h4 = _mm_slli_epi16(_mm_and_si128(_mm_srli_epi16(h, 4), three), 4),
                        h6 = _mm_slli_epi16(_mm_and_si128(_mm_srli_epi16(h, 6), three), 4);
                __m128i a4 = _mm_and_si128(_mm_srli_epi16(a, 4), lo),
                        c4 = _mm_and_si128(_mm_srli_epi16(c, 4), lo);
                kq_put16(out + l, _mm_or_si128(_mm_and_si128(a, lo), h0), 32, d * sc[is], 0.0f);
                kq_put16(out + l + 32, _mm_or_si128(_mm_and_si128(c, lo), h2), 32, d * sc[is + 2],
                         0.0f);
                kq_put16(out + l + 64, _mm_or_si128(a4, h4), 32, d * sc[is + 4], 0.0f);
                kq_put16(out + l + 96, _mm_or_si128(c4, h6), 32, d * sc[is + 6], 0.0f);
            }
    }
}

bool pq_kquant_dequant_row_avx512(pq_qfmt fmt, const uint8_t *y, int nb, float *out)
{
    if (fmt == PQ_QF_Q4_K)
        q4_k_row_avx512(y, nb, out);
    else if (fmt == PQ_QF_Q6_K)
        q6_k_row_avx512(y, nb, out);
    else
        return false;
    return true;
}
#else
bool pq_kquant_dequant_row_avx512(pq_qfmt fmt, const uint8_t *y, int nb, float *out)
{
    (void)fmt, (void)y, (void)nb, (void)out;
    return false;
}
#endif
