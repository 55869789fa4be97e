/* The provenance of a result file: the command line, polyq's version and git commit, the
 * host's CPU and the threads used, the versions of the libraries polyq runs on, and a SHA-256
 * of every model and data file read ("files": [{path, role, bytes, sha256}]). */
#ifndef PQ_RUN_PROVENANCE_H
#define PQ_RUN_PROVENANCE_H

#include <jansson.h>
#include <stdint.h>

#include "base/status.h"

/* A new provenance object (NULL when out of memory); argv may be NULL. */
json_t *pq_prov_new(int argc, char *const *argv, int threads);
/* Adds a file (once) to a provenance's "files" array with its role ("model", "data", ...). */
int pq_prov_add_file(json_t *files, const char *path, const char *role, polyq_err *err);
/* Adds the files of a model: a GGUF file, or the configuration, weights (every shard an index
 * names) and tokenizer files of a folder. */
int pq_prov_add_model(json_t *files, const char *path, const char *role, polyq_err *err);
/* SHA-256 of a file as 64 hex digits; *bytes its size (may be NULL). */
int pq_sha256_file(const char *path, char hex[65], uint64_t *bytes, polyq_err *err);

#endif
