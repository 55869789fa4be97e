/* The sweep engine (run/sweep.h; polyq sweep PLAN.json): every cell model x quant spec x
 * calibration set x language of a plan into an SQLite database (report/db.h), skipping the cells
 * already there. Each model is opened once and each quantized model made once per run; a
 * model's quantized models are evaluated together (as many as memory holds), so each batch
 * runs the full-precision model once for all of them; a cell and its sentences are committed
 * together, so a sweep killed at any moment and started again redoes only the cells that were
 * not committed.
 *
 * The plan (JSON; unknown keys are refused):
 *   {"models": ["gpt2", "path/to/folder", ...],        required
 *    "quant": ["int8", "gptq-int4-g128", ...],          required
 *    "langs": ["eng_Latn", "hin_Deva"] or "all",        required
 *    "calib": ["eng_Latn", "hin_Deva,zho_Hans", ...],   calibration sets of calibrated specs
 *                                                      (default ["eng_Latn"])
 *    "data": "path/to/flores200", "split": "devtest", "max_sentences": 0,
 *    "calib_samples": 128, "batch_tokens": 512, "threads": 0}
 * A cell of an uncalibrated spec has calib NULL in the database.
 *
 * Built with MPI (make MPI=1) and started by mpirun with more than one rank, rank 0 owns the
 * database and hands out cells, preferring for each rank the model and quantized model it
 * already holds; the other ranks compute and send each language's per-sentence results back
 * (eval/wire.h). Every rank reads the plan and the data, so they must be at the same paths on
 * every machine. A cell's numbers do not depend on where it ran. */
#include <jansson.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "run/sweep.h"

#include "base/base.h"
#include "eval/eval.h"
#include "eval/plan.h"
#include "eval/wire.h"
#include "format/json.h"
#include "report/db.h"
#include "run/run.h"

#ifdef PQ_MPI
#include <mpi.h>
#endif

static bool calibrated(const pq_qspec *s)
{
    return pq_qspec_calibrated(s);
}

/* The plan's languages, checked against the data. */
static int plan_langs(pq_plan *p, const pq_dataset *ds, const char *path, polyq_err *err)
{
    json_t *l = json_object_get(p->root, "langs");
    if (json_is_string(l) && !strcmp(json_string_value(l), "all"))
        return pq_dataset_langs(ds, &p->langs, &p->n_langs, err);
    const char **v = NULL;
    size_t n = 0;
    if (pq_plan_lang_list(p, path, &v, &n, err)) {
        free(v);
        return -1;
    }
    p->langs = calloc(n, sizeof *p->langs);
    int rc = p->langs ? 0 : pq_fail(err, POLYQ_NOMEM, "out of memory");
    for (size_t i = 0; i < n && !rc; i++) {
        char *f = NULL;
        if (!(p->langs[i] = pq_strdup(v[i])))
            rc = pq_fail(err, POLYQ_NOMEM, "out of memory");
        else if ((rc = pq_dataset_path(ds, v[i], &f, err)))
            pq_fail_context(err, "%s: \"langs\"", path);
        free(f);
        p->n_langs = i + 1;
    }
    free(v);
    return rc;
}

/* What one process holds while it computes cells: the plan and data, the full-precision model
 * of the current model, and (an MPI rank) the quantized model and evaluator of the current spec
 * and calibration set. */
typedef struct worker {
    pq_plan *p;
    pq_dataset *ds;
    const char *data_dir;
    pq_hub_opts *ho;
    long m, s, c; /* what is loaded; -1 none */
    pq_model *fp, *q;
    char *path, *rev;
    pq_evaluator *ev;
    pq_calib_set cal;
} worker;

static const char *calib_of(const pq_plan *p, size_t s, size_t c)
{
    return calibrated(&p->parsed[s]) ? p->calibs[c] : NULL;
}

static void worker_drop_spec(worker *w)
{
    pq_evaluator_free(w->ev);
    pq_model_free(w->q);
    pq_calib_set_free(&w->cal);
    w->ev = NULL;
    w->q = NULL;
    w->s = w->c = -1;
}

static void worker_free(worker *w)
{
    worker_drop_spec(w);
    pq_model_free(w->fp);
    free(w->path);
    free(w->rev);
    w->fp = NULL;
    w->path = w->rev = NULL;
    w->m = -1;
}

/* Model m in full precision, opened unless it already is. */
static int worker_model(worker *w, size_t m, polyq_err *err)
{
    if (w->m == (long)m)
        return 0;
    worker_free(w);
    if (pq_model_open_any(w->p->models[m], w->ho, &w->fp, &w->path, &w->rev, err))
        return -1;
    w->m = (long)m;
    return 0;
}

#ifdef PQ_MPI /* ranks compute one cell at a time */
/* Model m quantized by spec s with calibration set c, loaded unless it already is. */
static int worker_load(worker *w, size_t m, size_t s, size_t c, polyq_err *err)
{
    pq_plan *p = w->p;
    if (worker_model(w, m, err))
        return -1;
    if (w->s == (long)s && w->c == (long)c)
        return 0;
    worker_drop_spec(w);
    int rc = 0;
    const pq_qspec *sp = &p->parsed[s];
    if (calibrated(sp)) {
        pq_calib_opts co = {.langs = p->calibs[c],
                            .samples = (size_t)p->calib_samples,
                            .eval_split = p->split,
                            .data = p->data ? p->data : w->data_dir};
        rc = pq_calib_set_build(&w->cal, w->fp, &co, err);
    }
    if (!rc)
        rc = pq_quantize_spec(&w->q, w->fp, sp, &w->cal, (int)p->batch, (int)p->threads, err);
    pq_eval_opts eo = {.n_threads = (int)p->threads, .batch_tokens = (int)p->batch};
    if (!rc)
        rc = pq_evaluator_create(&w->ev, w->fp, &w->q, 1, &eo, err);
    if (rc)
        worker_drop_spec(w);
    else {
        w->s = (long)s;
        w->c = (long)c;
    }
    return rc;
}

/* One cell: language l of model m, spec s, calibration set c, into *e (one spec). */
static int worker_cell(worker *w, size_t m, size_t s, size_t c, size_t l, pq_lang_eval *e,
                       polyq_err *err)
{
    memset(e, 0, sizeof *e);
    if (worker_load(w, m, s, c, err))
        return -1;
    char *f = NULL;
    pq_corpus cor = {0};
    int rc = pq_dataset_path(w->ds, w->p->langs[l], &f, err);
    if (!rc)
        rc = pq_corpus_load(&cor, w->p->langs[l], f, (size_t)w->p->max_sent, err);
    if (!rc)
        rc = pq_evaluate(w->ev, &cor, e, err);
    pq_corpus_free(&cor);
    free(f);
    return rc;
}

#endif

typedef struct cell {
    size_t m, s, c, l;
} cell;

/* The plan's cells not yet in the database, in plan order. */
static int todo_cells(pq_plan *p, pq_db *db, cell **out, size_t *n, polyq_err *err)
{
    *out = NULL;
    *n = 0;
    size_t cap = 0;
    for (size_t m = 0; m < p->n_models; m++)
        for (size_t s = 0; s < p->n_specs; s++)
            for (size_t c = 0; c < (calibrated(&p->parsed[s]) ? p->n_calibs : 1); c++)
                for (size_t l = 0; l < p->n_langs; l++) {
                    pq_cell_key k = {p->models[m], p->specs[s], calib_of(p, s, c), p->langs[l]};
                    int h = pq_db_has(db, &k, err);
                    if (h < 0)
                        return -1;
                    if (h)
                        continue;
                    if (*n == cap) {
                        cell *v = realloc(*out, (cap = cap ? 2 * cap : 64) * sizeof *v);
                        if (!v)
                            return pq_fail(err, POLYQ_NOMEM, "out of memory");
                        *out = v;
                    }
                    (*out)[(*n)++] = (cell){m, s, c, l};
                }
    return 0;
}

/* What a run writes: the model's description once per run, then the cell. */
typedef struct owner {
    pq_db *db;
    pq_plan *p;
    bool *noted; /* per model */
    long done, total;
    const pq_sweep_opts *o;
} owner;

/* Cell x from quantized model qi of e. */
static int store_cell(owner *o, const cell *x, const char *arch, const char *type,
                      const char *dtype, unsigned long long n_params, double bpw,
                      const char *formats, const char *calibration, const pq_lang_eval *e, int qi,
                      double secs, polyq_err *err)
{
    pq_plan *p = o->p;
    pq_cell_key k = {p->models[x->m], p->specs[x->s], calib_of(p, x->s, x->c), p->langs[x->l]};
    int rc = 0;
    if (!o->noted[x->m] &&
        !(rc = pq_db_note_model(o->db, p->models[x->m], arch, type, dtype, n_params, err)))
        o->noted[x->m] = true;
    pq_cell_info info = {pq_qspec_method(&p->parsed[x->s]), bpw, formats,
                         calibration && *calibration ? calibration : NULL};
    if (!rc)
        rc = pq_db_put(o->db, &k, &info, e, qi, secs, err);
    if (!rc && o->o->on_cell) {
        char line[1024];
        snprintf(line, sizeof line, "[%ld/%ld] %s %s%s%s %s (%.1f s)", ++o->done, o->total, k.model,
                 k.spec, k.calib ? "@" : "", k.calib ? k.calib : "", k.lang, secs);
        o->o->on_cell(o->o->ctx, line);
    } else if (!rc)
        ++o->done;
    return rc;
}

/* ---- one process: every spec of a model against one full-precision pass --------------- */

/* One quantized model of a group: spec s with calibration set c, and its cells to do, one per
 * language in plan order: todo[first .. first + n). */
typedef struct unit {
    size_t s, c, first, n;
    pq_model *q;
    char *cal_desc;
    char formats[1024];
} unit;

static int quantize_unit(worker *w, unit *u, polyq_err *err)
{
    pq_plan *p = w->p;
    const pq_qspec *sp = &p->parsed[u->s];
    pq_calib_set cal = {0};
    int rc = 0;
    if (calibrated(sp)) {
        pq_calib_opts co = {.langs = p->calibs[u->c],
                            .samples = (size_t)p->calib_samples,
                            .eval_split = p->split,
                            .data = p->data ? p->data : w->data_dir};
        rc = pq_calib_set_build(&cal, w->fp, &co, err);
    }
    if (!rc)
        rc = pq_quantize_spec(&u->q, w->fp, sp, &cal, (int)p->batch, (int)p->threads, err);
    if (!rc && cal.desc && !(u->cal_desc = pq_strdup(cal.desc)))
        rc = pq_fail(err, POLYQ_NOMEM, "out of memory");
    if (!rc)
        pq_model_formats_json(u->q, u->formats, sizeof u->formats);
    pq_calib_set_free(&cal);
    return rc;
}

/* The k quantized models of g evaluated together, language by language: one full-precision
 * pass per batch for all of them; each language's cells committed as it is done. */
static int eval_group(worker *w, owner *o, const cell *todo, unit *g, size_t k, pq_sweep_stats *st,
                      polyq_err *err)
{
    pq_plan *p = w->p;
    pq_model *qs[PQ_MAX_SPECS];
    size_t at[PQ_MAX_SPECS] = {0}; /* the next cell of each */
    for (size_t i = 0; i < k; i++)
        qs[i] = g[i].q;
    pq_eval_opts eo = {.n_threads = (int)p->threads, .batch_tokens = (int)p->batch};
    pq_evaluator *ev = NULL;
    int rc = pq_evaluator_create(&ev, w->fp, qs, (int)k, &eo, err);
    for (size_t l = 0; l < p->n_langs && !rc; l++) {
        size_t due = 0;
        for (size_t i = 0; i < k; i++)
            due += at[i] < g[i].n && todo[g[i].first + at[i]].l == l;
        if (!due)
            continue;
        double t0 = pq_now();
        char *f = NULL;
        pq_corpus cor = {0};
        pq_lang_eval e = {0};
        rc = pq_dataset_path(w->ds, p->langs[l], &f, err);
        if (!rc)
            rc = pq_corpus_load(&cor, p->langs[l], f, (size_t)p->max_sent, err);
        if (!rc)
            rc = pq_evaluate(ev, &cor, &e, err);
        double secs = (pq_now() - t0) / (double)due; /* shared evenly */
        for (size_t i = 0; i < k && !rc; i++) {
            if (!(at[i] < g[i].n && todo[g[i].first + at[i]].l == l))
                continue;
            rc = store_cell(o, &todo[g[i].first + at[i]], w->fp->cfg.architecture,
                            w->fp->cfg.model_type, w->fp->dtype,
                            (unsigned long long)w->fp->n_params, pq_model_bits_per_weight(g[i].q),
                            g[i].formats, g[i].cal_desc, &e, (int)i, secs, err);
            at[i]++;
        }
        pq_lang_eval_free(&e);
        pq_corpus_free(&cor);
        free(f);
    }
    if (ev) {
        uint64_t fp, q;
        pq_evaluator_passes(ev, &fp, &q);
        st->passes_fp += fp;
        st->passes_q += q;
    }
    pq_evaluator_free(ev);
    return rc;
}

/* The n cells of one model (todo, in plan order): its quantized models made in groups of as
 * many as memory holds (at least one, at most PQ_MAX_SPECS), each group evaluated together. */
static int sweep_model(worker *w, owner *o, const cell *todo, size_t n, pq_sweep_stats *st,
                       polyq_err *err)
{
    unit *u = calloc(n, sizeof *u);
    if (!u)
        return pq_fail(err, POLYQ_NOMEM, "out of memory");
    size_t n_u = 0;
    for (size_t i = 0; i < n; i++) {
        if (!n_u || u[n_u - 1].s != todo[i].s || u[n_u - 1].c != todo[i].c)
            u[n_u++] = (unit){.s = todo[i].s, .c = todo[i].c, .first = i};
        u[n_u - 1].n++;
    }
    int rc = worker_model(w, todo[0].m, err);
    for (size_t g0 = 0; g0 < n_u && !rc;) {
        size_t g1 = g0;
        while (g1 < n_u && g1 - g0 < PQ_MAX_SPECS && !rc) {
            if ((rc = quantize_unit(w, &u[g1], err)))
                break;
            /* room for one more copy of this size, and some to spare */
            double bytes = u[g1++].q->linear_bits / 8, avail = pq_memory_available();
            if (avail > 0 && avail < 2 * bytes + 512e6)
                break;
        }
        if (!rc) {
            rc = eval_group(w, o, todo, u + g0, g1 - g0, st, err);
            st->groups++;
            if (g1 - g0 > (size_t)st->held)
                st->held = (int)(g1 - g0);
        }
        for (size_t i = g0; i < g1; i++) {
            pq_model_free(u[i].q);
            free(u[i].cal_desc);
            u[i].q = NULL;
            u[i].cal_desc = NULL;
        }
        g0 = g1;
    }
    for (size_t i = 0; i < n_u; i++) { /* what a failure left */
        pq_model_free(u[i].q);
        free(u[i].cal_desc);
    }
    free(u);
    return rc;
}

#ifdef PQ_MPI
enum { TAG_READY = 1, TAG_WORK, TAG_RESULT, TAG_FAIL };

/* a result message: cell (4 × int64), bits/weight, seconds, n_params, then four NUL-ended
 * strings (architecture, model type, dtype, the linears per format and the calibration set as
 * JSON, "" for none) and the language's bytes (eval/wire.h) */
static int send_result(const cell *x, const worker *w, const pq_lang_eval *e, double secs,
                       polyq_err *err)
{
    char *body = NULL;
    size_t blen = 0;
    if (pq_lang_eval_pack(e, 0, &body, &blen, err))
        return -1;
    char formats[1024];
    pq_model_formats_json(w->q, formats, sizeof formats);
    const char *str[5] = {w->fp->cfg.architecture, w->fp->cfg.model_type, w->fp->dtype, formats,
                          w->cal.desc ? w->cal.desc : ""};
    size_t sl[5], head = 4 * 8 + 3 * 8;
    for (int i = 0; i < 5; i++)
        head += (sl[i] = strlen(str[i]) + 1);
    char *msg = malloc(head + blen);
    if (!msg || head + blen > (size_t)INT32_MAX) {
        free(msg);
        free(body);
        return pq_fail(err, POLYQ_NOMEM, "%s: results too large to send", e->lang);
    }
    int64_t key[4] = {(int64_t)x->m, (int64_t)x->s, (int64_t)x->c, (int64_t)x->l};
    double v[3] = {pq_model_bits_per_weight(w->q), secs, (double)w->fp->n_params};
    char *p = msg;
    memcpy(p, key, sizeof key);
    p += sizeof key;
    memcpy(p, v, sizeof v);
    p += sizeof v;
    for (int i = 0; i < 5; i++) {
        memcpy(p, str[i], sl[i]);
        p += sl[i];
    }
    memcpy(p, body, blen);
    free(body);
    int rc = MPI_Send(msg, (int)(head + blen), MPI_BYTE, 0, TAG_RESULT, MPI_COMM_WORLD);
    free(msg);
    return rc == MPI_SUCCESS ? 0 : pq_fail(err, POLYQ_IO, "MPI_Send failed");
}

static int worker_rank(worker *w, polyq_err *err)
{
    int rc = MPI_Send(NULL, 0, MPI_BYTE, 0, TAG_READY, MPI_COMM_WORLD) == MPI_SUCCESS ? 0 : -1;
    for (;;) {
        int64_t k[4];
        if (MPI_Recv(k, 4, MPI_INT64_T, 0, TAG_WORK, MPI_COMM_WORLD, MPI_STATUS_IGNORE) !=
            MPI_SUCCESS)
            return pq_fail(err, POLYQ_IO, "MPI_Recv failed");
        if (k[0] < 0)
            break;
        cell x = {(size_t)k[0], (size_t)k[1], (size_t)k[2], (size_t)k[3]};
        pq_lang_eval e = {0};
        double t0 = pq_now();
        polyq_err cerr = {0};
        if (!worker_cell(w, x.m, x.s, x.c, x.l, &e, &cerr))
            rc = send_result(&x, w, &e, pq_now() - t0, &cerr) ? -1 : 0;
        else
            rc = -1;
        if (rc) { /* rank 0 reports it and stops the others */
            MPI_Send(cerr.msg, (int)strlen(cerr.msg) + 1, MPI_CHAR, 0, TAG_FAIL, MPI_COMM_WORLD);
            *err = cerr;
        }
        pq_lang_eval_free(&e);
    }
    return rc;
}

/* Rank 0: hands out cells (a rank gets its current model, spec and calibration set while any
 * are left, else the next cell in plan order) and stores what comes back. */
static int owner_rank(owner *o, cell *todo, size_t n, int ranks, polyq_err *err)
{
    pq_plan *p = o->p;
    bool *given = calloc(n ? n : 1, sizeof *given);
    cell *last = calloc((size_t)ranks, sizeof *last);
    bool *has_last = calloc((size_t)ranks, sizeof *has_last);
    int active = ranks - 1,
        rc = given && last && has_last ? 0 : pq_fail(err, POLYQ_NOMEM, "out of memory");
    size_t next = 0;
    while (active > 0) {
        MPI_Status st;
        int len = 0;
        MPI_Probe(MPI_ANY_SOURCE, MPI_ANY_TAG, MPI_COMM_WORLD, &st);
        MPI_Get_count(&st, MPI_BYTE, &len);
        char *msg = malloc(len > 0 ? (size_t)len : 1);
        int from = st.MPI_SOURCE;
        if (!msg) {
            rc = pq_fail(err, POLYQ_NOMEM, "out of memory");
            MPI_Abort(MPI_COMM_WORLD, 1);
        }
        MPI_Recv(msg, len, MPI_BYTE, from, st.MPI_TAG, MPI_COMM_WORLD, MPI_STATUS_IGNORE);
        if (st.MPI_TAG == TAG_FAIL && !rc) {
            rc = pq_fail(err, POLYQ_IO, "rank %d: %.*s", from, len, msg);
        } else if (st.MPI_TAG == TAG_RESULT) { /* stored also after another rank failed */
            polyq_err cerr = {0};
            int crc = 0;
            size_t head = 4 * 8 + 3 * 8;
            const char *s3[5];
            const char *q = msg + head, *end = msg + len;
            bool ok = (size_t)len > head;
            for (int i = 0; i < 5 && ok; i++) {
                const char *z = memchr(q, 0, (size_t)(end - q));
                ok = z != NULL;
                s3[i] = q;
                q = z ? z + 1 : q;
            }
            int64_t k[4];
            double v[3];
            pq_lang_eval e = {0};
            if (ok) {
                memcpy(k, msg, sizeof k);
                memcpy(v, msg + sizeof k, sizeof v);
                ok = k[0] >= 0 && (size_t)k[0] < p->n_models && k[1] >= 0 &&
                     (size_t)k[1] < p->n_specs && k[2] >= 0 &&
                     (size_t)k[2] < (p->n_calibs ? p->n_calibs : 1) && k[3] >= 0 &&
                     (size_t)k[3] < p->n_langs;
            }
            if (!ok)
                crc = pq_fail(&cerr, POLYQ_FORMAT, "rank %d sent a malformed result", from);
            else if (!(crc = pq_lang_eval_unpack(q, (size_t)(end - q), &e, &cerr))) {
                cell x = {(size_t)k[0], (size_t)k[1], (size_t)k[2], (size_t)k[3]};
                crc = store_cell(o, &x, s3[0], s3[1], s3[2], (unsigned long long)v[2], v[0], s3[3],
                                 s3[4], &e, 0, v[1], &cerr);
            }
            pq_lang_eval_free(&e);
            if (crc && !rc) {
                rc = crc;
                *err = cerr;
            }
        }
        free(msg);
        /* the next cell for this rank */
        int64_t w[4] = {-1, -1, -1, -1};
        if (!rc) {
            size_t pick = n;
            for (size_t i = next; has_last[from] && i < n && pick == n; i++)
                if (!given[i] && todo[i].m == last[from].m && todo[i].s == last[from].s &&
                    todo[i].c == last[from].c)
                    pick = i;
            while (pick == n && next < n && given[next])
                next++;
            if (pick == n && next < n)
                pick = next;
            if (pick < n) {
                given[pick] = true;
                last[from] = todo[pick];
                has_last[from] = true;
                w[0] = (int64_t)todo[pick].m;
                w[1] = (int64_t)todo[pick].s;
                w[2] = (int64_t)todo[pick].c;
                w[3] = (int64_t)todo[pick].l;
            }
        }
        MPI_Send(w, 4, MPI_INT64_T, from, TAG_WORK, MPI_COMM_WORLD);
        active -= w[0] < 0;
    }
    free(given);
    free(last);
    free(has_last);
    return rc;
}
#endif

void pq_sweep_mpi_init(int *argc, char ***argv)
{
#ifdef PQ_MPI
    int up = 0;
    MPI_Initialized(&up);
    if (!up)
        MPI_Init(argc, argv);
#else
    (void)argc;
    (void)argv;
#endif
}

void pq_sweep_mpi_finish(void)
{
#ifdef PQ_MPI
    int up = 0, down = 0;
    MPI_Initialized(&up);
    MPI_Finalized(&down);
    if (up && !down)
        MPI_Finalize();
#endif
}

int pq_sweep_run(const pq_sweep_opts *so, polyq_err *errp)
{
    const char *plan_path = so->plan_path, *db_path = so->db_path;
    bool status = so->status;
    FILE *out = so->out ? so->out : stdout;
    int rank = 0, ranks = 1;
    (void)rank;
    (void)ranks;
#ifdef PQ_MPI
    int mpi_up = 0;
    MPI_Initialized(&mpi_up);
    if (mpi_up) {
        MPI_Comm_rank(MPI_COMM_WORLD, &rank);
        MPI_Comm_size(MPI_COMM_WORLD, &ranks);
    }
    if (status && rank > 0) /* --status reads the database alone */
        return 0;
#endif
    if (status)
        ranks = 1;
    char *db_default = NULL;
    if (!db_path) { /* plan.json -> plan.db */
        size_t n = strlen(plan_path);
        db_default = pq_asprintf(
            "%.*s.db", (int)(n > 5 && !strcmp(plan_path + n - 5, ".json") ? n - 5 : n), plan_path);
        db_path = db_default;
    }
    polyq_err err = {0};
    pq_plan p = {0};
    pq_dataset ds = {0};
    pq_db *db = NULL;
    char *data_dir = NULL;
    pq_hub_opts ho = {.offline = so->offline, .progress = isatty(2) && rank == 0};
    int rc = pq_plan_read(&p, plan_path, &err);
    if (rc) { /* nothing of a plan that did not read is used */
        pq_plan_free(&p);
        free(db_default);
        *errp = err;
        return rc;
    }
    /* the data: the plan's "data", else --data or POLYQ_DATA, else FLORES-200 in the cache */
    const char *data_opt = so->data && *so->data                           ? so->data
                           : getenv("POLYQ_DATA") && *getenv("POLYQ_DATA") ? getenv("POLYQ_DATA")
                                                                           : NULL;
    if (p.data && so->data && *so->data && strcmp(p.data, so->data))
        rc = pq_fail(&err, POLYQ_INVALID_ARG,
                     "%s names its data (\"%s\"); --data %s would evaluate other text", plan_path,
                     p.data, so->data);
    else if (!p.data && data_opt)
        rc = (data_dir = pq_strdup(data_opt)) ? 0 : pq_fail(&err, POLYQ_NOMEM, "out of memory");
    else if (!p.data)
        rc = pq_flores_resolve(&ho, &data_dir, &err);
    if (!rc)
        rc = pq_dataset_open(&ds, p.data ? p.data : data_dir, p.split, &err);
    if (!rc)
        rc = plan_langs(&p, &ds, plan_path, &err);
    for (size_t m = 0; m < p.n_models && !rc; m++) { /* every model can be found before any work */
        char *path = NULL, *rev = NULL;
        if ((rc = pq_model_locate(p.models[m], &ho, &path, &rev, &err)))
            pq_fail_context(&err, "%s: \"models\"", plan_path);
        free(path);
        free(rev);
    }
    worker w = {.p = &p, .ds = &ds, .data_dir = data_dir, .ho = &ho, .m = -1, .s = -1, .c = -1};
#ifdef PQ_MPI
    if (ranks > 1 &&
        rank > 0) { /* a computing rank: the owner learns of a failure here through its messages */
        int all_ok = 0;
        MPI_Allreduce(&(int){rc == 0}, &all_ok, 1, MPI_INT, MPI_LAND, MPI_COMM_WORLD);
        if (all_ok)
            rc = worker_rank(&w, &err);
        worker_free(&w);
        pq_dataset_free(&ds);
        pq_plan_free(&p);
        free(data_dir);
        free(db_default);
        if (rc) { /* rank 0 reports the cell that failed too; this says where */
            pq_fail_context(&err, "polyq sweep (rank %d)", rank);
            *errp = err;
        }
        return rc;
    }
#endif
    if (!rc)
        rc = pq_db_open(&db, db_path, p.canon, &err);
    if (!rc && !status) /* one writer at a time; --status only reads */
        rc = pq_db_lock(db, &err);
    int all_ok = 1; /* every rank read the plan and its data (the others then wait for cells) */
    (void)all_ok;
#ifdef PQ_MPI
    if (ranks > 1) {
        MPI_Allreduce(&(int){rc == 0}, &all_ok, 1, MPI_INT, MPI_LAND, MPI_COMM_WORLD);
        if (!rc && !all_ok)
            rc = pq_fail(&err, POLYQ_INVALID_ARG,
                         "%s: another rank could not read the plan or its data", plan_path);
    }
#endif
    long total = 0;
    for (size_t s = 0; s < p.n_specs; s++)
        total +=
            (long)(calibrated(&p.parsed[s]) ? p.n_calibs : 1) * (long)p.n_langs * (long)p.n_models;
    if (!rc && status) {
        long done = 0;
        rc = pq_db_count(db, &done, &err);
        if (!rc) {
            fprintf(out,
                    "%s: %ld of %ld cells done (%ld models x %zu specs x calibration sets x %zu "
                    "languages)\n",
                    db_path, done, total, (long)p.n_models, p.n_specs, p.n_langs);
            for (size_t m = 0; m < p.n_models && !rc; m++)
                for (size_t s = 0; s < p.n_specs && !rc; s++)
                    for (size_t c = 0; c < (calibrated(&p.parsed[s]) ? p.n_calibs : 1) && !rc;
                         c++) {
                        long n = 0;
                        for (size_t l = 0; l < p.n_langs && !rc; l++) {
                            pq_cell_key k = {p.models[m], p.specs[s], calib_of(&p, s, c),
                                             p.langs[l]};
                            int h = pq_db_has(db, &k, &err);
                            rc = h < 0 ? -1 : 0;
                            n += h > 0;
                        }
                        const char *cal = calib_of(&p, s, c);
                        fprintf(out, "  %-40s %-20s %-20s %ld/%zu\n", p.models[m], p.specs[s],
                                cal ? cal : "-", n, p.n_langs);
                    }
        }
    }
    cell *todo = NULL;
    size_t n_todo = 0;
    owner o = {.db = db,
               .p = &p,
               .noted = calloc(p.n_models ? p.n_models : 1, sizeof *o.noted),
               .total = total,
               .o = so};
    if (!rc && !o.noted)
        rc = pq_fail(&err, POLYQ_NOMEM, "out of memory");
    if (!rc && !status)
        rc = todo_cells(&p, db, &todo, &n_todo, &err);
    if (!rc && !status)
        rc = pq_db_count(db, &o.done, &err);
    if (!rc && !status && o.done > 0 && rank == 0) /* picking up where another run stopped */
        fprintf(out, "%s: resuming: %ld of %ld cells done, %zu to do\n", db_path, o.done, total,
                n_todo);
#ifdef PQ_MPI
    if (ranks > 1 && !status && all_ok) {
        /* the owner answers every rank until each has been told to stop, also after a failure */
        polyq_err err2 = {0};
        int rc2 = owner_rank(&o, todo, rc ? 0 : n_todo, ranks, &err2);
        if (!rc && rc2) {
            rc = rc2;
            err = err2;
        }
        n_todo = 0;
    }
#endif
    pq_sweep_stats st = {0};
    for (size_t i = 0, j; i < n_todo && !rc && !status; i = j) { /* model by model */
        for (j = i; j < n_todo && todo[j].m == todo[i].m; j++)
            ;
        rc = sweep_model(&w, &o, todo + i, j - i, &st, &err);
    }
    if (so->stats)
        *so->stats = st;
    free(todo);
    free(o.noted);
    worker_free(&w);
    if (!rc && !status) {
        long done = 0;
        rc = pq_db_count(db, &done, &err);
        if (!rc && st.groups)
            fprintf(out,
                    "%s: %ld of %ld cells done (forward passes: %llu full precision, %llu "
                    "quantized; up to %d quantized models held at once)\n",
                    db_path, done, total, (unsigned long long)st.passes_fp,
                    (unsigned long long)st.passes_q, st.held);
        else if (!rc)
            fprintf(out, "%s: %ld of %ld cells done\n", db_path, done, total);
    }
    pq_db_close(db);
    pq_dataset_free(&ds);
    pq_plan_free(&p);
    free(data_dir);
    free(db_default);
    if (rc)
        *errp = err;
    return rc;
}
