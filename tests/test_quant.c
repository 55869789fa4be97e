/* Round-to-nearest packed weights: pack/unpack round trip at every width, error within half
 * a step, all-zero and constant groups, sizes not divisible by the group, spec parsing, the
 * fast packed linear against the scalar reference, and memory that shrinks as it should. */
#include <fenv.h>
#include <math.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#include "format/safetensors.h"
#include "kernels/ops.h"
#include "model/model.h"
#include "quant/awq.h"
#include "quant/blocks.h"
#include "quant/ggml_dot.h"
#include "quant/gptq.h"
#include "quant/qformat.h"
#include "quant/round.h"
#include "test.h"

static float frand(uint64_t *s)
{
    *s = *s * 6364136223846793005ULL + 1442695040888963407ULL;
    return (float)((*s >> 40) & 0xffffff) / 16777216.0f * 2.0f - 1.0f;
}

TEST(quant_pack_roundtrip_all_widths)
{
    for (int bits = 2; bits <= 8; bits++) {
        uint8_t row[64] = {0};
        unsigned vals[37];
        for (int i = 0; i < 37; i++) {
            vals[i] = (unsigned)(i * 7 + bits) % (1u << bits);
            pq_pack(row, bits, (size_t)i, vals[i]);
        }
        for (int i = 0; i < 37; i++)
            CHECK_INT(pq_unpack(row, bits, (size_t)i), vals[i]);
    }
    uint8_t b[1] = {0};
    pq_pack(b, 4, 0, 0x3);
    pq_pack(b, 4, 1, 0xa);
    CHECK_INT(b[0], 0xa3); /* two int4 per byte, the first in the low nibble */
}

/* Dequantized weights never leave half a step of the originals, for every layout. */
TEST(quant_rtn_error_within_half_step)
{
    const char *specs[] = {"int8",     "int4-g128",   "int4-g128-sym",     "int3-g64",
                           "int2-g16", "int5-tensor", "int6-channel-asym", "int4-g7"};
    int n_out = 9, n_in = 300; /* 300 is not a multiple of 128, 64, 16 or 7 */
    float *w = malloc(sizeof(float) * n_out * n_in), *row = malloc(sizeof(float) * n_in);
    uint64_t seed = 1;
    for (int i = 0; i < n_out * n_in; i++)
        w[i] = frand(&seed) * (1 + i % 5);
    for (int r = 0; r < n_in; r++)
        w[3 * n_in + r] = 0; /* an all-zero row */
    for (int r = 0; r < n_in; r++)
        w[4 * n_in + r] = 0.25f; /* a constant row */
    polyq_err err = {0};
    for (size_t s = 0; s < sizeof specs / sizeof specs[0]; s++) {
        pq_qspec spec;
        pq_qweight *q = NULL;
        CHECK_OK(pq_qspec_parse(specs[s], &spec, &err));
        CHECK_OK(pq_qweight_rtn(w, n_out, n_in, &spec, &q, &err));
        if (!q)
            continue;
        for (int r = 0; r < n_out; r++) {
            pq_qweight_dequant_row(q, r, row);
            for (int i = 0; i < n_in; i++) {
                int g = q->gran == PQ_GRAN_TENSOR ? 0 : r * q->n_groups + i / q->group;
                float step = q->scale[g];
                float e = fabsf(row[i] - w[r * n_in + i]);
                if (!(e <= 0.5f * step * (1 + 1e-5f) + 1e-7f)) {
                    FAILF("%s row %d col %d: error %g > half step %g", specs[s], r, i, e, step / 2);
                    r = n_out;
                    break;
                }
            }
        }
        pq_qweight_dequant_row(q, 3, row);
        for (int i = 0; i < n_in; i++)
            CHECK(row[i] == 0.0f);
        if (q->gran != PQ_GRAN_TENSOR) {
            pq_qweight_dequant_row(q, 4, row);
            for (int i = 0; i < n_in; i++)
                CHECK_NEAR(row[i], 0.25f, 1e-6);
        }
        pq_qweight_free(q);
    }
    free(w);
    free(row);
}

TEST(quant_storage_bits)
{
    polyq_err err = {0};
    pq_qspec spec;
    pq_qweight *q = NULL;
    float *w = calloc(64 * 256, sizeof(float));
    CHECK_OK(pq_qspec_parse("int4-g128", &spec, &err));
    CHECK_OK(pq_qweight_rtn(w, 64, 256, &spec, &q, &err));
    /* 4 bits + (f32 scale + u8 zero) / 128 = 4.3125 bits per weight */
    CHECK_NEAR(pq_qweight_bits(q) / (64 * 256), 4.3125, 1e-12);
    CHECK_INT(q->row_bytes, 128);
    pq_qweight_free(q);
    CHECK_OK(pq_qspec_parse("int3", &spec, &err));
    CHECK_OK(pq_qweight_rtn(w, 64, 256, &spec, &q, &err));
    CHECK_INT(q->row_bytes, 96);
    CHECK(!q->sym);
    pq_qweight_free(q);
    free(w);
}

TEST(quant_spec_parsing)
{
    polyq_err err = {0};
    pq_qspec s;
    CHECK_OK(pq_qspec_parse("int8", &s, &err));
    CHECK(s.bits == 8 && s.sym && s.gran == PQ_GRAN_CHANNEL && !s.head);
    CHECK_OK(pq_qspec_parse("int4-g128", &s, &err));
    CHECK(s.bits == 4 && !s.sym && s.gran == PQ_GRAN_GROUP && s.group == 128);
    CHECK_OK(pq_qspec_parse("int4-g128-sym-head", &s, &err));
    CHECK(s.sym && s.head);
    CHECK_OK(pq_qspec_parse("fp32", &s, &err));
    CHECK(s.none);
    const char *bad[] = {
        "int9",  "int1",          "int4-g0", "int4-gx",    "int4-g128-g64",          "int4-",
        "q4_0x", "int4-sym-asym", "",        "int4 -g128", "int99999999999999999999"};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++)
        CHECK_FAILS(pq_qspec_parse(bad[i], &s, &err), POLYQ_INVALID_ARG, "is not understood");
}

/* The fast linear (f32, packed integers, F16 and BF16 as stored; matrix products on expanded
 * chunks, 1 and 2 threads) against the scalar reference: normalized squared error and
 * bit-identical across thread counts. The F16/BF16 reference is also checked against the f32
 * product over the same (rounded) weights. */
TEST(quant_fast_linear_matches_reference)
{
    int M = 13, K = 200, N = 150;
    float *w = malloc(sizeof(float) * N * K), *x = malloc(sizeof(float) * M * K),
          *b = malloc(sizeof(float) * N), *ref = malloc(sizeof(float) * M * N),
          *out[2] = {malloc(sizeof(float) * M * N), malloc(sizeof(float) * M * N)};
    uint64_t seed = 7;
    for (int i = 0; i < N * K; i++)
        w[i] = frand(&seed);
    for (int i = 0; i < M * K; i++)
        x[i] = frand(&seed);
    for (int i = 0; i < N; i++)
        b[i] = frand(&seed);
    polyq_err err = {0};
    pq_qspec spec;
    pq_qweight *q = NULL;
    CHECK_OK(pq_qspec_parse("int3-g32", &spec, &err));
    CHECK_OK(pq_qweight_rtn(w, N, K, &spec, &q, &err));
    uint16_t *h[2] = {malloc(2 * N * K), malloc(2 * N * K)};
    float *hw = malloc(sizeof(float) * N * K), *href = malloc(sizeof(float) * M * N);
    for (int i = 0; i < N * K; i++) {
        h[0][i] = pq_f32_to_f16(w[i]);
        h[1][i] = pq_f32_to_bf16(w[i]);
    }
    for (int variant = 0; variant < 4; variant++) {
        pq_linear lin = {.n_out = N, .n_in = K, .bias = b};
        if (variant == 0)
            lin.w = w;
        else if (variant == 1)
            lin.q = q;
        else {
            lin.w16 = h[variant - 2];
            lin.w16_bf16 = variant == 3;
            for (int i = 0; i < N * K; i++) /* the same weights, rounded, as f32 */
                hw[i] = variant == 3 ? pq_bf16_to_f32(h[1][i]) : pq_f16_to_f32(h[0][i]);
            pq_linear fl = {.n_out = N, .n_in = K, .bias = b, .w = hw};
            pq_ref_linear(href, x, M, &fl);
        }
        pq_ref_linear(ref, x, M, &lin);
        if (variant >= 2)
            CHECK(memcmp(ref, href, sizeof(float) * M * N) == 0);
        for (int th = 1; th <= 2; th++) {
            pq_ops ops;
            CHECK(pq_ops_init(&ops, th, K, 16) == 0);
            pq_linear_fwd(&ops, out[th - 1], x, M, &lin);
            pq_ops_free(&ops);
        }
        double num = 0, den = 0;
        for (int i = 0; i < M * N; i++) {
            CHECK(isfinite(out[0][i]));
            num += (out[0][i] - ref[i]) * (double)(out[0][i] - ref[i]);
            den += (double)ref[i] * ref[i];
        }
        CHECK(num / den < 1e-10);
        CHECK(memcmp(out[0], out[1], sizeof(float) * M * N) == 0);
    }
    pq_qweight_free(q);
    free(h[0]);
    free(h[1]);
    free(hw);
    free(href);
    free(w);
    free(x);
    free(b);
    free(ref);
    free(out[0]);
    free(out[1]);
}

/* llama.cpp's Q8_0..Q5_1 and bitsandbytes' NF4/FP4: the stored bytes equal the tools' own
 * (gguf-py's port of the ggml reference quantizers, bitsandbytes.functional.quantize_4bit;
 * tools/gen_quant_golden.py), and so does the dequantization, on inputs with zero, constant
 * and tiny blocks, outliers and exact rounding ties. */
static void check_blocks_in(const char *golden, const char *input, const char *const *fmts,
                            size_t n_fmts, const char *sfx)
{
    polyq_err err = {0};
    pq_tensors g = {0};
    CHECK_OK(pq_tensors_open_file(&g, golden, &err));
    const pq_tensor_info *xi = pq_tensors_find(&g, input);
    CHECK(xi && xi->n_dims == 2);
    if (!xi)
        return;
    int R = (int)xi->shape[0], K = (int)xi->shape[1];
    const float *x = (const float *)xi->data;
    float *row = malloc(sizeof(float) * (size_t)K);
    for (size_t f = 0; f < n_fmts; f++) {
        pq_qspec spec;
        pq_qweight *q = NULL;
        char name[32];
        CHECK_OK(pq_qspec_parse(fmts[f], &spec, &err));
        CHECK_OK(pq_qweight_rtn(x, R, K, &spec, &q, &err));
        snprintf(name, sizeof name, "%s%s.data", fmts[f], sfx);
        const pq_tensor_info *want = pq_tensors_find(&g, name);
        snprintf(name, sizeof name, "%s%s.deq", fmts[f], sfx);
        const pq_tensor_info *deq = pq_tensors_find(&g, name);
        CHECK(q && want && deq);
        if (!q || !want || !deq) {
            pq_qweight_free(q);
            continue;
        }
        size_t stored = q->row_bytes ? q->row_bytes * (size_t)R : ((size_t)R * K + 1) / 2;
        CHECK_INT(stored, want->nbytes);
        size_t first_bad = SIZE_MAX;
        for (size_t i = 0; i < want->nbytes && i < stored; i++)
            if (q->data[i] != ((const uint8_t *)want->data)[i] && first_bad == SIZE_MAX)
                first_bad = i;
        if (first_bad != SIZE_MAX)
            FAILF("%s: stored byte %zu is %u, the tool stores %u", fmts[f], first_bad,
                  q->data[first_bad], ((const uint8_t *)want->data)[first_bad]);
        if (q->scale) {
            snprintf(name, sizeof name, "%s%s.absmax", fmts[f], sfx);
            const pq_tensor_info *am = pq_tensors_find(&g, name);
            CHECK(am && am->numel == (size_t)q->n_groups &&
                  !memcmp(am->data, q->scale, am->nbytes));
        }
        int bad = 0;
        for (int r = 0; r < R; r++) {
            pq_qweight_dequant_row(q, r, row);
            for (int i = 0; i < K; i++)
                bad += row[i] != ((const float *)deq->data)[(size_t)r * K + i];
        }
        if (bad)
            FAILF("%s: %d dequantized values differ from the tool's", fmts[f], bad);
        pq_qweight_free(q);
    }
    free(row);
    pq_tensors_close(&g);
}

static void check_blocks(const char *input, const char *const *fmts, size_t n_fmts, const char *sfx)
{
    check_blocks_in("tests/golden/quant_blocks.safetensors", input, fmts, n_fmts, sfx);
}

TEST(quant_block_formats_match_tools)
{
    static const char *const fmts[] = {"q8_0", "q4_0", "q4_1", "q5_0", "q5_1", "nf4", "fp4"};
    check_blocks("x", fmts, 7, "");
    /* bitsandbytes' flat blocks across rows of 25, with a short last block */
    check_blocks("x2", fmts + 5, 2, "2");
}

/* llama.cpp's k-quants against ggml's own C reference quantizers (tools/gen_kquant_golden.py):
 * rows of one super-block (the same hard cases as above) and rows of two. */
TEST(quant_kquants_match_ggml_reference)
{
    static const char *const fmts[] = {"q2_k", "q3_k", "q4_k", "q5_k", "q6_k"};
    check_blocks("x", fmts, 5, "");
    check_blocks("xk", fmts, 5, "k");
}

static double rnd_normal(uint64_t *s);

/* Whole rows dequantized and decoded (AVX-512 row functions where the CPU has them) against
 * the format's block functions, block by block: the same bits for every ggml format, on rows whose
 * bytes are overwritten with random ones after quantizing (every code and high-bit pattern), all
 * but the f16 fields, which stay the quantizer's. */
TEST(quant_dequant_rows_equal_blocks)
{
    static const char *const fmts[] = {"q8_0", "q4_0", "q4_1", "q5_0", "q5_1",
                                       "q2_k", "q3_k", "q4_k", "q5_k", "q6_k"};
    static const int halves[][2] = {/* where each format's f16 fields lie */
                                    {PQ_AT(pq_block_q8_0, d), -1},
                                    {PQ_AT(pq_block_q4_0, d), -1},
                                    {PQ_AT(pq_block_q4_1, d), PQ_AT(pq_block_q4_1, m)},
                                    {PQ_AT(pq_block_q5_0, d), -1},
                                    {PQ_AT(pq_block_q5_1, d), PQ_AT(pq_block_q5_1, m)},
                                    {PQ_AT(pq_block_q2_k, d), PQ_AT(pq_block_q2_k, dmin)},
                                    {PQ_AT(pq_block_q3_k, d), -1},
                                    {PQ_AT(pq_block_q4_k, d), PQ_AT(pq_block_q4_k, dmin)},
                                    {PQ_AT(pq_block_q5_k, d), PQ_AT(pq_block_q5_k, dmin)},
                                    {PQ_AT(pq_block_q6_k, d), -1}};
    enum { R = 3, K = 1024 };
    float *w = malloc(sizeof(float) * R * K), *row = malloc(sizeof(float) * K),
          *ref = malloc(sizeof(float) * K);
    uint64_t st = 99;
    for (int i = 0; i < R * K; i++)
        w[i] = (float)(rnd_normal(&st) * (1 + i % 7));
    polyq_err err = {0};
    for (size_t f = 0; f < sizeof fmts / sizeof fmts[0]; f++) {
        pq_qspec spec;
        pq_qweight *q = NULL;
        CHECK_OK(pq_qspec_parse(fmts[f], &spec, &err));
        CHECK_OK(pq_qweight_rtn(w, R, K, &spec, &q, &err));
        if (!q)
            continue;
        const pq_qfmt_traits *t = pq_qfmt_get(q->fmt);
        size_t n = q->row_bytes * R;
        uint8_t *kept = malloc(n);
        memcpy(kept, q->data, n);
        for (size_t i = 0; i < n; i++) {
            st = st * 6364136223846793005ull + 1442695040888963407ull;
            q->data[i] = (uint8_t)(st >> 56);
        }
        for (int r = 0; r < R; r++)
            for (int g = 0; g < q->n_groups; g++) {
                size_t at = (size_t)r * q->row_bytes + (size_t)g * t->block_bytes;
                for (int k = 0; k < 2 && halves[f][k] >= 0; k++)
                    memcpy(q->data + at + halves[f][k], kept + at + halves[f][k], 2);
            }
        int bad = 0;
        for (int r = 0; r < R; r++) {
            pq_qweight_dequant_row(q, r, row);
            for (int g = 0; g < q->n_groups; g++)
                t->dequant(q->data + (size_t)r * q->row_bytes + (size_t)g * t->block_bytes,
                           ref + (size_t)g * t->block);
            for (int i = 0; i < K; i++)
                bad += memcmp(&row[i], &ref[i], sizeof(float)) != 0;
        }
        if (bad)
            FAILF("%s: %d weights of the row function differ from the block function's", fmts[f],
                  bad);
        /* the same for the integer codes and headers of llama.cpp's numerics */
        int nb = q->n_groups;
        int8_t *codes = malloc((size_t)K), *codes_ref = malloc((size_t)K);
        pq_dec *h = calloc((size_t)nb, sizeof *h), *h_ref = calloc((size_t)nb, sizeof *h_ref);
        bad = 0;
        for (int r = 0; r < R && t->decode; r++) {
            memset(h, 0, sizeof *h * (size_t)nb);
            memset(h_ref, 0, sizeof *h_ref * (size_t)nb);
            pq_qweight_decode_row(q, r, codes, h);
            for (int g = 0; g < nb; g++)
                t->decode(q->data + (size_t)r * q->row_bytes + (size_t)g * t->block_bytes,
                          codes_ref + (size_t)g * t->block, h_ref + g);
            bad += memcmp(codes, codes_ref, (size_t)K) != 0;
            bad += memcmp(h, h_ref, sizeof *h * (size_t)nb) != 0;
        }
        if (bad)
            FAILF("%s: the row's decoded codes or headers differ from the block function's",
                  fmts[f]);
        free(codes);
        free(codes_ref);
        free(h);
        free(h_ref);
        free(kept);
        pq_qweight_free(q);
    }
    free(w);
    free(row);
    free(ref);
}

static double rnd_normal(uint64_t *s)
{
    double u1 = 0, u2 = 0;
    for (int k = 0; k < 2; k++) {
        *s = *s * 6364136223846793005ull + 1442695040888963407ull;
        double u = ((double)(*s >> 11) + 0.5) / 9007199254740992.0;
        if (k == 0)
            u1 = u;
        else
            u2 = u;
    }
    return sqrt(-2 * log(u1)) * cos(2 * M_PI * u2);
}

static bool same_qweight(const pq_qweight *a, const pq_qweight *b)
{
    size_t ns = (size_t)a->n_out * a->n_groups;
    return a->row_bytes == b->row_bytes && a->n_groups == b->n_groups &&
           !memcmp(a->data, b->data, a->row_bytes * (size_t)a->n_out) &&
           !memcmp(a->scale, b->scale, ns * sizeof(float)) &&
           (!a->zero || !memcmp(a->zero, b->zero, ns));
}

/* GPTQ with H = I has no error feedback: exactly round-to-nearest, with and without groups
 * and act-order. */
TEST(quant_gptq_identity_hessian_is_rtn)
{
    enum { N = 24, K = 96 };
    uint64_t s = 5;
    float *w = malloc(sizeof(float) * N * K);
    double *h = malloc(sizeof(double) * K * K);
    for (int i = 0; i < N * K; i++)
        w[i] = (float)rnd_normal(&s);
    const char *specs[] = {"int4", "int4-g32", "int3-g16", "int8-asym"};
    for (int sp = 0; sp < 4; sp++)
        for (int act = 0; act < 2; act++) {
            if (act && sp != 0)
                continue; /* act-order groups are static: same as RTN only per channel */
            polyq_err err = {0};
            pq_qspec spec;
            CHECK_OK(pq_qspec_parse(specs[sp], &spec, &err));
            memset(h, 0, sizeof(double) * K * K);
            for (int i = 0; i < K; i++)
                h[i * K + i] = 1 + (act ? 0.01 * i : 0); /* act: a real reordering */
            pq_qweight *g = NULL, *r = NULL;
            pq_gptq_opts o = {.act_order = act};
            CHECK_OK(pq_gptq(w, N, K, h, &spec, &o, &g, &err));
            CHECK_OK(pq_qweight_rtn(w, N, K, &spec, &r, &err));
            if (g && r && !same_qweight(g, r))
                FAILF("%s%s: GPTQ with a diagonal Hessian differs from RTN", specs[sp],
                      act ? " act-order" : "");
            pq_qweight_free(g);
            pq_qweight_free(r);
        }
    free(w);
    free(h);
}

/* On correlated inputs GPTQ's output error ||W X - Q X||^2 is below round-to-nearest's. */
TEST(quant_gptq_beats_rtn_on_correlated_inputs)
{
    enum { N = 32, K = 64, T = 512 };
    uint64_t s = 9;
    float *w = malloc(sizeof(float) * N * K), *x = malloc(sizeof(float) * T * K),
          *mix = malloc(sizeof(float) * K * K);
    double *h = calloc((size_t)K * K, sizeof(double));
    for (int i = 0; i < N * K; i++)
        w[i] = (float)rnd_normal(&s);
    for (int i = 0; i < K * K; i++)
        mix[i] = (float)rnd_normal(&s) / 8 + (i % (K + 1) == 0 ? 1.0f : 0.0f);
    for (int t = 0; t < T; t++) { /* x = z * mix: correlated features of unequal scale */
        float z[K];
        for (int k = 0; k < K; k++)
            z[k] = (float)rnd_normal(&s) * (k < 8 ? 4.0f : 1.0f);
        for (int j = 0; j < K; j++) {
            float v = 0;
            for (int k = 0; k < K; k++)
                v += z[k] * mix[k * K + j];
            x[t * K + j] = v;
        }
    }
    for (int t = 0; t < T; t++)
        for (int i = 0; i < K; i++)
            for (int j = 0; j < K; j++)
                h[i * K + j] += 2.0 * x[t * K + i] * x[t * K + j] / T;
    const char *specs[] = {"int4", "int4-g16", "int3-g32", "int2-g16"};
    for (int sp = 0; sp < 4; sp++)
        for (int act = 0; act < 2; act++) {
            polyq_err err = {0};
            pq_qspec spec;
            CHECK_OK(pq_qspec_parse(specs[sp], &spec, &err));
            double *hc = malloc(sizeof(double) * K * K);
            memcpy(hc, h, sizeof(double) * K * K);
            pq_qweight *g = NULL, *r = NULL;
            pq_gptq_opts o = {.act_order = act};
            CHECK_OK(pq_gptq(w, N, K, hc, &spec, &o, &g, &err));
            CHECK_OK(pq_qweight_rtn(w, N, K, &spec, &r, &err));
            double eg = 0, er = 0;
            float rg[K], rr[K];
            for (int n = 0; n < N && g && r; n++) {
                pq_qweight_dequant_row(g, n, rg);
                pq_qweight_dequant_row(r, n, rr);
                for (int t = 0; t < T; t++) {
                    double dg = 0, dr = 0;
                    for (int k = 0; k < K; k++) {
                        dg += (double)(w[n * K + k] - rg[k]) * x[t * K + k];
                        dr += (double)(w[n * K + k] - rr[k]) * x[t * K + k];
                    }
                    eg += dg * dg;
                    er += dr * dr;
                }
            }
            if (getenv("PQ_TEST_VERBOSE"))
                fprintf(stderr, "  %s%s: output error GPTQ %.4g, RTN %.4g\n", specs[sp],
                        act ? " act" : "", eg, er);
            if (!(eg < er))
                FAILF("%s%s: GPTQ error %g not below RTN %g", specs[sp], act ? " act-order" : "",
                      eg, er);
            pq_qweight_free(g);
            pq_qweight_free(r);
            free(hc);
        }
    free(w);
    free(x);
    free(mix);
    free(h);
}

/* AWQ: the exponent 0 alone is round-to-nearest exactly; on inputs with a few large channels
 * (what AWQ is for) the chosen scales lower the output error below round-to-nearest's and
 * never raise it. */
TEST(quant_awq_scales)
{
    enum { N = 32, K = 64, T = 400 };
    uint64_t s = 21;
    float *w = malloc(sizeof(float) * N * K), *x = malloc(sizeof(float) * T * K);
    double *h = calloc((size_t)K * K, sizeof(double)), xm[K] = {0};
    for (int i = 0; i < N * K; i++)
        w[i] = (float)rnd_normal(&s);
    for (int t = 0; t < T; t++)
        for (int k = 0; k < K; k++)
            x[t * K + k] =
                (float)rnd_normal(&s) * (k % 16 == 3 ? 20.0f : 1.0f); /* 4 salient channels */
    for (int t = 0; t < T; t++)
        for (int i = 0; i < K; i++) {
            xm[i] += fabs(x[t * K + i]) / T;
            for (int j = 0; j < K; j++)
                h[i * K + j] += (double)x[t * K + i] * x[t * K + j] / T;
        }
    polyq_err err = {0};
    const char *specs[] = {"int4-g32", "int3-g16", "int4"};
    for (int sp = 0; sp < 3; sp++) {
        pq_qspec spec;
        CHECK_OK(pq_qspec_parse(specs[sp], &spec, &err));
        const float *ws[1] = {w};
        int no[1] = {N};
        pq_qweight *a = NULL, *r = NULL;
        double best_a = -1, eb = 0, er = 0;
        CHECK_OK(pq_awq(ws, no, 1, K, h, xm, &spec, 1, &a, &best_a, &eb, &er, &err));
        CHECK_OK(pq_qweight_rtn(w, N, K, &spec, &r, &err));
        CHECK(a && r && best_a == 0 && !a->in_scale && same_qweight(a, r));
        pq_qweight_free(a);
        a = NULL;
        CHECK_OK(pq_awq(ws, no, 1, K, h, xm, &spec, 20, &a, &best_a, &eb, &er, &err));
        if (getenv("PQ_TEST_VERBOSE"))
            fprintf(stderr, "  %s: AWQ exponent %.2f, output error %.4g (RTN %.4g)\n", specs[sp],
                    best_a, eb, er);
        if (!(eb < er && best_a > 0 && a && a->in_scale))
            FAILF("%s: AWQ error %g (exponent %g), RTN %g", specs[sp], eb, best_a, er);
        pq_qweight_free(a);
        pq_qweight_free(r);
    }
    free(w);
    free(x);
    free(h);
}

/* W8A8: the fast product (threads, chunks) and the scalar reference equal an integer product
 * written out here: per-token int8 activations, per-channel int8 weights, int32 sums. */
TEST(quant_w8a8_integer_product)
{
    enum { M = 7, N = 70, K = 45 };
    uint64_t s = 77;
    float *w = malloc(sizeof(float) * N * K), *x = malloc(sizeof(float) * M * K), b[N];
    for (int i = 0; i < N * K; i++)
        w[i] = (float)rnd_normal(&s);
    for (int i = 0; i < M * K; i++)
        x[i] = (float)rnd_normal(&s) * (i % 9 == 0 ? 30.0f : 1.0f);
    for (int n = 0; n < N; n++)
        b[n] = (float)rnd_normal(&s);
    for (int k = 0; k < K; k++)
        x[2 * K + k] = 0; /* a zero row */
    polyq_err err = {0};
    pq_qspec spec;
    CHECK_OK(pq_qspec_parse("w8a8", &spec, &err));
    CHECK(spec.act8 && spec.bits == 8 && spec.sym);
    pq_qweight *q = NULL;
    CHECK_OK(pq_qweight_rtn(w, N, K, &spec, &q, &err));
    if (!q)
        return;
    q->act8 = true;
    pq_linear lin = {.n_out = N, .n_in = K, .bias = b, .q = q};
    float want[M * N], fast[M * N], ref[M * N];
    for (int m = 0; m < M; m++) {
        float amax = 0;
        for (int k = 0; k < K; k++)
            amax = fmaxf(amax, fabsf(x[m * K + k]));
        float sx = amax / 127.0f;
        for (int n = 0; n < N; n++) {
            int32_t acc = 0;
            for (int k = 0; k < K; k++) {
                int xi = sx > 0 ? (int)lrintf(x[m * K + k] / sx) : 0;
                xi = xi < -127 ? -127 : xi > 127 ? 127 : xi;
                acc += xi * ((int)q->data[(size_t)n * q->row_bytes + k] - 128);
            }
            want[m * N + n] = (float)acc * (sx * q->scale[n]) + b[n];
        }
    }
    pq_ops ops;
    CHECK(pq_ops_init(&ops, 2, K, 16) == 0);
    pq_linear_fwd(&ops, fast, x, M, &lin);
    pq_ref_linear_w8a8(ref, N, x, M, &lin);
    CHECK(!memcmp(fast, want, sizeof want));
    CHECK(!memcmp(ref, want, sizeof want));
    /* and equal, to float rounding, to the product of the dequantized activations and weights */
    double worst = 0;
    float row[K];
    for (int n = 0; n < N; n++) {
        pq_qweight_dequant_row(q, n, row);
        for (int m = 0; m < M; m++) {
            float amax = 0;
            for (int k = 0; k < K; k++)
                amax = fmaxf(amax, fabsf(x[m * K + k]));
            double sx = amax / 127.0f, v = b[n];
            for (int k = 0; k < K; k++)
                v += (double)row[k] * (sx > 0 ? lrintf(x[m * K + k] / (float)sx) * sx : 0);
            worst = fmax(worst, fabs(v - want[m * N + n]) / (1 + fabs(v)));
        }
    }
    CHECK(worst < 1e-5);
    pq_ops_free(&ops);
    pq_qweight_free(q);
    free(w);
    free(x);
}

/* LLM.int8(): without outliers it is the int8 vector-wise product exactly; with outliers, the
 * outlier features of each sequence (and only that sequence) are multiplied in float by the
 * dequantized weight columns and the rest goes through int8; threads change no bit. */
TEST(quant_llm_int8_outliers)
{
    enum { M = 6, N = 40, K = 32 };
    uint64_t s = 3;
    float *w = malloc(sizeof(float) * N * K), x[M * K], b[N];
    for (int i = 0; i < N * K; i++)
        w[i] = (float)rnd_normal(&s) * 0.1f;
    for (int i = 0; i < M * K; i++)
        x[i] = (float)rnd_normal(&s);
    for (int n = 0; n < N; n++)
        b[n] = (float)rnd_normal(&s);
    polyq_err err = {0};
    pq_qspec spec;
    CHECK_OK(pq_qspec_parse("llm-int8", &spec, &err));
    CHECK(spec.outlier == 6.0f && spec.act8);
    pq_qweight *q = NULL;
    CHECK_OK(pq_qweight_rtn(w, N, K, &spec, &q, &err));
    if (!q)
        return;
    q->act8 = true;
    q->outlier = 6.0f;
    pq_linear lin = {.n_out = N, .n_in = K, .bias = b, .q = q};
    pq_ops ops;
    CHECK(pq_ops_init(&ops, 2, K, 16) == 0);
    int ss[3] = {0, 3, 6};
    float got[M * N], plain[M * N], serial[M * N];
    /* no feature reaches 6: identical to W8A8 */
    for (int i = 0; i < M * K; i++)
        x[i] = fmaxf(fminf(x[i], 5.9f), -5.9f);
    ops.seq_start = ss;
    ops.n_seq = 2;
    pq_linear_llm_int8(&ops, got, N, x, M, &lin, true);
    pq_ref_linear_w8a8(plain, N, x, M, &lin);
    CHECK(!memcmp(got, plain, sizeof got));
    /* outliers in features 5 and 17 of the first sequence only */
    x[1 * K + 5] = 40.0f;
    x[2 * K + 17] = -9.0f;
    pq_linear_llm_int8(&ops, got, N, x, M, &lin, true);
    pq_linear_llm_int8(&ops, serial, N, x, M, &lin, false);
    CHECK(!memcmp(got, serial, sizeof got));
    int bad = 0;
    for (int m = 0; m < M; m++) {
        float xm[K];
        for (int k = 0; k < K; k++)
            xm[k] = m < 3 && (k == 5 || k == 17) ? 0.0f : x[m * K + k];
        float amax = 0;
        for (int k = 0; k < K; k++)
            amax = fmaxf(amax, fabsf(xm[k]));
        float sx = amax / 127.0f;
        for (int n = 0; n < N; n++) {
            int32_t acc = 0;
            for (int k = 0; k < K; k++) {
                int xi = sx > 0 ? (int)lrintf(xm[k] / sx) : 0;
                acc += xi * ((int)q->data[(size_t)n * q->row_bytes + k] - 128);
            }
            float o = (float)acc * (sx * q->scale[n]) + b[n];
            if (m < 3) {
                float f = 0;
                for (int k = 0; k < K; k++)
                    if (k == 5 || k == 17)
                        f += x[m * K + k] *
                             ((float)((int)q->data[(size_t)n * q->row_bytes + k] - 128) *
                              q->scale[n]);
                o += f;
            }
            bad += o != got[m * N + n];
        }
    }
    CHECK_INT(bad, 0);
    pq_ops_free(&ops);
    pq_qweight_free(q);
    free(w);
}

/* AWQ's clipping search: the summed per-group output error never rises above no clipping, and
 * falls when a few weights stretch their groups' ranges; the clipped weights stay inside the
 * original range. */
TEST(quant_awq_clip)
{
    enum { N = 16, K = 64, T = 300 };
    uint64_t s = 31;
    float *w = malloc(sizeof(float) * N * K), *wc = malloc(sizeof(float) * N * K);
    double *h = calloc((size_t)K * K, sizeof(double));
    float x[K];
    for (int i = 0; i < N * K; i++)
        w[i] = (float)rnd_normal(&s) * (i % 37 == 0 ? 8.0f : 1.0f); /* stray large weights */
    for (int t = 0; t < T; t++) {
        for (int k = 0; k < K; k++)
            x[k] = (float)rnd_normal(&s);
        for (int i = 0; i < K; i++)
            for (int j = 0; j < K; j++)
                h[i * K + j] += (double)x[i] * x[j] / T;
    }
    polyq_err err = {0};
    const char *specs[] = {"int3-g16", "int4-g32", "int4"};
    for (int sp = 0; sp < 3; sp++) {
        pq_qspec spec;
        CHECK_OK(pq_qspec_parse(specs[sp], &spec, &err));
        double e = 0, e0 = 0;
        CHECK_OK(pq_awq_clip(w, N, K, NULL, h, &spec, wc, &e, &e0, &err));
        if (getenv("PQ_TEST_VERBOSE"))
            fprintf(stderr, "  %s: clipped group error %.4g, unclipped %.4g\n", specs[sp], e, e0);
        CHECK(e < e0);
        for (int i = 0; i < N * K; i++)
            CHECK(fabsf(wc[i]) <= fabsf(w[i]) + 1e-6f);
    }
    pq_qspec cs;
    CHECK_OK(pq_qspec_parse("awq-int4-g16-clip", &cs, &err));
    CHECK(cs.awq && cs.clip);
    free(w);
    free(wc);
    free(h);
}

/* llama-quantize's choice per tensor: the q4_k_m recipe by role and layer, and the fallbacks
 * for rows that are not whole super-blocks. */
TEST(quant_kquant_recipe_and_fallbacks)
{
    polyq_err err = {0};
    pq_qspec m, s, one;
    CHECK_OK(pq_qspec_parse("q4_k_m", &m, &err));
    CHECK(m.k_mix && m.head && m.fmt == PQ_QF_Q4_K);
    /* 32 layers: more bits in 0..3, 28..31 and layers 6, 9, .., 27 */
    int n6 = 0;
    for (int l = 0; l < 32; l++) {
        bool more = l < 4 || l >= 28 || (l - 4) % 3 == 2;
        CHECK_OK(pq_qspec_for_linear(&m, PQ_ROLE_V, l, 32, 4096, &one, &err));
        CHECK(one.fmt == (more ? PQ_QF_Q6_K : PQ_QF_Q4_K));
        CHECK_OK(pq_qspec_for_linear(&m, PQ_ROLE_DOWN, l, 32, 11008, &one, &err));
        CHECK(one.fmt == (more ? PQ_QF_Q6_K : PQ_QF_Q4_K));
        CHECK_OK(pq_qspec_for_linear(&m, PQ_ROLE_Q, l, 32, 4096, &one, &err));
        CHECK(one.fmt == PQ_QF_Q4_K);
        n6 += more;
    }
    CHECK_INT(n6, 16);
    CHECK_OK(pq_qspec_for_linear(&m, PQ_ROLE_QKV, 0, 12, 768, &one, &err));
    CHECK(one.fmt == PQ_QF_Q5_K);
    CHECK_OK(pq_qspec_for_linear(&m, PQ_ROLE_HEAD, 12, 12, 768, &one, &err));
    CHECK(one.fmt == PQ_QF_Q6_K);
    static const struct {
        const char *spec;
        pq_qfmt to;
    } fb[] = {{"q2_k", PQ_QF_Q4_0},
              {"q3_k", PQ_QF_Q4_0},
              {"q4_k", PQ_QF_Q5_0},
              {"q5_k", PQ_QF_Q5_1},
              {"q6_k", PQ_QF_Q8_0}};
    for (size_t i = 0; i < sizeof fb / sizeof fb[0]; i++) {
        CHECK_OK(pq_qspec_parse(fb[i].spec, &s, &err));
        CHECK_OK(pq_qspec_for_linear(&s, PQ_ROLE_UP, 0, 2, 512, &one, &err));
        CHECK(one.fmt == s.fmt);
        CHECK_OK(pq_qspec_for_linear(&s, PQ_ROLE_UP, 0, 2, 96, &one, &err));
        CHECK(one.fmt == fb[i].to && !one.none);
        CHECK_OK(pq_qspec_for_linear(&s, PQ_ROLE_UP, 0, 2, 48, &one, &err));
        CHECK(one.none);
    }
    CHECK_OK(pq_qspec_parse("int4-g128", &s, &err));
    CHECK_OK(pq_qspec_for_linear(&s, PQ_ROLE_UP, 0, 2, 96, &one, &err));
    CHECK(one.fmt == PQ_QF_INT && one.bits == 4 && one.group == 128);
}

/* bitsandbytes' double quantization (compress_statistics=True) against bitsandbytes itself on
 * the CPU: the 4-bit codes, each block's absmax code, the nested absmax and offset, and the
 * dequantized values, exactly; and the storage it reports. */
TEST(quant_bnb_double_quant_matches_tool)
{
    polyq_err err = {0};
    pq_tensors g = {0};
    CHECK_OK(pq_tensors_open_file(&g, "tests/golden/quant_blocks.safetensors", &err));
    static const char *const inputs[] = {"x", "x2"}, *const sfx[] = {"", "2"},
                             *const fmts[] = {"nf4-dq", "fp4-dq"};
    for (int in = 0; in < 2; in++)
        for (int f = 0; f < 2; f++) {
            const pq_tensor_info *xi = pq_tensors_find(&g, inputs[in]);
            char name[64];
            const pq_tensor_info *want[4];
            static const char *const parts[] = {"data", "qabsmax", "nested", "deq"};
            for (int k = 0; k < 4; k++) {
                snprintf(name, sizeof name, "%s%s.%s", fmts[f], sfx[in], parts[k]);
                want[k] = pq_tensors_find(&g, name);
            }
            CHECK(xi && want[0] && want[1] && want[2] && want[3]);
            if (!xi || !want[0] || !want[1] || !want[2] || !want[3])
                continue;
            int R = (int)xi->shape[0], K = (int)xi->shape[1];
            pq_qspec spec;
            pq_qweight *q = NULL;
            CHECK_OK(pq_qspec_parse(fmts[f], &spec, &err));
            CHECK(spec.dq);
            CHECK_OK(pq_qweight_rtn((const float *)xi->data, R, K, &spec, &q, &err));
            if (!q)
                continue;
            int n_nested = (q->n_groups + 255) / 256;
            CHECK(q->dq && q->zero && want[1]->numel == (size_t)q->n_groups &&
                  want[2]->numel == (size_t)n_nested + 1);
            CHECK(!memcmp(q->data, want[0]->data, want[0]->nbytes));
            CHECK(!memcmp(q->zero, want[1]->data, want[1]->nbytes));
            CHECK(!memcmp(q->scale, want[2]->data, want[2]->nbytes));
            float *row = malloc(sizeof(float) * (size_t)K);
            int bad = 0;
            for (int r = 0; r < R; r++) {
                pq_qweight_dequant_row(q, r, row);
                for (int i = 0; i < K; i++)
                    bad += row[i] != ((const float *)want[3]->data)[(size_t)r * K + i];
            }
            if (bad)
                FAILF("%s on %s: %d dequantized values differ from bitsandbytes'", fmts[f],
                      inputs[in], bad);
            double bits = pq_qweight_bits(q), want_bits = 8.0 * (((size_t)R * K + 1) / 2) +
                                                          8.0 * q->n_groups + 32.0 * (n_nested + 1);
            CHECK_NEAR(bits, want_bits, 1e-9);
            free(row);
            pq_qweight_free(q);
        }
    pq_tensors_close(&g);
}

/* GPTQ against AutoGPTQ's own quantizer (tools/gen_gptq_reference.py: auto_gptq 0.7.1 on the
 * CPU, float32) on one layer and its calibration inputs: per channel asymmetric, groups of 64
 * symmetric, groups of 32 with act-order. polyq accumulates in double, so a few levels may
 * land on the other side of a rounding boundary (none do on this layer today): 99.5% must
 * agree and the layer output error ||(W - Q) X^T||^2 must be within 0.5% of AutoGPTQ's. */
TEST(quant_gptq_matches_autogptq)
{
    polyq_err err = {0};
    pq_tensors g = {0};
    CHECK_OK(pq_tensors_open_file(&g, "tests/golden/gptq_ref.safetensors", &err));
    const pq_tensor_info *wi = pq_tensors_find(&g, "W"), *xi = pq_tensors_find(&g, "X");
    CHECK(wi && xi);
    if (!wi || !xi)
        return;
    int N = (int)wi->shape[0], K = (int)wi->shape[1], T = (int)xi->shape[0];
    const float *W = (const float *)wi->data, *X = (const float *)xi->data;
    static const struct {
        const char *name, *spec;
        bool act;
    } cfg[] = {{"int4", "int4-channel-asym", false},
               {"int4-g64-sym", "int4-g64-sym", false},
               {"int3-g32-act", "int3-g32-asym", true}};
    double *h = malloc(sizeof(double) * (size_t)K * K);
    float *row = malloc(sizeof(float) * (size_t)K);
    for (size_t c = 0; c < sizeof cfg / sizeof cfg[0]; c++) {
        for (int i = 0; i < K; i++) /* h = 2 X^T X / T */
            for (int j = 0; j < K; j++) {
                double s = 0;
                for (int t = 0; t < T; t++)
                    s += (double)X[(size_t)t * K + i] * X[(size_t)t * K + j];
                h[(size_t)i * K + j] = 2 * s / T;
            }
        char qn[64];
        snprintf(qn, sizeof qn, "%s.q", cfg[c].name);
        const pq_tensor_info *ref = pq_tensors_find(&g, qn);
        pq_qspec spec;
        pq_qweight *q = NULL;
        CHECK_OK(pq_qspec_parse(cfg[c].spec, &spec, &err));
        pq_gptq_opts o = {.act_order = cfg[c].act};
        CHECK_OK(pq_gptq(W, N, K, h, &spec, &o, &q, &err));
        CHECK(ref != NULL);
        if (!q || !ref) {
            pq_qweight_free(q);
            continue;
        }
        const float *R = (const float *)ref->data;
        size_t same = 0;
        double e_pq = 0, e_ref = 0;
        for (int n = 0; n < N; n++) {
            pq_qweight_dequant_row(q, n, row);
            for (int k = 0; k < K; k++)
                same += fabsf(row[k] - R[(size_t)n * K + k]) <=
                        1e-5f * fmaxf(1.0f, fabsf(R[(size_t)n * K + k]));
            for (int t = 0; t < T; t++) {
                double a = 0, b = 0;
                for (int k = 0; k < K; k++) {
                    double x = X[(size_t)t * K + k], w = W[(size_t)n * K + k];
                    a += (w - row[k]) * x;
                    b += (w - R[(size_t)n * K + k]) * x;
                }
                e_pq += a * a;
                e_ref += b * b;
            }
        }
        double frac = (double)same / ((double)N * K);
        if (getenv("PQ_TEST_VERBOSE"))
            fprintf(stderr, "  %s: %.4f of the weights as AutoGPTQ's; output error %.6g vs %.6g\n",
                    cfg[c].name, frac, e_pq, e_ref);
        if (!(frac >= 0.995 && fabs(e_pq / e_ref - 1) <= 0.005))
            FAILF("%s: %.4f of the weights agree with AutoGPTQ's, output error %g vs its %g",
                  cfg[c].name, frac, e_pq, e_ref);
        pq_qweight_free(q);
    }
    free(h);
    free(row);
    pq_tensors_close(&g);
}

/* AWQ's scale search against AutoAWQ's own (tools/gen_awq_reference.py: its
 * _compute_best_scale on one linear inspected at its output, zero-point quantization, the
 * paper's activation-only scales and AutoAWQ's duo scaling): the same grid ratio, the same
 * scales, and the same weights Q(W·s)/s. */
TEST(quant_awq_matches_autoawq)
{
    polyq_err err = {0};
    pq_tensors g = {0};
    CHECK_OK(pq_tensors_open_file(&g, "tests/golden/awq_ref.safetensors", &err));
    const pq_tensor_info *wi = pq_tensors_find(&g, "W"), *xi = pq_tensors_find(&g, "X");
    CHECK(wi && xi);
    if (!wi || !xi) {
        pq_tensors_close(&g);
        return;
    }
    int N = (int)wi->shape[0], K = (int)wi->shape[1], T = (int)xi->shape[0];
    const float *W = (const float *)wi->data, *X = (const float *)xi->data;
    double *h = malloc(sizeof(double) * (size_t)K * K), *xmean = calloc((size_t)K, sizeof(double));
    float *row = malloc(sizeof(float) * (size_t)K);
    for (int i = 0; i < K; i++) { /* h = X^T X / T, xmean = mean |x| */
        for (int j = 0; j < K; j++) {
            double s = 0;
            for (int t = 0; t < T; t++)
                s += (double)X[(size_t)t * K + i] * X[(size_t)t * K + j];
            h[(size_t)i * K + j] = s / T;
        }
        for (int t = 0; t < T; t++)
            xmean[i] += fabs((double)X[(size_t)t * K + i]) / T;
    }
    static const char *const cfg[] = {"int4-g64", "int3-g32", "int4-g64-duo"};
    for (size_t c = 0; c < 3; c++) {
        char name[64];
        snprintf(name, sizeof name, "%s.q", cfg[c]);
        const pq_tensor_info *rq = pq_tensors_find(&g, name);
        snprintf(name, sizeof name, "%s.scales", cfg[c]);
        const pq_tensor_info *rs = pq_tensors_find(&g, name);
        snprintf(name, sizeof name, "%s.ratio", cfg[c]);
        const pq_tensor_info *rr = pq_tensors_find(&g, name);
        CHECK(rq && rs && rr);
        if (!rq || !rs || !rr)
            continue;
        pq_qspec spec;
        snprintf(name, sizeof name, "awq-%s", cfg[c]);
        CHECK_OK(pq_qspec_parse(name, &spec, &err)); /* asymmetric below 8 bits, as zero_point */
        spec.awq = false; /* what pq_awq quantizes with, as pq_model_awq passes it */
        pq_qweight *q = NULL;
        double a = -1;
        const float *ws[1] = {W};
        int no[1] = {N};
        CHECK_OK(pq_awq(ws, no, 1, K, h, xmean, &spec, 20, &q, &a, NULL, NULL, &err));
        if (!q)
            continue;
        float ratio = ((const float *)rr->data)[0];
        if (fabs(a - ratio) > 1e-6)
            FAILF("%s: grid ratio %g, AutoAWQ's %g", cfg[c], a, ratio);
        const float *S = (const float *)rs->data, *R = (const float *)rq->data;
        double worst_s = 0;
        for (int k = 0; q->in_scale && k < K; k++)
            worst_s = fmax(worst_s, fabs(1.0 / q->in_scale[k] - S[k]) / S[k]);
        CHECK(q->in_scale != NULL);
        size_t same = 0;
        for (int n = 0; n < N; n++) {
            pq_qweight_dequant_row(q, n, row);
            for (int k = 0; k < K; k++) {
                float w = row[k]; /* the dequantized row includes 1/s */
                same += fabsf(w - R[(size_t)n * K + k]) <=
                        1e-5f * fmaxf(1.0f, fabsf(R[(size_t)n * K + k]));
            }
        }
        double frac = (double)same / ((double)N * K);
        if (getenv("PQ_TEST_VERBOSE"))
            fprintf(stderr,
                    "  %s: ratio %.2f (AutoAWQ %.2f), scales within %.2g, %.4f of the weights as "
                    "AutoAWQ's\n",
                    cfg[c], a, ratio, worst_s, frac);
        if (!(worst_s <= 1e-5 && frac >= 0.999))
            FAILF(
                "%s: scales differ by up to %g relative; %.4f of the weights agree with AutoAWQ's",
                cfg[c], worst_s, frac);
        pq_qweight_free(q);
    }
    free(h);
    free(xmean);
    free(row);
    pq_tensors_close(&g);
}

/* GPTQ of whole fixture models against AutoGPTQ's quantizer run block after block the way its
 * quantize() runs a model without true_sequential (tools/gen_gptq_model_reference.py), on the
 * same calibration ids: every linear of every block, quantized on the inputs the blocks before
 * it give once quantized, holds AutoGPTQ's weights. The two forward passes sum in different
 * orders, so a weight near a rounding boundary could land on the other level: at least 99.9%
 * equal in each linear (all of them are, here). */
TEST(quant_gptq_model_matches_autogptq)
{
    polyq_err err = {0};
    pq_tensors g = {0};
    CHECK_OK(pq_tensors_open_file(&g, "tests/golden/gptq_model_ref.safetensors", &err));
    static const char *const fx[] = {"gpt2-tiny-vocab-bf16", "llama-tiny-vocab-bf16"};
    for (size_t f = 0; f < 2; f++) {
        char name[160], *dir = pq_asprintf("tests/fixtures/%s", fx[f]);
        snprintf(name, sizeof name, "%s.ids", fx[f]);
        const pq_tensor_info *ids = pq_tensors_find(&g, name);
        snprintf(name, sizeof name, "%s.starts", fx[f]);
        const pq_tensor_info *st = pq_tensors_find(&g, name);
        pq_model *m = NULL, *q = NULL;
        CHECK(ids && st);
        CHECK_OK(pq_model_open_dir(&m, dir, &err));
        free(dir);
        if (!ids || !st || !m) {
            pq_model_free(m);
            continue;
        }
        int n_seq = (int)st->numel - 1, *starts = malloc(sizeof(int) * st->numel);
        for (size_t i = 0; i < st->numel; i++)
            starts[i] = ((const int32_t *)st->data)[i];
        pq_calib cal = {(const int32_t *)ids->data, starts, n_seq, 512};
        pq_qspec spec;
        CHECK_OK(pq_qspec_parse("gptq-int4-g16", &spec, &err));
        CHECK_OK(pq_model_gptq(&q, m, &spec, &cal, 1, &err));
        int compared = 0;
        for (int l = 0; q && l < m->cfg.n_layer; l++) {
            const pq_linear *ql[] = PQ_LAYER_LINEARS(&q->layers[l]);
            static const char *const gname[] = {"attn.c_attn", NULL, NULL,       NULL,
                                                "attn.c_proj", NULL, "mlp.c_fc", "mlp.c_proj"};
            static const char *const lname[] = {NULL,
                                                "self_attn.q_proj",
                                                "self_attn.k_proj",
                                                "self_attn.v_proj",
                                                "self_attn.o_proj",
                                                "mlp.gate_proj",
                                                "mlp.up_proj",
                                                "mlp.down_proj"};
            for (int k = 0; k < PQ_N_LAYER_LINEARS; k++) {
                const char *ln = f == 0 ? gname[k] : lname[k];
                if (!ql[k]->n_out || !ln)
                    continue;
                snprintf(name, sizeof name, "%s.L%d.%s", fx[f], l, ln);
                const pq_tensor_info *r = pq_tensors_find(&g, name);
                if (!r || r->shape[0] != ql[k]->n_out || r->shape[1] != ql[k]->n_in) {
                    FAILF("%s: missing or not [%d, %d]", name, ql[k]->n_out, ql[k]->n_in);
                    continue;
                }
                const float *R = (const float *)r->data;
                int N = ql[k]->n_out, K = ql[k]->n_in;
                float *row = malloc(sizeof(float) * (size_t)K);
                size_t same = 0;
                for (int n = 0; n < N; n++) {
                    pq_linear_row_f32(ql[k], n, row);
                    for (int i = 0; i < K; i++)
                        same += fabsf(row[i] - R[(size_t)n * K + i]) <=
                                1e-5f * fmaxf(1.0f, fabsf(R[(size_t)n * K + i]));
                }
                free(row);
                double frac = (double)same / ((double)N * K);
                if (getenv("PQ_TEST_VERBOSE"))
                    fprintf(stderr, "  %s: %.4f of the weights as AutoGPTQ's\n", name, frac);
                if (frac < 0.999)
                    FAILF("%s: %.4f of the weights agree with AutoGPTQ's", name, frac);
                compared++;
            }
        }
        CHECK_INT(compared, f == 0 ? 8 : 14);
        pq_model_free(q);
        pq_model_free(m);
        free(starts);
    }
    pq_tensors_close(&g);
}

/* Exact rounding ties (tests/golden/ties.safetensors, tools/gen_tie_golden.py: blocks whose
 * values lie half-way between levels, as about 1% of F16 weights do): llama.cpp's block
 * formats and k-quants byte for byte as ggml's C reference quantizers store them (Q8_0 ties
 * away from zero, Q4_0/Q5_0/Q4_1/Q5_1 up, k-quants to even). */
TEST(quant_ties_block_formats_as_ggml)
{
    static const char *const fmts[] = {"q8_0", "q4_0", "q4_1", "q5_0", "q5_1",
                                       "q2_k", "q3_k", "q4_k", "q5_k", "q6_k"};
    check_blocks_in("tests/golden/ties.safetensors", "xt", fmts, 10, "");
}

/* levels, scales and zero points of q equal the golden's <prefix>.q/.scale/.zero */
static void check_levels(const pq_qweight *q, const pq_tensors *g, const char *prefix,
                         const char *what)
{
    char name[64];
    snprintf(name, sizeof name, "%s.q", prefix);
    const pq_tensor_info *lv = pq_tensors_find(g, name);
    snprintf(name, sizeof name, "%s.scale", prefix);
    const pq_tensor_info *sc = pq_tensors_find(g, name);
    snprintf(name, sizeof name, "%s.zero", prefix);
    const pq_tensor_info *zp = pq_tensors_find(g, name);
    CHECK(q && lv && sc && lv->numel == (size_t)q->n_out * q->n_in &&
          sc->numel == (size_t)q->n_out * q->n_groups);
    if (!q || !lv || !sc || lv->numel != (size_t)q->n_out * q->n_in)
        return;
    int bad = 0, first = -1;
    for (int r = 0; r < q->n_out; r++)
        for (int i = 0; i < q->n_in; i++) {
            unsigned v = pq_unpack(q->data + (size_t)r * q->row_bytes, q->bits, (size_t)i);
            if (v != ((const uint8_t *)lv->data)[(size_t)r * q->n_in + i] && bad++ == 0)
                first = r * q->n_in + i;
        }
    if (bad)
        FAILF("%s: %d levels differ from the reference's (first at %d: %u vs %u)", what, bad, first,
              pq_unpack(q->data + (size_t)(first / q->n_in) * q->row_bytes, q->bits,
                        (size_t)(first % q->n_in)),
              ((const uint8_t *)lv->data)[first]);
    if (memcmp(q->scale, sc->data, sc->nbytes))
        FAILF("%s: scales differ from the reference's", what);
    if (zp && (!q->zero || memcmp(q->zero, zp->data, zp->nbytes)))
        FAILF("%s: zero points differ from the reference's", what);
}

/* Ties in polyq's own integer formats against the code each follows (torch.round: ties to
 * even): round-to-nearest asymmetric (GPTQ's quantizer), GPTQ itself (a diagonal Hessian
 * spreads no error, so its levels are its quantizer's), AWQ (mean |x| = 1 makes every scale 1,
 * so its weights are AutoAWQ's pseudo-quantization of W), and symmetric round-to-nearest. */
TEST(quant_ties_rtn_gptq_awq_round_half_to_even)
{
    polyq_err err = {0};
    pq_tensors g = {0};
    CHECK_OK(pq_tensors_open_file(&g, "tests/golden/ties.safetensors", &err));
    const pq_tensor_info *xi = pq_tensors_find(&g, "xt");
    CHECK(xi && xi->n_dims == 2);
    if (!xi) {
        pq_tensors_close(&g);
        return;
    }
    int R = (int)xi->shape[0], K = (int)xi->shape[1];
    const float *x = (const float *)xi->data;
    static const char *const asym[] = {"int4-g32", "int8-channel-asym"};
    double *h = calloc((size_t)K * K, sizeof *h), *xm = malloc(sizeof(double) * (size_t)K);
    for (int i = 0; i < K; i++) {
        h[(size_t)i * K + i] = 1;
        xm[i] = 1;
    }
    for (int a = 0; a < 2; a++) {
        pq_qspec spec, gspec;
        char prefix[64], gname[64];
        snprintf(prefix, sizeof prefix, "gptq.%s", asym[a]);
        snprintf(gname, sizeof gname, "gptq-%s", asym[a]);
        CHECK_OK(pq_qspec_parse(asym[a], &spec, &err));
        CHECK_OK(pq_qspec_parse(gname, &gspec, &err));
        pq_qweight *q = NULL, *gq = NULL;
        CHECK_OK(pq_qweight_rtn(x, R, K, &spec, &q, &err));
        check_levels(q, &g, prefix, asym[a]);
        double *hc = malloc(sizeof(double) * (size_t)K * K);
        memcpy(hc, h, sizeof(double) * (size_t)K * K);
        pq_gptq_opts o = {0};
        CHECK_OK(pq_gptq(x, R, K, hc, &gspec, &o, &gq, &err));
        check_levels(gq, &g, prefix, gname);
        free(hc);
        pq_qweight_free(q);
        pq_qweight_free(gq);
    }
    /* AWQ */
    const pq_tensor_info *aw = pq_tensors_find(&g, "awq.int4-g32.w");
    pq_qspec spec;
    CHECK_OK(pq_qspec_parse("awq-int4-g32", &spec, &err));
    pq_qweight *q = NULL;
    const float *ws[1] = {x};
    int no[1] = {R};
    CHECK_OK(pq_awq(ws, no, 1, K, h, xm, &spec, 20, &q, NULL, NULL, NULL, &err));
    CHECK(aw && q);
    if (aw && q) {
        float *row = malloc(sizeof(float) * (size_t)K);
        int bad = 0;
        for (int r = 0; r < R; r++) {
            pq_qweight_dequant_row(q, r, row);
            for (int i = 0; i < K; i++)
                bad += row[i] != ((const float *)aw->data)[(size_t)r * K + i];
        }
        if (bad)
            FAILF("awq-int4-g32: %d weights differ from AutoAWQ's pseudo-quantization", bad);
        free(row);
    }
    pq_qweight_free(q);
    /* symmetric */
    static const char *const sym[] = {"int4-g32-sym", "int8"};
    for (int a = 0; a < 2; a++) {
        char prefix[64];
        snprintf(prefix, sizeof prefix, "sym.%s", sym[a]);
        CHECK_OK(pq_qspec_parse(sym[a], &spec, &err));
        q = NULL;
        CHECK_OK(pq_qweight_rtn(x, R, K, &spec, &q, &err));
        check_levels(q, &g, prefix, sym[a]);
        pq_qweight_free(q);
    }
    free(h);
    free(xm);
    pq_tensors_close(&g);
}

/* The rule itself, where a tie is plain to see, and whatever the rounding mode. */
TEST(quant_round_half_even_any_rounding_mode)
{
    static const float x[] = {0.5f, 1.5f, 2.5f,        -0.5f, -1.5f, -2.5f,
                              7.5f, 6.5f, 0.49999997f, 1e9f,  -3.0f, 16777215.0f};
    static const int want[] = {0, 2, 2, 0, -2, -2, 8, 6, 0, 1000000000, -3, 16777215};
    static const int modes[] = {FE_TONEAREST, FE_UPWARD, FE_DOWNWARD, FE_TOWARDZERO};
    for (int m = 0; m < 4; m++) {
        fesetround(modes[m]);
        for (size_t i = 0; i < sizeof x / sizeof x[0]; i++)
            if (pq_round_even(x[i]) != want[i])
                FAILF("mode %d: round(%.9g) = %d, not %d", m, x[i], pq_round_even(x[i]), want[i]);
    }
    fesetround(FE_TONEAREST);
    CHECK_INT(pq_round_even(NAN), 0);
}

/* llama.cpp's numerics against ggml itself (tests/golden/ggml_dot.txt, tools/ggml_dot_golden.c):
 * for every ggml format, the same weights and activations drawn as the tool draws them; each
 * activation row quantized for the format's dot product gives ggml's bytes exactly (hashed in
 * ggml's block layout), and every dot product of a weight row with it is ggml's vec_dot within
 * 2e-6 of the row's sum of |terms| (ggml sums the scaled blocks in f32 lanes, polyq in double;
 * measured at most 5.9e-8), with the same bits from the AVX2 and the portable integer sums. */
static uint64_t dot_state;
static float dot_draw(void)
{
    dot_state = dot_state * 6364136223846793005ull + 1442695040888963407ull;
    return (float)(dot_state >> 40) / 16777216.0f - 0.5f;
}

/* activation row m of a in ggml's block layout, hashed */
static uint64_t qact_hash(const pq_qact *a, int m)
{
    uint64_t h = PQ_FNV_OFFSET;
    int nb = a->K / a->block;
    for (int b = 0; b < nb; b++) {
        size_t at = (size_t)m * nb + b;
        const int8_t *q = a->q + (size_t)m * a->K + (size_t)b * a->block;
        if (a->kind == PQ_DOT_Q8_K) { /* float d, int8 qs[256], int16 bsums[16] */
            h = pq_fnv1a(h, &a->d[at], 4);
            h = pq_fnv1a(h, q, 256);
            for (int j = 0; j < 16; j++) {
                int16_t s = (int16_t)a->bsum[(size_t)m * (a->K / 16) + (size_t)b * 16 + j];
                h = pq_fnv1a(h, &s, 2);
            }
            continue;
        }
        uint16_t d = pq_f32_to_f16(a->d[at]); /* f16 d [, f16 s], int8 qs[32] */
        h = pq_fnv1a(h, &d, 2);
        if (a->kind == PQ_DOT_Q8_1) {
            uint16_t s = pq_f32_to_f16(a->s[at]);
            h = pq_fnv1a(h, &s, 2);
        }
        h = pq_fnv1a(h, q, 32);
    }
    return h;
}

/* The AVX-512 activation quantizer (used where the VNNI kernels are) against the portable one
 * that the ggml check above holds to ggml's bytes: every kind, rows of random values, rows of 0,
 * rows of exact ties (amax 127: every code x * 1 or x * -1 is k + 0.5) and a row whose largest
 * magnitude comes first negative, then positive. Codes, scales, sums: the same bits. */
TEST(quant_llama_activations_vector_equal_portable)
{
    enum { K = 512, M = 8 };
    static const pq_dot_act kinds[] = {PQ_DOT_Q8_0, PQ_DOT_Q8_1, PQ_DOT_Q8_K};
    static const char *const names[] = {"Q8_0", "Q8_1", "Q8_K"};
    float *x = malloc(sizeof(float) * (size_t)M * K);
    dot_state = 5;
    for (int m = 0; m < M; m++)
        for (int i = 0; i < K; i++) {
            float *v = x + (size_t)m * K + i;
            if (m < 3)
                *v = (m + 1) * 7.0f * dot_draw();
            else if (m == 3)
                *v = 0.0f;
            else if (m < 7) /* ties: 127 sets the scale, the rest are k + 0.5 */
                *v = i % 32 == 5 ? 127.0f : (float)((int)(250 * dot_draw())) + 0.5f;
            else
                *v = i % 256 == 3 ? -9.0f : i % 256 == 7 ? 9.0f : dot_draw();
        }
    pq_qact vec = {0}, port = {0};
    for (int k = 0; k < 3; k++) {
        CHECK_INT(pq_qact_reserve(&vec, kinds[k], M, K), 0);
        CHECK_INT(pq_qact_reserve(&port, kinds[k], M, K), 0);
        if (!vec.vnni) {
            pq_test_skip("no AVX-512 VNNI on this CPU: the portable quantizer alone is used");
            break;
        }
        port.vnni = false;
        for (int m = 0; m < M; m++) {
            pq_qact_row(&vec, m, x + (size_t)m * K);
            pq_qact_row(&port, m, x + (size_t)m * K);
        }
        size_t nd = (size_t)M * K / vec.block;
        int bad = memcmp(vec.q, port.q, (size_t)M * K) != 0;
        bad |= (memcmp(vec.d, port.d, sizeof(float) * nd) != 0) << 1;
        if (kinds[k] == PQ_DOT_Q8_1)
            bad |= (memcmp(vec.s, port.s, sizeof(float) * nd) != 0) << 2;
        if (kinds[k] == PQ_DOT_Q8_K)
            bad |= (memcmp(vec.bsum, port.bsum, sizeof(int32_t) * (size_t)M * K / 16) != 0) << 3;
        if (bad)
            FAILF("%s: the AVX-512 quantizer differs from the portable one (codes %d, scales %d, "
                  "sums %d, sub-block sums %d)",
                  names[k], bad & 1, !!(bad & 2), !!(bad & 4), !!(bad & 8));
    }
    pq_qact_free(&vec);
    pq_qact_free(&port);
    free(x);
}

/* Five activation rows at once (four through the blocked kernel, the weights in its order):
 * each row's bits those of pq_ggml_dot alone, with the AVX-512 VNNI kernel and without. */
static void rows_as_alone(const char *name, const pq_qweight *q, const float *a, int M)
{
    const pq_qfmt_traits *t = pq_qfmt_get(q->fmt);
    int K = q->n_in, N = q->n_out;
    pq_qact q5 = {0};
    CHECK_INT(pq_qact_reserve(&q5, t->dot_act, 5, K), 0);
    for (int m = 0; m < 5 && q5.q; m++)
        pq_qact_row(&q5, m, a + (size_t)(m % M) * K);
    int8_t *codes = malloc((size_t)K), *lay = malloc((size_t)K);
    pq_dec *hdr = malloc(sizeof(pq_dec) * (size_t)(K / 32));
    double *wd = malloc(sizeof(double) * (size_t)(K / 32) * 2);
    bool vnni = q5.vnni;
    for (int n = 0; n < N && q5.q && codes && lay && hdr && wd; n++) {
        pq_qweight_decode_row(q, n, codes, hdr);
        for (int v = vnni; v >= 0; v--) {
            float many[5];
            q5.vnni = v;
            memcpy(lay, codes, (size_t)K);
            memset(wd, 0xff, sizeof(double) * (size_t)(K / 32) * 2); /* NaN unless written */
            pq_ggml_rows_layout(&q5, lay, hdr, wd);
            pq_ggml_dot_rows(t, lay, hdr, wd, &q5, 0, 5, many, 1);
            for (int m = 0; m < 5; m++) {
                float one = pq_ggml_dot(t, codes, hdr, &q5, m);
                if (memcmp(&one, &many[m], sizeof one))
                    FAILF("%s (K %d) row %d . %d: %.9g among five rows%s, %.9g alone", name, K, m,
                          n, many[m], v ? " (AVX-512 VNNI)" : "", one);
            }
        }
        q5.vnni = vnni;
    }
    if (getenv("PQ_TEST_VERBOSE") && vnni)
        fprintf(stderr, "  %s, K %d: the AVX-512 VNNI kernel checked\n", name, K);
    free(codes);
    free(lay);
    free(hdr);
    free(wd);
    pq_qact_free(&q5);
}

TEST(quant_llama_numerics_equal_ggml)
{
    enum { K = 512, N = 4, M = 3 };
    static const char *const names[] = {"q8_0", "q4_0", "q4_1", "q5_0", "q5_1",
                                        "q2_k", "q3_k", "q4_k", "q5_k", "q6_k"};
    char *golden = NULL;
    polyq_err err = {0};
    CHECK_OK(pq_read_file("tests/golden/ggml_dot.txt", 1 << 20, &golden, NULL, &err));
    if (!golden)
        return;
    static float w[N * K], a[M * K], wd[K];
    int checked = 0;
    double worst = 0;
    for (size_t i = 0; i < sizeof names / sizeof names[0]; i++) {
        dot_state = 20261203 + i;
        for (int j = 0; j < N * K; j++)
            w[j] = 0.1f * dot_draw();
        for (int j = 0; j < M * K; j++)
            a[j] = (j % 37 == 0 ? 40.0f : 4.0f) * dot_draw();
        pq_qspec spec;
        pq_qweight *q = NULL;
        CHECK_OK(pq_qspec_parse(names[i], &spec, &err));
        CHECK_OK(pq_qweight_blocks(w, N, K, &spec, &q, &err));
        if (!q)
            continue;
        const pq_qfmt_traits *t = pq_qfmt_get(q->fmt);
        pq_qact qa = {0};
        CHECK_INT(pq_qact_reserve(&qa, t->dot_act, M, K), 0);
        int8_t codes[K];
        pq_dec hdr[K / 32];
        for (int m = 0; m < M && qa.q; m++) {
            pq_qact_row(&qa, m, a + (size_t)m * K);
            char key[64];
            snprintf(key, sizeof key, "\nact %s %d ", names[i], m);
            const char *g = strstr(golden, key);
            unsigned long long want = 0;
            if (!g || sscanf(g + strlen(key), "%llx", &want) != 1)
                FAILF("%s: no golden", key + 1);
            else if (qact_hash(&qa, m) != want)
                FAILF("%s activation row %d: bytes differ from ggml's", names[i], m);
            for (int n = 0; n < N; n++) {
                pq_qweight_decode_row(q, n, codes, hdr);
                float got = pq_ggml_dot(t, codes, hdr, &qa, m);
                bool vec = qa.avx2; /* the portable sums give the same bits */
                qa.avx2 = false;
                float plain = pq_ggml_dot(t, codes, hdr, &qa, m);
                qa.avx2 = vec;
                if (memcmp(&plain, &got, sizeof got))
                    FAILF("%s row %d . %d: %.9g with AVX2, %.9g without", names[i], m, n, got,
                          plain);
                /* the scale of the sum: |w| |a| over the row, dequantized */
                pq_qweight_dequant_row(q, n, wd);
                double mag = 0;
                for (int k = 0; k < K; k++)
                    mag += fabs((double)wd[k] * a[(size_t)m * K + k]);
                snprintf(key, sizeof key, "\ndot %s %d %d ", names[i], m, n);
                g = strstr(golden, key);
                double ref = NAN;
                if (!g || sscanf(g + strlen(key), "%lf", &ref) != 1)
                    FAILF("%s: no golden", key + 1);
                else if (!(fabs(got - ref) <= 2e-6 * mag))
                    FAILF("%s row %d . %d: %.9g, ggml %.9g", names[i], m, n, got, ref);
                else
                    worst = fmax(worst, fabs(got - ref) / mag);
                checked++;
            }
        }
        rows_as_alone(names[i], q, a, M);
        if (t->block == 32) { /* runs of 16, 8 and 4 blocks and a tail: 31 blocks */
            enum { K2 = 992 };
            static float w2[N * K2], a2[M * K2];
            for (int j = 0; j < N * K2; j++)
                w2[j] = 0.1f * dot_draw();
            for (int j = 0; j < M * K2; j++)
                a2[j] = 4.0f * dot_draw();
            pq_qweight *q2 = NULL;
            CHECK_OK(pq_qweight_blocks(w2, N, K2, &spec, &q2, &err));
            if (q2)
                rows_as_alone(names[i], q2, a2, M);
            pq_qweight_free(q2);
        }
        pq_qact_free(&qa);
        pq_qweight_free(q);
    }
    CHECK_INT(checked, 10 * N * M);
    if (getenv("PQ_TEST_VERBOSE"))
        fprintf(stderr, "  largest difference from ggml: %.1e of the sum of |terms|\n", worst);
    free(golden);
}

/* -llamacpp names llama.cpp's numerics for fp32, the ggml formats and q4_k_m (any case, with
 * -head), and is refused, with the reason, for formats llama.cpp has no integer product for. */
TEST(quant_llama_numerics_specs)
{
    static const struct {
        const char *text, *name;
    } ok[] = {{"q4_0-llamacpp", "q4_0-llamacpp"},
              {"Q4_K_M-LLAMACPP", "q4_k_m-llamacpp"},
              {"f32-llamacpp", "fp32-llamacpp"},
              {"q6_k-head-llamacpp", "q6_k-head-llamacpp"}};
    polyq_err err = {0};
    for (size_t i = 0; i < sizeof ok / sizeof ok[0]; i++) {
        pq_qspec s;
        CHECK_OK(pq_qspec_parse(ok[i].text, &s, &err));
        CHECK(s.llama_numerics);
        CHECK_STR(s.name, ok[i].name);
        char words[256];
        pq_qspec_describe(&s, words, sizeof words);
        CHECK(strstr(words, "llama.cpp's numerics") != NULL);
    }
    pq_qspec plain;
    CHECK_OK(pq_qspec_parse("q4_0", &plain, &err));
    CHECK(!plain.llama_numerics);
    static const char *const refused[] = {"nf4-llamacpp", "int4-g128-llamacpp", "w8a8-llamacpp",
                                          "gptq-int4-llamacpp"};
    for (size_t i = 0; i < sizeof refused / sizeof refused[0]; i++) {
        pq_qspec s;
        polyq_err e = {0};
        CHECK(pq_qspec_parse(refused[i], &s, &e) != 0);
        CHECK(strstr(e.msg, "-llamacpp") != NULL);
    }
    pq_qspec s;
    polyq_err e = {0};
    CHECK(pq_qspec_parse("q4_0-llamacp", &s, &e) != 0); /* a slip is not understood */
}
