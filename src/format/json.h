/* JSON files through jansson, with messages that name the file and the key.
 * pq_json_load rejects duplicate keys and reports line and column of a syntax error. */
#ifndef PQ_JSON_H
#define PQ_JSON_H

#include <jansson.h>
#include <stdbool.h>
#include <stdint.h>

#include "base/status.h"

/* Parses a file; *out is a new reference (json_decref). max_size bounds the file. */
int pq_json_load(const char *path, size_t max_size, json_t **out, polyq_err *err);
/* The same, reading every number as a real (for files such as tokenizer_config.json whose
 * integers may exceed 64 bits); integer readers below accept integral reals. */
int pq_json_load_reals(const char *path, size_t max_size, json_t **out, polyq_err *err);
/* Parses bytes; `what` names the source in messages. */
int pq_json_parse(const char *what, const char *buf, size_t len, json_t **out, polyq_err *err);

/* Field readers: return 0, or POLYQ_FORMAT naming `what` and the key. A missing optional key
 * leaves *out unchanged and returns 0 when `required` is false. */
int pq_json_int(const json_t *obj, const char *key, bool required, int64_t min, int64_t max,
                int64_t *out, const char *what, polyq_err *err);
int pq_json_real(const json_t *obj, const char *key, bool required, double *out, const char *what,
                 polyq_err *err);
int pq_json_bool(const json_t *obj, const char *key, bool required, bool *out, const char *what,
                 polyq_err *err);
/* *out borrows the string inside obj. */
int pq_json_str(const json_t *obj, const char *key, bool required, const char **out,
                const char *what, polyq_err *err);

#endif
