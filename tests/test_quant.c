/* Round-to-nearest packed weights: pack/unpack round trip at every width, error within half
 * a step, all-zero and constant groups, sizes not divisible by the group, spec parsing, the
 * fast packed linear against the scalar reference, and memory that shrinks as it should. */
#include <stdlib.h>
#include <string.h>

#include "kernels/ops.h"
#include "quant/qformat.h"
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
    const char *specs[] = {"int8", "int4-g128", "int4-g128-sym", "int3-g64", "int2-g16",
                           "int5-tensor", "int6-channel-asym", "int4-g7"};
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
    const char *bad[] = {"int9", "int1", "int4-g0", "int4-gx", "int4-g128-g64", "int4-", "q4_0x",
                         "int4-sym-asym", "", "int4 -g128", "int99999999999999999999"};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++)
        CHECK_FAILS(pq_qspec_parse(bad[i], &s, &err), POLYQ_INVALID_ARG, "is not understood");
}

/* The fast packed linear (BLAS on dequantized chunks, 1 and 2 threads) against the scalar
 * reference: normalized squared error and bit-identical across thread counts. */
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
    for (int variant = 0; variant < 2; variant++) {
        pq_linear lin = {N, K, variant ? NULL : w, b, variant ? q : NULL};
        pq_ref_linear(ref, x, M, &lin);
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
    free(w);
    free(x);
    free(b);
    free(ref);
    free(out[0]);
    free(out[1]);
}
