/* safetensors files (one, or shards listed by model.safetensors.index.json), memory-mapped.
 *
 * File layout (little-endian):
 *   offset  size  meaning
 *   0       8     N = u64 length of the JSON header
 *   8       N     JSON object: name -> {"dtype": "F32"|..., "shape": [d0, ...],
 *                 "data_offsets": [begin, end]}, plus optional "__metadata__": {str: str}
 *   8+N     ...   tensor bytes; offsets are relative to 8+N
 * Validation follows the reference loader: N <= 100 MB and within the file; every shape and
 * offset non-negative and overflow-checked; numel x dtype size == end - begin; the tensors,
 * sorted by begin, tile the data section exactly (no overlap, no gap, nothing left over);
 * no duplicate names. Tensor data stays in the map (zero-copy); nothing is converted here. */
#ifndef PQ_SAFETENSORS_H
#define PQ_SAFETENSORS_H

#include <stddef.h>
#include <stdint.h>

#include "base/base.h"
#include "base/strmap.h"

typedef enum pq_dtype {
    PQ_DT_F64,
    PQ_DT_F32,
    PQ_DT_F16,
    PQ_DT_BF16,
    PQ_DT_I64,
    PQ_DT_I32,
    PQ_DT_I16,
    PQ_DT_I8,
    PQ_DT_U8,
    PQ_DT_BOOL,
    PQ_DT_U16,
    PQ_DT_U32,
    PQ_DT_U64,
    PQ_DT_F8_E4M3,
    PQ_DT_F8_E5M2,
    PQ_DT_COUNT
} pq_dtype;

const char *pq_dtype_name(pq_dtype t);
size_t pq_dtype_size(pq_dtype t);

#define PQ_MAX_DIMS 8

typedef struct pq_tensor_info {
    const char *name; /* owned by the table */
    pq_dtype dtype;
    int n_dims;
    int64_t shape[PQ_MAX_DIMS];
    size_t numel;
    const uint8_t *data; /* inside the file's map */
    size_t nbytes;
    const char *file; /* path of the file that holds it */
    int packed;       /* 0: elements of dtype; else 1 + a packed storage format (quant/qformat.h):
                         data holds its blocks, row after row, for shape [rows, cols] (GGUF) */
} pq_tensor_info;

/* All tensors of a model, possibly across shards. */
typedef struct pq_tensors {
    struct pq_st_file {
        char *path;
        pq_map map;
    } * files;
    size_t n_files;
    pq_tensor_info *t;
    size_t n;
    pq_strmap by_name;
    char **names;
    void **owned; /* tensors materialized from strided views (torch checkpoints) */
    size_t n_owned;
} pq_tensors;

/* Maps one file and adds its tensors with `parse` (a reader of one weight format). */
typedef int (*pq_parse_fn)(pq_tensors *ts, const char *what, const uint8_t *buf, size_t size,
                           polyq_err *err);
int pq_tensors_open_with(pq_tensors *ts, const char *path, pq_parse_fn parse, polyq_err *err);
/* Opens one .safetensors file. */
int pq_tensors_open_file(pq_tensors *ts, const char *path, polyq_err *err);
/* Opens the first of dir/model.safetensors.index.json (and its shards),
 * dir/model.safetensors, dir/pytorch_model.bin.index.json (and its shards),
 * dir/pytorch_model.bin. */
int pq_tensors_open_dir(pq_tensors *ts, const char *dir, polyq_err *err);
/* Parses a header already in memory (for tests and fuzzing); `what` names it in messages. */
int pq_tensors_add_buffer(pq_tensors *ts, const char *what, const uint8_t *buf, size_t size,
                          polyq_err *err);
/* Adds one tensor held elsewhere: data stays where it is (in a map the table holds, or in
 * `owned`, which the table then frees, also when adding fails). */
int pq_tensors_add(pq_tensors *ts, const char *what, const char *name, pq_dtype dtype, int n_dims,
                   const int64_t *shape, const void *data, void *owned, polyq_err *err);
/* Adds a matrix [shape[0], shape[1]] stored packed (`packed` as in pq_tensor_info) in nbytes at
 * data, held as pq_tensors_add holds it. */
int pq_tensors_add_packed(pq_tensors *ts, const char *what, const char *name, int packed,
                          const int64_t *shape, const void *data, size_t nbytes, void *owned,
                          polyq_err *err);
void pq_tensors_close(pq_tensors *ts); /* accepts a zeroed table */

const pq_tensor_info *pq_tensors_find(const pq_tensors *ts, const char *name);

/* Converts numel elements (F32/F16/BF16/F64) into out. */
int pq_tensor_to_f32(const pq_tensor_info *t, float *out, polyq_err *err);

#endif
