/* The rounding rules of polyq's quantizers, each the one of the implementation a method
 * reproduces (docs/rounding.md):
 *   - ties to even: torch.round (GPTQ's and AWQ's quantizers, polyq's round-to-nearest, which
 *     is GPTQ's quantizer without error feedback), numpy.round, and llama.cpp's nearest_int
 *     (k-quants: a float added to 1.5 * 2^23 rounds to even);
 *   - ties away from zero: C's roundf (llama.cpp's Q8_0);
 *   - ties up: llama.cpp's (int)(x + 8.5f) and (int)(x + 0.5f) of Q4_0/Q5_0/Q4_1/Q5_1 (in
 *     blockfmt.c, written as llama.cpp writes them).
 * pq_round_even does not depend on the floating-point environment's rounding mode, so a host
 * program that changes it does not change polyq's numbers. */
#ifndef PQ_ROUND_H
#define PQ_ROUND_H

#include <fenv.h>
#include <limits.h>
#include <math.h>

/* x rounded to the nearest integer, a tie to the even one; NaN gives 0 and values beyond int
 * saturate. Branch-free, so that the quantizers' loops over it still vectorize. */
static inline int pq_round_even(float x)
{
    x = x == x ? x : 0.0f; /* NaN */
    x = x < -2147483520.0f ? -2147483520.0f : x > 2147483520.0f ? 2147483520.0f : x;
    int t = (int)x;              /* toward zero, whatever the rounding mode */
    int fl = t - (x < (float)t); /* floor (x is an integer from 2^24 up, so exact) */
    float frac = x - (float)fl;  /* exact below 2^24 */
    return fl + ((frac > 0.5f) | ((frac == 0.5f) & (fl & 1)));
}

/* For the hot loops of the k-quants' scale search, where pq_round_even's few instructions
 * cost 3.7x the quantization time: rintf, inlined in a few instructions, rounds half to even
 * exactly while the rounding mode is FE_TONEAREST, which pq_nearest_begin sets (saving the
 * caller's) and pq_nearest_end restores around each block. */
static inline int pq_round_even_fast(float x)
{
    return (int)rintf(x);
}
static inline int pq_nearest_begin(void)
{
    int mode = fegetround();
    if (mode != FE_TONEAREST)
        fesetround(FE_TONEAREST);
    return mode;
}
static inline void pq_nearest_end(int mode)
{
    if (mode != FE_TONEAREST)
        fesetround(mode);
}

#endif
