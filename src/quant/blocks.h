/* The packed blocks of the block formats, one struct each, as their tools store them
 * (llama.cpp's ggml-common.h; bitsandbytes keeps only codes in its blocks). Every f16 is
 * little-endian IEEE half; the code reads fields through offsetof on byte pointers (rows of a
 * mapped file need not be aligned for the struct), so the structs are the layout's spec and
 * the static assertions keep them at the sizes the files have.
 *
 *   format  bytes  weights  fields (in order)
 *   Q8_0    34     32       d, qs[32] (int8)
 *   Q4_0    18     32       d, qs[16] (weight j low nibble, weight j + 16 high nibble)
 *   Q4_1    20     32       d, m, qs[16]
 *   Q5_0    22     32       d, qh[4] (fifth bits, little-endian u32), qs[16]
 *   Q5_1    24     32       d, m, qh[4], qs[16]
 *   Q2_K    84     256      scales[16] (4-bit scale | 4-bit min << 4), qs[64], d, dmin
 *   Q3_K    110    256      hmask[32], qs[64], scales[12] (16 6-bit), d
 *   Q4_K    144    256      d, dmin, scales[12] (8 6-bit scales + 8 6-bit mins), qs[128]
 *   Q5_K    176    256      d, dmin, scales[12], qh[32], qs[128]
 *   Q6_K    210    256      ql[128], qh[64], scales[16] (int8), d
 *   NF4/FP4 32     64       qs[32] (first weight in the high nibble); absmax kept apart */
#ifndef PQ_BLOCKS_H
#define PQ_BLOCKS_H

#include <stddef.h>
#include <stdint.h>

#include "base/base.h"

typedef struct {
    uint16_t d;
    int8_t qs[32];
} pq_block_q8_0;
typedef struct {
    uint16_t d;
    uint8_t qs[16];
} pq_block_q4_0;
typedef struct {
    uint16_t d, m;
    uint8_t qs[16];
} pq_block_q4_1;
typedef struct {
    uint16_t d;
    uint8_t qh[4];
    uint8_t qs[16];
} pq_block_q5_0;
typedef struct {
    uint16_t d, m;
    uint8_t qh[4];
    uint8_t qs[16];
} pq_block_q5_1;
typedef struct {
    uint8_t scales[16];
    uint8_t qs[64];
    uint16_t d, dmin;
} pq_block_q2_k;
typedef struct {
    uint8_t hmask[32];
    uint8_t qs[64];
    uint8_t scales[12];
    uint16_t d;
} pq_block_q3_k;
typedef struct {
    uint16_t d, dmin;
    uint8_t scales[12];
    uint8_t qs[128];
} pq_block_q4_k;
typedef struct {
    uint16_t d, dmin;
    uint8_t scales[12];
    uint8_t qh[32];
    uint8_t qs[128];
} pq_block_q5_k;
typedef struct {
    uint8_t ql[128];
    uint8_t qh[64];
    int8_t scales[16];
    uint16_t d;
} pq_block_q6_k;
typedef struct {
    uint8_t qs[32];
} pq_block_bnb4;

_Static_assert(sizeof(pq_block_q8_0) == 34, "Q8_0 block");
_Static_assert(sizeof(pq_block_q4_0) == 18, "Q4_0 block");
_Static_assert(sizeof(pq_block_q4_1) == 20, "Q4_1 block");
_Static_assert(sizeof(pq_block_q5_0) == 22, "Q5_0 block");
_Static_assert(sizeof(pq_block_q5_1) == 24, "Q5_1 block");
_Static_assert(sizeof(pq_block_q2_k) == 84, "Q2_K block");
_Static_assert(sizeof(pq_block_q3_k) == 110, "Q3_K block");
_Static_assert(sizeof(pq_block_q4_k) == 144, "Q4_K block");
_Static_assert(sizeof(pq_block_q5_k) == 176, "Q5_K block");
_Static_assert(sizeof(pq_block_q6_k) == 210, "Q6_K block");
_Static_assert(sizeof(pq_block_bnb4) == 32, "bitsandbytes 4-bit block");

/* byte offset of a block field, for reading and writing through byte pointers */
#define PQ_AT(type, field) offsetof(type, field)

/* A block's little-endian f16 field, written from and read into f32 (blocks need not be aligned).
 */
static inline void pq_block_put_f16(uint8_t *p, float v)
{
    uint16_t h = pq_f32_to_f16(v);
    p[0] = (uint8_t)h;
    p[1] = (uint8_t)(h >> 8);
}

static inline float pq_block_get_f16(const uint8_t *p)
{
    return pq_f16_to_f32((uint16_t)(p[0] | p[1] << 8));
}

#endif
