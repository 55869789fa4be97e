/* Tokenizer files older than tokenizer.json, turned into its JSON form (see legacy.c). */
#ifndef PQ_LEGACY_H
#define PQ_LEGACY_H

#include <jansson.h>

#include "base/status.h"

/* BERT's vocab.txt; cfg: tokenizer_config.json (do_lower_case, special tokens) or NULL. */
int pq_legacy_vocab_txt(json_t **out, const char *path, const json_t *cfg, polyq_err *err);
/* A sentencepiece tokenizer.model of BPE type. */
int pq_legacy_spm_model(json_t **out, const char *path, polyq_err *err);

#endif
