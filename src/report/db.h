/* Sweep results in SQLite (db.c). One row per cell (model x spec x calibration x language)
 * with its totals and headline metrics, and one row per sentence of the cell with the
 * numbers every statistic is computed from:
 *
 *   meta(key, value)       polyq version, plan (canonical JSON), seed
 *   cells(model, spec, calib, lang,            the cell
 *         method, bits_per_weight, n_sent, tokens, bytes, chars, words, fallback,
 *         nll_fp, nll_q (nats, summed), kld (summed), agree (positions),
 *         ppl_fp, ppl_q, bpb_fp, bpb_q, log_ppl_ratio, delta_bpb, delta_bits_per_sentence,
 *         kld_per_token, top1, kld_p50, kld_p90, kld_p99, wall_s)
 *   sentences(model, spec, calib, lang, idx, tokens, bytes, nll_fp, nll_q, kld, agree)
 *
 * A cell and its sentences are written in one transaction: a process killed at any moment
 * leaves each cell either complete or absent. */
#ifndef PQ_DB_H
#define PQ_DB_H

#include <stdbool.h>
#include <stddef.h>

#include <sqlite3.h>
#include <stdbool.h>

#include "base/status.h"
#include "eval/eval.h"

typedef struct pq_db pq_db;
/* Makes db this process's to write (a sweep): refused with one message when another process
 * holds it for writing or the file cannot be written. The lock goes with pq_db_close. */
int pq_db_lock(pq_db *db, polyq_err *err);

typedef struct pq_cell_key {
    const char *model, *spec, *calib, *lang;
} pq_cell_key;

/* Opens (creating when absent) the database at path for a plan: a database made for another
 * plan or by another major version of polyq is refused; a damaged one is named. */
int pq_db_open(pq_db **out, const char *path, const char *plan_json, polyq_err *err);
void pq_db_close(pq_db *db);
/* 1 when the cell is complete, 0 when not, -1 on error */
int pq_db_has(pq_db *db, const pq_cell_key *k, polyq_err *err);
/* Writes the cell for quantized model qi of e, atomically. */
int pq_db_put(pq_db *db, const pq_cell_key *k, const char *method, double bits_per_weight,
              const pq_lang_eval *e, int qi, double wall_s, polyq_err *err);
/* What a model of the plan is (kept in meta as model:<name>:<field>, for reports). */
int pq_db_note_model(pq_db *db, const char *model, const char *architecture, const char *model_type,
                     const char *dtype, unsigned long long n_params, polyq_err *err);
/* Complete cells in the database. */
int pq_db_count(pq_db *db, long *n, polyq_err *err);
/* PRAGMA quick_check (full: integrity_check) of an open database; a damaged one gets a message
 * naming path and SQLite's first finding. */
int pq_sqlite_check(sqlite3 *s, const char *path, bool full, polyq_err *err);

#endif
