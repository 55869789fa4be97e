/* polyq report results.db --out DIR: a sweep's database read back into the statistics of
 * polyq eval. Per model, the languages complete for every spec and calibration set are
 * rebuilt from the per-sentence rows (paired bootstrap and all) and written as
 * DIR/<model>/results.json, results.csv and report.md; the KL percentiles come from the cells
 * (the per-position values are not stored). A calibrated spec appears as spec@calibration. */
#include <math.h>
#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include <jansson.h>

#include "base/base.h"
#include "eval/corpus.h"
#include "polyq.h"
#include "report/db.h"
#include "report/figures.h"
#include "report/report.h"

typedef struct combo {
    char *spec, *calib, *name, *method, *formats, *calibration; /* NULL when none */
    double bpw;
} combo;

static bool same_calib(const char *a, const char *b)
{
    return a && b ? !strcmp(a, b) : a == b;
}

static void bind_calib(sqlite3_stmt *st, int i, const char *calib)
{
    if (calib)
        sqlite3_bind_text(st, i, calib, -1, SQLITE_STATIC);
    else
        sqlite3_bind_null(st, i);
}

static int fail_db(sqlite3 *s, const char *path, polyq_err *err)
{
    return pq_fail(err, POLYQ_FORMAT, "%s: not a polyq sweep database (%s)", path,
                   sqlite3_errmsg(s));
}

static int fail_not_text(const char *path, const char *what, polyq_err *err)
{
    return pq_fail(
        err, POLYQ_FORMAT,
        "%s: %s holds a value that is not text (NULL, a number or bytes): not written by polyq, "
        "or damaged",
        path, what);
}

static int strings(sqlite3 *s, const char *sql, const char *a, const char *b, char ***out,
                   size_t *n);

/* strings() with its failure told, naming the database and what was read (nothing is left in
 * *out then) */
static int query_strings(sqlite3 *s, const char *path, const char *what, const char *sql,
                         const char *a, const char *b, char ***out, size_t *n, polyq_err *err)
{
    int r = strings(s, sql, a, b, out, n);
    if (r) {
        pq_strlist_free(*out, *n);
        *out = NULL;
        *n = 0;
    }
    return r == -2 ? fail_not_text(path, what, err) : r ? fail_db(s, path, err) : 0;
}

/* column 0 of every row of a query with up to 2 text parameters, as heap strings; -1 when the
 * query fails or runs out of memory, -2 when a value is not text (NULL, a number) */
static int strings(sqlite3 *s, const char *sql, const char *a, const char *b, char ***out,
                   size_t *n)
{
    sqlite3_stmt *st = NULL;
    *out = NULL;
    *n = 0;
    if (sqlite3_prepare_v2(s, sql, -1, &st, NULL) != SQLITE_OK)
        return -1;
    if (a)
        sqlite3_bind_text(st, 1, a, -1, SQLITE_STATIC);
    if (b)
        sqlite3_bind_text(st, 2, b, -1, SQLITE_STATIC);
    int rc = 0;
    while (!rc && sqlite3_step(st) == SQLITE_ROW) {
        if (sqlite3_column_type(st, 0) != SQLITE_TEXT) {
            rc = -2;
            break;
        }
        char **v = realloc(*out, (*n + 1) * sizeof *v);
        if (!v || !(v[*n] = pq_strdup((const char *)sqlite3_column_text(st, 0)))) {
            rc = -1;
            if (v)
                *out = v;
            break;
        }
        *out = v;
        ++*n;
    }
    sqlite3_finalize(st);
    return rc;
}

/* the per-sentence numbers of one cell into column qi of e (e's sentence arrays when fill);
 * the change in the correct token's probability is NAN for the cell when any of its
 * sentences lacks it (a database of an earlier polyq) */
static int read_cell(sqlite3 *s, const char *model, const combo *c, const char *lang,
                     pq_lang_eval *e, int qi, bool fill)
{
    sqlite3_stmt *st = NULL;
    if (sqlite3_prepare_v2(s,
                           "SELECT n_tokens, n_bytes, nll_fp, nll_q, kld_sum, n_top1_agree, "
                           "delta_p_sum, delta_p_sq_sum FROM sentences WHERE model = ? AND spec = "
                           "? AND IFNULL(calib, '') = IFNULL(?, '') AND lang = ? ORDER BY idx",
                           -1, &st, NULL) != SQLITE_OK)
        return -1;
    sqlite3_bind_text(st, 1, model, -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 2, c->spec, -1, SQLITE_STATIC);
    bind_calib(st, 3, c->calib);
    sqlite3_bind_text(st, 4, lang, -1, SQLITE_STATIC);
    size_t i = 0;
    bool dp = true;
    while (sqlite3_step(st) == SQLITE_ROW && i < e->n_sent) {
        for (int k = 0; k < 8; k++) { /* numbers only, counts whole and in range */
            int ty = sqlite3_column_type(st, k);
            bool count = k < 2 || k == 5;
            if (k >= 6 && ty == SQLITE_NULL) {
                dp = false;
                continue;
            }
            if (!(ty == SQLITE_INTEGER || (ty == SQLITE_FLOAT && !count)) ||
                (count &&
                 (sqlite3_column_int64(st, k) < 0 || sqlite3_column_int64(st, k) > UINT32_MAX))) {
                sqlite3_finalize(st);
                return -2;
            }
        }
        if (fill) {
            e->tokens[i] = (uint32_t)sqlite3_column_int64(st, 0);
            e->sbytes[i] = (uint32_t)sqlite3_column_int64(st, 1);
            e->nll_fp[i] = sqlite3_column_double(st, 2);
        }
        e->nll_q[qi][i] = sqlite3_column_double(st, 3);
        e->kld_q[qi][i] = sqlite3_column_double(st, 4);
        e->agree_q[qi][i] = (uint32_t)sqlite3_column_int64(st, 5);
        e->dp_q[qi][i] = sqlite3_column_double(st, 6);
        e->dp2_q[qi][i] = sqlite3_column_double(st, 7);
        i++;
    }
    sqlite3_finalize(st);
    for (size_t k = 0; !dp && k < e->n_sent; k++)
        e->dp_q[qi][k] = e->dp2_q[qi][k] = NAN;
    return i == e->n_sent ? 0 : -1;
}

/* One row per spec of a model in DIR/summary.md: the headline numbers with their intervals. */
static void summary_rows(FILE *f, const char *model, const combo *cb, size_t n_cb,
                         const pq_lang_metrics *met, size_t n_lang, const pq_disparity_summary *sum,
                         int ref)
{
    for (size_t q = 0; f && q < n_cb; q++) {
        size_t worst = 0;
        int significant = 0;
        for (size_t l = 0; l < n_lang; l++) {
            const pq_ci *d = &met[l].q[q].delta_bits_per_sentence;
            if (d->value > met[worst].q[q].delta_bits_per_sentence.value)
                worst = l;
            significant += d->lo > 0;
        }
        const pq_ci *w = &met[worst].q[q].delta_bits_per_sentence;
        char eng[96] = "not evaluated", ratio[32] = "n/a";
        if (ref >= 0) {
            const pq_ci *e = &met[ref].q[q].delta_bits_per_sentence;
            snprintf(eng, sizeof eng, "%.3f [%.3f, %.3f]%s", e->value, e->lo, e->hi,
                     e->lo <= 0 && e->hi >= 0 ? " (interval includes 0)" : "");
        }
        if (isfinite(sum[q].worst_ratio))
            snprintf(ratio, sizeof ratio, "%.2f", sum[q].worst_ratio);
        fprintf(f, "| %s | %s | %.2f | %zu | %s: %.3f [%.3f, %.3f] | %s | %s | %d of %zu |\n",
                model, cb[q].name, cb[q].bpw, n_lang, met[worst].lang, w->value, w->lo, w->hi, eng,
                ratio, significant, n_lang);
    }
}

static int one_model(sqlite3 *s, const char *path, const char *model, const json_t *plan,
                     const char *out_dir, bool latex, FILE *summary, json_t **written,
                     polyq_err *err)
{
    sqlite3_stmt *st = NULL;
    combo *cb = NULL;
    size_t n_cb = 0;
    int rc = 0;
    if (sqlite3_prepare_v2(
            s,
            "SELECT DISTINCT spec, calib, method, bits_per_weight, linear_formats, calibration "
            "FROM cells WHERE model = ? ORDER BY rowid",
            -1, &st, NULL) != SQLITE_OK)
        return fail_db(s, path, err);
    sqlite3_bind_text(st, 1, model, -1, SQLITE_STATIC);
    while (!rc && sqlite3_step(st) == SQLITE_ROW) {
        if (n_cb == PQ_MAX_SPECS) {
            rc = pq_fail(err, POLYQ_UNSUPPORTED,
                         "%s: model %s has more than %d spec and calibration pairs; "
                         "report them from smaller plans",
                         path, model, PQ_MAX_SPECS);
            break;
        }
        combo *v = realloc(cb, (n_cb + 1) * sizeof *v);
        if (!v) {
            rc = pq_fail(err, POLYQ_NOMEM, "out of memory");
            break;
        }
        cb = v;
        combo *c = &cb[n_cb];
        memset(c, 0, sizeof *c);
        bool seen = false;
        int ct = sqlite3_column_type(st, 1), ft = sqlite3_column_type(st, 4),
            kt = sqlite3_column_type(st, 5);
        if (sqlite3_column_type(st, 0) != SQLITE_TEXT || (ct != SQLITE_TEXT && ct != SQLITE_NULL) ||
            sqlite3_column_type(st, 2) != SQLITE_TEXT || (ft != SQLITE_TEXT && ft != SQLITE_NULL) ||
            (kt != SQLITE_TEXT && kt != SQLITE_NULL)) {
            rc = fail_not_text(
                path, "a spec, calib, method, linear_formats or calibration of the cells table",
                err);
            break;
        }
        const char *sp = (const char *)sqlite3_column_text(st, 0),
                   *ca = ct == SQLITE_NULL ? NULL : (const char *)sqlite3_column_text(st, 1),
                   *fo = ft == SQLITE_NULL ? NULL : (const char *)sqlite3_column_text(st, 4),
                   *ka = kt == SQLITE_NULL ? NULL : (const char *)sqlite3_column_text(st, 5);
        for (size_t k = 0; k < n_cb; k++)
            seen |= !strcmp(cb[k].spec, sp) && same_calib(cb[k].calib, ca);
        if (seen)
            continue;
        c->spec = pq_strdup(sp);
        c->calib = ca ? pq_strdup(ca) : NULL;
        c->formats = fo ? pq_strdup(fo) : NULL;
        c->calibration = ka ? pq_strdup(ka) : NULL;
        c->method = pq_strdup((const char *)sqlite3_column_text(st, 2));
        c->bpw = sqlite3_column_double(st, 3);
        c->name = ca ? pq_asprintf("%s@%s", sp, ca) : pq_strdup(sp);
        n_cb++;
        if (!c->spec || (ca && !c->calib) || (fo && !c->formats) || (ka && !c->calibration) ||
            !c->method || !c->name)
            rc = pq_fail(err, POLYQ_NOMEM, "out of memory");
    }
    sqlite3_finalize(st);
    char **langs = NULL;
    size_t n_lang = 0;
    char *cnt = pq_asprintf("%zu", n_cb);
    if (!rc && !cnt)
        rc = pq_fail(err, POLYQ_NOMEM, "out of memory");
    if (!rc)
        rc = query_strings(s, path, "the lang column of the cells table",
                           "SELECT lang FROM cells WHERE model = ? GROUP BY lang HAVING COUNT(*) = "
                           "CAST(? AS INTEGER) ORDER BY lang",
                           model, cnt, &langs, &n_lang, err);
    free(cnt);
    pq_lang_eval *ev = rc ? NULL : calloc(n_lang ? n_lang : 1, sizeof *ev);
    pq_lang_metrics *met = rc ? NULL : calloc(n_lang ? n_lang : 1, sizeof *met);
    pq_disparity_summary *sum = rc ? NULL : calloc(n_cb ? n_cb : 1, sizeof *sum);
    if (!rc && (!ev || !met || !sum))
        rc = pq_fail(err, POLYQ_NOMEM, "out of memory");
    if (!rc && !n_lang)
        rc = pq_fail(err, POLYQ_INVALID_ARG,
                     "%s: model %s has no language finished for every spec yet", path, model);
    int ref = -1;
    for (size_t l = 0; l < n_lang && !rc; l++) {
        pq_lang_eval *e = &ev[l];
        snprintf(e->lang, sizeof e->lang, "%s", langs[l]);
        if (!strcmp(langs[l], "eng_Latn"))
            ref = (int)l;
        st = NULL;
        if (sqlite3_prepare_v2(s,
                               "SELECT n_sentences, n_bytes, n_chars, n_words, n_fallback_tokens "
                               "FROM cells WHERE "
                               "model = ? AND lang = ? "
                               "LIMIT 1",
                               -1, &st, NULL) != SQLITE_OK ||
            sqlite3_bind_text(st, 1, model, -1, SQLITE_STATIC) ||
            sqlite3_bind_text(st, 2, langs[l], -1, SQLITE_STATIC) ||
            sqlite3_step(st) != SQLITE_ROW) {
            sqlite3_finalize(st);
            rc = fail_db(s, path, err);
            break;
        }
        e->n_sent = (size_t)sqlite3_column_int64(st, 0);
        e->bytes = (uint64_t)sqlite3_column_int64(st, 1);
        e->chars = (uint64_t)sqlite3_column_int64(st, 2);
        e->words = (uint64_t)sqlite3_column_int64(st, 3);
        e->fallback = (uint64_t)sqlite3_column_int64(st, 4);
        sqlite3_finalize(st);
        e->spaced = !pq_script_unspaced(langs[l]);
        e->n_q = (int)n_cb;
        size_t n = e->n_sent ? e->n_sent : 1;
        e->tokens = calloc(n, sizeof *e->tokens);
        e->sbytes = calloc(n, sizeof *e->sbytes);
        e->nll_fp = calloc(n, sizeof *e->nll_fp);
        e->nll_q = calloc(n_cb, sizeof *e->nll_q);
        e->kld_q = calloc(n_cb, sizeof *e->kld_q);
        e->agree_q = calloc(n_cb, sizeof *e->agree_q);
        e->dp_q = calloc(n_cb, sizeof *e->dp_q);
        e->dp2_q = calloc(n_cb, sizeof *e->dp2_q);
        bool ok = e->tokens && e->sbytes && e->nll_fp && e->nll_q && e->kld_q && e->agree_q &&
                  e->dp_q && e->dp2_q;
        for (size_t q = 0; ok && q < n_cb; q++)
            ok = (e->nll_q[q] = calloc(n, sizeof **e->nll_q)) &&
                 (e->kld_q[q] = calloc(n, sizeof **e->kld_q)) &&
                 (e->agree_q[q] = calloc(n, sizeof **e->agree_q)) &&
                 (e->dp_q[q] = calloc(n, sizeof **e->dp_q)) &&
                 (e->dp2_q[q] = calloc(n, sizeof **e->dp2_q));
        if (!ok) {
            rc = pq_fail(err, POLYQ_NOMEM, "out of memory");
            break;
        }
        for (size_t q = 0; q < n_cb && !rc; q++)
            if ((rc = read_cell(s, model, &cb[q], langs[l], e, (int)q, q == 0)))
                rc = pq_fail(err, POLYQ_FORMAT,
                             rc == -2 ? "%s: the sentences of %s %s %s %s hold a value that is not "
                                        "a number, or a count out of range"
                                      : "%s: the sentences of %s %s %s %s are incomplete",
                             path, model, cb[q].spec, cb[q].calib ? cb[q].calib : "-", langs[l]);
    }
    pq_metrics_opts mo = {.n_boot = 1000, .seed = 0, .ref = ref};
    if (!rc)
        rc = pq_metrics_compute(ev, n_lang, (int)n_cb, &mo, met, sum, err);
    for (size_t l = 0; l < n_lang && !rc; l++) /* KL statistics as the sweep stored them */
        for (size_t q = 0; q < n_cb; q++) {
            st = NULL;
            if (sqlite3_prepare_v2(
                    s,
                    "SELECT kld_max, kld_p999, kld_p99, kld_p95, kld_p90, kld_p50, "
                    "kld_p10, kld_p05, kld_p01, kld_min FROM cells WHERE model = ? "
                    "AND spec = ? AND IFNULL(calib, '') = IFNULL(?, '') AND lang = ?",
                    -1, &st, NULL) == SQLITE_OK &&
                !sqlite3_bind_text(st, 1, model, -1, SQLITE_STATIC) &&
                !sqlite3_bind_text(st, 2, cb[q].spec, -1, SQLITE_STATIC) &&
                (bind_calib(st, 3, cb[q].calib), 1) &&
                !sqlite3_bind_text(st, 4, langs[l], -1, SQLITE_STATIC) &&
                sqlite3_step(st) == SQLITE_ROW) {
                pq_q_metrics *x = &met[l].q[q];
                for (int k = 0; k < 10; k++) { /* a number, or NULL (not stored) */
                    int ty = sqlite3_column_type(st, k);
                    x->kld_stats[k] = ty == SQLITE_INTEGER || ty == SQLITE_FLOAT
                                          ? sqlite3_column_double(st, k)
                                          : NAN;
                }
                x->kld_p99 = x->kld_stats[2];
                x->kld_p90 = x->kld_stats[4];
                x->kld_p50 = x->kld_stats[5];
            }
            sqlite3_finalize(st);
        }
    if (!rc)
        summary_rows(summary, model, cb, n_cb, met, n_lang, sum, ref);
    char *dir = NULL, *json = NULL;
    if (!rc) { /* DIR/<model with / as _> */
        char *safe = pq_strdup(model);
        for (char *p = safe; p && *p; p++)
            if (*p == '/' || *p == '\\' || *p == ':')
                *p = '_';
        dir = safe ? pq_path_join(out_dir, safe[0] == '.' ? safe + 1 : safe) : NULL;
        json = dir ? pq_path_join(dir, "results.json") : NULL;
        free(safe);
        if (!json)
            rc = pq_fail(err, POLYQ_NOMEM, "out of memory");
        else if (mkdir(dir, 0777) && !pq_dir_exists(dir))
            rc = pq_fail(err, POLYQ_IO, "%s: cannot create", dir);
    }
    if (!rc) {
        const char *names[PQ_MAX_SPECS], *methods[PQ_MAX_SPECS], *formats[PQ_MAX_SPECS],
            *calibs[PQ_MAX_SPECS];
        double bpw[PQ_MAX_SPECS];
        for (size_t q = 0; q < n_cb; q++) {
            calibs[q] = cb[q].calibration;
            formats[q] = cb[q].formats;
            names[q] = cb[q].name;
            methods[q] = cb[q].method;
            bpw[q] = cb[q].bpw;
        }
        json_t *split = json_object_get(plan, "split"),
               *ms = json_object_get(plan, "max_sentences"), *data = json_object_get(plan, "data");
        char **mv[4] = {NULL};
        size_t mn[4] = {0};
        static const char *const field[4] = {"architecture", "model_type", "dtype", "n_params"};
        for (int k = 0; k < 4; k++) {
            char *key = pq_asprintf("model:%s:%s", model, field[k]);
            polyq_err ignore = {0}; /* a model's description is optional */
            if (key)
                query_strings(s, path, key, "SELECT value FROM meta WHERE key = ?", key, NULL,
                              &mv[k], &mn[k], &ignore);
            free(key);
        }
#define MV(k) (mn[k] == 1 ? mv[k][0] : NULL)
        const char *np = MV(3);
        pq_run_info info = {.model_id = model,
                            .model_path = model,
                            .dataset = "flores200",
                            .architecture = MV(0),
                            .model_type = MV(1),
                            .dtype = MV(2),
                            .n_params = np ? strtoull(np, NULL, 10) : 0,
                            .split = json_is_string(split) ? json_string_value(split) : "devtest",
                            .data_path = json_is_string(data) ? json_string_value(data) : NULL,
                            .max_sentences =
                                json_is_integer(ms) ? (uint64_t)json_integer_value(ms) : 0,
                            .ref_lang = "eng_Latn",
                            .ref_evaluated = ref >= 0,
                            .seed = 0,
                            .n_boot = 1000,
                            .n_q = (int)n_cb,
                            .q_names = names,
                            .q_methods = methods,
                            .q_bits_per_weight = bpw,
                            .q_formats = formats,
                            .q_calibrations = calibs};
#undef MV
        rc = pq_report_json(json, &info, met, n_lang, sum, err);
        if (!rc)
            rc = pq_report_export(json, dir, latex, err);
        if (!rc && !(*written = json_load_file(json, 0, NULL)))
            rc = pq_fail(err, POLYQ_IO, "%s: cannot read back", json);
        for (int k = 0; k < 4; k++)
            pq_strlist_free(mv[k], mn[k]);
    }
    free(dir);
    free(json);
    if (met)
        pq_metrics_free(met, n_lang);
    free(met);
    free(sum);
    for (size_t l = 0; ev && l < n_lang; l++)
        pq_lang_eval_free(&ev[l]);
    free(ev);
    pq_strlist_free(langs, n_lang);
    for (size_t q = 0; q < n_cb; q++) {
        free(cb[q].spec);
        free(cb[q].calib);
        free(cb[q].formats);
        free(cb[q].calibration);
        free(cb[q].name);
        free(cb[q].method);
    }
    free(cb);
    return rc;
}

bool pq_is_sqlite(const char *path)
{
    char head[16] = {0};
    return pq_read_head(path, head, 16) && !memcmp(head, "SQLite format 3", 16);
}

int pq_report_db(const char *path, const char *out_dir, bool latex, polyq_err *err)
{
    sqlite3 *s = NULL;
    char **v = NULL, **models = NULL;
    size_t n = 0, n_models = 0;
    int rc = pq_db_open_read(path, &s, err);
    if (rc)
        ;
    else if ((rc = query_strings(s, path, "meta polyq_version",
                                 "SELECT value FROM meta WHERE key = 'polyq_version'", NULL, NULL,
                                 &v, &n, err)))
        ;
    else if (n != 1)
        rc = fail_db(s, path, err);
    else if (atoi(v[0]) != atoi(POLYQ_VERSION))
        rc = pq_fail(err, POLYQ_FORMAT,
                     "%s: made by polyq %s; this is polyq %s (another major version)", path, v[0],
                     POLYQ_VERSION);
    pq_strlist_free(v, n);
    json_t *plan = NULL;
    v = NULL;
    n = 0;
    if (!rc)
        rc = query_strings(s, path, "meta plan", "SELECT value FROM meta WHERE key = 'plan'", NULL,
                           NULL, &v, &n, err);
    if (!rc && n == 1)
        plan = json_loads(v[0], 0, NULL);
    pq_strlist_free(v, n);
    if (!rc)
        rc = query_strings(s, path, "the model column of the cells table",
                           "SELECT DISTINCT model FROM cells ORDER BY model", NULL, NULL, &models,
                           &n_models, err);
    if (!rc && !n_models)
        rc = pq_fail(err, POLYQ_INVALID_ARG, "%s: no finished cells yet", path);
    if (!rc && mkdir(out_dir, 0777) && !pq_dir_exists(out_dir))
        rc = pq_fail(err, POLYQ_IO, "%s: cannot create", out_dir);
    char *sp = rc ? NULL : pq_path_join(out_dir, "summary.md");
    char *summary_tmp = NULL;
    FILE *summary = sp ? pq_out_open(sp, &summary_tmp, err) : NULL;
    if (!rc && !summary)
        rc = sp ? err->code : pq_fail(err, POLYQ_NOMEM, "out of memory");
    if (summary)
        fprintf(
            summary,
            "# polyq sweep summary: %s\n\n"
            "Information lost to quantization per parallel sentence (Δ bits/sentence = (NLL_q − "
            "NLL_fp) / "
            "ln 2 per sentence; the same content in every language), with 95%% paired-bootstrap "
            "intervals; the worst/best ratio is on the same basis (n/a when some language loses "
            "nothing). Per-model tables and the CSV are in the folders beside this file.\n\n"
            "| model | spec | bits/weight | languages | worst language: Δ bits/sentence [95%% CI] "
            "| "
            "eng_Latn: Δ bits/sentence [95%% CI] | worst/best | significant losses |\n"
            "|---|---|---|---|---|---|---|---|\n",
            path);
    json_t **written = rc ? NULL : calloc(n_models ? n_models : 1, sizeof *written);
    if (!rc && !written)
        rc = pq_fail(err, POLYQ_NOMEM, "out of memory");
    for (size_t m = 0; m < n_models && !rc; m++)
        rc = one_model(s, path, models[m], plan, out_dir, latex, summary, &written[m], err);
    pq_figures figs = {0};
    if (!rc) /* every model and spec in one figure */
        rc =
            pq_report_summary_figure((const json_t *const *)written, n_models, out_dir, &figs, err);
    if (!rc && summary && figs.n)
        fprintf(summary,
                "\n![%s](%s.png)\n\nΔ bits per sentence of every model and spec by language (also "
                "`%s.svg`).\n",
                figs.v[0].title, figs.v[0].stem, figs.v[0].stem);
    pq_figures_free(&figs);
    for (size_t m = 0; written && m < n_models; m++)
        json_decref(written[m]);
    free(written);
    if (summary && !rc)
        rc = pq_out_close(summary, summary_tmp, sp, err);
    else if (summary) { /* a failed report leaves the earlier summary as it was */
        fclose(summary);
        remove(summary_tmp);
        free(summary_tmp);
    }
    free(sp);
    pq_strlist_free(models, n_models);
    json_decref(plan);
    sqlite3_close(s);
    return rc;
}
