/* polyq compare A B: one metric of two runs (or two entries of one run) per language, with the
 * difference B - A and its interval. When both sides have the per-sentence numbers (a sweep
 * database, a --log-sentences file, or a results file that names its own) and a language's
 * sentences are the same on both (count and bytes of every sentence), the interval is a paired
 * bootstrap: the same resampled sentences for A and B, drawn as polyq eval draws them
 * (pq_bootstrap_indices), so with the same seed A's and B's own intervals are the ones their
 * runs printed. Otherwise each side's interval is shown and the difference has none. */
#include "report/compare.h"

#include <math.h>
#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "base/base.h"
#include "eval/corpus.h"
#include "eval/metrics.h"
#include "report/db.h"
#include "report/report.h"
#include "run/provenance.h"

static const struct {
    const char *name, *unit;
    bool higher_is_worse;
} metric[] = {
    {"delta_bits_per_sentence", "bits per sentence", true},
    {"delta_bpb", "bits per byte", true},
    {"delta_nll_per_token", "nats per token", true},
    {"rel_degradation", "share of the full-precision NLL", true},
    {"kld", "nats per token", true},
    {"kld_per_sentence", "nats per sentence", true},
    {"top1_agree", "share of positions", false},
};
enum { N_METRIC = sizeof metric / sizeof metric[0] };

const char *pq_compare_metric_list(void)
{
    return "delta_bits_per_sentence, delta_bpb, delta_nll_per_token, rel_degradation, kld, "
           "kld_per_sentence, top1_agree";
}

/* appends a copy of v to *list (*n of them); nonzero when out of memory */
static int strlist_push(char ***list, size_t *n, const char *v)
{
    char **l = realloc(*list, (*n + 1) * sizeof *l);
    if (!l)
        return -1;
    *list = l;
    if (!(l[*n] = pq_strdup(v)))
        return -1;
    ++*n;
    return 0;
}

/* One language of one side: per sentence, or only the run's value and interval. */
typedef struct side_lang {
    char lang[64];
    size_t n;
    uint32_t *tok, *bytes, *agree;
    double *fp, *q, *kl;
    pq_ci given; /* from a results file without sentences */
} side_lang;

typedef struct side {
    const char *path;
    char *entry;            /* the entry compared */
    bool per_sentence;      /* the sentences are known */
    long long n_boot, seed; /* the run's bootstrap, from a results file (-1: not known) */
    char calib[160];        /* a results file's entry: its calibration languages, or "" */
    side_lang *L;
    size_t n_lang, cap;
} side;

static void side_free(side *s)
{
    for (size_t i = 0; i < s->n_lang; i++) {
        side_lang *l = &s->L[i];
        free(l->tok);
        free(l->bytes);
        free(l->agree);
        free(l->fp);
        free(l->q);
        free(l->kl);
    }
    free(s->L);
    free(s->entry);
    memset(s, 0, sizeof *s);
}

static side_lang *side_lang_get(side *s, const char *lang)
{
    for (size_t i = 0; i < s->n_lang; i++)
        if (!strcmp(s->L[i].lang, lang))
            return &s->L[i];
    if (s->n_lang == s->cap) {
        size_t cap = s->cap ? 2 * s->cap : 16;
        side_lang *v = realloc(s->L, cap * sizeof *v);
        if (!v)
            return NULL;
        s->L = v;
        s->cap = cap;
    }
    side_lang *l = &s->L[s->n_lang++];
    memset(l, 0, sizeof *l);
    snprintf(l->lang, sizeof l->lang, "%s", lang);
    l->given = (pq_ci){NAN, NAN, NAN};
    return l;
}

/* appends one sentence (arrays grown by doubling) */
static bool push(side_lang *l, uint32_t tok, uint32_t bytes, uint32_t agree, double fp, double q,
                 double kl)
{
    size_t n = l->n;
    if ((n & (n - 1)) == 0) { /* 0, 1, 2, 4, ...: grow to the next power of two */
        size_t cap = n ? 2 * n : 1;
        void *a = realloc(l->tok, cap * 4), *b = a ? realloc(l->bytes, cap * 4) : NULL,
             *c = b ? realloc(l->agree, cap * 4) : NULL;
        if (a)
            l->tok = a;
        if (b)
            l->bytes = b;
        if (c)
            l->agree = c;
        void *d = c ? realloc(l->fp, cap * 8) : NULL, *e = d ? realloc(l->q, cap * 8) : NULL,
             *f = e ? realloc(l->kl, cap * 8) : NULL;
        if (d)
            l->fp = d;
        if (e)
            l->q = e;
        if (f)
            l->kl = f;
        if (!f)
            return false;
    }
    l->tok[n] = tok;
    l->bytes[n] = bytes;
    l->agree[n] = agree;
    l->fp[n] = fp;
    l->q[n] = q;
    l->kl[n] = kl;
    l->n = n + 1;
    return true;
}

/* The names a --log-sentences line gives its entries, joined for a message. */
static void entry_names(const json_t *obj, char *buf, size_t n)
{
    const char *k;
    json_t *v;
    size_t at = 0;
    buf[0] = 0;
    json_object_foreach((json_t *)obj, k, v)
    {
        int w = snprintf(buf + at, n - at, "%s%s", at ? ", " : "", k);
        if (w < 0 || (size_t)w >= n - at)
            break;
        at += (size_t)w;
    }
}

/* A --log-sentences file: the sentences of entry (or of its only entry when entry is NULL). */
static int read_jsonl(side *s, const char *path, const char *entry, polyq_err *err)
{
    FILE *f = fopen(path, "rb");
    if (!f)
        return pq_fail(err, POLYQ_IO, "%s: cannot open", path);
    char *line = NULL;
    size_t cap = 0;
    ssize_t len;
    long no = 0;
    int rc = 0;
    while (!rc && (len = getline(&line, &cap, f)) >= 0) {
        no++;
        if (len <= 1)
            continue;
        json_error_t je;
        json_t *j = json_loadb(line, (size_t)len, 0, &je);
        json_t *lang = json_object_get(j, "lang"), *tok = json_object_get(j, "tokens"),
               *by = json_object_get(j, "bytes"), *fp = json_object_get(j, "nll_fp"),
               *nll = json_object_get(j, "nll"), *kld = json_object_get(j, "kld"),
               *top = json_object_get(j, "top1_agree");
        if (!j || !json_is_string(lang) || !json_is_integer(tok) || !json_is_integer(by) ||
            !json_is_number(fp) || !json_is_object(nll) || !json_is_object(kld) ||
            !json_is_object(top) || json_integer_value(tok) < 0 ||
            json_integer_value(tok) > UINT32_MAX || json_integer_value(by) < 0 ||
            json_integer_value(by) > UINT32_MAX) {
            rc = pq_fail(err, POLYQ_FORMAT,
                         "%s: line %ld is not a sentence as polyq eval --log-sentences writes "
                         "it (lang, tokens, bytes, nll_fp, nll, kld, top1_agree)",
                         path, no);
            json_decref(j);
            break;
        }
        if (!s->entry && !entry) {
            if (json_object_size(nll) != 1) {
                char names[512];
                entry_names(nll, names, sizeof names);
                rc = pq_fail(err, POLYQ_INVALID_ARG,
                             "%s holds %zu entries (%s): say which with --entries A,B", path,
                             json_object_size(nll), names);
            } else if (!(s->entry = pq_strdup(json_object_iter_key(json_object_iter(nll)))))
                rc = pq_fail(err, POLYQ_NOMEM, "out of memory");
        }
        const char *e = entry ? entry : s->entry;
        json_t *q = rc ? NULL : json_object_get(nll, e), *kl = json_object_get(kld, e),
               *ag = json_object_get(top, e);
        if (!rc && (!json_is_number(q) || !json_is_number(kl) || !json_is_number(ag))) {
            char names[512];
            entry_names(nll, names, sizeof names);
            rc = pq_fail(err, POLYQ_INVALID_ARG, "%s: line %ld has no entry \"%s\" (it has: %s)",
                         path, no, e, names);
        }
        side_lang *l = rc ? NULL : side_lang_get(s, json_string_value(lang));
        uint32_t T = (uint32_t)json_integer_value(tok);
        /* the top-1 agreement is written as a share of the sentence's tokens */
        double agree = json_number_value(ag) * T;
        if (!rc && !(l && push(l, T, (uint32_t)json_integer_value(by), (uint32_t)llround(agree),
                               json_number_value(fp), json_number_value(q), json_number_value(kl))))
            rc = pq_fail(err, POLYQ_NOMEM, "out of memory reading %s", path);
        json_decref(j);
    }
    free(line);
    fclose(f);
    if (!rc && !s->n_lang)
        rc = pq_fail(err, POLYQ_FORMAT, "%s: no sentences", path);
    if (!rc && entry && !s->entry && !(s->entry = pq_strdup(entry)))
        rc = pq_fail(err, POLYQ_NOMEM, "out of memory");
    s->per_sentence = true;
    return rc;
}

/* A sweep database: the sentences of the entry named entry (spec or spec@calib) of model. */
static int read_db(side *s, const char *path, const char *model, const char *entry, polyq_err *err)
{
    sqlite3 *d = NULL;
    int rc = pq_db_open_read(path, &d, err);
    char **models = NULL, **names = NULL;
    size_t n_models = 0, n_names = 0;
    sqlite3_stmt *st = NULL;
    if (!rc && !model) {
        if (sqlite3_prepare_v2(d, "SELECT DISTINCT model FROM cells ORDER BY model", -1, &st,
                               NULL) != SQLITE_OK)
            rc = pq_fail(err, POLYQ_FORMAT, "%s: not a polyq sweep database", path);
        while (!rc && sqlite3_step(st) == SQLITE_ROW)
            if (sqlite3_column_type(st, 0) == SQLITE_TEXT)
                rc = strlist_push(&models, &n_models, (const char *)sqlite3_column_text(st, 0))
                         ? pq_fail(err, POLYQ_NOMEM, "out of memory")
                         : 0;
        sqlite3_finalize(st);
        st = NULL;
        if (!rc && n_models != 1)
            rc = n_models ? pq_fail(err, POLYQ_INVALID_ARG,
                                    "%s holds %zu models (%s, …): say which with --model", path,
                                    n_models, models[0])
                          : pq_fail(err, POLYQ_INVALID_ARG, "%s: no finished cells yet", path);
        model = rc ? NULL : models[0];
    }
    if (!rc) { /* the model's entries, in the order they were computed */
        if (sqlite3_prepare_v2(d,
                               "SELECT name FROM cells WHERE model = ? GROUP BY name ORDER BY "
                               "MIN(rowid)",
                               -1, &st, NULL) != SQLITE_OK)
            rc = pq_fail(err, POLYQ_FORMAT, "%s: not a polyq sweep database", path);
        else
            sqlite3_bind_text(st, 1, model, -1, SQLITE_STATIC);
        while (!rc && sqlite3_step(st) == SQLITE_ROW)
            if (sqlite3_column_type(st, 0) == SQLITE_TEXT)
                rc = strlist_push(&names, &n_names, (const char *)sqlite3_column_text(st, 0))
                         ? pq_fail(err, POLYQ_NOMEM, "out of memory")
                         : 0;
        sqlite3_finalize(st);
        st = NULL;
        if (!rc && !n_names)
            rc = pq_fail(err, POLYQ_INVALID_ARG, "%s: no cells of model %s", path, model);
    }
    if (!rc && !entry && n_names != 1) {
        char list[512] = "";
        for (size_t i = 0, at = 0; i < n_names && at < sizeof list; i++)
            at += (size_t)snprintf(list + at, sizeof list - at, "%s%s", i ? ", " : "", names[i]);
        rc = pq_fail(err, POLYQ_INVALID_ARG,
                     "%s holds %zu entries of %s (%s): say which with --entries A,B", path, n_names,
                     model, list);
    }
    if (!rc && entry) {
        bool found = false;
        for (size_t i = 0; i < n_names; i++)
            found |= !strcmp(names[i], entry);
        if (!found) {
            const char *near = pq_nearest(entry, (const char *const *)names, n_names);
            rc = pq_fail(err, POLYQ_INVALID_ARG, "%s: model %s has no entry \"%s\"%s%s%s", path,
                         model, entry, near ? " (did you mean " : "", near ? near : "",
                         near ? "?)" : "");
        }
    }
    if (!rc && !(s->entry = pq_strdup(entry ? entry : names[0])))
        rc = pq_fail(err, POLYQ_NOMEM, "out of memory");
    if (!rc &&
        sqlite3_prepare_v2(d,
                           "SELECT s.lang, s.n_tokens, s.n_bytes, s.nll_fp, s.nll_q, s.kld_sum, "
                           "s.n_top1_agree FROM sentences s JOIN cells c ON c.model = s.model AND "
                           "c.spec = s.spec AND IFNULL(c.calib, '') = IFNULL(s.calib, '') AND "
                           "c.lang = s.lang WHERE c.model = ? AND c.name = ? ORDER BY s.lang, "
                           "s.idx",
                           -1, &st, NULL) != SQLITE_OK)
        rc = pq_fail(err, POLYQ_FORMAT, "%s: not a polyq sweep database (%s)", path,
                     sqlite3_errmsg(d));
    if (!rc) {
        sqlite3_bind_text(st, 1, model, -1, SQLITE_STATIC);
        sqlite3_bind_text(st, 2, s->entry, -1, SQLITE_STATIC);
    }
    while (!rc && sqlite3_step(st) == SQLITE_ROW) {
        bool ok = sqlite3_column_type(st, 0) == SQLITE_TEXT;
        for (int k = 1; ok && k < 7; k++) {
            int ty = sqlite3_column_type(st, k);
            bool count = k <= 2 || k == 6;
            ok = (ty == SQLITE_INTEGER || (ty == SQLITE_FLOAT && !count)) &&
                 (!count ||
                  (sqlite3_column_int64(st, k) >= 0 && sqlite3_column_int64(st, k) <= UINT32_MAX));
        }
        if (!ok) {
            rc = pq_fail(err, POLYQ_FORMAT,
                         "%s: a sentence of %s holds a value that is not a number, or a count "
                         "out of range",
                         path, s->entry);
            break;
        }
        side_lang *l = side_lang_get(s, (const char *)sqlite3_column_text(st, 0));
        if (!l ||
            !push(l, (uint32_t)sqlite3_column_int64(st, 1), (uint32_t)sqlite3_column_int64(st, 2),
                  (uint32_t)sqlite3_column_int64(st, 6), sqlite3_column_double(st, 3),
                  sqlite3_column_double(st, 4), sqlite3_column_double(st, 5)))
            rc = pq_fail(err, POLYQ_NOMEM, "out of memory reading %s", path);
    }
    sqlite3_finalize(st);
    sqlite3_close(d);
    pq_strlist_free(models, n_models);
    pq_strlist_free(names, n_names);
    s->per_sentence = true;
    return rc;
}

/* The file a results document says its sentences are in, when it is there unchanged: as
 * recorded, else beside the results file. NULL otherwise (*why says which). */
static char *linked_sentences(const json_t *doc, const char *results, const char **why)
{
    const json_t *l = json_object_get(doc, "sentences");
    const char *file = json_string_value(json_object_get(l, "file")),
               *sha = json_string_value(json_object_get(l, "sha256"));
    *why = "it was written without --log-sentences";
    if (!file || !sha)
        return NULL;
    char *cand[2] = {pq_strdup(file), NULL};
    const char *slash = strrchr(results, '/'), *base = strrchr(file, '/');
    if (slash)
        cand[1] = pq_asprintf("%.*s/%s", (int)(slash - results), results, base ? base + 1 : file);
    else
        cand[1] = pq_strdup(base ? base + 1 : file);
    char *found = NULL;
    *why = "its --log-sentences file is not where it was written, nor beside it";
    for (int i = 0; i < 2 && !found; i++) {
        char hex[65];
        polyq_err e = {0};
        if (cand[i] && pq_file_exists(cand[i])) {
            if (pq_sha256_file(cand[i], hex, NULL, &e) == 0 && !strcmp(hex, sha))
                found = cand[i], cand[i] = NULL;
            else
                *why = "its --log-sentences file has changed since (another SHA-256)";
        }
    }
    free(cand[0]);
    free(cand[1]);
    return found;
}

/* A results document: the sentences its --log-sentences file holds, or each language's value
 * and interval of metric m. */
static int read_results(side *s, const char *path, const char *entry, int m, const char **why,
                        polyq_err *err)
{
    json_error_t je;
    json_t *doc = json_load_file(path, 0, &je);
    if (!doc)
        return pq_fail(err, POLYQ_FORMAT, "%s: line %d: %s", path, je.line, je.text);
    json_t *nb = json_object_get(doc, "bootstrap_resamples"), *sd = json_object_get(doc, "seed");
    s->n_boot = json_is_integer(nb) ? json_integer_value(nb) : -1;
    s->seed = json_is_integer(sd) ? json_integer_value(sd) : -1;
    const json_t *qa = json_object_get(doc, "quantized");
    int rc = 0;
    if (!json_is_array(qa) || !json_array_size(qa))
        rc = pq_fail(err, POLYQ_FORMAT, "%s: no quantized entries (not a polyq results file?)",
                     path);
    const json_t *x = NULL;
    size_t n = rc ? 0 : json_array_size(qa);
    const char *names[PQ_MAX_SPECS];
    size_t nn = 0;
    for (size_t i = 0; i < n; i++) {
        const char *nm = json_string_value(json_object_get(json_array_get(qa, i), "spec"));
        if (nm && nn < PQ_MAX_SPECS)
            names[nn++] = nm;
        if (nm && entry && !strcmp(nm, entry))
            x = json_array_get(qa, i);
    }
    if (!rc && !entry && n == 1)
        x = json_array_get(qa, 0);
    if (!rc && !x) {
        char list[512] = "";
        for (size_t i = 0, at = 0; i < nn && at < sizeof list; i++)
            at += (size_t)snprintf(list + at, sizeof list - at, "%s%s", i ? ", " : "", names[i]);
        const char *near = entry ? pq_nearest(entry, names, nn) : NULL;
        rc = entry ? pq_fail(err, POLYQ_INVALID_ARG, "%s has no entry \"%s\" (it has: %s)%s%s%s",
                             path, entry, list, near ? "; did you mean " : "", near ? near : "",
                             near ? "?" : "")
                   : pq_fail(err, POLYQ_INVALID_ARG,
                             "%s holds %zu entries (%s): say which with --entries A,B", path, n,
                             list);
    }
    const char *name = x ? json_string_value(json_object_get(x, "spec")) : NULL;
    size_t ci;
    json_t *cl;
    json_array_foreach(json_object_get(json_object_get(x, "calibration"), "languages"), ci, cl)
    {
        size_t at = strlen(s->calib);
        if (json_is_string(cl) && at + 2 < sizeof s->calib)
            snprintf(s->calib + at, sizeof s->calib - at, "%s%s", at ? "," : "",
                     json_string_value(cl));
    }
    char *linked = rc ? NULL : linked_sentences(doc, path, why);
    if (!rc && linked)
        rc = read_jsonl(s, linked, name, err);
    else if (!rc) {
        if (!(s->entry = pq_strdup(name ? name : "")))
            rc = pq_fail(err, POLYQ_NOMEM, "out of memory");
        size_t i;
        json_t *l;
        json_array_foreach(json_object_get(x, "languages"), i, l)
        {
            const char *lang = json_string_value(json_object_get(l, "lang"));
            const json_t *c = json_object_get(l, metric[m].name);
            side_lang *sl = lang && !rc ? side_lang_get(s, lang) : NULL;
            if (!rc && lang && !sl) {
                rc = pq_fail(err, POLYQ_NOMEM, "out of memory");
                break;
            }
            if (sl)
                sl->given = (pq_ci){pq_rj_num(c, "value"), pq_rj_num(c, "ci95_lo"),
                                    pq_rj_num(c, "ci95_hi")};
        }
        s->per_sentence = false;
    }
    free(linked);
    json_decref(doc);
    return rc;
}

static int read_side(side *s, const char *path, const char *model, const char *entry, int m,
                     const char **why, polyq_err *err)
{
    s->path = path;
    s->n_boot = s->seed = -1;
    *why = NULL;
    if (!pq_file_exists(path))
        return pq_fail(err, POLYQ_IO, "%s: no such file", path);
    if (pq_is_sqlite(path))
        return read_db(s, path, model, entry, err);
    size_t len = strlen(path);
    if (len > 6 && !strcmp(path + len - 6, ".jsonl"))
        return read_jsonl(s, path, entry, err);
    return read_results(s, path, entry, m, why, err);
}

/* metric m over the sentences idx (NULL: all) of l */
static double value(const side_lang *l, int m, const uint32_t *idx)
{
    double T = 0, B = 0, fp = 0, q = 0, kl = 0, ag = 0, N = (double)l->n;
    for (size_t k = 0; k < l->n; k++) {
        size_t i = idx ? idx[k] : k;
        T += l->tok[i];
        B += l->bytes[i];
        fp += l->fp[i];
        q += l->q[i];
        kl += l->kl[i];
        ag += l->agree[i];
    }
    double d = q - fp;
    switch (m) {
    case 0:
        return N > 0 ? d / (N * M_LN2) : NAN;
    case 1:
        return B > 0 ? d / (B * M_LN2) : NAN;
    case 2:
        return T > 0 ? d / T : NAN;
    case 3:
        return fp > 0 ? d / fp : NAN;
    case 4:
        return T > 0 ? kl / T : NAN;
    case 5:
        return N > 0 ? kl / N : NAN;
    default:
        return T > 0 ? ag / T : NAN;
    }
}

/* the same sentences: as many, each of the same bytes */
static bool same_sentences(const side_lang *a, const side_lang *b)
{
    if (a->n != b->n)
        return false;
    for (size_t i = 0; i < a->n; i++)
        if (a->bytes[i] != b->bytes[i])
            return false;
    return true;
}

typedef struct row {
    const char *lang;
    pq_ci a, b, d;
    bool paired;
} row;

/* what the difference says, in words that match its sign and interval */
static const char *verdict(const row *r, int m)
{
    if (!isfinite(r->d.value))
        return "";
    if (!r->paired || !isfinite(r->d.lo))
        return "unpaired";
    if (r->d.lo <= 0 && r->d.hi >= 0)
        return "no clear difference";
    bool up = r->d.lo > 0;
    return up == metric[m].higher_is_worse ? "B worse" : "B better";
}

static void tex_escape(FILE *f, const char *s)
{
    for (; *s; s++) {
        if (strchr("_&%$#{}", *s))
            fputc('\\', f);
        if (*s == '~' || *s == '^')
            fprintf(f, "\\textasciitilde{}");
        else
            fputc(*s, f);
    }
}

static void tex_ci(FILE *f, const pq_ci *c)
{
    if (!isfinite(c->value))
        fputs(" & --", f);
    else if (isfinite(c->lo))
        fprintf(f, " & %.3f [%.3f, %.3f]", c->value, c->lo, c->hi);
    else
        fprintf(f, " & %.3f", c->value);
}

static int write_latex(const char *path, const side *A, const side *B, int m, const row *rows,
                       size_t n, bool any_paired, polyq_err *err)
{
    char *tmp = NULL;
    FILE *f = pq_out_open(path, &tmp, err);
    if (!f)
        return err->code;
    fputs("% polyq compare; needs \\usepackage{booktabs}\n\\begin{table}\n\\centering\n"
          "\\begin{tabular}{lrrrl}\n\\toprule\n",
          f);
    fputs("Language & A: ", f);
    tex_escape(f, A->entry);
    fputs(" & B: ", f);
    tex_escape(f, B->entry);
    fputs(" & B $-$ A & \\\\\n\\midrule\n", f);
    for (size_t i = 0; i < n; i++) {
        tex_escape(f, rows[i].lang);
        tex_ci(f, &rows[i].a);
        tex_ci(f, &rows[i].b);
        tex_ci(f, &rows[i].d);
        fputs(" & ", f);
        tex_escape(f, verdict(&rows[i], m));
        fputs(" \\\\\n", f);
    }
    fputs("\\bottomrule\n\\end{tabular}\n\\caption{", f);
    tex_escape(f, metric[m].name);
    fprintf(f, " (%s) per language, with 95\\%% bootstrap intervals; %s.}\n\\end{table}\n",
            metric[m].unit,
            any_paired ? "B $-$ A with a paired interval (the same sentences resampled for both)"
                       : "B $-$ A without an interval (the runs' sentences are not paired)");
    return pq_out_close(f, tmp, path, err);
}

int pq_compare(const pq_compare_opts *o, FILE *out, polyq_err *err)
{
    int m = -1;
    const char *mname = o->metric ? o->metric : "delta_bits_per_sentence";
    const char *mlist[N_METRIC];
    for (int i = 0; i < N_METRIC; i++) {
        mlist[i] = metric[i].name;
        if (!strcmp(mname, metric[i].name))
            m = i;
    }
    if (m < 0) {
        const char *near = pq_nearest(mname, mlist, N_METRIC);
        return pq_fail(err, POLYQ_INVALID_ARG, "--metric: unknown metric \"%s\"%s%s%s (one of %s)",
                       mname, near ? "; did you mean " : "", near ? near : "", near ? "?" : "",
                       pq_compare_metric_list());
    }
    side A = {0}, B = {0};
    const char *why_a = NULL, *why_b = NULL;
    int rc = read_side(&A, o->a, o->model, o->entry_a, m, &why_a, err);
    if (!rc)
        rc = read_side(&B, o->b ? o->b : o->a, o->model, o->entry_b ? o->entry_b : o->entry_a, m,
                       &why_b, err);
    /* the runs' own bootstrap unless told: A's intervals are then the ones A's run printed */
    int n_boot = o->n_boot > 0     ? o->n_boot
                 : A.n_boot >= 100 ? (int)A.n_boot
                 : B.n_boot >= 100 ? (int)B.n_boot
                                   : 1000;
    uint64_t seed = o->seed_given ? o->seed
                    : A.seed >= 0 ? (uint64_t)A.seed
                    : B.seed >= 0 ? (uint64_t)B.seed
                                  : 0;
    if (!rc && !strcmp(A.path, B.path) && !strcmp(A.entry, B.entry))
        rc = pq_fail(err, POLYQ_INVALID_ARG,
                     "%s: A and B are the same entry (%s); name two with --entries A,B", A.path,
                     A.entry);
    row *rows = rc ? NULL : calloc(A.n_lang ? A.n_lang : 1, sizeof *rows);
    double *ta = rc ? NULL : malloc(sizeof(double) * (size_t)n_boot),
           *tb = rc ? NULL : malloc(sizeof(double) * (size_t)n_boot),
           *td = rc ? NULL : malloc(sizeof(double) * (size_t)n_boot);
    if (!rc && (!rows || !ta || !tb || !td))
        rc = pq_fail(err, POLYQ_NOMEM, "out of memory");
    size_t n_rows = 0, only_a = 0, n_paired = 0;
    uint32_t *idx = NULL;
    for (size_t i = 0; !rc && i < A.n_lang; i++) {
        const side_lang *la = &A.L[i], *lb = NULL;
        for (size_t k = 0; k < B.n_lang; k++)
            if (!strcmp(B.L[k].lang, la->lang))
                lb = &B.L[k];
        if (!lb) {
            only_a++;
            continue;
        }
        row *r = &rows[n_rows++];
        r->lang = la->lang;
        r->a = A.per_sentence ? (pq_ci){value(la, m, NULL), NAN, NAN} : la->given;
        r->b = B.per_sentence ? (pq_ci){value(lb, m, NULL), NAN, NAN} : lb->given;
        r->d = (pq_ci){r->b.value - r->a.value, NAN, NAN};
        r->paired = A.per_sentence && B.per_sentence && same_sentences(la, lb);
        if (A.per_sentence) { /* each side's own interval, as its run computed it */
            uint32_t *v = realloc(idx, (la->n ? la->n : 1) * sizeof *idx);
            if (!v) {
                rc = pq_fail(err, POLYQ_NOMEM, "out of memory");
                break;
            }
            idx = v;
        }
        for (int b = 0; A.per_sentence && b < n_boot; b++) {
            pq_bootstrap_indices(seed, b, la->n, idx);
            ta[b] = value(la, m, idx);
            if (r->paired) {
                tb[b] = value(lb, m, idx);
                td[b] = tb[b] - ta[b];
            }
        }
        if (A.per_sentence)
            pq_percentile_interval(ta, n_boot, &r->a.lo, &r->a.hi);
        if (r->paired) {
            pq_percentile_interval(tb, n_boot, &r->b.lo, &r->b.hi);
            pq_percentile_interval(td, n_boot, &r->d.lo, &r->d.hi);
            n_paired++;
        } else if (B.per_sentence) {
            uint32_t *v = realloc(idx, (lb->n ? lb->n : 1) * sizeof *idx);
            if (!v) {
                rc = pq_fail(err, POLYQ_NOMEM, "out of memory");
                break;
            }
            idx = v;
            for (int b = 0; b < n_boot; b++) {
                pq_bootstrap_indices(seed, b, lb->n, idx);
                tb[b] = value(lb, m, idx);
            }
            pq_percentile_interval(tb, n_boot, &r->b.lo, &r->b.hi);
        }
    }
    free(idx);
    if (!rc && !n_rows)
        rc =
            pq_fail(err, POLYQ_INVALID_ARG, "%s and %s have no language in common", A.path, B.path);
    if (!rc) {
        fprintf(out, "%s: B - A per language (%s)\n", metric[m].name, metric[m].unit);
        for (int k = 0; k < 2; k++) {
            const side *sd = k ? &B : &A;
            fprintf(out, "%c  %s  %s%s%s%s\n", k ? 'B' : 'A', sd->path, sd->entry,
                    *sd->calib ? " (calibrated on " : "", sd->calib, *sd->calib ? ")" : "");
        }
        fprintf(out, "%-14s %26s %26s %30s\n", "language", "A [95% CI]", "B [95% CI]",
                "B - A [95% CI]");
        for (size_t i = 0; i < n_rows; i++) {
            const row *r = &rows[i];
            char c[3][64];
            const pq_ci *v[3] = {&r->a, &r->b, &r->d};
            for (int k = 0; k < 3; k++)
                if (!isfinite(v[k]->value))
                    snprintf(c[k], sizeof c[k], "-");
                else if (isfinite(v[k]->lo))
                    snprintf(c[k], sizeof c[k], "%.4f [%.4f, %.4f]", v[k]->value, v[k]->lo,
                             v[k]->hi);
                else
                    snprintf(c[k], sizeof c[k], "%.4f", v[k]->value);
            fprintf(out, "%-14s %26s %26s %30s  %s\n", r->lang, c[0], c[1], c[2], verdict(r, m));
        }
        if (n_paired)
            fprintf(out,
                    "paired: %zu of %zu languages (the same sentences in A and B), %d bootstrap "
                    "resamples, seed %llu; B worse/better: the interval of B - A excludes 0\n",
                    n_paired, n_rows, n_boot, (unsigned long long)seed);
        if (n_paired < n_rows) {
            const char *why = !A.per_sentence   ? why_a
                              : !B.per_sentence ? why_b
                                                : "the sentences differ (other data, split or "
                                                  "--max-sentences)";
            fprintf(out, "unpaired: %zu of %zu languages: no interval for B - A, because %s%s%s\n",
                    n_rows - n_paired, n_rows,
                    !A.per_sentence   ? A.path
                    : !B.per_sentence ? B.path
                                      : "",
                    !A.per_sentence || !B.per_sentence ? ": " : "", why ? why : "");
        }
        if (only_a || B.n_lang > n_rows)
            fprintf(out, "left out: %zu languages only in A, %zu only in B\n", only_a,
                    B.n_lang - n_rows);
    }
    if (!rc && o->latex)
        rc = write_latex(o->latex, &A, &B, m, rows, n_rows, n_paired > 0, err);
    free(rows);
    free(ta);
    free(tb);
    free(td);
    side_free(&A);
    side_free(&B);
    return rc;
}
