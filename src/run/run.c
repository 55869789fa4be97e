/* Jobs (run.h): models found and opened, quantized by any spec, the memory guard, and one
 * evaluation run from models to the numbers and provenance of a results file. */
#include "run/run.h"

#include "run/provenance.h"

#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <unistd.h>

#include "base/base.h"

/* ---- models ----------------------------------------------------------------------------- */

bool pq_is_gguf_file(const char *path)
{
    char head[4] = {0};
    return pq_read_head(path, head, 4) && !memcmp(head, "GGUF", 4);
}

int pq_model_locate(const char *name, const pq_hub_opts *ho, char **path, char **rev,
                    polyq_err *err)
{
    *rev = NULL;
    *path = NULL;
    if (pq_dir_exists(name) || pq_is_gguf_file(name))
        return (*path = pq_strdup(name)) ? 0 : pq_fail(err, POLYQ_NOMEM, "out of memory");
    return pq_hub_resolve(name, ho, path, rev, err);
}

int pq_model_open_any(const char *name, const pq_hub_opts *ho, pq_model **m, char **path,
                      char **rev, polyq_err *err)
{
    *m = NULL;
    int rc = pq_model_locate(name, ho, path, rev, err);
    return rc                       ? rc
           : pq_is_gguf_file(*path) ? pq_model_open_gguf(m, *path, err)
                                    : pq_model_open_dir(m, *path, err);
}

/* ---- quantizing ----------------------------------------------------------------------------- */

bool pq_qspec_calibrated(const pq_qspec *s)
{
    return s->gptq || s->awq || s->smooth;
}

int pq_quantize_spec(pq_model **out, const pq_model *base, const pq_qspec *spec,
                     const pq_calib_set *cal, int batch_tokens, int n_threads, polyq_err *err)
{
    *out = NULL;
    if (!pq_qspec_calibrated(spec))
        return pq_model_quantize(out, base, spec, err);
    if (!cal || !cal->n_seq)
        return pq_fail(err, POLYQ_INVALID_ARG, "%s needs calibration text", spec->name);
    pq_calib c = {cal->store.v, cal->starts, cal->n_seq, batch_tokens > 0 ? batch_tokens : 512};
    n_threads = n_threads > 0 ? n_threads : 1;
    if (spec->gptq)
        return pq_model_gptq(out, base, spec, &c, n_threads, err);
    if (spec->awq)
        return pq_model_awq(out, base, spec, &c, n_threads, err);
    pq_smooth_opts so = {spec->alpha, true, true, true};
    return pq_model_smoothquant(out, base, spec, &so, &c, n_threads, err);
}

int pq_qspec_parse_list(const char *list, pq_qspec *specs, int max, int *n, polyq_err *err)
{
    *n = 0;
    char *copy = pq_strdup(list), *save = NULL;
    int rc = copy ? 0 : pq_fail(err, POLYQ_NOMEM, "out of memory");
    for (char *s = copy ? strtok_r(copy, ",", &save) : NULL; s && !rc;
         s = strtok_r(NULL, ",", &save)) {
        if (*n == max)
            rc = pq_fail(err, POLYQ_INVALID_ARG, "--quant: at most %d specs", max);
        else
            rc = pq_qspec_parse(s, &specs[(*n)++], err);
        for (int k = 0; !rc && k + 1 < *n; k++) /* the same spec twice would be run twice */
            if (!strcmp(specs[k].name, specs[*n - 1].name))
                rc = pq_fail(err, POLYQ_INVALID_ARG, "--quant: spec %s is given twice",
                             specs[k].name);
    }
    free(copy);
    return rc;
}

int pq_quantized_load(pq_model **out, const pq_model *base, const char *path, char **calibration,
                      polyq_err *err)
{
    *out = NULL;
    *calibration = NULL;
    size_t n = strlen(path);
    if (n > 5 && !strcmp(path + n - 5, ".gguf")) { /* llama.cpp's file */
        char *spec = NULL;
        int rc = pq_gguf_load_quantized(out, base, path, &spec, err);
        free(spec);
        return rc;
    }
    char *meta = NULL;
    int rc = pq_qfile_load(out, base, path, &meta, err);
    if (!rc) {
        json_t *mj = json_loads(meta, 0, NULL), *cj = json_object_get(mj, "calibration");
        if (json_is_object(cj))
            *calibration = json_dumps(cj, JSON_COMPACT);
        json_decref(mj);
    }
    free(meta);
    return rc;
}

/* ---- the memory guard ---------------------------------------------------------------------- */

int pq_memory_guard(const char *model_name, const char *path, const pq_qspec *specs, int n_q,
                    int batch_tokens, int window_tokens, int threads, double max_bytes,
                    pq_mem_plan *plan, polyq_err *err)
{
    memset(plan, 0, sizeof *plan);
    int rc = pq_memory_estimate(path, specs, n_q, batch_tokens, window_tokens, threads, plan, err);
    if (rc)
        return rc;
    double limit = max_bytes > 0 ? max_bytes : pq_memory_available();
    if (limit > 0 && plan->total > limit)
        return pq_fail(
            err, POLYQ_NOMEM,
            "%s: evaluation needs about %.2f GB (weights %.2f, quantized copies %.2f, batch "
            "buffers %.2f) but %s allows %.2f GB; use a smaller --batch-tokens, fewer --quant "
            "specs at once, or a machine with more memory",
            model_name, plan->total / 1e9, plan->weights_fp / 1e9, plan->weights_q / 1e9,
            plan->buffers / 1e9, max_bytes > 0 ? "--max-memory" : "the memory available now",
            limit / 1e9);
    return 0;
}

/* ---- an evaluation run ---------------------------------------------------------------------- */

static void note(const pq_run_opts *o, const char *fmt, const char *a)
{
    if (!o->note)
        return;
    char msg[512];
    snprintf(msg, sizeof msg, fmt, a);
    o->note(o->ctx, msg);
}

int pq_run_langs_open(pq_run_langs *out, const pq_run_opts *o, bool compare, polyq_err *err)
{
    memset(out, 0, sizeof *out);
    out->ref_idx = -1;
    const char *langs = o->langs ? o->langs : "all", *ref = o->ref ? o->ref : "eng_Latn";
    int rc = pq_dataset_open(&out->ds, o->data, o->split ? o->split : "devtest", err);
    if (!rc && !strcmp(langs, "all"))
        rc = pq_dataset_langs(&out->ds, &out->langs, &out->n, err);
    else if (!rc) {
        char *lc = pq_strdup(langs), *sv = NULL;
        if (!lc)
            rc = pq_fail(err, POLYQ_NOMEM, "out of memory");
        for (char *s = lc ? strtok_r(lc, ",", &sv) : NULL; s && !rc; s = strtok_r(NULL, ",", &sv)) {
            char **nl = realloc(out->langs, (out->n + 1) * sizeof *nl);
            if (nl)
                out->langs = nl;
            if (!nl || !(nl[out->n] = pq_strdup(s)))
                rc = pq_fail(err, POLYQ_NOMEM, "out of memory");
            else
                out->n++;
            for (size_t k = 0; !rc && k + 1 < out->n; k++) /* its statistics would be doubled */
                if (!strcmp(out->langs[k], s))
                    rc = pq_fail(err, POLYQ_INVALID_ARG, "--langs: %s is given twice", s);
        }
        free(lc);
        if (!rc && !out->n)
            rc = pq_fail(err, POLYQ_INVALID_ARG, "--langs names no language");
    }
    for (size_t l = 0; l < out->n && !rc; l++) { /* every language must exist */
        char *p = NULL;
        rc = pq_dataset_path(&out->ds, out->langs[l], &p, err);
        free(p);
        if (!rc && !strcmp(out->langs[l], ref))
            out->ref_idx = (int)l;
    }
    if (!rc && out->ref_idx < 0 && compare) {
        char *p = NULL;
        polyq_err e2 = {0};
        if (pq_dataset_path(&out->ds, ref, &p, &e2) == 0) { /* evaluate the reference too */
            char **nl = realloc(out->langs, (out->n + 1) * sizeof *nl);
            if (!nl)
                rc = pq_fail(err, POLYQ_NOMEM, "out of memory");
            else {
                out->langs = nl;
                memmove(out->langs + 1, out->langs, out->n * sizeof *out->langs);
                out->n++;
                out->ref_idx = 0;
                if (!(out->langs[0] = pq_strdup(ref)))
                    rc = pq_fail(err, POLYQ_NOMEM, "out of memory");
                note(o, "adding the reference language %s for disparity", ref);
            }
        } else
            note(o,
                 "reference language %s is not in the data: disparity ratios are not computed "
                 "(choose one with --ref)",
                 ref);
        free(p);
    }
    if (rc)
        pq_run_langs_free(out);
    return rc;
}

void pq_run_langs_free(pq_run_langs *l)
{
    if (!l)
        return;
    pq_strlist_free(l->langs, l->n);
    pq_dataset_free(&l->ds);
    memset(l, 0, sizeof *l);
    l->ref_idx = -1;
}

typedef struct progress_ctx {
    const pq_run_opts *o;
    const char *lang;
    size_t li, n;
    double *weights; /* per language, its share of the run's text (NULL: equal shares) */
    double before;   /* the shares of the languages done */
} progress_ctx;

static void on_batch(void *ctx, size_t done, size_t total)
{
    progress_ctx *p = ctx;
    double w = p->weights ? p->weights[p->li] : 1.0 / (double)p->n,
           frac = p->before + w * (total ? (double)done / (double)total : 1.0);
    p->o->progress(p->o->ctx, p->lang, p->li, p->n, done, total, frac);
}

static char *dup_or_null(const char *s, bool *fail)
{
    char *d = s ? pq_strdup(s) : NULL;
    *fail |= s && !d;
    return d;
}

/* A calibration set's short name: its languages joined by '+' ("hin_Deva+zho_Hans"), its file's
 * name, or "none". */
static void calib_label(const char *desc, char *buf, size_t n)
{
    json_t *j = desc ? json_loads(desc, 0, NULL) : NULL;
    const json_t *langs = json_object_get(j, "languages");
    size_t at = 0, i;
    json_t *v;
    buf[0] = 0;
    json_array_foreach(langs, i, v)
    {
        int w = snprintf(buf + at, n - at, "%s%s", i ? "+" : "", json_string_value(v));
        at += w > 0 && (size_t)w < n - at ? (size_t)w : 0;
    }
    const char *src = json_string_value(json_object_get(j, "source"));
    if (!buf[0] && src)
        snprintf(buf, n, "%s", strrchr(src, '/') ? strrchr(src, '/') + 1 : src);
    if (!buf[0])
        snprintf(buf, n, "none");
    json_decref(j);
}

int pq_run_eval(pq_run **out, const pq_model *fp, pq_model *const *q, int n_q,
                const pq_run_langs *l, const pq_run_opts *o, const char *model_id, const char *path,
                const char *rev, const char *calibration, double t0, polyq_err *err)
{
    *out = NULL;
    if (n_q > PQ_MAX_SPECS)
        return pq_fail(err, POLYQ_INVALID_ARG, "at most %d quantized models at once", PQ_MAX_SPECS);
    pq_run *r = calloc(1, sizeof *r);
    if (!r)
        return pq_fail(err, POLYQ_NOMEM, "out of memory");
    int threads = o->threads > 0 ? o->threads : 1,
        batch = o->batch_tokens > 0 ? o->batch_tokens : 512;
    int n_boot = o->n_boot > 0 ? o->n_boot : 1000;
    int stride = o->stride, window = pq_eval_context(fp->cfg.n_ctx);
    if (o->context > 0 && o->context < window)
        window = o->context;
    if (o->document && !stride)
        stride = window / 2 > 0 ? window / 2 : 1;
    progress_ctx pc = {o, NULL, 0, l->n, NULL, 0};
    if (o->progress && l->n) { /* each language weighed by the size of its file */
        double *wt = calloc(l->n, sizeof *wt), sum = 0;
        for (size_t i = 0; wt && i < l->n; i++) {
            char *p = NULL;
            struct stat st;
            if (pq_dataset_path(&l->ds, l->langs[i], &p, NULL) == 0 && p && stat(p, &st) == 0)
                wt[i] = (double)st.st_size;
            sum += wt[i];
            free(p);
        }
        for (size_t i = 0; wt && sum > 0 && i < l->n; i++)
            wt[i] /= sum;
        if (wt && sum > 0)
            pc.weights = wt;
        else
            free(wt);
    }
    pq_eval_opts eo = {.n_threads = threads,
                       .batch_tokens = batch,
                       .progress = o->progress ? on_batch : NULL,
                       .progress_ctx = &pc,
                       .stride = stride,
                       .context = o->context,
                       .llama_ppl = o->llama_ppl};
    pq_evaluator *ev = NULL;
    int rc = pq_evaluator_create(&ev, fp, q, n_q, &eo, err);
    r->n_lang = l->n;
    r->n_q = n_q;
    r->res = rc ? NULL : calloc(l->n ? l->n : 1, sizeof *r->res);
    r->met = rc ? NULL : calloc(l->n ? l->n : 1, sizeof *r->met);
    if (!rc && (!r->res || !r->met))
        rc = pq_fail(err, POLYQ_NOMEM, "out of memory");
    /* what the result is made of: every model and data file, by its SHA-256 */
    r->provenance = rc ? NULL : pq_prov_new(o->argc, o->argv, threads);
    json_t *files = json_object_get(r->provenance, "files");
    if (!rc && !files)
        rc = pq_fail(err, POLYQ_NOMEM, "out of memory");
    if (!rc)
        rc = pq_prov_add_model(files, path, "model", err);
    for (int i = 0; !rc && i < o->n_extra_models; i++)
        rc = pq_prov_add_model(files, o->extra_models[i], "quantized model", err);
    for (int i = -1; i < n_q && !rc; i++) { /* the calibration files, of the run and of each file */
        const char *cal = i < 0 ? calibration : o->q_calibrations ? o->q_calibrations[i] : NULL;
        json_t *cj = cal ? json_loads(cal, 0, NULL) : NULL, *cf;
        size_t ci;
        json_array_foreach(json_object_get(cj, "files"), ci, cf)
        {
            const char *fpath = json_string_value(cf);
            if (!rc && fpath && access(fpath, R_OK) == 0) /* read then, maybe elsewhere */
                rc = pq_prov_add_file(
                    files, fpath,
                    i < 0 ? "calibration" : "calibration of a quantized model (hashed now)", err);
        }
        json_decref(cj);
    }
    for (size_t i = 0; i < l->n && !rc; i++) {
        char *p = NULL;
        pq_corpus c = {0};
        pc.lang = l->langs[i];
        pc.li = i;
        double lt0 = pq_now();
        pc.before = 0;
        for (size_t k = 0; k < i; k++)
            pc.before += pc.weights ? pc.weights[k] : 1.0 / (double)l->n;
        if (!(rc = pq_dataset_path(&l->ds, l->langs[i], &p, err)) &&
            !(rc = pq_prov_add_file(files, p, "data", err)) &&
            !(rc = pq_corpus_load(&c, l->langs[i], p, o->max_sentences, err)))
            rc = pq_evaluate(ev, &c, &r->res[i], err);
        if (!rc && o->lang_done) {
            uint64_t tokens = 0;
            for (size_t s = 0; s < r->res[i].n_sent; s++)
                tokens += r->res[i].tokens[s];
            o->lang_done(o->ctx, l->langs[i], i, l->n, r->res[i].n_sent, tokens, pq_now() - lt0);
        }
        pq_corpus_free(&c);
        free(p);
    }
    pq_evaluator_free(ev);
    free(pc.weights);
    pq_metrics_opts mo = {.n_boot = n_boot, .seed = o->seed, .ref = l->ref_idx};
    if (!rc)
        rc = pq_metrics_compute(r->res, l->n, n_q, &mo, r->met, r->summary, err);
    bool fail = false;
    const char *ref = o->ref ? o->ref : "eng_Latn", *split = o->split ? o->split : "devtest";
    r->model_id = dup_or_null(model_id, &fail);
    r->model_path = dup_or_null(path, &fail);
    r->revision = dup_or_null(rev, &fail);
    r->architecture = dup_or_null(fp->cfg.architecture, &fail);
    r->model_type = dup_or_null(fp->cfg.model_type, &fail);
    r->dtype = dup_or_null(fp->dtype, &fail);
    r->data_path = dup_or_null(o->data, &fail);
    r->ref_lang = dup_or_null(ref, &fail);
    r->calibration = dup_or_null(calibration, &fail);
    r->split = dup_or_null(split, &fail);
    for (int i = 0; i < n_q; i++) {
        const char *src = o->q_sources ? o->q_sources[i] : NULL,
                   *cal = o->q_calibrations ? o->q_calibrations[i] : NULL;
        r->q_sources[i] = dup_or_null(src, &fail);
        r->q_calibs[i] = dup_or_null(cal, &fail);
        bool shared = false; /* another entry of the same spec: named spec@calibration */
        for (int k = 0; k < n_q; k++)
            shared |= k != i && !strcmp(q[k]->spec.name, q[i]->spec.name);
        char label[256];
        calib_label(cal, label, sizeof label);
        r->q_names[i] = shared ? pq_asprintf("%s@%s", q[i]->spec.name, label)
                               : dup_or_null(q[i]->spec.name, &fail);
        fail |= !r->q_names[i];
        r->q_methods[i] = pq_qspec_method(&q[i]->spec);
        r->q_bpw[i] = pq_model_bits_per_weight(q[i]);
        char words[160], formats[512], fb[512];
        pq_qspec_describe(&q[i]->spec, words, sizeof words);
        pq_model_formats_json(q[i], formats, sizeof formats);
        r->q_formats[i] = dup_or_null(formats, &fail);
        bool moved = pq_model_fallbacks(q[i], fb, sizeof fb);
        r->q_details[i] = moved ? pq_asprintf("%s; %s", words, fb) : pq_strdup(words);
        fail |= !r->q_details[i];
    }
    if (!rc && fail)
        rc = pq_fail(err, POLYQ_NOMEM, "out of memory");
    pq_tok_vocab voc = {0}; /* the prefix token's text, for the results */
    polyq_err ignore = {0};
    int32_t pid = pq_model_bos(fp);
    if (!rc && fp->tok && pid >= 0 && pq_tok_export(fp->tok, &voc, &ignore) == 0 && pid < voc.n &&
        voc.tokens[pid])
        r->prefix_token = pq_strdup(voc.tokens[pid]);
    pq_tok_vocab_free(&voc);
    struct rusage ru;
    getrusage(RUSAGE_SELF, &ru);
    r->info = (pq_run_info){.model_id = r->model_id,
                            .model_path = r->model_path,
                            .revision = r->revision,
                            .architecture = r->architecture,
                            .model_type = r->model_type,
                            .pseudo = fp->arch->scoring == PQ_SCORE_PLL,
                            .dtype = r->dtype,
                            .n_params = fp->n_params,
                            .dataset = l->ds.root ? "flores200" : "text files",
                            .split = l->ds.root ? r->split : NULL,
                            .data_path = r->data_path,
                            .max_sentences = o->max_sentences,
                            .ref_lang = r->ref_lang,
                            .ref_evaluated = l->ref_idx >= 0,
                            .seed = o->seed,
                            .n_boot = n_boot,
                            .threads = threads,
                            .batch_tokens = batch,
                            .stride = stride,
                            .context = window,
                            .llama_ppl = o->llama_ppl,
                            .wall_time_s = pq_now() - t0,
                            .calibration = r->calibration,
                            .n_q = n_q,
                            .q_names = (const char *const *)r->q_names,
                            .q_methods = r->q_methods,
                            .q_bits_per_weight = r->q_bpw,
                            .q_details = (const char *const *)r->q_details,
                            .q_formats = (const char *const *)r->q_formats,
                            .provenance = r->provenance,
                            .q_sources = (const char *const *)r->q_sources,
                            .q_calibrations = (const char *const *)r->q_calibs,
                            .peak_rss_mb = ru.ru_maxrss / 1024.0,
                            .prefix_id = pq_model_bos(fp),
                            .prefix_token = r->prefix_token,
                            .file_add_bos = fp->add_bos};
    if (rc) {
        pq_run_free(r);
        return rc;
    }
    *out = r;
    return 0;
}

void pq_run_free(pq_run *r)
{
    if (!r)
        return;
    if (r->met)
        pq_metrics_free(r->met, r->n_lang);
    free(r->met);
    for (size_t l = 0; r->res && l < r->n_lang; l++)
        pq_lang_eval_free(&r->res[l]);
    free(r->res);
    free(r->model_id);
    free(r->model_path);
    free(r->revision);
    free(r->architecture);
    free(r->model_type);
    free(r->dtype);
    free(r->data_path);
    free(r->ref_lang);
    free(r->calibration);
    free(r->split);
    json_decref(r->provenance);
    for (int i = 0; i < r->n_q; i++) {
        free(r->q_names[i]);
        free(r->q_details[i]);
        free(r->q_formats[i]);
        free(r->q_sources[i]);
        free(r->q_calibs[i]);
    }
    free(r->prefix_token);
    free(r);
}

int pq_run_write_sentences(const pq_run *r, const char *path, polyq_err *err)
{
    char *tmp = NULL;
    FILE *f = pq_out_open(path, &tmp, err);
    if (!f)
        return err ? err->code : POLYQ_IO;
    bool ok = true;
    for (size_t l = 0; l < r->n_lang && ok; l++) {
        const pq_lang_eval *e = &r->res[l];
        for (size_t s = 0; s < e->n_sent && ok; s++) {
            json_t *nll = json_object(), *kld = json_object(), *top1 = json_object();
            for (int q = 0; q < e->n_q && q < r->n_q; q++) {
                const char *name = r->q_names[q];
                json_object_set_new(nll, name, json_real(e->nll_q[q][s]));
                json_object_set_new(kld, name, json_real(e->kld_q[q][s]));
                json_object_set_new(top1, name,
                                    json_real(e->tokens[s]
                                                  ? (double)e->agree_q[q][s] / (double)e->tokens[s]
                                                  : 0.0));
            }
            json_t *j = json_pack("{s:s, s:I, s:I, s:I, s:f, s:o, s:o, s:o}", "lang", e->lang,
                                  "line", (json_int_t)(s + 1), "tokens", (json_int_t)e->tokens[s],
                                  "bytes", (json_int_t)e->sbytes[s], "nll_fp", e->nll_fp[s], "nll",
                                  nll, "kld", kld, "top1_agree", top1);
            char *line = j ? json_dumps(j, JSON_COMPACT | JSON_REAL_PRECISION(17)) : NULL;
            ok = line && fprintf(f, "%s\n", line) >= 0;
            free(line);
            json_decref(j);
        }
    }
    if (!ok) {
        pq_fail(err, POLYQ_NOMEM, "out of memory writing %s", path);
        fclose(f);
        remove(tmp);
        free(tmp);
        return POLYQ_NOMEM;
    }
    return pq_out_close(f, tmp, path, err);
}
