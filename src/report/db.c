/* Sweep results in SQLite (db.h). */
#include "report/db.h"

#include <errno.h>
#include <fcntl.h>
#include <math.h>
#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <unistd.h>

#include "base/base.h"
#include "eval/metrics.h"
#include "polyq.h"

struct pq_db {
    sqlite3 *s;
    char *path;
    int lock_fd; /* the writer's lock (pq_db_lock), or -1 */
};

/* SQLite's own finding, said as what it means for the user: another process holding the
 * database, a file that cannot be written, or the text SQLite gives. */
static int db_fail(pq_db *db, polyq_err *err, const char *what)
{
    int e = sqlite3_errcode(db->s) & 0xff;
    if (e == SQLITE_BUSY || e == SQLITE_LOCKED)
        return pq_fail(
            err, POLYQ_IO,
            "%s: another process (another polyq sweep?) holds the database; wait for it, "
            "or give another --db",
            db->path);
    if (e == SQLITE_READONLY || e == SQLITE_CANTOPEN || e == SQLITE_PERM)
        return pq_fail(
            err, POLYQ_IO,
            "%s: the database cannot be written (a read-only file or folder; SQLite: %s)", db->path,
            sqlite3_errmsg(db->s));
    return pq_fail(err, POLYQ_IO, "%s: %s: %s", db->path, what, sqlite3_errmsg(db->s));
}

int pq_db_lock(pq_db *db, polyq_err *err)
{
    if (db->lock_fd >= 0)
        return 0;
    if (sqlite3_db_readonly(db->s, "main") == 1)
        return pq_fail(err, POLYQ_IO,
                       "%s: the database cannot be written (a read-only file or folder)", db->path);
    int fd = open(db->path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return pq_fail(err, POLYQ_IO, "%s: cannot open: %s", db->path, strerror(errno));
    if (flock(fd, LOCK_EX | LOCK_NB) != 0) {
        int e = errno;
        close(fd);
        return e == EWOULDBLOCK
                   ? pq_fail(err, POLYQ_IO,
                             "%s: another polyq sweep is writing this database; let it finish "
                             "(polyq sweep PLAN --status shows how far it is) or give another --db",
                             db->path)
                   : pq_fail(err, POLYQ_IO, "%s: cannot lock: %s", db->path, strerror(e));
    }
    db->lock_fd = fd;
    return 0;
}

static const char schema[] =
    "CREATE TABLE IF NOT EXISTS meta(key TEXT PRIMARY KEY, value TEXT NOT NULL);"
    "CREATE TABLE IF NOT EXISTS cells(model TEXT NOT NULL, spec TEXT NOT NULL, calib TEXT NOT NULL,"
    " lang TEXT NOT NULL, method TEXT, bits_per_weight REAL, n_sent INTEGER, tokens INTEGER,"
    " bytes INTEGER, chars INTEGER, words INTEGER, fallback INTEGER, nll_fp REAL, nll_q REAL, kld "
    "REAL,"
    " agree INTEGER, ppl_fp REAL, ppl_q REAL, bpb_fp REAL, bpb_q REAL, log_ppl_ratio REAL, "
    "delta_bpb REAL,"
    " delta_bits_per_sentence REAL, kld_per_token REAL, top1 REAL, kld_p50 REAL, kld_p90 REAL, "
    "kld_p99 REAL,"
    " wall_s REAL,"
    " PRIMARY KEY(model, spec, calib, lang));"
    "CREATE TABLE IF NOT EXISTS sentences(model TEXT NOT NULL, spec TEXT NOT NULL, calib TEXT NOT "
    "NULL,"
    " lang TEXT NOT NULL, idx INTEGER NOT NULL, tokens INTEGER, bytes INTEGER, nll_fp REAL, nll_q "
    "REAL,"
    " kld REAL, agree INTEGER, PRIMARY KEY(model, spec, calib, lang, idx));";

/* the value of meta key, or NULL (heap); *bad is set when the key's value is not text */
static char *meta_get(pq_db *db, const char *key, bool *bad)
{
    sqlite3_stmt *st = NULL;
    char *v = NULL;
    if (sqlite3_prepare_v2(db->s, "SELECT value FROM meta WHERE key = ?", -1, &st, NULL) ==
            SQLITE_OK &&
        sqlite3_bind_text(st, 1, key, -1, SQLITE_STATIC) == SQLITE_OK &&
        sqlite3_step(st) == SQLITE_ROW) {
        if (sqlite3_column_type(st, 0) != SQLITE_TEXT)
            *bad = true;
        else
            v = pq_strdup((const char *)sqlite3_column_text(st, 0));
    }
    sqlite3_finalize(st);
    return v;
}

static int meta_put(pq_db *db, const char *key, const char *value)
{
    sqlite3_stmt *st = NULL;
    int ok = sqlite3_prepare_v2(db->s, "INSERT OR REPLACE INTO meta(key, value) VALUES(?, ?)", -1,
                                &st, NULL) == SQLITE_OK &&
             sqlite3_bind_text(st, 1, key, -1, SQLITE_STATIC) == SQLITE_OK &&
             sqlite3_bind_text(st, 2, value, -1, SQLITE_STATIC) == SQLITE_OK &&
             sqlite3_step(st) == SQLITE_DONE;
    sqlite3_finalize(st);
    return ok ? 0 : -1;
}

int pq_db_open(pq_db **out, const char *path, const char *plan_json, polyq_err *err)
{
    *out = NULL;
    pq_db *db = calloc(1, sizeof *db);
    if (!db || !(db->path = pq_strdup(path))) {
        free(db);
        return pq_fail(err, POLYQ_NOMEM, "out of memory");
    }
    db->lock_fd = -1;
    int rc = 0;
    if (sqlite3_open_v2(path, &db->s, SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE, NULL) !=
        SQLITE_OK)
        rc = db_fail(db, err, "cannot open");
    /* every commit reaches the disk before the next cell starts (a killed sweep loses at most
     * the cell it was computing) */
    if (!rc && sqlite3_exec(db->s, "PRAGMA journal_mode=WAL; PRAGMA synchronous=FULL;", NULL, NULL,
                            NULL) != SQLITE_OK)
        rc = db_fail(db, err, "not an SQLite database, or a damaged one");
    if (!rc)
        sqlite3_busy_timeout(db->s, 60000);
    if (!rc)
        rc = pq_sqlite_check(db->s, path, false, err);
    if (!rc && sqlite3_exec(db->s, schema, NULL, NULL, NULL) != SQLITE_OK)
        rc = db_fail(db, err, "cannot create the tables (not a polyq results database?)");
    bool bad = false;
    char *ver = rc ? NULL : meta_get(db, "polyq_version", &bad),
         *plan = rc ? NULL : meta_get(db, "plan", &bad);
    if (!rc && bad)
        rc = pq_fail(err, POLYQ_FORMAT,
                     "%s: the meta table holds a value that is not text for polyq_version or plan "
                     "(not written by polyq, or damaged)",
                     path);
    if (!rc && ver && atoi(ver) != atoi(POLYQ_VERSION))
        rc = pq_fail(err, POLYQ_FORMAT,
                     "%s: made by polyq %s; this is polyq %s (another major version)", path, ver,
                     POLYQ_VERSION);
    if (!rc && plan && strcmp(plan, plan_json))
        rc = pq_fail(err, POLYQ_INVALID_ARG,
                     "%s: holds the results of another plan; give a new --db for this plan or run "
                     "the plan it "
                     "was made for",
                     path);
    if (!rc && !plan &&
        (meta_put(db, "polyq_version", POLYQ_VERSION) || meta_put(db, "plan", plan_json)))
        rc = db_fail(db, err, "cannot write");
    free(ver);
    free(plan);
    if (rc) {
        pq_db_close(db);
        return rc;
    }
    *out = db;
    return 0;
}

void pq_db_close(pq_db *db)
{
    if (!db)
        return;
    sqlite3_close(db->s);
    if (db->lock_fd >= 0)
        close(db->lock_fd); /* and with it the lock */
    free(db->path);
    free(db);
}

static int bind_key(sqlite3_stmt *st, const pq_cell_key *k)
{
    return sqlite3_bind_text(st, 1, k->model, -1, SQLITE_STATIC) ||
           sqlite3_bind_text(st, 2, k->spec, -1, SQLITE_STATIC) ||
           sqlite3_bind_text(st, 3, k->calib, -1, SQLITE_STATIC) ||
           sqlite3_bind_text(st, 4, k->lang, -1, SQLITE_STATIC);
}

int pq_db_has(pq_db *db, const pq_cell_key *k, polyq_err *err)
{
    sqlite3_stmt *st = NULL;
    int r = -1;
    if (sqlite3_prepare_v2(
            db->s, "SELECT 1 FROM cells WHERE model = ? AND spec = ? AND calib = ? AND lang = ?",
            -1, &st, NULL) == SQLITE_OK &&
        !bind_key(st, k)) {
        int s = sqlite3_step(st);
        r = s == SQLITE_ROW ? 1 : s == SQLITE_DONE ? 0 : -1;
    }
    sqlite3_finalize(st);
    return r < 0 ? (db_fail(db, err, "cannot read"), -1) : r;
}

int pq_db_put(pq_db *db, const pq_cell_key *k, const char *method, double bits_per_weight,
              const pq_lang_eval *e, int qi, double wall_s, polyq_err *err)
{
    double nf = 0, nq = 0, kl = 0;
    uint64_t T = 0, agree = 0;
    for (size_t s = 0; s < e->n_sent; s++) {
        nf += e->nll_fp[s];
        nq += e->nll_q[qi][s];
        kl += e->kld_q[qi][s];
        T += e->tokens[s];
        agree += e->agree_q[qi][s];
    }
    double N = (double)e->n_sent, B = (double)e->bytes, pct[3] = {NAN, NAN, NAN};
    float *scratch = e->kl_pos && e->kl_pos[qi] && T ? malloc(sizeof(float) * T) : NULL;
    if (scratch) /* KL at every scored position: its 50th, 90th, 99th percentiles */
        pq_kl_percentiles(e->kl_pos[qi], T, scratch, pct);
    free(scratch);
    double v[] = {nf,
                  nq,
                  kl,
                  exp(nf / (double)T),
                  exp(nq / (double)T),
                  nf / (B * M_LN2),
                  nq / (B * M_LN2),
                  (nq - nf) / (double)T,
                  (nq - nf) / (B * M_LN2),
                  (nq - nf) / (N * M_LN2),
                  kl / (double)T,
                  (double)agree / (double)T};
    if (sqlite3_exec(db->s, "BEGIN IMMEDIATE", NULL, NULL, NULL) != SQLITE_OK)
        return db_fail(db, err, "cannot start a transaction");
    sqlite3_stmt *st = NULL;
    int ok = sqlite3_prepare_v2(db->s,
                                "INSERT INTO cells VALUES(?,?,?,?, ?,?,?,?, ?,?,?,?, ?,?,?,?, "
                                "?,?,?,?, ?,?,?,?, ?,?,?,?,?)",
                                -1, &st, NULL) == SQLITE_OK &&
             !bind_key(st, k);
    if (ok) {
        int i = 5;
        ok = !sqlite3_bind_text(st, i++, method, -1, SQLITE_STATIC) &&
             !sqlite3_bind_double(st, i++, bits_per_weight) &&
             !sqlite3_bind_int64(st, i++, (sqlite3_int64)e->n_sent) &&
             !sqlite3_bind_int64(st, i++, (sqlite3_int64)T) &&
             !sqlite3_bind_int64(st, i++, (sqlite3_int64)e->bytes) &&
             !sqlite3_bind_int64(st, i++, (sqlite3_int64)e->chars) &&
             !sqlite3_bind_int64(st, i++, (sqlite3_int64)e->words) &&
             !sqlite3_bind_int64(st, i++, (sqlite3_int64)e->fallback);
        for (size_t j = 0; ok && j < 3; j++)
            ok = !sqlite3_bind_double(st, i++, v[j]);
        ok = ok && !sqlite3_bind_int64(st, i++, (sqlite3_int64)agree);
        for (size_t j = 3; ok && j < sizeof v / sizeof v[0]; j++)
            ok = !sqlite3_bind_double(st, i++, v[j]);
        for (int j = 0; ok && j < 3; j++)
            ok = !sqlite3_bind_double(st, i++, pct[j]);
        ok = ok && !sqlite3_bind_double(st, i++, wall_s) && sqlite3_step(st) == SQLITE_DONE;
    }
    sqlite3_finalize(st);
    st = NULL;
    ok = ok && sqlite3_prepare_v2(db->s, "INSERT INTO sentences VALUES(?,?,?,?, ?,?,?,?,?,?,?)", -1,
                                  &st, NULL) == SQLITE_OK;
    for (size_t s = 0; ok && s < e->n_sent; s++) {
        ok = !sqlite3_reset(st) && !bind_key(st, k) &&
             !sqlite3_bind_int64(st, 5, (sqlite3_int64)s) &&
             !sqlite3_bind_int64(st, 6, e->tokens[s]) && !sqlite3_bind_int64(st, 7, e->sbytes[s]) &&
             !sqlite3_bind_double(st, 8, e->nll_fp[s]) &&
             !sqlite3_bind_double(st, 9, e->nll_q[qi][s]) &&
             !sqlite3_bind_double(st, 10, e->kld_q[qi][s]) &&
             !sqlite3_bind_int64(st, 11, e->agree_q[qi][s]) && sqlite3_step(st) == SQLITE_DONE;
    }
    sqlite3_finalize(st);
    if (!ok || sqlite3_exec(db->s, "COMMIT", NULL, NULL, NULL) != SQLITE_OK) {
        int rc = db_fail(db, err, "cannot write a cell");
        sqlite3_exec(db->s, "ROLLBACK", NULL, NULL, NULL);
        return rc;
    }
    return 0;
}

int pq_db_count(pq_db *db, long *n, polyq_err *err)
{
    sqlite3_stmt *st = NULL;
    int ok = sqlite3_prepare_v2(db->s, "SELECT COUNT(*) FROM cells", -1, &st, NULL) == SQLITE_OK &&
             sqlite3_step(st) == SQLITE_ROW;
    *n = ok ? (long)sqlite3_column_int64(st, 0) : 0;
    sqlite3_finalize(st);
    return ok ? 0 : db_fail(db, err, "cannot read");
}

int pq_sqlite_check(sqlite3 *s, const char *path, bool full, polyq_err *err)
{
    sqlite3_stmt *st = NULL;
    const char *first = NULL;
    int ok = sqlite3_prepare_v2(s, full ? "PRAGMA integrity_check" : "PRAGMA quick_check", -1, &st,
                                NULL) == SQLITE_OK &&
             sqlite3_step(st) == SQLITE_ROW && (first = (const char *)sqlite3_column_text(st, 0)) &&
             !strcmp(first, "ok");
    char what[160];
    snprintf(what, sizeof what, "%s", first ? first : sqlite3_errmsg(s));
    for (char *c = what; *c; c++) /* one line */
        if (*c == '\n')
            *c = ' ';
    int rc = ok ? 0
                : pq_fail(err, POLYQ_FORMAT,
                          "%s: the database is damaged (SQLite: %s); restore a copy or start "
                          "again with a new --db",
                          path, what);
    sqlite3_finalize(st);
    return rc;
}

int pq_db_note_model(pq_db *db, const char *model, const char *architecture, const char *model_type,
                     const char *dtype, unsigned long long n_params, polyq_err *err)
{
    char n[32];
    snprintf(n, sizeof n, "%llu", n_params);
    const char *field[4] = {"architecture", "model_type", "dtype", "n_params"},
               *val[4] = {architecture, model_type, dtype, n};
    for (int i = 0; i < 4; i++) {
        char *key = pq_asprintf("model:%s:%s", model, field[i]);
        int bad = !key || meta_put(db, key, val[i] ? val[i] : "");
        free(key);
        if (bad)
            return db_fail(db, err, "cannot write");
    }
    return 0;
}
