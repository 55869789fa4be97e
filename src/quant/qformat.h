/* Packed weight formats: polyq's integer layout (round-to-nearest, GPTQ and AWQ fill it), the
 * other tools' block formats with their traits, and the spec strings that name them.
 *
 * A quantized matrix W [n_out, n_in] (row = output channel) is stored as:
 *   data   n_out rows of row_bytes = ceil(n_in * bits / 8) bytes; value i of a row occupies
 *          bits [i*bits, i*bits + bits) of the row, least significant bit first
 *          (so int4 is two values per byte, the first in the low nibble)
 *   scale  f32, one per group: n_out * n_groups (per-tensor: 1)
 *   zero   u8, one per group, asymmetric only (per-tensor: 1)
 * Groups are G consecutive inputs of one row (the last may be shorter); per-channel is
 * G = n_in. Dequantized value: (u - z) * scale with z = zero (asymmetric) or 2^(bits-1)
 * (symmetric, levels -(2^(bits-1)-1) .. 2^(bits-1)-1).
 *
 * Spec grammar: fp32
 *   | int<bits>[-g<G>|-tensor|-channel][-sym|-asym][-head]
 *   | gptq-int<bits>[-g<G>][-sym|-asym][-act][-head] | awq-int<bits>[-g<G>][-clip][-duo]
 *   | <block format>[-head] (any name of the traits table: q8_0 .. q6_k, nf4, fp4, ...)
 *   | q4_k_m | nf4-dq | fp4-dq [-head] (recipes over block formats)
 *   | w8a8 | smoothquant[-a<alpha>] | llm-int8[-t<threshold>]
 *   fp32, the ggml formats and q4_k_m may end in -llamacpp: llama.cpp's numerics (ggml_dot.h);
 *   bits 2..8; default granularity per output channel; default symmetric for 8 bits,
 *   asymmetric below; -head also quantizes the LM head (embeddings stay full precision). */
#ifndef PQ_QFORMAT_H
#define PQ_QFORMAT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "base/status.h"

typedef enum { PQ_GRAN_CHANNEL, PQ_GRAN_GROUP, PQ_GRAN_TENSOR } pq_gran;

/* The storage format of a packed weight: polyq's integer layout above, or another tool's blocks
 * (blockfmt.c, kquants.c; blocks.h has their structs). The enum is the in-memory id only: files
 * store each format's frozen file_id, GGUF its ggml type. Formats registered at run time take
 * the ids from PQ_QF_BUILTIN on. */
typedef enum {
    PQ_QF_INT,
    PQ_QF_Q8_0,
    PQ_QF_Q4_0,
    PQ_QF_Q4_1,
    PQ_QF_Q5_0,
    PQ_QF_Q5_1, /* llama.cpp */
    PQ_QF_NF4,
    PQ_QF_FP4, /* bitsandbytes */
    PQ_QF_Q2_K,
    PQ_QF_Q3_K,
    PQ_QF_Q4_K,
    PQ_QF_Q5_K,
    PQ_QF_Q6_K, /* llama.cpp k-quants */
    PQ_QF_BUILTIN
} pq_qfmt;
#define PQ_QF_MAX (PQ_QF_BUILTIN + 8) /* built-in and registered formats together */

/* The activations a format's integer dot product pairs with in llama.cpp's CPU backend (its
 * vec_dot_type): rows quantized per block of 32 to Q8_0 (scale), Q8_1 (scale and scaled sum) or
 * per 256 to Q8_K (scale and the sums of each 16); PQ_DOT_NONE: the format has no such product. */
typedef enum { PQ_DOT_NONE, PQ_DOT_Q8_0, PQ_DOT_Q8_1, PQ_DOT_Q8_K } pq_dot_act;

/* One block decoded for integer dot products (ggml_dot.h): integer codes q_i (int8) and
 *   k-quants      w_i = d * sc[i / sub] * q_i - dmin * mn[i / sub]  (sub = dot_sub weights)
 *   Q4_1, Q5_1    w_i = d * q_i + dmin                               (dmin holds the minimum)
 *   Q8_0 .. Q5_0  w_i = d * q_i                                      (sc[0] = 1, mn[0] = 0)
 * the integer scales and minimums, d and dmin exactly as the block stores them. */
typedef struct pq_dec {
    float d, dmin;
    int16_t sc[16], mn[16];
} pq_dec;

/* Everything polyq knows about one storage format: one row of the table in blockfmt.c. */
typedef struct pq_qfmt_traits {
    const char *name;   /* its spec name, e.g. "q4_0" ("int": polyq's integer layout) */
    const char *tool;   /* whose format: "rtn" (polyq's), "ggml", "bitsandbytes"; the method name */
    int block;          /* weights per block (0: polyq's layout, groups chosen by the spec) */
    size_t block_bytes; /* bytes per stored block (bitsandbytes: the codes only) */
    int bits;           /* bits of one weight's code */
    double bpw;         /* bits per weight as stored, scales included (0: set by the spec) */
    bool sym;           /* symmetric levels (no stored minimum or zero point) */
    bool flat;          /* blocks run over the flattened matrix, absmax kept apart (bitsandbytes) */
    int ggml_type;      /* its ggml type id in GGUF files, -1 when it has none */
    int file_id;        /* its number in polyq-quant.safetensors: frozen, never reused */
    pq_qfmt fallback;   /* for rows that are not whole blocks, as llama-quantize picks (PQ_QF_INT:
                           none) */
    bool calibrated;    /* needs calibration text */
    bool imatrix;       /* needs an importance matrix */
    void (*quantize)(const float *x,
                     uint8_t *y); /* one block of `block` weights into block_bytes */
    void (*dequant)(const uint8_t *y, float *out); /* and back */
    int ftype; /* llama.cpp's general.file_type (llama_ftype) of a file mostly in this format;
                  0: none */
    pq_dot_act dot_act; /* llama.cpp numerics: the activations of its integer dot product */
    int dot_sub;        /* weights per sub-block of decode's scales (the block when it has one) */
    void (*decode)(const uint8_t *y, int8_t *q, pq_dec *h); /* a block into codes and scales */
} pq_qfmt_traits;

/* The traits of format f; NULL for an id that is no format. */
const pq_qfmt_traits *pq_qfmt_get(pq_qfmt f);
int pq_qfmt_count(void); /* formats known now: ids 0 .. count - 1 */
/* Lookups by block-format name, by the number in polyq's files, by ggml type: false when none. */
bool pq_qfmt_by_name(const char *name, pq_qfmt *out);
bool pq_qfmt_by_file_id(int id, pq_qfmt *out);
bool pq_qfmt_by_ggml(int type, pq_qfmt *out);
/* Adds a block format (a copy of *t) at run time, before any other work: its name, file id and
 * ggml type must be new. *out receives its id. */
int pq_qfmt_register(const pq_qfmt_traits *t, pq_qfmt *out, polyq_err *err);
/* The block formats' names for messages, by tool: "q8_0, q4_0, ... (ggml), nf4, fp4 (bitsandbytes),
 * ..." */
void pq_qfmt_list(char *buf, size_t size);

typedef struct pq_qspec {
    char name[64]; /* canonical text, e.g. "int4-g128" */
    bool none;     /* fp32: no quantization */
    int bits;
    pq_gran gran;
    int group; /* for PQ_GRAN_GROUP */
    bool sym;
    bool head;      /* quantize the LM head too */
    pq_qfmt fmt;    /* PQ_QF_INT for int<bits> specs */
    bool gptq;      /* gptq-int...: calibrated (needs calibration text) */
    bool act_order; /* gptq ... -act */
    bool awq;       /* awq-int...: calibrated activation-aware scaling, then RTN */
    bool minmax;    /* asymmetric groups over min..max with the zero point clamped to the grid
                       (AutoAWQ's pseudo_quantize_tensor: awq specs), not a range holding 0 */
    bool clip;      /* awq ... -clip: AWQ's search of each group's clipping range */
    bool duo;       /* awq ... -duo: AutoAWQ's duo_scaling, s = mean|x|^a / mean|w~|^(1-a) */
    bool act8;      /* w8a8 / smoothquant: int8 weights and per-token int8 activations */
    bool smooth;    /* smoothquant: migrate activation outliers into the weights first */
    float alpha;    /* smoothquant migration strength (default 0.5) */
    float outlier;  /* llm-int8: input features with |x| >= this stay in floating point (6.0) */
    bool k_mix; /* q4_k_m: llama.cpp's mixture of k-quants by tensor role (pq_qspec_for_linear) */
    bool dq;    /* nf4-dq / fp4-dq: bitsandbytes' double quantization of the block absmax */
    bool llama_numerics; /* ...-llamacpp: computed as llama.cpp's CPU backend computes it
                          * (ggml_dot.h): fp32 (a quantized GGUF's own blocks) and ggml formats */
} pq_qspec;

/* What a linear layer is in its block, for per-tensor recipes. */
typedef enum {
    PQ_ROLE_QKV,
    PQ_ROLE_Q,
    PQ_ROLE_K,
    PQ_ROLE_V,
    PQ_ROLE_ATTN_OUT,
    PQ_ROLE_GATE,
    PQ_ROLE_UP,
    PQ_ROLE_DOWN,
    PQ_ROLE_HEAD
} pq_role;

/* The spec one linear of n_in inputs gets, as llama-quantize picks it: k-quant rows must be
 * whole super-blocks of 256, otherwise Q2_K/Q3_K fall back to Q4_0, Q4_K to Q5_0, Q5_K to Q5_1,
 * Q6_K to Q8_0 (and to no quantization, *out->none, when even those blocks do not fit);
 * q4_k_m takes Q6_K for the LM head and, in the layers where llama.cpp spends more bits (the
 * first and last eighth, and every third between), for the attention's v and the MLP's down
 * projection, Q5_K for a fused qkv, Q4_K elsewhere. Other specs are returned as they are. */
int pq_qspec_for_linear(const pq_qspec *s, pq_role role, int layer, int n_layer, int n_in,
                        pq_qspec *out, polyq_err *err);

int pq_qspec_parse(const char *text, pq_qspec *out, polyq_err *err);
/* "none" (fp32), "rtn" (int specs), "ggml" (q8_0 .. q6_k), "bitsandbytes" (nf4, fp4), "gptq",
 * "awq", "smoothquant", "w8a8", "llm.int8" */
const char *pq_qspec_method(const pq_qspec *s);
/* Whether the spec stores linears in format f (q4_k_m: q4_k, q5_k and q6_k), before any
 * fallback for rows that are not whole blocks. */
bool pq_qspec_names_format(const pq_qspec *s, pq_qfmt f);
/* The spec in words ("4-bit integers in groups of 128, asymmetric, GPTQ"), into buf. */
void pq_qspec_describe(const pq_qspec *s, char *buf, size_t n);

typedef struct pq_qweight {
    pq_qfmt fmt; /* block formats: data holds the tool's blocks, row after row */
    int bits, n_out, n_in;
    pq_gran gran;
    int group;    /* inputs per group (n_in for per-channel and per-tensor) */
    int n_groups; /* per row (per-tensor: 1 for the whole matrix) */
    bool sym;
    size_t row_bytes;
    uint8_t *data;
    bool borrowed; /* data is someone else's (a view into a file's map): not freed with q */
    float *scale;
    uint8_t *zero;   /* NULL when symmetric */
    float *in_scale; /* AWQ: per input channel, multiplies the dequantized weight; or NULL */
    bool act8;       /* W8A8: 8-bit symmetric per channel, used with per-token int8 activations */
    float outlier;   /* LLM.int8(): with act8, features reaching this magnitude run in float */
    bool dq;         /* bitsandbytes double quantization: zero[n_groups] holds each block's absmax
                      * as a code of bitsandbytes' 8-bit dynamic map (blockfmt.c) relative to an
                      * offset; scale[] holds the absmax of every 256 such codes, then the offset */
} pq_qweight;
/* The block absmax b of a double-quantized bitsandbytes weight */
float pq_bnb_dq_absmax(const pq_qweight *q, int b);

/* Quantizes W [n_out, n_in] by round-to-nearest into a new packed weight (free with
 * pq_qweight_free). */
int pq_qweight_rtn(const float *w, int n_out, int n_in, const pq_qspec *spec, pq_qweight **out,
                   polyq_err *err);
void pq_qweight_free(pq_qweight *q);
/* A packed weight of block format f (not a flat bitsandbytes one) whose n_out rows of n_in
 * weights are `data`, borrowed as they are (a file's blocks, row after row): nbytes must be
 * exactly those rows' bytes. `what` names the file and tensor in messages. */
int pq_qweight_view(pq_qfmt f, int n_out, int n_in, const uint8_t *data, size_t nbytes,
                    const char *what, pq_qweight **out, polyq_err *err);

/* Block formats (blockfmt.c): weights per block (0 for PQ_QF_INT), bytes per stored block
 * (bitsandbytes: the codes only; absmax is in scale). */
int pq_qfmt_block(pq_qfmt f);
size_t pq_qfmt_block_bytes(pq_qfmt f);
const float *pq_bnb_code(pq_qfmt f); /* the 16 NF4 or FP4 code values */
int pq_qweight_blocks(const float *w, int n_out, int n_in, const pq_qspec *spec, pq_qweight **out,
                      polyq_err *err);
void pq_qweight_blocks_dequant_row(const pq_qweight *q, int r, float *out);
/* Row r of a weight whose format has a decode (the ggml formats) as n_in integer codes and
 * n_groups block headers, for llama.cpp's integer dot products (ggml_dot.h). */
void pq_qweight_decode_row(const pq_qweight *q, int r, int8_t *codes, pq_dec *h);

/* out[0..n_in) = dequantized row r. */
void pq_qweight_dequant_row(const pq_qweight *q, int r, float *out);
/* Reads value i of packed row `row` (0 .. 2^bits-1). */
unsigned pq_unpack(const uint8_t *row, int bits, size_t i);
void pq_pack(uint8_t *row, int bits, size_t i, unsigned v);
/* Storage of the matrix in bits (data + scales + zeros). */
double pq_qweight_bits(const pq_qweight *q);

/* Reference RTN of one group: finds scale (and zero) for x[0..n) and writes the levels
 * u[0..n). Guards all-zero groups (scale 0, inverse 0). */
void pq_rtn_group_ref(const float *x, int n, int bits, bool sym, float *scale, uint8_t *zero,
                      uint8_t *u);
/* The same over min..max (spec->minmax): scale = max(max - min, 1e-5) / (2^bits - 1), zero =
 * round(-min / scale) clamped to 0..2^bits - 1, levels clamped likewise (AutoAWQ's
 * pseudo_quantize_tensor; a group of one sign keeps its whole step for its own span). */
void pq_rtn_group_minmax(const float *x, int n, int bits, float *scale, uint8_t *zero, uint8_t *u);
/* pq_rtn_group_ref, or pq_rtn_group_minmax where the spec asks for it */
void pq_rtn_group_spec(const float *x, int n, const pq_qspec *spec, float *scale, uint8_t *zero,
                       uint8_t *u);

#endif
