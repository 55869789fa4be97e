/* Parallel text: one sentence per line (FLORES-200 or any `lang=path` file). Lines are
 * used as stored, without their line ending ("\n" or "\r\n"); every line must be valid
 * UTF-8 without NUL bytes, and a bad one is named by file and line number. */
#ifndef PQ_CORPUS_H
#define PQ_CORPUS_H

#include <stdbool.h>
#include <stddef.h>

#include "base/status.h"

/* The longest line (a sentence, or a unit of document mode) read, in bytes: a FLORES sentence
 * is a few hundred, a WikiText paragraph a few thousand. */
#define PQ_MAX_LINE (1 << 20)

typedef struct pq_corpus {
    char lang[64];
    char *path;
    char *text; /* the file, lines NUL-terminated in place */
    char **lines;
    size_t *lens;
    size_t n;
} pq_corpus;

/* Reads at most max_sentences lines (0 = all). */
int pq_corpus_load(pq_corpus *c, const char *lang, const char *path, size_t max_sentences,
                   polyq_err *err);
void pq_corpus_free(pq_corpus *c);

/* A data source: a FLORES-200 folder (with dev/ and devtest/, or the split folder itself),
 * or explicit "lang=path" pairs. */
typedef struct pq_dataset {
    char *root; /* FLORES folder, or NULL for explicit files */
    char split[16];
    size_t n; /* explicit pairs */
    char **langs, **paths;
} pq_dataset;

/* Parses --data: a directory, or comma-separated lang=path pairs. */
int pq_dataset_open(pq_dataset *d, const char *spec, const char *split, polyq_err *err);
void pq_dataset_free(pq_dataset *d);
/* Path of a language's file (heap, caller frees); POLYQ_NOT_FOUND names the language. */
int pq_dataset_path(const pq_dataset *d, const char *lang, char **out, polyq_err *err);
/* All languages in the dataset, sorted (heap array of heap strings; free with
 * pq_strlist_free). */
int pq_dataset_langs(const pq_dataset *d, char ***out, size_t *n, polyq_err *err);
/* The English name of a FLORES-200 code's language (ISO 639-3) and, in *script, of its script
 * (ISO 15924); NULL (and *script NULL) for a code FLORES-200 does not have. */
const char *pq_lang_name(const char *code, const char **script);
void pq_strlist_free(char **list, size_t n);

/* Whether the script of a FLORES code (e.g. "zho_Hans") is written without spaces. */
bool pq_script_unspaced(const char *lang);

#endif
