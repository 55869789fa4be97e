/* Sweep results in SQLite (db.c): one row per cell (model x spec x calibration x language)
 * with its counts, sums and headline metrics, one row per sentence of the cell with the
 * numbers every statistic is computed from, and cells_view with results.csv's names. The
 * schema, column by column, is in docs/database.md.
 *
 * A cell and its sentences are written in one transaction: a process killed at any moment
 * leaves each cell either complete or absent. A database of an earlier schema is brought to
 * this one when a sweep opens it. */
#ifndef PQ_DB_H
#define PQ_DB_H

#include <stdbool.h>
#include <stddef.h>

#include <sqlite3.h>

#include "base/status.h"
#include "eval/eval.h"

typedef struct pq_db pq_db;
/* Makes db this process's to write (a sweep): refused with one message when another process
 * holds it for writing or the file cannot be written. The lock goes with pq_db_close. */
int pq_db_lock(pq_db *db, polyq_err *err);

typedef struct pq_cell_key {
    const char *model, *spec;
    const char *calib; /* NULL: the spec takes no calibration */
    const char *lang;
} pq_cell_key;

/* What a cell's spec is, as its quantized model says. */
typedef struct pq_cell_info {
    const char *method;
    double bits_per_weight;
    const char *linear_formats; /* JSON object: linears per storage format, or NULL */
    const char *calibration;    /* JSON object: the calibration set's description, or NULL */
} pq_cell_info;

/* Opens (creating when absent) the database at path for a plan: a database made for another
 * plan or by another major version of polyq is refused; a damaged one is named. */
int pq_db_open(pq_db **out, const char *path, const char *plan_json, polyq_err *err);
void pq_db_close(pq_db *db);
/* Opens a database to read (polyq report, polyq compare): checked, and one of an earlier
 * schema read through a copy in memory brought to this one (the file is not changed). */
int pq_db_open_read(const char *path, sqlite3 **out, polyq_err *err);
/* 1 when the cell is complete, 0 when not, -1 on error */
int pq_db_has(pq_db *db, const pq_cell_key *k, polyq_err *err);
/* Writes the cell for quantized model qi of e, atomically. */
int pq_db_put(pq_db *db, const pq_cell_key *k, const pq_cell_info *info, const pq_lang_eval *e,
              int qi, double wall_s, polyq_err *err);
/* Brings an open database of an earlier schema to this one (a no-op on a current one);
 * refuses a newer schema, naming path. */
int pq_db_upgrade(sqlite3 *s, const char *path, polyq_err *err);
/* What a model of the plan is (kept in meta as model:<name>:<field>, for reports). */
int pq_db_note_model(pq_db *db, const char *model, const char *architecture, const char *model_type,
                     const char *dtype, unsigned long long n_params, polyq_err *err);
/* Complete cells in the database. */
int pq_db_count(pq_db *db, long *n, polyq_err *err);
/* PRAGMA quick_check (full: integrity_check) of an open database; a damaged one gets a message
 * naming path and SQLite's first finding. */
int pq_sqlite_check(sqlite3 *s, const char *path, bool full, polyq_err *err);

#endif
