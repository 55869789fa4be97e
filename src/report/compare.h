/* polyq compare (compare.c): one metric of two runs, or of two entries of one run, per
 * language, with B - A and its paired-bootstrap interval when both sides carry the same
 * sentences. A side is a results file (its --log-sentences file, when it names one and it is
 * unchanged, gives the sentences), a --log-sentences file (.jsonl) or a sweep database. */
#ifndef PQ_COMPARE_H
#define PQ_COMPARE_H

#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>

#include "base/status.h"

typedef struct pq_compare_opts {
    const char *a, *b;             /* b NULL: both entries come from a */
    const char *entry_a, *entry_b; /* NULL: the side's only entry (entry_b NULL: entry_a) */
    const char *model;             /* a database's model, when it holds several */
    const char *metric;            /* NULL: delta_bits_per_sentence */
    int n_boot;                    /* 0: the results file's, else 1000 */
    uint64_t seed;                 /* when seed_given; else the results file's, else 0 */
    bool seed_given;
    const char *latex; /* a booktabs table of the comparison, or NULL */
} pq_compare_opts;

/* The comparison printed to out (and o->latex written atomically). */
int pq_compare(const pq_compare_opts *o, FILE *out, polyq_err *err);
/* The metrics --metric takes, for help and messages. */
const char *pq_compare_metric_list(void);

#endif
