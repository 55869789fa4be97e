/* The public API (include/polyq.h) over the jobs of run/run.h: opaque handles that own what
 * the internal structs borrow, options structs whose zeros are the command line's defaults. */
#include "polyq.h"

#include <jansson.h>
#include <stdlib.h>
#include <string.h>

#include "base/base.h"
#include "run/run.h"

struct polyq_model {
    pq_model *m;
    char *name, *path, *rev; /* as opened (a quantized copy: its base's) */
    char *calibration;       /* JSON text describing a quantized copy's calibration, or NULL */
};

struct polyq_results {
    pq_run *run;
    json_t *doc; /* the results document, made once */
};

const char *polyq_version(void)
{
    return POLYQ_VERSION;
}

static polyq_model *wrap(pq_model *m, const char *name, const char *path, const char *rev,
                         char *calibration, polyq_err *err)
{
    polyq_model *h = calloc(1, sizeof *h);
    if (h) {
        h->m = m;
        h->name = name ? pq_strdup(name) : NULL;
        h->path = path ? pq_strdup(path) : NULL;
        h->rev = rev ? pq_strdup(rev) : NULL;
        h->calibration = calibration;
    }
    if (!h || (name && !h->name) || (path && !h->path) || (rev && !h->rev)) {
        if (h)
            h->m = NULL; /* the caller still owns m */
        polyq_model_free(h);
        free(calibration);
        pq_fail(err, POLYQ_NOMEM, "out of memory");
        return NULL;
    }
    return h;
}

int polyq_model_open(polyq_model **out, const char *name, const polyq_open_opts *opts,
                     polyq_err *err)
{
    *out = NULL;
    pq_hub_opts ho = {.revision = opts ? opts->revision : NULL, .offline = opts && opts->offline};
    pq_model *m = NULL;
    char *path = NULL, *rev = NULL;
    int rc = pq_model_open_any(name, &ho, &m, &path, &rev, err);
    if (!rc && !(*out = wrap(m, name, path, rev, NULL, err)))
        rc = POLYQ_NOMEM;
    if (rc)
        pq_model_free(m);
    free(path);
    free(rev);
    return rc;
}

void polyq_model_free(polyq_model *m)
{
    if (!m)
        return;
    pq_model_free(m->m);
    free(m->name);
    free(m->path);
    free(m->rev);
    free(m->calibration);
    free(m);
}

const char *polyq_model_type(const polyq_model *m)
{
    return m->m->cfg.model_type;
}
const char *polyq_model_spec(const polyq_model *m)
{
    return m->m->spec.name;
}
double polyq_model_bits_per_weight(const polyq_model *m)
{
    return pq_model_bits_per_weight(m->m);
}

int polyq_quantize(polyq_model **out, const polyq_model *base, const char *spec,
                   const polyq_quant_opts *opts, polyq_err *err)
{
    *out = NULL;
    pq_qspec s;
    int rc = pq_qspec_parse(spec, &s, err);
    if (rc)
        return rc;
    polyq_quant_opts none = {0};
    const polyq_quant_opts *o = opts ? opts : &none;
    pq_calib_set cal = {0};
    if (pq_qspec_calibrated(&s)) {
        if (!o->data && !o->calib_file)
            return pq_fail(err, POLYQ_INVALID_ARG,
                           "%s needs calibration text: set data or calib_file", spec);
        pq_calib_opts co = {.langs = o->calib_langs,
                            .file = o->calib_file,
                            .samples = o->calib_samples,
                            .max_tokens = o->calib_tokens,
                            .eval_split = o->eval_split ? o->eval_split : "devtest",
                            .data = o->data};
        if ((rc = pq_calib_set_build(&cal, base->m, &co, err)))
            return rc;
    }
    pq_model *q = NULL;
    rc = pq_quantize_spec(&q, base->m, &s, &cal, 512, o->threads, err);
    char *desc = cal.desc ? pq_strdup(cal.desc) : NULL;
    pq_calib_set_free(&cal);
    if (!rc && !(*out = wrap(q, base->name, base->path, base->rev, desc, err)))
        rc = POLYQ_NOMEM;
    if (rc)
        pq_model_free(q);
    return rc;
}

int polyq_quantized_save(const polyq_model *q, const char *path, polyq_err *err)
{
    size_t n = strlen(path);
    if (n > 5 && !strcmp(path + n - 5, ".gguf"))
        return pq_gguf_write_model(path, q->m, q->m->spec.name, err);
    if (q->m->spec.none)
        return pq_fail(err, POLYQ_INVALID_ARG,
                       "%s: a full-precision model has no quantized layers to write", path);
    pq_qspec s = q->m->spec;
    json_t *m = json_pack("{s:i, s:s, s:s, s:s, s:s*, s:o, s:f, s:o}", "version", 1, "spec", s.name,
                          "method", pq_qspec_method(&s), "polyq", POLYQ_VERSION, "base_model",
                          q->name, "base_revision", q->rev ? json_string(q->rev) : json_null(),
                          "bits_per_weight", pq_model_bits_per_weight(q->m), "calibration",
                          q->calibration ? json_loads(q->calibration, 0, NULL) : json_null());
    char *meta = m ? json_dumps(m, JSON_COMPACT) : NULL;
    json_decref(m);
    int rc =
        meta ? pq_qfile_write(path, q->m, meta, err) : pq_fail(err, POLYQ_NOMEM, "out of memory");
    free(meta);
    return rc;
}

int polyq_quantized_load(polyq_model **out, const polyq_model *base, const char *path,
                         polyq_err *err)
{
    *out = NULL;
    pq_model *q = NULL;
    char *cal = NULL;
    int rc = pq_quantized_load(&q, base->m, path, &cal, err);
    if (!rc && !(*out = wrap(q, base->name, base->path, base->rev, cal, err)))
        rc = POLYQ_NOMEM;
    else if (rc)
        free(cal);
    if (rc)
        pq_model_free(q);
    return rc;
}

int polyq_evaluate(polyq_results **out, const polyq_model *base, polyq_model *const *q, int n_q,
                   const polyq_eval_opts *o, polyq_err *err)
{
    *out = NULL;
    if (!o || !o->data)
        return pq_fail(err, POLYQ_INVALID_ARG,
                       "polyq_evaluate: opts->data must name the text to score");
    if (n_q < 0 || n_q > PQ_MAX_SPECS)
        return pq_fail(err, POLYQ_INVALID_ARG, "polyq_evaluate: %d quantized models (at most %d)",
                       n_q, PQ_MAX_SPECS);
    double t0 = pq_now();
    pq_run_opts ro = {.data = o->data,
                      .split = o->split,
                      .langs = o->langs,
                      .ref = o->ref,
                      .max_sentences = o->max_sentences,
                      .threads = o->threads,
                      .batch_tokens = o->batch_tokens,
                      .n_boot = o->bootstrap,
                      .seed = o->seed,
                      .document = o->document != 0,
                      .stride = o->stride};
    pq_model *qm[PQ_MAX_SPECS];
    const char *calibration = NULL;
    for (int i = 0; i < n_q; i++) {
        if (q[i]->m->base != base->m)
            return pq_fail(err, POLYQ_INVALID_ARG,
                           "polyq_evaluate: quantized model %d (%s) is not a copy of this base", i,
                           q[i]->m->spec.name);
        qm[i] = q[i]->m;
        calibration = calibration ? calibration : q[i]->calibration;
    }
    pq_run_langs langs;
    int rc = pq_run_langs_open(&langs, &ro, n_q > 0, err);
    if (rc)
        return rc;
    polyq_results *r = calloc(1, sizeof *r);
    rc = r ? pq_run_eval(&r->run, base->m, qm, n_q, &langs, &ro, base->name, base->path, base->rev,
                         calibration, t0, err)
           : pq_fail(err, POLYQ_NOMEM, "out of memory");
    pq_run_langs_free(&langs);
    if (!rc &&
        !(r->doc = pq_report_doc(&r->run->info, r->run->met, r->run->n_lang, r->run->summary)))
        rc = pq_fail(err, POLYQ_NOMEM, "out of memory");
    if (rc) {
        polyq_results_free(r);
        return rc;
    }
    *out = r;
    return 0;
}

void polyq_results_free(polyq_results *r)
{
    if (!r)
        return;
    pq_run_free(r->run);
    json_decref(r->doc);
    free(r);
}

size_t polyq_results_n_langs(const polyq_results *r)
{
    return r->run->n_lang;
}
int polyq_results_n_specs(const polyq_results *r)
{
    return r->run->n_q;
}
const char *polyq_results_lang(const polyq_results *r, size_t l)
{
    return l < r->run->n_lang ? r->run->met[l].lang : NULL;
}
const char *polyq_results_spec(const polyq_results *r, int q)
{
    return q >= 0 && q < r->run->n_q ? r->run->q_names[q] : NULL;
}

int polyq_results_get(const polyq_results *r, size_t lang, int spec, const char *metric,
                      polyq_value *out, polyq_err *err)
{
    if (lang >= r->run->n_lang || spec < 0 || spec >= r->run->n_q)
        return pq_fail(err, POLYQ_INVALID_ARG,
                       "polyq_results_get: no language %zu or spec %d (%zu languages, %d specs)",
                       lang, spec, r->run->n_lang, r->run->n_q);
    const pq_q_metrics *m = &r->run->met[lang].q[spec];
    static const struct {
        const char *name;
        size_t off;
    } metrics[] = {
        {"delta_bits_per_sentence", offsetof(pq_q_metrics, delta_bits_per_sentence)},
        {"delta_bpb", offsetof(pq_q_metrics, delta_bpb)},
        {"delta_nll_per_token", offsetof(pq_q_metrics, delta_nll_per_token)},
        {"kld", offsetof(pq_q_metrics, kld)},
        {"kld_per_sentence", offsetof(pq_q_metrics, kld_per_sentence)},
        {"top1_agree", offsetof(pq_q_metrics, top1_agree)},
        {"rel_degradation", offsetof(pq_q_metrics, rel_degradation)},
    };
    for (size_t i = 0; i < sizeof metrics / sizeof metrics[0]; i++)
        if (!strcmp(metric, metrics[i].name)) {
            const pq_ci *c = (const pq_ci *)(const void *)((const char *)m + metrics[i].off);
            *out = (polyq_value){c->value, c->lo, c->hi};
            return 0;
        }
    return pq_fail(err, POLYQ_INVALID_ARG, "polyq_results_get: no metric \"%s\"", metric);
}

int polyq_results_write_json(const polyq_results *r, const char *path, polyq_err *err)
{
    return pq_report_json(path, &r->run->info, r->run->met, r->run->n_lang, r->run->summary, err);
}

int polyq_results_write_csv(const polyq_results *r, const char *path, polyq_err *err)
{
    return pq_report_csv(path, r->doc, err);
}
