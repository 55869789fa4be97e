/* Calibration sets (run.h): FLORES-200 dev sentences or a file's lines, tokenized as the
 * evaluation tokenizes text, for GPTQ, AWQ and SmoothQuant. */
#include <jansson.h>
#include <stdlib.h>
#include <string.h>

#include "base/base.h"
#include "run/run.h"

/* Calibration samples for calibrated specs: the first sentences of each language's FLORES-200
 * dev file (an equal share of the samples), or the lines of --calib-file; each tokenized with
 * the model's start token (an encoder's special tokens around it) and cut to the context.
 * *desc (heap) is a JSON object describing them for the results. */
int pq_calib_set_build(pq_calib_set *out, const pq_model *m, const pq_calib_opts *o, polyq_err *err)
{
    memset(out, 0, sizeof *out);
    pq_ids *store = &out->store;
    int **starts = &out->starts, *n_seq = &out->n_seq;
    char **desc = &out->desc;
    char **langs = NULL, *lc = NULL, *sv = NULL;
    size_t n_lang = 0;
    int rc = 0;
    pq_dataset ds = {0};
    if (!m->tok)
        return pq_fail(err, POLYQ_NOT_FOUND, "%s: no tokenizer files: cannot read calibration text",
                       m->dir);
    const char *clangs = o->langs ? o->langs : "eng_Latn";
    size_t samples = o->samples ? o->samples : 128;
    if (!o->file) {
        if (o->eval_split && !strcmp(o->eval_split, "dev"))
            return pq_fail(err, POLYQ_INVALID_ARG,
                           "calibration text comes from the dev split, which is being evaluated "
                           "(--split dev): "
                           "evaluate devtest or give --calib-file");
        if ((rc = pq_dataset_open(&ds, o->data, "dev", err)))
            return rc;
        if (!ds.root) {
            pq_dataset_free(&ds);
            return pq_fail(
                err, POLYQ_INVALID_ARG,
                "calibrated specs need calibration text: --data lang=file pairs have no dev split; "
                "give --calib-file");
        }
        if (!strcmp(clangs, "all")) {
            rc = pq_dataset_langs(&ds, &langs, &n_lang, err);
        } else {
            lc = pq_strdup(clangs);
            for (char *s = lc ? strtok_r(lc, ",", &sv) : NULL; s && !rc;
                 s = strtok_r(NULL, ",", &sv)) {
                char **nl = realloc(langs, (n_lang + 1) * sizeof *nl);
                if (!nl || !(nl[n_lang] = pq_strdup(s)))
                    rc = pq_fail(err, POLYQ_NOMEM, "out of memory");
                if (nl)
                    langs = nl;
                if (!rc)
                    n_lang++;
            }
            if (!rc && !n_lang)
                rc = pq_fail(err, POLYQ_INVALID_ARG, "--calib names no language");
        }
    } else {
        langs = calloc(1, sizeof *langs);
        if (!langs || !(langs[0] = pq_strdup("file")))
            rc = pq_fail(err, POLYQ_NOMEM, "out of memory");
        else
            n_lang = 1;
    }
    const int32_t *pre = NULL, *post = NULL;
    int n_pre = 0, n_post = 0;
    pq_tok_special_around(m->tok, &pre, &n_pre, &post, &n_post);
    int32_t bos = pq_model_bos(m);
    int cap = o->max_tokens > 0 && o->max_tokens < m->cfg.n_ctx ? o->max_tokens : m->cfg.n_ctx;
    size_t per = n_lang ? (samples + n_lang - 1) / n_lang : 0, total_tok = 0;
    *starts = calloc(per * n_lang + 1, sizeof **starts);
    *n_seq = 0;
    if (!rc && !*starts)
        rc = pq_fail(err, POLYQ_NOMEM, "out of memory");
    json_t *files = json_array(); /* the files read, for the results' provenance */
    if (!rc && !files)
        rc = pq_fail(err, POLYQ_NOMEM, "out of memory");
    for (size_t l = 0; l < n_lang && !rc; l++) {
        char *path = NULL;
        pq_corpus c = {0};
        if (o->file)
            path = pq_strdup(o->file);
        else if ((rc = pq_dataset_path(&ds, langs[l], &path, err))) {
            pq_fail_context(err, "--calib");
            break;
        }
        rc = pq_corpus_load(&c, langs[l], path, per, err);
        if (!rc && path && json_array_append_new(files, json_string(path)))
            rc = pq_fail(err, POLYQ_NOMEM, "out of memory");
        free(path);
        for (size_t s = 0; s < c.n && !rc && (size_t)*n_seq < per * n_lang; s++) {
            size_t at = store->n;
            if (m->cfg.encoder)
                for (int k = 0; k < n_pre && !rc; k++)
                    rc =
                        pq_ids_push(store, pre[k]) ? pq_fail(err, POLYQ_NOMEM, "out of memory") : 0;
            else if (pq_ids_push(store, bos))
                rc = pq_fail(err, POLYQ_NOMEM, "out of memory");
            if (!rc && (rc = pq_tok_encode(m->tok, c.lines[s], c.lens[s], store, err)))
                pq_fail_context(err, "calibration text %s, line %zu", langs[l], s + 1);
            for (int k = 0; m->cfg.encoder && k < n_post && !rc; k++)
                rc = pq_ids_push(store, post[k]) ? pq_fail(err, POLYQ_NOMEM, "out of memory") : 0;
            if (rc)
                break;
            for (size_t i = at; i < store->n; i++)
                if (store->v[i] < 0 || store->v[i] >= m->cfg.n_vocab)
                    rc = pq_fail(err, POLYQ_FORMAT,
                                 "calibration text gives token id %d beyond the model's %d",
                                 store->v[i], m->cfg.n_vocab);
            if (store->n - at > (size_t)cap)
                store->n = at + (size_t)cap;
            total_tok += store->n - at;
            (*starts)[++*n_seq] = (int)store->n;
        }
        pq_corpus_free(&c);
    }
    if (!rc && !*n_seq)
        rc = pq_fail(err, POLYQ_INVALID_ARG, "the calibration text is empty");
    if (!rc) {
        json_t *j =
            json_pack("{s:s, s:[], s:i, s:I, s:i, s:O}", "source",
                      o->file ? o->file : "flores200 dev", "languages", "samples", *n_seq, "tokens",
                      (json_int_t)total_tok, "max_tokens_per_sample", cap, "files", files);
        for (size_t l = 0; j && l < n_lang && !o->file; l++)
            json_array_append_new(json_object_get(j, "languages"), json_string(langs[l]));
        *desc = j ? json_dumps(j, JSON_COMPACT) : NULL;
        json_decref(j);
        if (!*desc)
            rc = pq_fail(err, POLYQ_NOMEM, "out of memory");
    }
    json_decref(files);
    pq_strlist_free(langs, n_lang);
    free(lc);
    pq_dataset_free(&ds);
    if (rc)
        pq_calib_set_free(out);
    return rc;
}

void pq_calib_set_free(pq_calib_set *s)
{
    if (!s)
        return;
    pq_ids_free(&s->store);
    free(s->starts);
    free(s->desc);
    memset(s, 0, sizeof *s);
}
