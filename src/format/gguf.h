/* GGUF (llama.cpp's model file, version 3): a header, typed key/value metadata, a table of
 * tensors (name, dimensions innermost first, ggml type, offset) and the tensor data, each
 * tensor starting at a multiple of general.alignment (32 unless the file says otherwise).
 * All integers little-endian; strings are a u64 length and bytes. */
#ifndef PQ_GGUF_H
#define PQ_GGUF_H

#include <stddef.h>
#include <stdint.h>

#include "base/base.h"
#include "base/status.h"
#include "base/strmap.h"

/* ggml tensor types polyq reads and writes */
enum {
    PQ_GGML_F32 = 0,
    PQ_GGML_F16 = 1,
    PQ_GGML_Q4_0 = 2,
    PQ_GGML_Q4_1 = 3,
    PQ_GGML_Q5_0 = 6,
    PQ_GGML_Q5_1 = 7,
    PQ_GGML_Q8_0 = 8,
    PQ_GGML_Q2_K = 10,
    PQ_GGML_Q3_K = 11,
    PQ_GGML_Q4_K = 12,
    PQ_GGML_Q5_K = 13,
    PQ_GGML_Q6_K = 14,
    PQ_GGML_BF16 = 30
};
/* metadata value types */
enum {
    PQ_GGUF_U8,
    PQ_GGUF_I8,
    PQ_GGUF_U16,
    PQ_GGUF_I16,
    PQ_GGUF_U32,
    PQ_GGUF_I32,
    PQ_GGUF_F32,
    PQ_GGUF_BOOL,
    PQ_GGUF_STR,
    PQ_GGUF_ARR,
    PQ_GGUF_U64,
    PQ_GGUF_I64,
    PQ_GGUF_F64
};
/* weights per block and bytes per block of a ggml type (0, 0 when polyq does not know it) */
void pq_ggml_type_size(uint32_t type, int *block, size_t *bytes);
/* Makes a type polyq's own block formats add known to the reader (quant's pq_qfmt_register);
 * -1 when the type is known with other sizes, or there is no room. */
int pq_ggml_type_register(uint32_t type, int block, size_t bytes);

/* ---- writing ---- */
typedef struct pq_gguf_w pq_gguf_w;
pq_gguf_w *pq_gguf_w_new(void);
void pq_gguf_w_free(pq_gguf_w *w);
/* Metadata in the order added. Arrays of strings take n pointers; numbers take n values. */
int pq_gguf_w_str(pq_gguf_w *w, const char *key, const char *val);
int pq_gguf_w_u32(pq_gguf_w *w, const char *key, uint32_t val);
int pq_gguf_w_f32(pq_gguf_w *w, const char *key, float val);
int pq_gguf_w_bool(pq_gguf_w *w, const char *key, bool val);
int pq_gguf_w_strs(pq_gguf_w *w, const char *key, const char *const *vals, size_t n);
int pq_gguf_w_arr(pq_gguf_w *w, const char *key, int type, const void *vals, size_t n);
/* A tensor: ne innermost first (ne[0] = a row's length); data is copied. */
int pq_gguf_w_tensor(pq_gguf_w *w, const char *name, uint32_t type, int n_dims, const uint64_t *ne,
                     const void *data, size_t nbytes);
/* Writes the file (to path.tmp, then renamed). */
int pq_gguf_w_save(pq_gguf_w *w, const char *path, polyq_err *err);

/* ---- reading ---- */
typedef struct pq_gguf_kv {
    const char *key; /* owned by the file */
    int type;        /* PQ_GGUF_*; for arrays, the element type is arr_type */
    int arr_type;
    uint64_t n;        /* array length (1 for scalars) */
    const uint8_t *at; /* the value (the first element for arrays) inside the map */
} pq_gguf_kv;

typedef struct pq_gguf_tensor {
    const char *name;
    uint32_t type;
    int n_dims;
    uint64_t ne[4];
    const uint8_t *data;
    size_t nbytes;
} pq_gguf_tensor;

typedef struct pq_gguf {
    pq_map map;
    const char *path;
    uint32_t version;
    pq_gguf_kv *kv;
    size_t n_kv;
    pq_gguf_tensor *t;
    size_t n_t;
    char *strings;                    /* names and keys, NUL-terminated */
    pq_strmap tensor_index, kv_index; /* name -> index, for lookups in constant time */
} pq_gguf;

/* Opens and checks a GGUF file: every length, count, offset and size inside the file, known
 * value types, tensor types polyq knows, dimensions whose product fits, rows of whole blocks,
 * tensors inside the data section and not overlapping. */
int pq_gguf_open(pq_gguf *g, const char *path, polyq_err *err);
/* The same on bytes in memory (not copied; they must outlive g); name is used in messages. */
int pq_gguf_parse(pq_gguf *g, const uint8_t *data, size_t size, const char *name, polyq_err *err);
void pq_gguf_close(pq_gguf *g);
const pq_gguf_kv *pq_gguf_find_kv(const pq_gguf *g, const char *key);
const pq_gguf_tensor *pq_gguf_find_tensor(const pq_gguf *g, const char *name);
/* An integer metadata value of any integer type; -1 (and an error) when absent or not one. */
int pq_gguf_get_int(const pq_gguf *g, const char *key, int64_t *out, polyq_err *err);
/* A string value as (pointer into the map, length). */
int pq_gguf_get_str(const pq_gguf *g, const char *key, const char **s, size_t *len, polyq_err *err);

#endif
