/* oneDNN's row-major gemm, held to one OpenMP thread per calling thread: its OpenMP runtime
 * would otherwise start a team of every core for each caller, and the pool already runs one
 * product per core. */
#include <dnnl.h>
#include <omp.h>

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

void pq_igemm_nt(int M, int N, int K, const int8_t *A, int lda, const int8_t *B, int ldb,
                 int32_t *C, int ldc)
{
    static const int32_t zero = 0;
    hold_to_one_thread();
    dnnl_gemm_s8s8s32('N', 'T', 'F', M, N, K, 1.0f, A, lda, 0, B, ldb, 0, 0.0f, C, ldc, &zero);
}
