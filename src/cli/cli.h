/* Helpers the polyq commands share (main.c). */
#ifndef PQ_CLI_H
#define PQ_CLI_H

#include <stdbool.h>
#include <stddef.h>

#include "base/status.h"
#include "eval/corpus.h"
#include "hub/hub.h"
#include "model/model.h"

int die(const polyq_err *err);
int bad_arg(const char *fmt, const char *a);
bool parse_uint(const char *s, unsigned long long max, unsigned long long *out);
int find_model(const char *name, const pq_hub_opts *ho, char **path, char **rev, polyq_err *err);
int open_model(const char *name, const pq_hub_opts *ho, pq_model **m, char **path, char **rev,
               polyq_err *err);

typedef struct calib_opts {
    const char *langs, *file;
    size_t samples;
    int max_tokens; /* 0: the model's context */
    const char *eval_split, *data;
} calib_opts;
int build_calib(const pq_model *m, const calib_opts *o, pq_ids *store, int **starts, int *n_seq,
                char **desc, polyq_err *err);

int cmd_sweep(int argc, char **argv);

#endif
