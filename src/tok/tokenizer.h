/* One tokenizer pipeline, loaded from Hugging Face files:
 *   added tokens split out -> normalizer -> pre-tokenizer -> model -> post-processor.
 * Reproduces HF `tokenizers` encode() id for id, and decode. Models: BPE (byte-level as in
 * GPT-2, or on characters with byte fallback as sentencepiece's), WordPiece, Unigram
 * (Viterbi). Files: tokenizer.json; vocab.json + merges.txt; vocab.txt (BERT); a
 * sentencepiece tokenizer.model. Unknown components are refused with a message naming them.
 * A loaded tokenizer is immutable: encode/decode may run from several threads at once. */
#ifndef PQ_TOKENIZER_H
#define PQ_TOKENIZER_H

/* The longest token (vocabulary entry, sentencepiece piece, added token) polyq reads, in bytes:
 * the longest of real vocabularies is a few hundred; tokenizing costs at most this many hash
 * steps per byte of text. */
#define PQ_TOK_MAX_TOKEN 4096

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "base/status.h"

typedef struct pq_tokenizer pq_tokenizer;

/* A growable id list; free with pq_ids_free. */
typedef struct pq_ids {
    int32_t *v;
    size_t n, cap;
} pq_ids;
int pq_ids_push(pq_ids *ids, int32_t id); /* 0 or -1 out of memory */
void pq_ids_free(pq_ids *ids);

/* Loads dir/tokenizer.json, else vocab.json + merges.txt, else vocab.txt (BERT), else
 * tokenizer.model (sentencepiece BPE); reads special tokens from dir/tokenizer_config.json when
 * present. *out is freed with pq_tok_free. */
int pq_tok_load_dir(pq_tokenizer **out, const char *dir, polyq_err *err);
bool pq_tok_dir_has(const char *dir); /* any of the files pq_tok_load_dir reads */
int pq_tok_load_spm_model(pq_tokenizer **out, const char *path, polyq_err *err);
int pq_tok_load_json(pq_tokenizer **out, const char *path, polyq_err *err);
/* The same from bytes in memory; `what` names them in messages. */
int pq_tok_load_json_buffer(pq_tokenizer **out, const char *what, const char *buf, size_t len,
                            polyq_err *err);
int pq_tok_load_vocab_merges(pq_tokenizer **out, const char *vocab_path, const char *merges_path,
                             polyq_err *err);
void pq_tok_free(pq_tokenizer *t);

/* Appends the ids of text[0..len) (valid UTF-8, checked) without special tokens. */
int pq_tok_encode(const pq_tokenizer *t, const char *text, size_t len, pq_ids *out, polyq_err *err);
/* The same with the post-processor's special tokens around the text (HF's
 * add_special_tokens=True: [CLS] ... [SEP], <s> ... </s>, or none). */
int pq_tok_encode_special(const pq_tokenizer *t, const char *text, size_t len, pq_ids *out,
                          polyq_err *err);
/* The post-processor's ids before and after one sequence; returns how many in all. */
int pq_tok_special_around(const pq_tokenizer *t, const int32_t **pre, int *n_pre,
                          const int32_t **post, int *n_post);
/* Decodes ids into a heap string (caller frees); unknown ids are an error. */
int pq_tok_decode(const pq_tokenizer *t, const int32_t *ids, size_t n, char **out, size_t *out_len,
                  polyq_err *err);

int32_t pq_tok_vocab_size(const pq_tokenizer *t); /* largest id + 1 */
/* Whether tokenizer.json sets padding or truncation (transformers' batching; polyq applies
 * neither, every sentence is scored whole), and their lengths (-1: none fixed). */
bool pq_tok_batching(const pq_tokenizer *t, bool *pads, int64_t *pad_length, bool *truncates,
                     int64_t *trunc_length);
const char *pq_tok_kind(const pq_tokenizer *t); /* "byte-level BPE", "WordPiece", "Unigram", ... */
/* Whether id stands for text the vocabulary could not hold: the unknown token or a
 * byte-fallback <0xXX> token. */
bool pq_tok_is_fallback(const pq_tokenizer *t, int32_t id);
int32_t pq_tok_token_id(const pq_tokenizer *t, const char *token); /* -1 if absent */
/* Special tokens named by tokenizer_config.json (or the legacy defaults); -1 when none. */
int32_t pq_tok_bos(const pq_tokenizer *t);

/* The vocabulary as files store it, for writing it elsewhere (GGUF): every id's token string
 * (unused ids get "[PAD<id>]"), its kind (1 normal, 2 unknown, 3 control, 4 user-defined,
 * 6 byte, as llama.cpp numbers them) and the BPE merges in rank order as "left right". */
typedef struct pq_tok_vocab {
    char **tokens;
    int32_t *types;
    int32_t n;
    char **merges;
    size_t n_merges;
} pq_tok_vocab;
int pq_tok_export(const pq_tokenizer *t, pq_tok_vocab *out, polyq_err *err);
void pq_tok_vocab_free(pq_tok_vocab *v);
int32_t pq_tok_eos(const pq_tokenizer *t);
/* tokenizer.json's pre_tokenizer as compact JSON (NULL: none, or a tokenizer not read from
 * tokenizer.json), whether the pipeline is byte-level and whether the BPE ignores merges for
 * pieces that are whole tokens */
const char *pq_tok_pre_json(const pq_tokenizer *t, bool *byte_level, bool *ignore_merges);

#endif
