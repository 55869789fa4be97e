/* Sweep plans (plan.c): which models, quantization specs, calibration sets and languages
 * polyq sweep runs, read from JSON (the format is documented in src/cli/sweep.c and the
 * README). Reading checks every key and value; languages are checked against the data by
 * the sweep. */
#ifndef PQ_PLAN_H
#define PQ_PLAN_H

#include <jansson.h>
#include <stddef.h>

#include "base/status.h"
#include "quant/qformat.h"

typedef struct pq_plan {
    json_t *root;
    char *canon; /* the plan's identity: canonical JSON of what it computes (threads left out) */
    const char **models, **specs, **calibs;
    size_t n_models, n_specs, n_calibs;
    char **langs;
    size_t n_langs;
    const char *data, *split;
    long max_sent, calib_samples, batch, threads;
    pq_qspec *parsed;
} pq_plan;

/* From a file, or from bytes in memory (name used in messages). Free with pq_plan_free, also
 * after a failure. */
int pq_plan_read(pq_plan *p, const char *path, polyq_err *err);
int pq_plan_parse(pq_plan *p, const char *name, const char *text, size_t len, polyq_err *err);
void pq_plan_free(pq_plan *p);
/* The plan's "langs" when it is a list ("all" is expanded by the caller): *out borrows. */
int pq_plan_lang_list(const pq_plan *p, const char *name, const char ***out, size_t *n,
                      polyq_err *err);

#endif
