/* Small shared pieces below every other module: overflow-checked size math, whole-file
 * reads and read-only memory maps, fp16/bf16 conversion, strict UTF-8 scanning, path joins.
 * Checked helpers return 0 on success and never wrap (after stb_image's mul2sizes_valid). */
#ifndef PQ_BASE_H
#define PQ_BASE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include "base/status.h"

/* *out = a * b / a + b; return false on overflow (then *out is untouched). */
static inline bool pq_mul_size(size_t a, size_t b, size_t *out)
{
    if (a && b > SIZE_MAX / a)
        return false;
    *out = a * b;
    return true;
}
static inline bool pq_add_size(size_t a, size_t b, size_t *out)
{
    if (b > SIZE_MAX - a)
        return false;
    *out = a + b;
    return true;
}

/* malloc(n * size) with overflow check; NULL on overflow or failure. Caller frees. */
void *pq_alloc_array(size_t n, size_t size);
void *pq_calloc_array(size_t n, size_t size);

/* A read-only mapping of a whole file. */
typedef struct pq_map {
    const uint8_t *data;
    size_t size;
} pq_map;

int pq_map_file(pq_map *m, const char *path, polyq_err *err);
void pq_map_close(pq_map *m); /* accepts a zeroed map */
/* Lets the kernel drop the resident pages of bytes [p, p+n) of a read-only file map (whole
 * pages inside the range only). The contents stay the same: the next read brings them back
 * from the file. Keeps the resident set to what is in use. */
void pq_map_release(const void *p, size_t n);

/* Reads a whole file into a NUL-terminated heap buffer (caller frees). Fails past max_size. */
int pq_read_file(const char *path, size_t max_size, char **out, size_t *out_len, polyq_err *err);

bool pq_file_exists(const char *path);
bool pq_dir_exists(const char *path);
/* Returns a heap string "a/b" (caller frees), NULL on allocation failure. */
char *pq_path_join(const char *a, const char *b);
/* mkdir -p; 0 or POLYQ_IO. */
int pq_mkdirs(const char *path, polyq_err *err);
/* Removes a folder and everything below it (links are removed, not followed); 0 or -1. */
int pq_rmtree(const char *path);
/* Heap copy of s (caller frees), NULL on failure. */
char *pq_strdup(const char *s);
/* Heap printf (caller frees), NULL on failure. */
char *pq_asprintf(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

float pq_f16_to_f32(uint16_t h);
float pq_bf16_to_f32(uint16_t h);
uint16_t pq_f32_to_f16(float f);
uint16_t pq_f32_to_bf16(float f);

/* Strict UTF-8: no overlongs, no surrogates, nothing above U+10FFFF.
 * Returns true when s[0..n) is valid; else false and *bad_offset = first bad byte. */
bool pq_utf8_valid(const char *s, size_t n, size_t *bad_offset);
/* Number of code points in valid UTF-8. */
size_t pq_utf8_count(const char *s, size_t n);
/* Decodes one code point from valid UTF-8 at s; returns its byte length. */
int pq_utf8_decode(const char *s, uint32_t *cp);
/* Encodes cp; returns byte length (1..4). */
int pq_utf8_encode(uint32_t cp, char out[4]);

/* 64-bit FNV-1a over bytes, continuing from h (start with PQ_FNV_OFFSET). */
#define PQ_FNV_OFFSET 0xcbf29ce484222325ULL
/* Standard base64 (padding optional, no whitespace) -> heap bytes; -1 on bad input or no memory. */
int pq_base64_decode(const char *s, size_t n, unsigned char **out, size_t *out_len);

uint64_t pq_fnv1a(uint64_t h, const void *data, size_t n);

double pq_now(void); /* monotonic seconds */

/* Fills bar[0..width) with '#' for the done fraction and '-' for the rest, NUL-terminated
 * (bar holds width + 1 bytes). */
void pq_progress_bar(char *bar, int width, double frac);

/* The first n bytes of a regular file into buf: false for anything else (a missing file, a
 * FIFO or device, which are never waited on, a shorter file). */
bool pq_read_head(const char *path, void *buf, size_t n);
/* Output files written whole or not at all: pq_out_open opens a temporary file beside path
 * (*tmp, heap); pq_out_close closes it and, when every write succeeded, renames it over path,
 * else removes it and fails naming path (the file there before is left as it was). Both free
 * *tmp on failure and success alike. */
FILE *pq_out_open(const char *path, char **tmp, polyq_err *err);
int pq_out_close(FILE *f, char *tmp, const char *path, polyq_err *err);

/* Levenshtein distance between a and b, ASCII letters compared without case; words longer
 * than 64 bytes are SIZE_MAX apart. */
size_t pq_edit_distance(const char *a, const char *b);
/* The candidate nearest to word (for "did you mean ...?"), or NULL when none is within
 * max(1, strlen(word) / 3) edits. */
const char *pq_nearest(const char *word, const char *const *cands, size_t n);

#endif
