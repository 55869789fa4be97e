/* The sweep engine (sweep.c): every cell model x quant spec x calibration set x language of a
 * plan (eval/plan.h) into an SQLite database (report/db.h), one transaction per cell, so that
 * a sweep stopped at any moment and started again redoes only the unfinished cells; over MPI
 * ranks when built with PQ_MPI. */
#ifndef PQ_SWEEP_H
#define PQ_SWEEP_H

#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>

#include "base/status.h"

/* What a sweep computed in this process: forward passes of the full-precision models (one per
 * batch for all of a model's quantized models held together) and of the quantized ones; the
 * groups of quantized models evaluated together and the largest (memory decides: as many as
 * fit, at most PQ_MAX_SPECS). Ranks of an MPI sweep evaluate one quantized model at a time. */
typedef struct pq_sweep_stats {
    uint64_t passes_fp, passes_q;
    long groups;
    int held;
} pq_sweep_stats;

typedef struct pq_sweep_opts {
    const char *plan_path;
    const char *db_path; /* NULL: the plan's path with .db for .json */
    bool status;         /* only count what is done, into out */
    const char *data;    /* where the text is when the plan names no "data" (NULL: POLYQ_DATA,
                            else FLORES-200 in polyq's cache) */
    bool offline;        /* never use the network (HF_HUB_OFFLINE and POLYQ_OFFLINE also) */
    FILE *out;           /* the status and the closing count (NULL: stdout) */
    void (*on_cell)(void *ctx, const char *line); /* a line after each stored cell (may be NULL) */
    void *ctx;
    pq_sweep_stats *stats; /* filled at the end when not NULL */
} pq_sweep_opts;

int pq_sweep_run(const pq_sweep_opts *o, polyq_err *err);
/* MPI's start and end around pq_sweep_run (nothing without PQ_MPI): the command calls them
 * once per process. */
void pq_sweep_mpi_init(int *argc, char ***argv);
void pq_sweep_mpi_finish(void);

#endif
