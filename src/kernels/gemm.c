/* oneDNN's row-major gemm, held to one OpenMP thread per calling thread: its OpenMP runtime
 * would otherwise start a team of every core for each caller, and the pool already runs one
 * product per core. */
#include <dnnl.h>
#include <omp.h>
#include <stdbool.h>
#include <stdlib.h>

#include "kernels/gemm.h"

static _Thread_local int one_thread;

static void hold_to_one_thread(void)
{
    if (!one_thread) {
        omp_set_num_threads(1);
        one_thread = 1;
    }
}

void pq_sgemm_nt(int M, int N, int K, const float *A, int lda, const float *B, int ldb, float *C,
                 int ldc)
{
    hold_to_one_thread();
    dnnl_sgemm('N', 'T', M, N, K, 1.0f, A, lda, B, ldb, 0.0f, C, ldc);
}

void pq_sgemm_nn(int M, int N, int K, const float *A, int lda, const float *B, int ldb, float *C,
                 int ldc)
{
    hold_to_one_thread();
    dnnl_sgemm('N', 'N', M, N, K, 1.0f, A, lda, B, ldb, 0.0f, C, ldc);
}

/* oneDNN's s8s8 kernels multiply pairs of bytes into 16-bit sums (vpmaddubsw), which saturate
 * unless the CPU has VNNI's 32-bit dot products; only those kernels are exact. */
static bool exact_s8_kernels(void)
{
    dnnl_cpu_isa_t isa = dnnl_get_effective_cpu_isa();
    return (isa & dnnl_cpu_isa_avx512_core_vnni) == dnnl_cpu_isa_avx512_core_vnni;
}

/* Elsewhere: the bytes as floats, IGEMM_KC of them at a time, so that every partial sum is an
 * integer of at most 2^24 (IGEMM_KC * 128 * 128) and single precision holds it exactly. */
enum { IGEMM_KC = 1024 };

static int igemm_by_floats(int M, int N, int K, const int8_t *A, int lda, const int8_t *B, int ldb,
                           int32_t *C, int ldc)
{
    int kc = K < IGEMM_KC ? K : IGEMM_KC;
    float *a = malloc(sizeof(float) * (size_t)M * (size_t)kc);
    float *b = malloc(sizeof(float) * (size_t)N * (size_t)kc);
    float *c = malloc(sizeof(float) * (size_t)M * (size_t)N);
    int rc = a && b && c ? 0 : -1;
    for (int k0 = 0; k0 < K && !rc; k0 += kc) {
        int n = K - k0 < kc ? K - k0 : kc;
        for (int m = 0; m < M; m++)
            for (int k = 0; k < n; k++)
                a[(size_t)m * n + k] = A[(size_t)m * lda + k0 + k];
        for (int j = 0; j < N; j++)
            for (int k = 0; k < n; k++)
                b[(size_t)j * n + k] = B[(size_t)j * ldb + k0 + k];
        dnnl_sgemm('N', 'T', M, N, n, 1.0f, a, n, b, n, 0.0f, c, N);
        for (int m = 0; m < M; m++)
            for (int j = 0; j < N; j++) {
                int32_t v = (int32_t)c[(size_t)m * N + j];
                C[(size_t)m * ldc + j] = k0 ? C[(size_t)m * ldc + j] + v : v;
            }
    }
    free(a);
    free(b);
    free(c);
    return rc;
}

int pq_igemm_nt(int M, int N, int K, const int8_t *A, int lda, const int8_t *B, int ldb, int32_t *C,
                int ldc)
{
    static const int32_t zero = 0;
    static int exact = -1; /* the same answer on every thread: a benign race */
    hold_to_one_thread();
    if (exact < 0)
        exact = exact_s8_kernels();
    if (!exact)
        return igemm_by_floats(M, N, K, A, lda, B, ldb, C, ldc);
    dnnl_gemm_s8s8s32('N', 'T', 'F', M, N, K, 1.0f, A, lda, 0, B, ldb, 0, 0.0f, C, ldc, &zero);
    return 0;
}
