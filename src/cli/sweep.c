/* polyq sweep PLAN.json [--db FILE] [--status]: every cell model x quant spec x calibration
 * set x language of a plan into an SQLite database (report/db.h), skipping the cells already
 * there. Each model is opened once and each quantized model made once per run; a cell and
 * its sentences are committed together, so a sweep killed at any moment and started again
 * redoes only the cells that were not committed.
 *
 * The plan (JSON; unknown keys are refused):
 *   {"models": ["gpt2", "path/to/folder", ...],        required
 *    "quant": ["int8", "gptq-int4-g128", ...],          required
 *    "langs": ["eng_Latn", "hin_Deva"] or "all",        required
 *    "calib": ["eng_Latn", "hin_Deva,zho_Hans", ...],   calibration sets of calibrated specs
 *                                                      (default ["eng_Latn"])
 *    "data": "path/to/flores200", "split": "devtest", "max_sentences": 0,
 *    "calib_samples": 128, "batch_tokens": 512, "threads": 0}
 * A cell of an uncalibrated spec has calib "-". */
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "base/base.h"
#include "cli/cli.h"
#include "eval/eval.h"
#include "format/json.h"
#include "eval/plan.h"
#include "report/db.h"

static bool calibrated(const pq_qspec *s) { return s->gptq || s->awq || s->smooth; }

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

int cmd_sweep(int argc, char **argv)
{
    const char *plan_path = NULL, *db_path = NULL;
    bool status = false;
    for (int i = 2; i < argc; i++) {
        if (!strcmp(argv[i], "--status"))
            status = true;
        else if (!strcmp(argv[i], "--db") && i + 1 < argc)
            db_path = argv[++i];
        else if (argv[i][0] != '-' && !plan_path)
            plan_path = argv[i];
        else
            return bad_arg("sweep: unexpected argument \"%s\" (polyq sweep PLAN.json [--db FILE] [--status])", argv[i]);
    }
    if (!plan_path)
        return bad_arg("%s", "usage: polyq sweep PLAN.json [--db FILE] [--status]");
    char *db_default = NULL;
    if (!db_path) { /* plan.json -> plan.db */
        size_t n = strlen(plan_path);
        db_default = pq_asprintf("%.*s.db", (int)(n > 5 && !strcmp(plan_path + n - 5, ".json") ? n - 5 : n), plan_path);
        db_path = db_default;
    }
    polyq_err err = {0};
    pq_plan p;
    pq_dataset ds = {0};
    pq_db *db = NULL;
    char *data_dir = NULL;
    pq_hub_opts ho = {.offline = getenv("HF_HUB_OFFLINE") != NULL, .progress = isatty(2)};
    int rc = pq_plan_read(&p, plan_path, &err);
    if (!rc && !p.data)
        rc = pq_flores_resolve(&ho, &data_dir, &err);
    if (!rc)
        rc = pq_dataset_open(&ds, p.data ? p.data : data_dir, p.split, &err);
    if (!rc)
        rc = plan_langs(&p, &ds, plan_path, &err);
    for (size_t m = 0; m < p.n_models && !rc; m++) { /* every model can be found before any work */
        char *path = NULL, *rev = NULL;
        if ((rc = find_model(p.models[m], &ho, &path, &rev, &err)))
            pq_fail_context(&err, "%s: \"models\"", plan_path);
        free(path);
        free(rev);
    }
    if (!rc)
        rc = pq_db_open(&db, db_path, p.canon, &err);
    long total = 0;
    for (size_t s = 0; s < p.n_specs; s++)
        total += (long)(calibrated(&p.parsed[s]) ? p.n_calibs : 1) * (long)p.n_langs * (long)p.n_models;
    if (!rc && status) {
        long done = 0;
        rc = pq_db_count(db, &done, &err);
        if (!rc) {
            printf("%s: %ld of %ld cells done (%ld models x %zu specs x calibration sets x %zu languages)\n", db_path,
                   done, total, (long)p.n_models, p.n_specs, p.n_langs);
            for (size_t m = 0; m < p.n_models && !rc; m++)
                for (size_t s = 0; s < p.n_specs && !rc; s++)
                    for (size_t c = 0; c < (calibrated(&p.parsed[s]) ? p.n_calibs : 1) && !rc; c++) {
                        long n = 0;
                        for (size_t l = 0; l < p.n_langs && !rc; l++) {
                            pq_cell_key k = {p.models[m], p.specs[s], calibrated(&p.parsed[s]) ? p.calibs[c] : "-", p.langs[l]};
                            int h = pq_db_has(db, &k, &err);
                            rc = h < 0 ? -1 : 0;
                            n += h > 0;
                        }
                        printf("  %-40s %-20s %-20s %ld/%zu\n", p.models[m], p.specs[s],
                               calibrated(&p.parsed[s]) ? p.calibs[c] : "-", n, p.n_langs);
                    }
        }
    }
    long done_now = 0;
    for (size_t m = 0; m < p.n_models && !rc && !status; m++) {
        pq_model *fp = NULL;
        char *path = NULL, *rev = NULL;
        for (size_t s = 0; s < p.n_specs && !rc; s++)
            for (size_t c = 0; c < (calibrated(&p.parsed[s]) ? p.n_calibs : 1) && !rc; c++) {
                const char *calib = calibrated(&p.parsed[s]) ? p.calibs[c] : "-";
                size_t todo = 0;
                for (size_t l = 0; l < p.n_langs && !rc; l++) {
                    pq_cell_key k = {p.models[m], p.specs[s], calib, p.langs[l]};
                    int h = pq_db_has(db, &k, &err);
                    rc = h < 0 ? -1 : 0;
                    todo += h == 0;
                }
                if (rc || !todo)
                    continue;
                if (!fp && ((rc = open_model(p.models[m], &ho, &fp, &path, &rev, &err)) ||
                            (rc = pq_db_note_model(db, p.models[m], fp->cfg.architecture, fp->cfg.model_type,
                                                   fp->dtype, (unsigned long long)fp->n_params, &err))))
                    break;
                pq_model *q = NULL;
                pq_ids store = {0};
                int *starts = NULL, n_seq = 0;
                char *desc = NULL;
                if (calibrated(&p.parsed[s])) {
                    calib_opts co = {.langs = calib, .samples = (size_t)p.calib_samples, .eval_split = p.split,
                                     .data = p.data ? p.data : data_dir};
                    rc = build_calib(fp, &co, &store, &starts, &n_seq, &desc, &err);
                    pq_calib cal = {store.v, starts, n_seq, (int)p.batch};
                    const pq_qspec *sp = &p.parsed[s];
                    pq_smooth_opts so = {sp->alpha, true, true, true};
                    if (!rc)
                        rc = sp->gptq ? pq_model_gptq(&q, fp, sp, &cal, (int)p.threads, &err)
                           : sp->awq ? pq_model_awq(&q, fp, sp, &cal, (int)p.threads, &err)
                                     : pq_model_smoothquant(&q, fp, sp, &so, &cal, (int)p.threads, &err);
                } else
                    rc = pq_model_quantize(&q, fp, &p.parsed[s], &err);
                pq_evaluator *ev = NULL;
                pq_eval_opts eo = {.n_threads = (int)p.threads, .batch_tokens = (int)p.batch};
                if (!rc)
                    rc = pq_evaluator_create(&ev, fp, &q, 1, &eo, &err);
                for (size_t l = 0; l < p.n_langs && !rc; l++) {
                    pq_cell_key k = {p.models[m], p.specs[s], calib, p.langs[l]};
                    if (pq_db_has(db, &k, &err) != 0)
                        continue;
                    double t0 = pq_now();
                    char *f = NULL;
                    pq_corpus cor = {0};
                    pq_lang_eval e = {0};
                    if (!(rc = pq_dataset_path(&ds, p.langs[l], &f, &err)) &&
                        !(rc = pq_corpus_load(&cor, p.langs[l], f, (size_t)p.max_sent, &err)) &&
                        !(rc = pq_evaluate(ev, &cor, &e, &err)))
                        rc = pq_db_put(db, &k, pq_qspec_method(&p.parsed[s]), pq_model_bits_per_weight(q), &e, 0,
                                       pq_now() - t0, &err);
                    if (!rc)
                        fprintf(stderr, "[%ld/%ld] %s %s %s %s (%.1f s)\n", ++done_now, total, p.models[m],
                                p.specs[s], calib, p.langs[l], pq_now() - t0);
                    pq_lang_eval_free(&e);
                    pq_corpus_free(&cor);
                    free(f);
                }
                pq_evaluator_free(ev);
                pq_model_free(q);
                pq_ids_free(&store);
                free(starts);
                free(desc);
            }
        pq_model_free(fp);
        free(path);
        free(rev);
    }
    if (!rc && !status) {
        long done = 0;
        rc = pq_db_count(db, &done, &err);
        if (!rc)
            printf("%s: %ld of %ld cells done\n", db_path, done, total);
    }
    pq_db_close(db);
    pq_dataset_free(&ds);
    pq_plan_free(&p);
    free(data_dir);
    free(db_default);
    return rc ? die(&err) : 0;
}
