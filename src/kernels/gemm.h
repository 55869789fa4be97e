/* Matrix products of the fast path, each on the calling thread only (the pool spreads chunks
 * of output features over threads, so a product never depends on the thread count).
 * oneDNN's JIT kernels choose AVX-512 / AVX2 / SSE code from the CPU's features at run time. */
#ifndef PQ_GEMM_H
#define PQ_GEMM_H

#include <stdint.h>

/* C (M,N) = A (M,K) B(N,K)^T, row-major with leading dimensions lda, ldb, ldc. */
void pq_sgemm_nt(int M, int N, int K, const float *A, int lda, const float *B, int ldb, float *C,
                 int ldc);
/* C (M,N) = A (M,K) B(N,K)^T in exact int32 arithmetic (oneDNN's int8 kernels where the CPU
 * has VNNI, exact single-precision products of byte blocks elsewhere); -1 when out of memory. */
int pq_igemm_nt(int M, int N, int K, const int8_t *A, int lda, const int8_t *B, int ldb, int32_t *C,
                int ldc);
/* C (M,N) = A (M,K) B (K,N), row-major (attention: probabilities times values). */
void pq_sgemm_nn(int M, int N, int K, const float *A, int lda, const float *B, int ldb, float *C,
                 int ldc);

#endif
