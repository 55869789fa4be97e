/* What an evaluation will need in memory, estimated before anything large is loaded, from
 * config.json and the weight files' tensor tables: full-precision weights as polyq holds them
 * (F32, and the F16/BF16 matrices of linear layers, in place in the file's map; other tensors
 * as f32 copies plus the file pages read while converting them), each quantized copy
 * of the block linears, the lockstep buffers (two logit matrices and the activations of one
 * batch), the tokenizer while it is parsed, and the process itself. */
#ifndef PQ_MEMORY_H
#define PQ_MEMORY_H

#include <stddef.h>

#include "base/status.h"
#include "quant/qformat.h"

typedef struct pq_mem_plan {
    double weights_fp, weights_q, buffers, tokenizer, base; /* bytes */
    double total;
} pq_mem_plan;

/* window_tokens: the longest window one batch may hold beyond batch_tokens (document mode: its
 * context; -1: the model's context, capped as pq_eval_context caps it), 0 for sentences, each
 * taken to fit in a batch. */
int pq_memory_estimate(const char *model_dir, const pq_qspec *specs, int n_q, int batch_tokens,
                       int window_tokens, int threads, pq_mem_plan *out, polyq_err *err);
/* MemAvailable from /proc/meminfo in bytes, 0 when unknown. */
double pq_memory_available(void);
/* "8G", "512M", "1.5g", "100000" (bytes) -> bytes; -1 when not a size. */
double pq_parse_size(const char *s);

#endif
