/* One language's per-sentence results as bytes (wire.c), for sending between processes
 * (polyq sweep over MPI). Only spec qi of the evaluation is kept.
 *
 * Layout, little-endian as the host writes it (every rank of a run is the same build):
 *   offset size         meaning
 *   0      8            "PQLANG02"
 *   8      64           language code, NUL-padded
 *   72     8 × 6        n_sent, bytes, chars, words, fallback, scored tokens T (uint64)
 *   120    1            spaced (0/1), then 7 bytes of padding
 *   128    4n + 4n      tokens, sbytes per sentence (uint32)
 *   …      8n × 3       nll_fp, nll_q, kld_q per sentence (double)
 *   …      4n           agree_q per sentence (uint32)
 *   …      1 + 4T       1 when per-position KL follows, then T floats
 *   …      1 + 16n      1 when the change in the correct token's probability follows, then
 *                       its per-sentence sums of dp and dp² (double)
 * T must equal the sum of tokens. Reading checks every size against the buffer. */
#ifndef PQ_WIRE_H
#define PQ_WIRE_H

#include <stddef.h>

#include "base/status.h"
#include "eval/eval.h"

/* *out (malloc'd) holds *len bytes. */
int pq_lang_eval_pack(const pq_lang_eval *e, int qi, char **out, size_t *len, polyq_err *err);
/* An evaluation with n_q = 1; free with pq_lang_eval_free, also after a failure. */
int pq_lang_eval_unpack(const char *buf, size_t len, pq_lang_eval *e, polyq_err *err);

#endif
