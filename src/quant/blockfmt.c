/* Block formats of other tools, stored exactly as they store them (see qformat.h).
 *
 * llama.cpp / ggml (ggml-quants.c, quantize_row_*_ref; blocks of 32 weights):
 *   Q8_0  {f16 d; int8 qs[32]}                  34 bytes  x = qs[j] * d
 *   Q4_0  {f16 d; u8 qs[16]}                    18 bytes  x = (nibble - 8) * d
 *   Q4_1  {f16 d; f16 m; u8 qs[16]}             20 bytes  x = nibble * d + m
 *   Q5_0  {f16 d; u8 qh[4]; u8 qs[16]}          22 bytes  x = (nibble | high bit << 4) - 16) * d
 *   Q5_1  {f16 d; f16 m; u8 qh[4]; u8 qs[16]}   24 bytes  x = (nibble | high bit << 4) * d + m
 *   Byte j of qs holds weight j (low nibble) and weight j + 16 (high nibble); bit j of qh
 *   (little-endian u32) is weight j's fifth bit, bit j + 16 weight j + 16's.
 *   Q4_0/Q5_0: d = v / -8 (or -16) where v is the weight of largest magnitude (its sign kept),
 *   levels (int)(x / d + 8.5) (or 16.5) capped at 15 (31). Q4_1/Q5_1: d = (max - min) / 15
 *   (31), levels (int)((x - min) / d + 0.5). Q8_0: d = amax / 127, levels roundf(x / d). Every
 *   division is by the float d before it is rounded to f16; dequantization uses the f16 d.
 *
 * bitsandbytes 4-bit (functional.quantize_4bit, its CPU path; blocks of 64 weights):
 *   the matrix is taken flat, row after row, in blocks of 64 (a block may span rows; the last
 *   may be shorter and has its own absmax); absmax f32 per block; each weight clamp(x * (1 /
 * absmax), -1, 1) goes to the code value whose bucket holds it (buckets split at midpoints of the
 * sorted code, a midpoint itself belonging to the lower bucket); two codes per byte, the first in
 * the high nibble. NF4 codes (normal-float quantiles) and FP4 codes (e2m1, index order of
 * bitsandbytes).
 *
 * llama.cpp's k-quants (super-blocks of 256) are in kquants.c; the block structs in blocks.h;
 * every format's traits in the table at the end of this file (qformat.h: pq_qfmt_traits). */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "base/base.h"
#include "format/gguf.h"
#include "quant/blocks.h"
#include "quant/kquants.h"
#include "quant/qformat.h"

static const float nf4_code[16] = {-1.0f,
                                   -0.6961928009986877f,
                                   -0.5250730514526367f,
                                   -0.39491748809814453f,
                                   -0.28444138169288635f,
                                   -0.18477343022823334f,
                                   -0.09105003625154495f,
                                   0.0f,
                                   0.07958029955625534f,
                                   0.16093020141124725f,
                                   0.24611230194568634f,
                                   0.33791524171829224f,
                                   0.44070982933044434f,
                                   0.5626170039176941f,
                                   0.7229568362236023f,
                                   1.0f};
static const float fp4_code[16] = {0.0f,
                                   0.0052083334885537624f,
                                   0.6666666865348816f,
                                   1.0f,
                                   0.3333333432674408f,
                                   0.5f,
                                   0.1666666716337204f,
                                   0.25f,
                                   0.0f,
                                   -0.0052083334885537624f,
                                   -0.6666666865348816f,
                                   -1.0f,
                                   -0.3333333432674408f,
                                   -0.5f,
                                   -0.1666666716337204f,
                                   -0.25f};
/* indices of each code sorted by value (for FP4, +0 before -0, as torch.argsort gives) */
static const uint8_t fp4_order[16] = {11, 10, 13, 12, 15, 14, 9, 0, 8, 1, 6, 7, 4, 5, 2, 3};

const float *pq_bnb_code(pq_qfmt f)
{
    return f == PQ_QF_NF4 ? nf4_code : fp4_code;
}

/* bitsandbytes' functional.create_dynamic_map(signed=True): 0, 1 and for each decade
 * 10^-6 .. 10^0 the means of 2^i + 1 linearly spaced points in [0.1, 1], both signs; sorted. */
static const float dynamic_map[256] = {
    -0x1.fc66660000000p-1f,  -0x1.f533340000000p-1f,
    -0x1.ee00000000000p-1f,  -0x1.e6cccc0000000p-1f,
    -0x1.df999a0000000p-1f,  -0x1.d866660000000p-1f,
    -0x1.d133340000000p-1f,  -0x1.ca00000000000p-1f,
    -0x1.c2cccc0000000p-1f,  -0x1.bb999a0000000p-1f,
    -0x1.b466660000000p-1f,  -0x1.ad33340000000p-1f,
    -0x1.a600000000000p-1f,  -0x1.9ecccc0000000p-1f,
    -0x1.97999a0000000p-1f,  -0x1.9066660000000p-1f,
    -0x1.8933340000000p-1f,  -0x1.8200000000000p-1f,
    -0x1.7acccc0000000p-1f,  -0x1.73999a0000000p-1f,
    -0x1.6c66680000000p-1f,  -0x1.6533340000000p-1f,
    -0x1.5e00000000000p-1f,  -0x1.56cccc0000000p-1f,
    -0x1.4f999a0000000p-1f,  -0x1.4866680000000p-1f,
    -0x1.4133340000000p-1f,  -0x1.3a00000000000p-1f,
    -0x1.32cccc0000000p-1f,  -0x1.2b999a0000000p-1f,
    -0x1.2466680000000p-1f,  -0x1.1d33340000000p-1f,
    -0x1.1600000000000p-1f,  -0x1.0ecccc0000000p-1f,
    -0x1.0799980000000p-1f,  -0x1.0066660000000p-1f,
    -0x1.f266640000000p-2f,  -0x1.e400000000000p-2f,
    -0x1.d599980000000p-2f,  -0x1.c733340000000p-2f,
    -0x1.b8cccc0000000p-2f,  -0x1.aa66660000000p-2f,
    -0x1.9c00000000000p-2f,  -0x1.8d99980000000p-2f,
    -0x1.7f33340000000p-2f,  -0x1.70cccc0000000p-2f,
    -0x1.6266660000000p-2f,  -0x1.5400000000000p-2f,
    -0x1.4599980000000p-2f,  -0x1.3733340000000p-2f,
    -0x1.28cccc0000000p-2f,  -0x1.1a66680000000p-2f,
    -0x1.0c00000000000p-2f,  -0x1.fb33320000000p-3f,
    -0x1.de66660000000p-3f,  -0x1.c1999a0000000p-3f,
    -0x1.a4cccc0000000p-3f,  -0x1.8800000000000p-3f,
    -0x1.6b33340000000p-3f,  -0x1.4e66660000000p-3f,
    -0x1.31999a0000000p-3f,  -0x1.14cccc0000000p-3f,
    -0x1.f000000000000p-4f,  -0x1.b666680000000p-4f,
    -0x1.93d70a0000000p-4f,  -0x1.8851ee0000000p-4f,
    -0x1.7cccce0000000p-4f,  -0x1.7147ae0000000p-4f,
    -0x1.65c2900000000p-4f,  -0x1.5a3d700000000p-4f,
    -0x1.4eb8540000000p-4f,  -0x1.4333340000000p-4f,
    -0x1.37ae140000000p-4f,  -0x1.2c28f60000000p-4f,
    -0x1.20a3d60000000p-4f,  -0x1.151eba0000000p-4f,
    -0x1.09999a0000000p-4f,  -0x1.fc28f60000000p-5f,
    -0x1.e51eba0000000p-5f,  -0x1.ce147a0000000p-5f,
    -0x1.b70a3e0000000p-5f,  -0x1.a000000000000p-5f,
    -0x1.88f5c20000000p-5f,  -0x1.71eb860000000p-5f,
    -0x1.5ae1460000000p-5f,  -0x1.43d70a0000000p-5f,
    -0x1.2cccce0000000p-5f,  -0x1.15c2900000000p-5f,
    -0x1.fd70a40000000p-6f,  -0x1.cf5c2a0000000p-6f,
    -0x1.a147ae0000000p-6f,  -0x1.7333340000000p-6f,
    -0x1.451eba0000000p-6f,  -0x1.170a3e0000000p-6f,
    -0x1.d1eb860000000p-7f,  -0x1.75c2900000000p-7f,
    -0x1.3e76c80000000p-7f,  -0x1.2c08300000000p-7f,
    -0x1.19999a0000000p-7f,  -0x1.072b020000000p-7f,
    -0x1.e978d40000000p-8f,  -0x1.c49ba60000000p-8f,
    -0x1.9fbe760000000p-8f,  -0x1.7ae1480000000p-8f,
    -0x1.56041a0000000p-8f,  -0x1.3126e80000000p-8f,
    -0x1.0c49ba0000000p-8f,  -0x1.ced9140000000p-9f,
    -0x1.851eb80000000p-9f,  -0x1.3b645a0000000p-9f,
    -0x1.e353f80000000p-10f, -0x1.4fdf3a0000000p-10f,
    -0x1.eecbfe0000000p-11f, -0x1.b3d07c0000000p-11f,
    -0x1.78d5000000000p-11f, -0x1.3dd9820000000p-11f,
    -0x1.02de020000000p-11f, -0x1.8fc5060000000p-12f,
    -0x1.19ce0a0000000p-12f, -0x1.47ae160000000p-13f,
    -0x1.743e960000000p-14f, -0x1.15df660000000p-14f,
    -0x1.6f00680000000p-15f, -0x1.64840c0000000p-16f,
    -0x1.040bfe0000000p-17f, -0x1.b435280000000p-19f,
    -0x1.27476e0000000p-21f, 0x0.0p+0f,
    0x1.27476e0000000p-21f,  0x1.b435280000000p-19f,
    0x1.040bfe0000000p-17f,  0x1.64840c0000000p-16f,
    0x1.6f00680000000p-15f,  0x1.15df660000000p-14f,
    0x1.743e960000000p-14f,  0x1.47ae160000000p-13f,
    0x1.19ce0a0000000p-12f,  0x1.8fc5060000000p-12f,
    0x1.02de020000000p-11f,  0x1.3dd9820000000p-11f,
    0x1.78d5000000000p-11f,  0x1.b3d07c0000000p-11f,
    0x1.eecbfe0000000p-11f,  0x1.4fdf3a0000000p-10f,
    0x1.e353f80000000p-10f,  0x1.3b645a0000000p-9f,
    0x1.851eb80000000p-9f,   0x1.ced9140000000p-9f,
    0x1.0c49ba0000000p-8f,   0x1.3126e80000000p-8f,
    0x1.56041a0000000p-8f,   0x1.7ae1480000000p-8f,
    0x1.9fbe760000000p-8f,   0x1.c49ba60000000p-8f,
    0x1.e978d40000000p-8f,   0x1.072b020000000p-7f,
    0x1.19999a0000000p-7f,   0x1.2c08300000000p-7f,
    0x1.3e76c80000000p-7f,   0x1.75c2900000000p-7f,
    0x1.d1eb860000000p-7f,   0x1.170a3e0000000p-6f,
    0x1.451eba0000000p-6f,   0x1.7333340000000p-6f,
    0x1.a147ae0000000p-6f,   0x1.cf5c2a0000000p-6f,
    0x1.fd70a40000000p-6f,   0x1.15c2900000000p-5f,
    0x1.2cccce0000000p-5f,   0x1.43d70a0000000p-5f,
    0x1.5ae1460000000p-5f,   0x1.71eb860000000p-5f,
    0x1.88f5c20000000p-5f,   0x1.a000000000000p-5f,
    0x1.b70a3e0000000p-5f,   0x1.ce147a0000000p-5f,
    0x1.e51eba0000000p-5f,   0x1.fc28f60000000p-5f,
    0x1.09999a0000000p-4f,   0x1.151eba0000000p-4f,
    0x1.20a3d60000000p-4f,   0x1.2c28f60000000p-4f,
    0x1.37ae140000000p-4f,   0x1.4333340000000p-4f,
    0x1.4eb8540000000p-4f,   0x1.5a3d700000000p-4f,
    0x1.65c2900000000p-4f,   0x1.7147ae0000000p-4f,
    0x1.7cccce0000000p-4f,   0x1.8851ee0000000p-4f,
    0x1.93d70a0000000p-4f,   0x1.b666680000000p-4f,
    0x1.f000000000000p-4f,   0x1.14cccc0000000p-3f,
    0x1.31999a0000000p-3f,   0x1.4e66660000000p-3f,
    0x1.6b33340000000p-3f,   0x1.8800000000000p-3f,
    0x1.a4cccc0000000p-3f,   0x1.c1999a0000000p-3f,
    0x1.de66660000000p-3f,   0x1.fb33320000000p-3f,
    0x1.0c00000000000p-2f,   0x1.1a66680000000p-2f,
    0x1.28cccc0000000p-2f,   0x1.3733340000000p-2f,
    0x1.4599980000000p-2f,   0x1.5400000000000p-2f,
    0x1.6266660000000p-2f,   0x1.70cccc0000000p-2f,
    0x1.7f33340000000p-2f,   0x1.8d99980000000p-2f,
    0x1.9c00000000000p-2f,   0x1.aa66660000000p-2f,
    0x1.b8cccc0000000p-2f,   0x1.c733340000000p-2f,
    0x1.d599980000000p-2f,   0x1.e400000000000p-2f,
    0x1.f266640000000p-2f,   0x1.0066660000000p-1f,
    0x1.0799980000000p-1f,   0x1.0ecccc0000000p-1f,
    0x1.1600000000000p-1f,   0x1.1d33340000000p-1f,
    0x1.2466680000000p-1f,   0x1.2b999a0000000p-1f,
    0x1.32cccc0000000p-1f,   0x1.3a00000000000p-1f,
    0x1.4133340000000p-1f,   0x1.4866680000000p-1f,
    0x1.4f999a0000000p-1f,   0x1.56cccc0000000p-1f,
    0x1.5e00000000000p-1f,   0x1.6533340000000p-1f,
    0x1.6c66680000000p-1f,   0x1.73999a0000000p-1f,
    0x1.7acccc0000000p-1f,   0x1.8200000000000p-1f,
    0x1.8933340000000p-1f,   0x1.9066660000000p-1f,
    0x1.97999a0000000p-1f,   0x1.9ecccc0000000p-1f,
    0x1.a600000000000p-1f,   0x1.ad33340000000p-1f,
    0x1.b466660000000p-1f,   0x1.bb999a0000000p-1f,
    0x1.c2cccc0000000p-1f,   0x1.ca00000000000p-1f,
    0x1.d133340000000p-1f,   0x1.d866660000000p-1f,
    0x1.df999a0000000p-1f,   0x1.e6cccc0000000p-1f,
    0x1.ee00000000000p-1f,   0x1.f533340000000p-1f,
    0x1.fc66660000000p-1f,   0x1.0000000000000p+0f,
};

float pq_bnb_dq_absmax(const pq_qweight *q, int b)
{
    int n_nested = (q->n_groups + 255) / 256;
    return dynamic_map[q->zero[b]] * q->scale[b / 256] + q->scale[n_nested];
}

/* Double quantization (bitsandbytes' compress_statistics): the block absmax values a (n) less
 * their mean (the offset), in blocks of 256 scaled by their largest magnitude, each to the
 * nearest value of the dynamic map (its first value taken as -1 for the search, as the CPU
 * kernel does; a tie goes to the lower code). codes (n), nested (n / 256 rounded up + 1: the
 * blocks' absmax, then the offset). The mean is summed in double and rounded to float; torch
 * sums float32 in its own order, which can differ from it by an ulp on long inputs. */
static void bnb_double_quant(const float *a, int n, uint8_t *codes, float *nested)
{
    double sum = 0;
    for (int i = 0; i < n; i++)
        sum += a[i];
    float offset = (float)(sum / n);
    int n_nested = (n + 255) / 256;
    nested[n_nested] = offset;
    for (int b = 0; b < n_nested; b++) {
        int i0 = b * 256, i1 = i0 + 256 < n ? i0 + 256 : n;
        float amax = -3.402823466e38f;
        for (int i = i0; i < i1; i++)
            amax = fmaxf(amax, fabsf(a[i] - offset));
        nested[b] = amax;
        for (int i = i0; i < i1; i++) {
            float v = (a[i] - offset) / amax;
            int lo = 0, hi = 255; /* the last code <= v, with the first read as -1 */
            while (lo < hi) {
                int mid = (lo + hi + 1) / 2;
                if ((mid ? dynamic_map[mid] : -1.0f) <= v)
                    lo = mid;
                else
                    hi = mid - 1;
            }
            if (lo < 255 &&
                fabsf(v - dynamic_map[lo + 1]) < fabsf(v - (lo ? dynamic_map[lo] : -1.0f)))
                lo++;
            codes[i] = (uint8_t)lo;
        }
    }
}

#define put_f16 pq_block_put_f16
#define get_f16 pq_block_get_f16

static int imin(int a, int b)
{
    return a < b ? a : b;
}

static void q8_0_quantize(const float *x, uint8_t *y)
{
    float amax = 0;
    for (int j = 0; j < 32; j++)
        amax = fmaxf(amax, fabsf(x[j]));
    float d = amax / 127, id = d ? 1.0f / d : 0.0f;
    put_f16(y + PQ_AT(pq_block_q8_0, d), d);
    for (int j = 0; j < 32; j++)
        y[PQ_AT(pq_block_q8_0, qs) + j] = (uint8_t)(int8_t)roundf(x[j] * id);
}

static void q8_0_dequant(const uint8_t *y, float *out)
{
    float d = get_f16(y + PQ_AT(pq_block_q8_0, d));
    for (int j = 0; j < 32; j++)
        out[j] = (float)(int8_t)y[PQ_AT(pq_block_q8_0, qs) + j] * d;
}

/* Where the fields of Q4_0, Q4_1, Q5_0 and Q5_1 blocks lie (absent ones at 0) */
typedef struct legacy {
    bool offset, five;
    size_t d, m, qh, qs;
} legacy;
static const legacy L40 = {false, false, PQ_AT(pq_block_q4_0, d), 0, 0, PQ_AT(pq_block_q4_0, qs)};
static const legacy L41 = {
    true, false, PQ_AT(pq_block_q4_1, d), PQ_AT(pq_block_q4_1, m), 0, PQ_AT(pq_block_q4_1, qs)};
static const legacy L50 = {
    false, true, PQ_AT(pq_block_q5_0, d), 0, PQ_AT(pq_block_q5_0, qh), PQ_AT(pq_block_q5_0, qs)};
static const legacy L51 = {true,
                           true,
                           PQ_AT(pq_block_q5_1, d),
                           PQ_AT(pq_block_q5_1, m),
                           PQ_AT(pq_block_q5_1, qh),
                           PQ_AT(pq_block_q5_1, qs)};

/* What a legacy format's codes are centred by: 8 or 16, 0 with the minimum apart */
static int legacy_sub(const legacy *f)
{
    return f->offset ? 0 : f->five ? 16 : 8;
}

/* One block of 32 weights in a 4- or 5-bit legacy format into y. */
static void legacy_quantize(const legacy *f, const float *x, uint8_t *y)
{
    bool offset = f->offset, five = f->five;
    int top = five ? 31 : 15;
    float d, id, min = 0;
    if (offset) {
        float lo = INFINITY, hi = -INFINITY;
        for (int j = 0; j < 32; j++) {
            lo = fminf(lo, x[j]);
            hi = fmaxf(hi, x[j]);
        }
        d = (hi - lo) / (float)top;
        min = lo;
    } else {
        float amax = 0, max = 0;
        for (int j = 0; j < 32; j++)
            if (amax < fabsf(x[j])) {
                amax = fabsf(x[j]);
                max = x[j];
            }
        d = max / (five ? -16.0f : -8.0f);
    }
    id = d ? 1.0f / d : 0.0f;
    put_f16(y + f->d, d);
    if (offset)
        put_f16(y + f->m, min);
    uint32_t qh = 0;
    uint8_t *qs = y + f->qs;
    for (int j = 0; j < 16; j++) {
        int a, b;
        if (offset) {
            a = (int)((x[j] - min) * id + 0.5f);
            b = (int)((x[j + 16] - min) * id + 0.5f);
            if (!five) {
                a = imin(15, a);
                b = imin(15, b);
            }
        } else {
            float bias = five ? 16.5f : 8.5f;
            a = imin(top, (int)(int8_t)(x[j] * id + bias));
            b = imin(top, (int)(int8_t)(x[j + 16] * id + bias));
        }
        qs[j] = (uint8_t)((a & 15) | (b & 15) << 4);
        qh |= (uint32_t)((a >> 4) & 1) << j;
        qh |= (uint32_t)((b >> 4) & 1) << (j + 16);
    }
    if (five) {
        uint8_t *h = y + f->qh;
        h[0] = (uint8_t)qh;
        h[1] = (uint8_t)(qh >> 8);
        h[2] = (uint8_t)(qh >> 16);
        h[3] = (uint8_t)(qh >> 24);
    }
}

static void legacy_dequant(const legacy *f, const uint8_t *y, float *out)
{
    float d = get_f16(y + f->d);
    bool offset = f->offset, five = f->five;
    float m = offset ? get_f16(y + f->m) : 0;
    const uint8_t *h = y + f->qh;
    uint32_t qh =
        five ? (uint32_t)h[0] | (uint32_t)h[1] << 8 | (uint32_t)h[2] << 16 | (uint32_t)h[3] << 24
             : 0;
    const uint8_t *qs = y + f->qs;
    int sub = legacy_sub(f);
    for (int j = 0; j < 16; j++) {
        int a = (qs[j] & 15) | (int)((qh >> j) & 1) << 4;
        int b = (qs[j] >> 4) | (int)((qh >> (j + 16)) & 1) << 4;
        out[j] = offset ? (float)a * d + m : (float)(a - sub) * d;
        out[j + 16] = offset ? (float)b * d + m : (float)(b - sub) * d;
    }
}

/* The same block as integer codes (pq_dec): 0..15 or 0..31 with the minimum apart, or centred
 * on 0 (-8..7, -16..15). */
static void legacy_decode(const legacy *f, const uint8_t *y, int8_t *q, pq_dec *h)
{
    bool offset = f->offset, five = f->five;
    const uint8_t *hb = y + f->qh;
    uint32_t qh = five ? (uint32_t)hb[0] | (uint32_t)hb[1] << 8 | (uint32_t)hb[2] << 16 |
                             (uint32_t)hb[3] << 24
                       : 0;
    const uint8_t *qs = y + f->qs;
    int sub = legacy_sub(f);
    for (int j = 0; j < 16; j++) {
        q[j] = (int8_t)(((qs[j] & 15) | (int)((qh >> j) & 1) << 4) - sub);
        q[j + 16] = (int8_t)(((qs[j] >> 4) | (int)((qh >> (j + 16)) & 1) << 4) - sub);
    }
    h->d = get_f16(y + f->d);
    h->dmin = offset ? get_f16(y + f->m) : 0.0f;
    h->sc[0] = 1;
    h->mn[0] = 0;
}

static void q8_0_decode(const uint8_t *y, int8_t *q, pq_dec *h)
{
    memcpy(q, y + PQ_AT(pq_block_q8_0, qs), 32);
    h->d = get_f16(y + PQ_AT(pq_block_q8_0, d));
    h->dmin = 0.0f;
    h->sc[0] = 1;
    h->mn[0] = 0;
}

/* each legacy format's three functions of the traits table */
#define LEGACY(name, layout)                                                                       \
    static void name##_quantize(const float *x, uint8_t *y)                                        \
    {                                                                                              \
        legacy_quantize(&layout, x, y);                                                            \
    }                                                                                              \
    static void name##_dequant(const uint8_t *y, float *out)                                       \
    {                                                                                              \
        legacy_dequant(&layout, y, out);                                                           \
    }                                                                                              \
    static void name##_decode(const uint8_t *y, int8_t *q, pq_dec *h)                              \
    {                                                                                              \
        legacy_decode(&layout, y, q, h);                                                           \
    }
LEGACY(q4_0, L40)
LEGACY(q4_1, L41)
LEGACY(q5_0, L50)
LEGACY(q5_1, L51)

/* One bitsandbytes block of n <= 64 weights starting at flat index i0 (even): codes into
 * y (two per byte from y[i0 / 2]), the block's absmax. */
/* the midpoints between neighbouring codes in value order: bucket k is (bounds[k-1], bounds[k]] */
static void bnb_bounds(pq_qfmt f, float bounds[15])
{
    const float *code = pq_bnb_code(f);
    for (int k = 0; k < 15; k++) {
        int lo = f == PQ_QF_NF4 ? k : fp4_order[k], hi = f == PQ_QF_NF4 ? k + 1 : fp4_order[k + 1];
        bounds[k] = (code[lo] + code[hi]) / 2;
    }
}

static void bnb_quantize_block(pq_qfmt f, const float *bounds, const float *x, int n, uint8_t *y,
                               float *absmax)
{
    float amax = 0;
    for (int j = 0; j < n; j++)
        amax = fmaxf(amax, fabsf(x[j]));
    float inv = 1.0f / fmaxf(amax, 1e-38f);
    *absmax = amax;
    for (int j = 0; j < n; j += 2) {
        int q[2];
        for (int t = 0; t < 2; t++) {
            /* full blocks multiply by the inverse, the short last block divides (as
             * bitsandbytes does); a missing last weight is a padding 0 */
            float v = j + t < n ? x[j + t] : 0.0f;
            float s = n == 64 ? v * inv : v / fmaxf(amax, 1e-38f);
            s = fminf(fmaxf(s, -1.0f), 1.0f);
            int k = 0;
            while (k < 15 && bounds[k] < s)
                k++;
            q[t] = f == PQ_QF_NF4 ? k : fp4_order[k];
        }
        y[j / 2] = (uint8_t)(q[0] << 4 | q[1]);
    }
}

/* ---- the formats' traits ------------------------------------------------------------------ */

#define GGML(name, bl, T, bits_, sym_, type, id, fb, q, dq, ft, act, sub, dec)                     \
    {                                                                                              \
        name, "ggml", bl, sizeof(T), bits_, 8.0 * sizeof(T) / (bl), sym_, false, type, id, fb,     \
            false, false, q, dq, ft, act, sub, dec                                                 \
    }
#define BNB(name, id)                                                                              \
    {                                                                                              \
        name, "bitsandbytes", 64, sizeof(pq_block_bnb4), 4, 4.5, false, true, -1, id, PQ_QF_INT,   \
            false, false, NULL, NULL                                                               \
    }

/* One row per built-in format. file_id is what polyq-quant.safetensors stores: frozen (the
 * numbers polyq has always written), never reused; a new format takes the next free one. */
static const pq_qfmt_traits builtin[PQ_QF_BUILTIN] = {
    [PQ_QF_INT] = {"int", "rtn", 0, 0, 0, 0, false, false, -1, 0, PQ_QF_INT, false, false, NULL,
                   NULL},
    [PQ_QF_Q8_0] = GGML("q8_0", 32, pq_block_q8_0, 8, true, PQ_GGML_Q8_0, 1, PQ_QF_INT,
                        q8_0_quantize, q8_0_dequant, 7, PQ_DOT_Q8_0, 32, q8_0_decode),
    [PQ_QF_Q4_0] = GGML("q4_0", 32, pq_block_q4_0, 4, true, PQ_GGML_Q4_0, 2, PQ_QF_INT,
                        q4_0_quantize, q4_0_dequant, 2, PQ_DOT_Q8_0, 32, q4_0_decode),
    [PQ_QF_Q4_1] = GGML("q4_1", 32, pq_block_q4_1, 4, false, PQ_GGML_Q4_1, 3, PQ_QF_INT,
                        q4_1_quantize, q4_1_dequant, 3, PQ_DOT_Q8_1, 32, q4_1_decode),
    [PQ_QF_Q5_0] = GGML("q5_0", 32, pq_block_q5_0, 5, true, PQ_GGML_Q5_0, 4, PQ_QF_INT,
                        q5_0_quantize, q5_0_dequant, 8, PQ_DOT_Q8_0, 32, q5_0_decode),
    [PQ_QF_Q5_1] = GGML("q5_1", 32, pq_block_q5_1, 5, false, PQ_GGML_Q5_1, 5, PQ_QF_INT,
                        q5_1_quantize, q5_1_dequant, 9, PQ_DOT_Q8_1, 32, q5_1_decode),
    [PQ_QF_NF4] = BNB("nf4", 6),
    [PQ_QF_FP4] = BNB("fp4", 7),
    /* k-quants: rows that are not whole super-blocks take llama-quantize's fallback */
    [PQ_QF_Q2_K] = GGML("q2_k", 256, pq_block_q2_k, 2, false, PQ_GGML_Q2_K, 8, PQ_QF_Q4_0,
                        pq_q2_k_quantize, pq_q2_k_dequant, 10, PQ_DOT_Q8_K, 16, pq_q2_k_decode),
    [PQ_QF_Q3_K] = GGML("q3_k", 256, pq_block_q3_k, 3, true, PQ_GGML_Q3_K, 9, PQ_QF_Q4_0,
                        pq_q3_k_quantize, pq_q3_k_dequant, 11, PQ_DOT_Q8_K, 16, pq_q3_k_decode),
    [PQ_QF_Q4_K] = GGML("q4_k", 256, pq_block_q4_k, 4, false, PQ_GGML_Q4_K, 10, PQ_QF_Q5_0,
                        pq_q4_k_quantize, pq_q4_k_dequant, 14, PQ_DOT_Q8_K, 32, pq_q4_k_decode),
    [PQ_QF_Q5_K] = GGML("q5_k", 256, pq_block_q5_k, 5, false, PQ_GGML_Q5_K, 11, PQ_QF_Q5_1,
                        pq_q5_k_quantize, pq_q5_k_dequant, 16, PQ_DOT_Q8_K, 32, pq_q5_k_decode),
    [PQ_QF_Q6_K] = GGML("q6_k", 256, pq_block_q6_k, 6, true, PQ_GGML_Q6_K, 12, PQ_QF_Q8_0,
                        pq_q6_k_quantize, pq_q6_k_dequant, 18, PQ_DOT_Q8_K, 16, pq_q6_k_decode),
};

static pq_qfmt_traits extra[PQ_QF_MAX - PQ_QF_BUILTIN];
static int n_extra;

const pq_qfmt_traits *pq_qfmt_get(pq_qfmt f)
{
    if ((int)f >= 0 && f < PQ_QF_BUILTIN)
        return &builtin[f];
    return (int)f >= PQ_QF_BUILTIN && (int)f < PQ_QF_BUILTIN + n_extra ? &extra[f - PQ_QF_BUILTIN]
                                                                       : NULL;
}

int pq_qfmt_count(void)
{
    return PQ_QF_BUILTIN + n_extra;
}

/* The first format for which match(traits, key) holds. */
static bool find(bool (*match)(const pq_qfmt_traits *, const void *), const void *key, pq_qfmt *out)
{
    for (int f = 0; f < pq_qfmt_count(); f++)
        if (match(pq_qfmt_get((pq_qfmt)f), key)) {
            *out = (pq_qfmt)f;
            return true;
        }
    return false;
}

static bool by_name(const pq_qfmt_traits *t, const void *k)
{
    return t->block && !strcmp(t->name, k);
}
static bool by_file(const pq_qfmt_traits *t, const void *k)
{
    return t->file_id == *(const int *)k;
}
static bool by_ggml(const pq_qfmt_traits *t, const void *k)
{
    return t->ggml_type >= 0 && t->ggml_type == *(const int *)k;
}

bool pq_qfmt_by_name(const char *name, pq_qfmt *out)
{
    return find(by_name, name, out);
}
bool pq_qfmt_by_file_id(int id, pq_qfmt *out)
{
    return find(by_file, &id, out);
}
bool pq_qfmt_by_ggml(int type, pq_qfmt *out)
{
    return find(by_ggml, &type, out);
}

int pq_qfmt_register(const pq_qfmt_traits *t, pq_qfmt *out, polyq_err *err)
{
    pq_qfmt dup;
    if (n_extra == PQ_QF_MAX - PQ_QF_BUILTIN)
        return pq_fail(err, POLYQ_INVALID_ARG,
                       "format %s: no room for more than %d registered formats", t->name,
                       PQ_QF_MAX - PQ_QF_BUILTIN);
    if (!t->name || t->block <= 0 || !t->block_bytes || t->bits < 1 || t->bits > 8 || t->flat ||
        !t->quantize || !t->dequant || (t->fallback && !pq_qfmt_get(t->fallback)))
        return pq_fail(err, POLYQ_INVALID_ARG,
                       "format %s: a block format needs a name, a block size and bytes, 1 to 8 "
                       "bits and its quantize and dequantize functions",
                       t->name ? t->name : "(unnamed)");
    if (pq_qfmt_by_name(t->name, &dup) || pq_qfmt_by_file_id(t->file_id, &dup) ||
        (t->ggml_type >= 0 && pq_qfmt_by_ggml(t->ggml_type, &dup)))
        return pq_fail(err, POLYQ_INVALID_ARG,
                       "format %s: its name, file id %d or ggml type %d is already %s's", t->name,
                       t->file_id, t->ggml_type, pq_qfmt_get(dup)->name);
    if (t->ggml_type >= 0 &&
        pq_ggml_type_register((uint32_t)t->ggml_type, t->block, t->block_bytes))
        return pq_fail(err, POLYQ_INVALID_ARG, "format %s: ggml type %d has other block sizes",
                       t->name, t->ggml_type);
    extra[n_extra] = *t;
    *out = (pq_qfmt)(PQ_QF_BUILTIN + n_extra++);
    return 0;
}

/* ---- quantizing and dequantizing whole matrices -------------------------------------------- */

int pq_qweight_blocks(const float *w, int n_out, int n_in, const pq_qspec *spec, pq_qweight **out,
                      polyq_err *err)
{
    *out = NULL;
    const pq_qfmt_traits *t = pq_qfmt_get(spec->fmt);
    int B = t ? t->block : 0;
    if (B <= 0 || n_out <= 0 || n_in <= 0)
        return pq_fail(err, POLYQ_INVALID_ARG, "quantize: nothing to do for spec %s on [%d, %d]",
                       spec->name, n_out, n_in);
    bool bnb = t->flat;
    if (!bnb && n_in % B)
        return pq_fail(err, POLYQ_UNSUPPORTED,
                       "quantize %s: rows of %d inputs are not whole blocks of %d (the format has "
                       "no partial blocks)",
                       spec->name, n_in, B);
    pq_qweight *q = calloc(1, sizeof *q);
    if (!q)
        return pq_fail(err, POLYQ_NOMEM, "out of memory");
    q->fmt = spec->fmt;
    q->bits = t->bits;
    q->n_out = n_out;
    q->n_in = n_in;
    q->gran = PQ_GRAN_GROUP;
    q->group = B;
    q->sym = t->sym;
    size_t total = (size_t)n_out * (size_t)n_in;
    if (bnb) { /* flat: n_groups counts the blocks of the whole matrix */
        q->gran = PQ_GRAN_TENSOR;
        q->n_groups = (int)((total + 63) / 64);
        q->row_bytes = 0;
        q->data = pq_calloc_array((total + 1) / 2, 1);
        q->scale = pq_alloc_array((size_t)q->n_groups, sizeof *q->scale);
    } else {
        q->n_groups = n_in / B;
        q->row_bytes = (size_t)q->n_groups * t->block_bytes;
        q->data = pq_calloc_array((size_t)n_out, q->row_bytes);
    }
    if (!q->data || (bnb && !q->scale)) {
        pq_qweight_free(q);
        return pq_fail(err, POLYQ_NOMEM, "out of memory quantizing a [%d, %d] matrix", n_out, n_in);
    }
    if (bnb) {
        float bounds[15];
        bnb_bounds(spec->fmt, bounds);
        for (int g = 0; g < q->n_groups; g++) {
            size_t i0 = (size_t)g * 64;
            int n = total - i0 < 64 ? (int)(total - i0) : 64;
            bnb_quantize_block(spec->fmt, bounds, w + i0, n, q->data + i0 / 2, &q->scale[g]);
        }
        if (spec->dq) { /* the absmax values in scale become codes in zero and nested scales */
            int n_nested = (q->n_groups + 255) / 256;
            uint8_t *codes = malloc((size_t)q->n_groups);
            float *nested = malloc(sizeof(float) * (size_t)(n_nested + 1));
            if (!codes || !nested) {
                free(codes);
                free(nested);
                pq_qweight_free(q);
                return pq_fail(err, POLYQ_NOMEM, "out of memory quantizing a [%d, %d] matrix",
                               n_out, n_in);
            }
            bnb_double_quant(q->scale, q->n_groups, codes, nested);
            free(q->scale);
            q->scale = nested;
            q->zero = codes;
            q->dq = true;
        }
    } else {
        for (int r = 0; r < n_out; r++)
            for (int g = 0; g < q->n_groups; g++)
                t->quantize(w + (size_t)r * n_in + (size_t)g * B,
                            q->data + (size_t)r * q->row_bytes + (size_t)g * t->block_bytes);
    }
    *out = q;
    return 0;
}

#if defined(__x86_64__) && (defined(__GNUC__) || defined(__clang__))
#include <immintrin.h>
#define PQ_AVX512 __attribute__((target("avx2,avx512f,avx512bw,avx512vl")))

/* 16 integer codes (bytes) as floats times d, plus m: the legacy formats' (q - sub) * d and
 * q * d + m */
PQ_AVX512 static inline void put16(float *out, __m512i q, float d, float m, bool offset)
{
    __m512 v = _mm512_mul_ps(_mm512_cvtepi32_ps(q), _mm512_set1_ps(d));
    _mm512_storeu_ps(out, offset ? _mm512_add_ps(v, _mm512_set1_ps(m)) : v);
}

/* The field layout of a 4- or 5-bit legacy format, NULL for others */
static const legacy *legacy_of(pq_qfmt fmt)
{
    return fmt == PQ_QF_Q4_0   ? &L40
           : fmt == PQ_QF_Q4_1 ? &L41
           : fmt == PQ_QF_Q5_0 ? &L50
           : fmt == PQ_QF_Q5_1 ? &L51
                               : NULL;
}

/* One legacy block's 32 codes before the centring subtraction (0..15 or 0..31), codes 0..15 in
 * *a and 16..31 in *c, as legacy_dequant and legacy_decode read them */
PQ_AVX512 static inline void legacy_codes(const legacy *f, const uint8_t *y, __m128i *a, __m128i *c)
{
    const __m128i lo = _mm_set1_epi8(0x0f), top = _mm_set1_epi8(0x10);
    __m128i v = _mm_loadu_si128((const __m128i *)(const void *)(y + f->qs));
    *a = _mm_and_si128(v, lo);
    *c = _mm_and_si128(_mm_srli_epi16(v, 4), lo);
    if (f->five) { /* bit j of qh is bit 4 of code j */
        const uint8_t *hb = y + f->qh;
        uint32_t qh =
            (uint32_t)hb[0] | (uint32_t)hb[1] << 8 | (uint32_t)hb[2] << 16 | (uint32_t)hb[3] << 24;
        *a = _mm_or_si128(*a, _mm_maskz_mov_epi8((__mmask16)(qh & 0xffff), top));
        *c = _mm_or_si128(*c, _mm_maskz_mov_epi8((__mmask16)(qh >> 16), top));
    }
}

/* A row of nb blocks of Q8_0, Q4_0, Q4_1, Q5_0 or Q5_1: the bits of their block functions */
PQ_AVX512 static bool legacy_row_avx512(pq_qfmt fmt, const uint8_t *y, int nb, float *out)
{
    if (fmt == PQ_QF_Q8_0) {
        for (int b = 0; b < nb; b++, y += sizeof(pq_block_q8_0), out += 32) {
            float d = get_f16(y + PQ_AT(pq_block_q8_0, d));
            const uint8_t *qs = y + PQ_AT(pq_block_q8_0, qs);
            for (int h = 0; h < 32; h += 16)
                put16(
                    out + h,
                    _mm512_cvtepi8_epi32(_mm_loadu_si128((const __m128i *)(const void *)(qs + h))),
                    d, 0, false);
        }
        return true;
    }
    const legacy *f = legacy_of(fmt);
    if (!f)
        return false;
    size_t bytes = pq_qfmt_get(fmt)->block_bytes;
    const __m512i sub = _mm512_set1_epi32(legacy_sub(f));
    for (int b = 0; b < nb; b++, y += bytes, out += 32) {
        float d = get_f16(y + f->d), m = f->offset ? get_f16(y + f->m) : 0;
        __m128i a, c;
        legacy_codes(f, y, &a, &c);
        put16(out, _mm512_sub_epi32(_mm512_cvtepu8_epi32(a), sub), d, m, f->offset);
        put16(out + 16, _mm512_sub_epi32(_mm512_cvtepu8_epi32(c), sub), d, m, f->offset);
    }
    return true;
}

/* A row of nb blocks of Q4_0, Q4_1, Q5_0 or Q5_1 as integer codes and headers: the bits of
 * legacy_decode, block by block */
PQ_AVX512 static bool legacy_decode_row_avx512(pq_qfmt fmt, const uint8_t *y, int nb, int8_t *q,
                                               pq_dec *h)
{
    const legacy *f = legacy_of(fmt);
    if (!f)
        return false;
    size_t bytes = pq_qfmt_get(fmt)->block_bytes;
    const __m128i sub = _mm_set1_epi8((char)legacy_sub(f));
    for (int b = 0; b < nb; b++, y += bytes, q += 32, h++) {
        __m128i a, c;
        legacy_codes(f, y, &a, &c);
        _mm_storeu_si128((__m128i *)(void *)q, _mm_sub_epi8(a, sub));
        _mm_storeu_si128((__m128i *)(void *)(q + 16), _mm_sub_epi8(c, sub));
        h->d = get_f16(y + f->d);
        h->dmin = f->offset ? get_f16(y + f->m) : 0.0f;
        h->sc[0] = 1;
        h->mn[0] = 0;
    }
    return true;
}

/* Whether the row functions can run: AVX-512 F, BW and VL */
static bool rows_avx512(void)
{
    static int have = -1; /* the same answer on every thread: a benign race */
    if (have < 0)
        have = __builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512bw") &&
               __builtin_cpu_supports("avx512vl");
    return have;
}

/* The formats with a row function, whole rows at once */
static bool dequant_row_fast(pq_qfmt fmt, const uint8_t *row, int nb, float *out)
{
    return rows_avx512() && (legacy_row_avx512(fmt, row, nb, out) ||
                             pq_kquant_dequant_row_avx512(fmt, row, nb, out));
}

static bool decode_row_fast(pq_qfmt fmt, const uint8_t *row, int nb, int8_t *codes, pq_dec *h)
{
    return rows_avx512() && legacy_decode_row_avx512(fmt, row, nb, codes, h);
}
#else
static bool dequant_row_fast(pq_qfmt fmt, const uint8_t *row, int nb, float *out)
{
    (void)fmt, (void)row, (void)nb, (void)out;
    return false;
}

static bool decode_row_fast(pq_qfmt fmt, const uint8_t *row, int nb, int8_t *codes, pq_dec *h)
{
    (void)fmt, (void)row, (void)nb, (void)codes, (void)h;
    return false;
}
#endif

void pq_qweight_blocks_dequant_row(const pq_qweight *q, int r, float *out)
{
    const pq_qfmt_traits *t = pq_qfmt_get(q->fmt);
    if (t->flat) {
        const float *code = pq_bnb_code(q->fmt);
        size_t i0 = (size_t)r * (size_t)q->n_in;
        for (int i = 0; i < q->n_in; i++) {
            size_t k = i0 + (size_t)i;
            uint8_t b = q->data[k / 2];
            float absmax = q->dq ? pq_bnb_dq_absmax(q, (int)(k / 64)) : q->scale[k / 64];
            out[i] = code[k & 1 ? b & 15 : b >> 4] * absmax;
        }
        return;
    }
    const uint8_t *row = q->data + (size_t)r * q->row_bytes;
    if (dequant_row_fast(q->fmt, row, q->n_groups, out))
        return;
    for (int g = 0; g < q->n_groups; g++)
        t->dequant(row + (size_t)g * t->block_bytes, out + (size_t)g * t->block);
}

void pq_qweight_decode_row(const pq_qweight *q, int r, int8_t *codes, pq_dec *h)
{
    const pq_qfmt_traits *t = pq_qfmt_get(q->fmt);
    const uint8_t *row = q->data + (size_t)r * q->row_bytes;
    if (decode_row_fast(q->fmt, row, q->n_groups, codes, h))
        return;
    for (int g = 0; g < q->n_groups; g++)
        t->decode(row + (size_t)g * t->block_bytes, codes + (size_t)g * t->block, h + g);
}

int pq_qweight_view(pq_qfmt f, int n_out, int n_in, const uint8_t *data, size_t nbytes,
                    const char *what, pq_qweight **out, polyq_err *err)
{
    *out = NULL;
    const pq_qfmt_traits *t = pq_qfmt_get(f);
    if (!t || t->block <= 0 || t->flat)
        return pq_fail(err, POLYQ_UNSUPPORTED, "%s: not a block format that rows can hold", what);
    if (n_out <= 0 || n_in <= 0 || n_in % t->block)
        return pq_fail(err, POLYQ_FORMAT, "%s: rows of %d weights are not whole %s blocks of %d",
                       what, n_in, t->name, t->block);
    size_t row = (size_t)(n_in / t->block) * t->block_bytes, need = 0;
    if (!pq_mul_size(row, (size_t)n_out, &need) || need != nbytes)
        return pq_fail(err, POLYQ_FORMAT, "%s: %zu bytes, but %d rows of %d %s weights take %zu",
                       what, nbytes, n_out, n_in, t->name, need);
    pq_qweight *q = calloc(1, sizeof *q);
    if (!q)
        return pq_fail(err, POLYQ_NOMEM, "out of memory");
    q->fmt = f;
    q->bits = t->bits;
    q->n_out = n_out;
    q->n_in = n_in;
    q->gran = PQ_GRAN_GROUP;
    q->group = t->block;
    q->n_groups = n_in / t->block;
    q->sym = t->sym;
    q->row_bytes = row;
    q->data = (uint8_t *)data;
    q->borrowed = true;
    *out = q;
    return 0;
}
