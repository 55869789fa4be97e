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

/* Schema 2 (docs/database.md). A spec without calibration has calib NULL; the keys are
 * unique with NULL taken as one value. */
#define PQ_DB_SCHEMA "2"

static const char schema[] =
    "CREATE TABLE IF NOT EXISTS meta(key TEXT PRIMARY KEY, value TEXT NOT NULL);"
    "CREATE TABLE IF NOT EXISTS cells("
    " model TEXT NOT NULL, spec TEXT NOT NULL, calib TEXT, lang TEXT NOT NULL,"
    " name TEXT NOT NULL, method TEXT, bits_per_weight REAL, linear_formats TEXT, calibration TEXT,"
    " n_sentences INTEGER, n_tokens INTEGER, n_bytes INTEGER, n_chars INTEGER, n_words INTEGER,"
    " n_fallback_tokens INTEGER, nll_fp_sum REAL, nll_q_sum REAL, kld_sum REAL,"
    " n_top1_agree INTEGER, delta_p_sum REAL, delta_p_sq_sum REAL,"
    " ppl_fp REAL, ppl_q REAL, bpb_fp REAL, bpb_q REAL, bits_per_sentence_fp REAL,"
    " bits_per_sentence_q REAL, delta_nll_per_token REAL, delta_bpb REAL,"
    " delta_bits_per_sentence REAL, rel_degradation REAL, kld REAL, kld_per_sentence REAL,"
    " top1_agree REAL, fallback_rate REAL, delta_p REAL, rms_delta_p REAL,"
    " kld_max REAL, kld_p999 REAL, kld_p99 REAL, kld_p95 REAL, kld_p90 REAL, kld_p50 REAL,"
    " kld_p10 REAL, kld_p05 REAL, kld_p01 REAL, kld_min REAL, wall_s REAL);"
    "CREATE UNIQUE INDEX IF NOT EXISTS cells_key ON cells(model, spec, IFNULL(calib, ''), lang);"
    "CREATE TABLE IF NOT EXISTS sentences(model TEXT NOT NULL, spec TEXT NOT NULL, calib TEXT,"
    " lang TEXT NOT NULL, idx INTEGER NOT NULL, n_tokens INTEGER, n_bytes INTEGER, nll_fp REAL,"
    " nll_q REAL, kld_sum REAL, n_top1_agree INTEGER, delta_p_sum REAL, delta_p_sq_sum REAL);"
    "CREATE UNIQUE INDEX IF NOT EXISTS sentences_key"
    " ON sentences(model, spec, IFNULL(calib, ''), lang, idx);"
    /* the cells with results.csv's names and units */
    "CREATE VIEW IF NOT EXISTS cells_view AS SELECT model, name AS spec, spec AS quant, calib,"
    " method, bits_per_weight, lang, substr(lang, instr(lang, '_') + 1) AS script,"
    " n_sentences AS sentences, n_tokens AS tokens, n_bytes AS bytes, ppl_fp, bpb_fp,"
    " bits_per_sentence_fp, CAST(n_tokens AS REAL) / n_bytes AS fertility_bytes, fallback_rate,"
    " ppl_q, bpb_q, delta_nll_per_token, delta_bpb, delta_bits_per_sentence, rel_degradation,"
    " kld, kld_per_sentence, top1_agree, delta_p, rms_delta_p, kld_max, kld_p999, kld_p99,"
    " kld_p95, kld_p90, kld_p50, kld_p10, kld_p05, kld_p01, kld_min, linear_formats, calibration, "
    "wall_s"
    " FROM cells;";

/* Schema 1 (polyq before this schema: calib '-' for none, counts and sums named as the rates) into
 * schema 2, in one transaction; what schema 1 did not keep is NULL. */
static const char migrate_1_to_2[] =
    "ALTER TABLE cells RENAME TO cells_1; ALTER TABLE sentences RENAME TO sentences_1;"
    "%s" /* the schema */
    "INSERT INTO cells SELECT model, spec, NULLIF(calib, '-'), lang,"
    " CASE WHEN calib = '-' THEN spec ELSE spec || '@' || calib END, method, bits_per_weight,"
    " NULL, NULL, n_sent, tokens, bytes, chars, words, fallback, nll_fp, nll_q, kld, agree, NULL, "
    "NULL,"
    " ppl_fp, ppl_q, bpb_fp, bpb_q, nll_fp / (n_sent * 0.6931471805599453),"
    " nll_q / (n_sent * 0.6931471805599453), log_ppl_ratio, delta_bpb, delta_bits_per_sentence,"
    " CASE WHEN nll_fp > 0 THEN (nll_q - nll_fp) / nll_fp END, kld_per_token,"
    " kld / n_sent, top1, CAST(fallback AS REAL) / tokens, NULL, NULL, NULL, NULL, kld_p99, NULL,"
    " kld_p90, kld_p50, NULL, NULL, NULL, NULL, wall_s FROM cells_1 ORDER BY rowid;"
    "INSERT INTO sentences SELECT model, spec, NULLIF(calib, '-'), lang, idx, tokens, bytes,"
    " nll_fp, nll_q, kld, agree, NULL, NULL FROM sentences_1 ORDER BY rowid;"
    "DROP TABLE cells_1; DROP TABLE sentences_1;";

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

/* 1 when sql's first column of the first row is non-zero, 0 when not, -1 on error */
static int query_flag(sqlite3 *s, const char *sql)
{
    sqlite3_stmt *st = NULL;
    int r = -1;
    if (sqlite3_prepare_v2(s, sql, -1, &st, NULL) == SQLITE_OK) {
        int k = sqlite3_step(st);
        r = k == SQLITE_ROW ? sqlite3_column_int(st, 0) != 0 : k == SQLITE_DONE ? 0 : -1;
    }
    sqlite3_finalize(st);
    return r;
}

int pq_db_upgrade(sqlite3 *s, const char *path, polyq_err *err)
{
    int v1 = query_flag(s, "SELECT COUNT(*) FROM pragma_table_info('cells') WHERE name = 'n_sent'");
    if (v1 < 0)
        return pq_fail(err, POLYQ_FORMAT, "%s: not a polyq sweep database (%s)", path,
                       sqlite3_errmsg(s));
    if (v1) {
        char *sql = pq_asprintf(migrate_1_to_2, schema);
        char *msg = NULL;
        int ok = sql && sqlite3_exec(s, "BEGIN IMMEDIATE", NULL, NULL, NULL) == SQLITE_OK;
        ok = ok && sqlite3_exec(s, sql, NULL, NULL, &msg) == SQLITE_OK;
        ok = ok &&
             sqlite3_exec(s,
                          "INSERT OR REPLACE INTO meta(key, value) VALUES('schema', '" PQ_DB_SCHEMA
                          "'); COMMIT",
                          NULL, NULL, &msg) == SQLITE_OK;
        free(sql);
        if (!ok) {
            int rc = pq_fail(err, POLYQ_FORMAT,
                             "%s: cannot bring the database of an earlier polyq to schema %s (%s)",
                             path, PQ_DB_SCHEMA, msg ? msg : sqlite3_errmsg(s));
            sqlite3_free(msg);
            sqlite3_exec(s, "ROLLBACK", NULL, NULL, NULL);
            return rc;
        }
        return 0;
    }
    sqlite3_stmt *st = NULL;
    int rc = 0;
    if (sqlite3_prepare_v2(s, "SELECT value FROM meta WHERE key = 'schema'", -1, &st, NULL) ==
            SQLITE_OK &&
        sqlite3_step(st) == SQLITE_ROW) {
        const char *v = sqlite3_column_type(st, 0) == SQLITE_TEXT
                            ? (const char *)sqlite3_column_text(st, 0)
                            : NULL;
        if (!v || strcmp(v, PQ_DB_SCHEMA))
            rc = pq_fail(err, POLYQ_FORMAT,
                         "%s: database schema %s; this polyq reads schema %s (made by a newer "
                         "polyq, or damaged)",
                         path, v ? v : "(not text)", PQ_DB_SCHEMA);
    }
    sqlite3_finalize(st);
    return rc;
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
    int fresh = rc ? 0 : query_flag(db->s, "SELECT COUNT(*) = 0 FROM sqlite_master");
    if (!rc && fresh < 0)
        rc = db_fail(db, err, "not an SQLite database, or a damaged one");
    if (!rc && !fresh)
        rc = pq_db_upgrade(db->s, path, err);
    if (!rc && sqlite3_exec(db->s, schema, NULL, NULL, NULL) != SQLITE_OK)
        rc = db_fail(db, err, "cannot create the tables (not a polyq results database?)");
    if (!rc && fresh && meta_put(db, "schema", PQ_DB_SCHEMA))
        rc = db_fail(db, err, "cannot write");
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

int pq_db_open_read(const char *path, sqlite3 **out, polyq_err *err)
{
    sqlite3 *s = NULL;
    *out = NULL;
    if (sqlite3_open_v2(path, &s, SQLITE_OPEN_READONLY, NULL) != SQLITE_OK) {
        int rc = pq_fail(err, POLYQ_IO, "%s: cannot open: %s", path, sqlite3_errmsg(s));
        sqlite3_close(s);
        return rc;
    }
    int rc = pq_sqlite_check(s, path, false, err);
    /* a database of an earlier schema is read through a copy brought to this one in memory
     * (the file stays as it is) */
    int old = rc ? 0
                 : query_flag(s, "SELECT COUNT(*) FROM pragma_table_info('cells') WHERE name = "
                                 "'n_sent'");
    if (old > 0) {
        sqlite3 *mem = NULL;
        sqlite3_backup *b = NULL;
        bool ok = sqlite3_open(":memory:", &mem) == SQLITE_OK &&
                  (b = sqlite3_backup_init(mem, "main", s, "main")) != NULL &&
                  sqlite3_backup_step(b, -1) == SQLITE_DONE;
        ok = sqlite3_backup_finish(b) == SQLITE_OK && ok;
        if (!ok) {
            rc = pq_fail(err, POLYQ_NOMEM, "%s: cannot copy the database into memory (%s)", path,
                         sqlite3_errmsg(mem));
            sqlite3_close(mem);
        } else {
            sqlite3_close(s);
            s = mem;
        }
    }
    if (!rc)
        rc = pq_db_upgrade(s, path, err);
    if (rc) {
        sqlite3_close(s);
        return rc;
    }
    *out = s;
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
           (k->calib ? sqlite3_bind_text(st, 3, k->calib, -1, SQLITE_STATIC)
                     : sqlite3_bind_null(st, 3)) ||
           sqlite3_bind_text(st, 4, k->lang, -1, SQLITE_STATIC);
}

int pq_db_has(pq_db *db, const pq_cell_key *k, polyq_err *err)
{
    sqlite3_stmt *st = NULL;
    int r = -1;
    if (sqlite3_prepare_v2(db->s,
                           "SELECT 1 FROM cells WHERE model = ? AND spec = ? AND IFNULL(calib, '') "
                           "= IFNULL(?, '') AND lang = ?",
                           -1, &st, NULL) == SQLITE_OK &&
        !bind_key(st, k)) {
        int s = sqlite3_step(st);
        r = s == SQLITE_ROW ? 1 : s == SQLITE_DONE ? 0 : -1;
    }
    sqlite3_finalize(st);
    return r < 0 ? (db_fail(db, err, "cannot read"), -1) : r;
}

/* a double, or NULL for NAN (not measured, or undefined) */
static int bind_num(sqlite3_stmt *st, int i, double v)
{
    return isnan(v) ? sqlite3_bind_null(st, i) : sqlite3_bind_double(st, i, v);
}

int pq_db_put(pq_db *db, const pq_cell_key *k, const pq_cell_info *info, const pq_lang_eval *e,
              int qi, double wall_s, polyq_err *err)
{
    double nf = 0, nq = 0, kl = 0, dp = 0, dp2 = 0;
    uint64_t T = 0, agree = 0;
    bool has_dp = e->dp_q && e->dp_q[qi] && e->dp2_q && e->dp2_q[qi];
    for (size_t s = 0; s < e->n_sent; s++) {
        nf += e->nll_fp[s];
        nq += e->nll_q[qi][s];
        kl += e->kld_q[qi][s];
        T += e->tokens[s];
        agree += e->agree_q[qi][s];
        if (has_dp) {
            dp += e->dp_q[qi][s];
            dp2 += e->dp2_q[qi][s];
        }
    }
    if (!has_dp)
        dp = dp2 = NAN;
    /* KL at every scored position: llama-perplexity's statistics (pq_kld_stat_name order) */
    double stats[10];
    for (int j = 0; j < 10; j++)
        stats[j] = NAN;
    float *sorted = e->kl_pos && e->kl_pos[qi] && T ? malloc(sizeof(float) * T) : NULL;
    if (sorted) {
        double p3[3];
        pq_kl_percentiles(e->kl_pos[qi], T, sorted, p3); /* leaves sorted sorted */
        static const double at[10] = {1.0, 0.999, 0.99, 0.95, 0.90, 0.50, 0.10, 0.05, 0.01, 0.0};
        for (int j = 0; j < 10; j++)
            stats[j] = pq_percentile_sorted(sorted, T, at[j]);
    }
    free(sorted);
    double N = (double)e->n_sent, B = (double)e->bytes, Td = (double)T;
    /* the sums, then the rates as metrics.c computes them (METRICS.md) */
    double v[] = {nf,
                  nq,
                  kl,
                  dp,
                  dp2,
                  T ? exp(nf / Td) : NAN,
                  T ? exp(nq / Td) : NAN,
                  B > 0 ? nf / (B * M_LN2) : NAN,
                  B > 0 ? nq / (B * M_LN2) : NAN,
                  N > 0 ? nf / (N * M_LN2) : NAN,
                  N > 0 ? nq / (N * M_LN2) : NAN,
                  T ? (nq - nf) / Td : NAN,
                  B > 0 ? (nq - nf) / (B * M_LN2) : NAN,
                  N > 0 ? (nq - nf) / (N * M_LN2) : NAN,
                  nf > 0 ? (nq - nf) / nf : NAN,
                  T ? kl / Td : NAN,
                  N > 0 ? kl / N : NAN,
                  T ? (double)agree / Td : NAN,
                  T ? (double)e->fallback / Td : NAN,
                  T ? dp / Td : NAN,
                  T ? sqrt(dp2 / Td) : NAN};
    enum { N_V = sizeof v / sizeof v[0] };
    char name[512];
    if (k->calib)
        snprintf(name, sizeof name, "%s@%s", k->spec, k->calib);
    else
        snprintf(name, sizeof name, "%s", k->spec);
    if (sqlite3_exec(db->s, "BEGIN IMMEDIATE", NULL, NULL, NULL) != SQLITE_OK)
        return db_fail(db, err, "cannot start a transaction");
    sqlite3_stmt *st = NULL;
    /* 4 key columns, 5 about the spec, 6 counts, 3 sums, the top-1 count, N_V numbers, 10 KL
     * statistics, wall_s */
    int ok =
        sqlite3_prepare_v2(db->s,
                           "INSERT INTO cells VALUES(?,?,?,?, ?,?,?,?,?, ?,?,?,?,?,?, ?,?,?,?,?,?,"
                           " ?,?,?,?,?,?, ?,?,?,?, ?,?,?,?,?,?, ?,?,?,?,?,?,?,?,?,?, ?)",
                           -1, &st, NULL) == SQLITE_OK &&
        !bind_key(st, k);
    if (ok) {
        int i = 5;
        ok = !sqlite3_bind_text(st, i++, name, -1, SQLITE_TRANSIENT) &&
             !sqlite3_bind_text(st, i++, info->method, -1, SQLITE_STATIC) &&
             !bind_num(st, i++, info->bits_per_weight) &&
             !(info->linear_formats
                   ? sqlite3_bind_text(st, i++, info->linear_formats, -1, SQLITE_STATIC)
                   : sqlite3_bind_null(st, i++)) &&
             !(info->calibration ? sqlite3_bind_text(st, i++, info->calibration, -1, SQLITE_STATIC)
                                 : sqlite3_bind_null(st, i++)) &&
             !sqlite3_bind_int64(st, i++, (sqlite3_int64)e->n_sent) &&
             !sqlite3_bind_int64(st, i++, (sqlite3_int64)T) &&
             !sqlite3_bind_int64(st, i++, (sqlite3_int64)e->bytes) &&
             !sqlite3_bind_int64(st, i++, (sqlite3_int64)e->chars) &&
             !sqlite3_bind_int64(st, i++, (sqlite3_int64)e->words) &&
             !sqlite3_bind_int64(st, i++, (sqlite3_int64)e->fallback);
        for (size_t j = 0; ok && j < 3; j++)
            ok = !bind_num(st, i++, v[j]);
        ok = ok && !sqlite3_bind_int64(st, i++, (sqlite3_int64)agree);
        for (size_t j = 3; ok && j < N_V; j++)
            ok = !bind_num(st, i++, v[j]);
        for (int j = 0; ok && j < 10; j++)
            ok = !bind_num(st, i++, stats[j]);
        ok = ok && !sqlite3_bind_double(st, i++, wall_s) && sqlite3_step(st) == SQLITE_DONE;
    }
    sqlite3_finalize(st);
    st = NULL;
    ok = ok && sqlite3_prepare_v2(db->s, "INSERT INTO sentences VALUES(?,?,?,?, ?,?,?,?,?,?,?,?,?)",
                                  -1, &st, NULL) == SQLITE_OK;
    for (size_t s = 0; ok && s < e->n_sent; s++) {
        ok = !sqlite3_reset(st) && !bind_key(st, k) &&
             !sqlite3_bind_int64(st, 5, (sqlite3_int64)s) &&
             !sqlite3_bind_int64(st, 6, e->tokens[s]) && !sqlite3_bind_int64(st, 7, e->sbytes[s]) &&
             !sqlite3_bind_double(st, 8, e->nll_fp[s]) &&
             !sqlite3_bind_double(st, 9, e->nll_q[qi][s]) &&
             !sqlite3_bind_double(st, 10, e->kld_q[qi][s]) &&
             !sqlite3_bind_int64(st, 11, e->agree_q[qi][s]) &&
             !(has_dp ? sqlite3_bind_double(st, 12, e->dp_q[qi][s]) : sqlite3_bind_null(st, 12)) &&
             !(has_dp ? sqlite3_bind_double(st, 13, e->dp2_q[qi][s]) : sqlite3_bind_null(st, 13)) &&
             sqlite3_step(st) == SQLITE_DONE;
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
