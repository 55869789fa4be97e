/* ggml's own activation quantization and integer dot products on fixed inputs, the golden of
 * polyq's llama.cpp numerics (tests/golden/ggml_dot.txt, tools/gen_ggml_dot_golden.py). For
 * each ggml format: weights (4 rows of 512) and activations (3 rows) drawn from the generator
 * below (tests/test_quant.c draws the same), the weights quantized by ggml_quantize_chunk, each
 * activation row by the CPU backend's from_float of the format's vec_dot_type, then
 *   act TYPE m FNV1A64        the hash of activation row m's quantized bytes
 *   dot TYPE m n VALUE        vec_dot of weight row n with activation row m
 * Built against llama.cpp's libraries outside the repository; part of no polyq build. */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ggml-cpu.h"
#include "ggml.h"

enum { K = 512, N = 4, M = 3 };

static uint64_t state;
static float draw(void) /* uniform in [-0.5, 0.5) */
{
    state = state * 6364136223846793005ull + 1442695040888963407ull;
    return (float)(state >> 40) / 16777216.0f - 0.5f;
}

static uint64_t fnv1a(const uint8_t *p, size_t n)
{
    uint64_t h = 14695981039346656037ull; /* FNV-1a 64 */
    for (size_t i = 0; i < n; i++)
        h = (h ^ p[i]) * 1099511628211ull;
    return h;
}

int main(void)
{
    static const struct {
        const char *name;
        enum ggml_type t;
    } types[] = {{"q8_0", GGML_TYPE_Q8_0}, {"q4_0", GGML_TYPE_Q4_0}, {"q4_1", GGML_TYPE_Q4_1},
                 {"q5_0", GGML_TYPE_Q5_0}, {"q5_1", GGML_TYPE_Q5_1}, {"q2_k", GGML_TYPE_Q2_K},
                 {"q3_k", GGML_TYPE_Q3_K}, {"q4_k", GGML_TYPE_Q4_K}, {"q5_k", GGML_TYPE_Q5_K},
                 {"q6_k", GGML_TYPE_Q6_K}};
    ggml_cpu_init();
    static float w[N * K], a[M * K];
    static uint8_t wq[N * K * 2], aq[M * K * 2];
    for (size_t i = 0; i < sizeof types / sizeof types[0]; i++) {
        state = 20261203 + i;
        for (int j = 0; j < N * K; j++)
            w[j] = 0.1f * draw();
        for (int j = 0; j < M * K; j++) /* every 37th feature an outlier, as LLM activations */
            a[j] = (j % 37 == 0 ? 40.0f : 4.0f) * draw();
        const struct ggml_type_traits_cpu *tc = ggml_get_type_traits_cpu(types[i].t);
        enum ggml_type at = tc->vec_dot_type;
        size_t wrow = ggml_row_size(types[i].t, K), arow = ggml_row_size(at, K);
        ggml_quantize_chunk(types[i].t, w, wq, 0, N, K, NULL);
        for (int m = 0; m < M; m++) {
            ggml_get_type_traits_cpu(at)->from_float(a + (size_t)m * K, aq + m * arow, K);
            printf("act %s %d %016" PRIx64 "\n", types[i].name, m, fnv1a(aq + m * arow, arow));
        }
        for (int m = 0; m < M; m++)
            for (int n = 0; n < N; n++) {
                float s = 0;
                tc->vec_dot(K, &s, 0, wq + n * wrow, 0, aq + m * arow, 0, 1);
                printf("dot %s %d %d %.9g\n", types[i].name, m, n, s);
            }
    }
    return 0;
}
