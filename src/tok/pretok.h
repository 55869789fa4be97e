/* Pre-tokenizers of Hugging Face `tokenizers` (the pre_tokenizers module): a chain of steps,
 * each cutting every piece of text into smaller pieces, which the model then encodes one by
 * one. Supported: ByteLevel (optional prefix space and the GPT-2 regex), Metaspace (prepend
 * schemes always/first/never, split), Split (regex or string; Removed, Isolated,
 * MergedWithPrevious, MergedWithNext, Contiguous; invert), Whitespace, WhitespaceSplit,
 * BertPreTokenizer, Punctuation, Digits, Sequence. Regexes follow Oniguruma's syntax, run by
 * PCRE2 with UTF and Unicode properties. Immutable once built: runs may share it. */
#ifndef PQ_PRETOK_H
#define PQ_PRETOK_H

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>

#include "base/status.h"

typedef struct pq_pretok pq_pretok;

/* The pieces of one run: piece i is arena[off[i] .. off[i] + len[i]). */
typedef struct pq_pieces {
    char *arena;
    size_t n_arena, cap_arena;
    size_t *off, *len;
    bool *start; /* the piece begins the text (Metaspace's "first" scheme) */
    size_t n, cap;
} pq_pieces;

/* j NULL or JSON null: *out = NULL, the whole text is one piece. `what` names the file. */
int pq_pretok_from_json(pq_pretok **out, const json_t *j, const char *what, polyq_err *err);
void pq_pretok_free(pq_pretok *p);
/* Whether the chain maps bytes to GPT-2's byte characters (a ByteLevel step). */
bool pq_pretok_byte_level(const pq_pretok *p);
/* Cuts text[0..len) into out (reset first); tmp is scratch. `first`: the text starts the
 * input (it is not preceded by an added token). p may be NULL. */
int pq_pretok_run(const pq_pretok *p, const char *text, size_t len, bool first, pq_pieces *out,
                  pq_pieces *tmp, polyq_err *err);
void pq_pieces_free(pq_pieces *ps);

#endif
