/* Tokenizer files older than tokenizer.json, turned into its JSON form (see legacy.c). */
#ifndef PQ_LEGACY_H
#define PQ_LEGACY_H

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "base/status.h"

/* BERT's vocab.txt; cfg: tokenizer_config.json (do_lower_case, special tokens) or NULL. */
int pq_legacy_vocab_txt(json_t **out, const char *path, const json_t *cfg, polyq_err *err);
/* A sentencepiece tokenizer.model of BPE type. */
int pq_legacy_spm_model(json_t **out, const char *path, polyq_err *err);

/* The same from a vocabulary already read (GGUF's tokenizer.ggml.*): piece i is s[i][0..len[i]),
 * types as sentencepiece numbers them (1 normal, 2 unknown, 3 control, 6 byte); byte pieces
 * turn byte fallback on. */
int pq_legacy_spm_pieces(json_t **out, const char *what, const char *const *s, const size_t *len,
                         const float *scores, const int32_t *types, size_t n, int64_t unk_id,
                         int64_t bos_id, bool dummy_prefix, polyq_err *err);

#endif
