/* Normalizers of Hugging Face `tokenizers` (the normalizers module): a sequence of steps applied
 * to each piece of text between added tokens. Supported: NFC, NFD, NFKC, NFKD (utf8proc),
 * Lowercase, Prepend, Replace (string or regex), Strip, StripAccents, BertNormalizer,
 * Precompiled (sentencepiece charsmaps), Sequence. Others are refused with a
 * message naming them. */
#ifndef PQ_NORMALIZER_H
#define PQ_NORMALIZER_H

#include <jansson.h>
#include <stddef.h>

#include "base/status.h"

typedef struct pq_normalizer pq_normalizer;

/* j NULL or JSON null: *out = NULL, the identity. `what` names the file in messages. */
int pq_normalizer_from_json(pq_normalizer **out, const json_t *j, const char *what, polyq_err *err);
/* Heap result (caller frees), NUL-terminated. n may be NULL (identity copy). */
int pq_normalizer_apply(const pq_normalizer *n, const char *text, size_t len, char **out,
                        size_t *out_len, polyq_err *err);
void pq_normalizer_free(pq_normalizer *n);

#endif
