/* Sweep plans (plan.h). */
#include "eval/plan.h"

#include <stdlib.h>
#include <string.h>

#include "base/base.h"
#include "base/strmap.h"
#include "eval/corpus.h"
#include "format/json.h"

void pq_plan_free(pq_plan *p)
{
    free(p->models);
    free(p->specs);
    free(p->calibs);
    free(p->parsed);
    pq_strlist_free(p->langs, p->n_langs);
    free(p->canon);
    json_decref(p->root);
    memset(p, 0, sizeof *p);
}

/* an array of strings (or a string for langs "all") */
static int str_array(json_t *v, const char *key, const char *path, const char ***out, size_t *n,
                     polyq_err *err)
{
    if (!json_is_array(v) || !json_array_size(v))
        return pq_fail(err, POLYQ_INVALID_ARG, "%s: \"%s\" must be a non-empty list of strings",
                       path, key);
    *n = json_array_size(v);
    *out = calloc(*n, sizeof **out);
    if (!*out)
        return pq_fail(err, POLYQ_NOMEM, "out of memory");
    for (size_t i = 0; i < *n; i++) {
        json_t *s = json_array_get(v, i);
        if (!json_is_string(s) || !json_string_length(s))
            return pq_fail(err, POLYQ_INVALID_ARG, "%s: \"%s\" item %zu is not a non-empty string",
                           path, key, i + 1);
        (*out)[i] = json_string_value(s);
    }
    return 0;
}

static int int_key(json_t *root, const char *key, long dflt, long lo, long hi, const char *path,
                   long *out, polyq_err *err)
{
    json_t *v = json_object_get(root, key);
    *out = dflt;
    if (!v)
        return 0;
    if (!json_is_integer(v) || json_integer_value(v) < lo || json_integer_value(v) > hi)
        return pq_fail(err, POLYQ_INVALID_ARG, "%s: \"%s\" must be an integer in [%ld, %ld]", path,
                       key, lo, hi);
    *out = (long)json_integer_value(v);
    return 0;
}

static int plan_check(pq_plan *p, const char *path, polyq_err *err);

int pq_plan_read(pq_plan *p, const char *path, polyq_err *err)
{
    memset(p, 0, sizeof *p);
    return pq_json_load(path, 16u << 20, &p->root, err) ? -1 : plan_check(p, path, err);
}

int pq_plan_parse(pq_plan *p, const char *name, const char *text, size_t len, polyq_err *err)
{
    memset(p, 0, sizeof *p);
    return pq_json_parse(name, text, len, &p->root, err) ? -1 : plan_check(p, name, err);
}

int pq_plan_lang_list(const pq_plan *p, const char *name, const char ***out, size_t *n,
                      polyq_err *err)
{
    return str_array(json_object_get(p->root, "langs"), "langs", name, out, n, err);
}

/* The first string of v[0..n) that appears twice, or NULL. */
static const char *repeated(const char *const *v, size_t n)
{
    pq_strmap seen = {0};
    const char *dup = NULL;
    for (size_t i = 0; i < n && !dup; i++)
        if (pq_strmap_put(&seen, v[i], strlen(v[i]), 0) == 1)
            dup = v[i];
    pq_strmap_free(&seen);
    return dup;
}

static int plan_check(pq_plan *p, const char *path, polyq_err *err)
{
    if (!json_is_object(p->root))
        return pq_fail(err, POLYQ_INVALID_ARG, "%s: a plan is a JSON object", path);
    static const char *const known[] = {
        "models",        "quant",         "langs",        "calib",   "data", "split",
        "max_sentences", "calib_samples", "batch_tokens", "threads", NULL};
    const char *key;
    json_t *v;
    json_object_foreach(p->root, key, v)
    {
        int ok = 0;
        for (int i = 0; known[i]; i++)
            ok |= !strcmp(key, known[i]);
        if (!ok)
            return pq_fail(err, POLYQ_INVALID_ARG,
                           "%s: unknown key \"%s\" (a plan has models, quant, langs, calib, "
                           "data, split, max_sentences, calib_samples, batch_tokens, threads)",
                           path, key);
    }
    if (str_array(json_object_get(p->root, "models"), "models", path, &p->models, &p->n_models,
                  err) ||
        str_array(json_object_get(p->root, "quant"), "quant", path, &p->specs, &p->n_specs, err))
        return -1;
    json_t *calib = json_object_get(p->root, "calib");
    static const char *const eng[] = {"eng_Latn"};
    if (calib) {
        if (str_array(calib, "calib", path, &p->calibs, &p->n_calibs, err))
            return -1;
    } else if ((p->calibs = malloc(sizeof *p->calibs))) {
        p->calibs[0] = eng[0];
        p->n_calibs = 1;
    } else
        return pq_fail(err, POLYQ_NOMEM, "out of memory");
    static const char *const lists[] = {"models", "quant", "calib", "langs"};
    for (int k = 0; k < 4; k++) { /* each cell once: a repeat would be computed twice */
        const char **lv = NULL;
        size_t n = 0;
        polyq_err ignore = {0}; /* "all", or a bad list: told where the langs are read */
        json_t *l = json_object_get(p->root, lists[k]);
        if (k == 3 && (!json_is_array(l) || str_array(l, lists[k], path, &lv, &n, &ignore))) {
            free(lv);
            lv = NULL;
            n = 0;
        }
        const char *const *use = k == 0 ? p->models : k == 1 ? p->specs : k == 2 ? p->calibs : lv;
        size_t nu = k == 0 ? p->n_models : k == 1 ? p->n_specs : k == 2 ? p->n_calibs : n;
        const char *dup = use ? repeated(use, nu) : NULL;
        free(lv);
        if (dup)
            return pq_fail(err, POLYQ_INVALID_ARG, "%s: \"%s\" names \"%s\" twice", path, lists[k],
                           dup);
    }
    json_t *d = json_object_get(p->root, "data"), *s = json_object_get(p->root, "split");
    if ((d && !json_is_string(d)) || (s && !json_is_string(s)))
        return pq_fail(err, POLYQ_INVALID_ARG, "%s: \"data\" and \"split\" are strings", path);
    p->data = d ? json_string_value(d) : NULL;
    p->split = s ? json_string_value(s) : "devtest";
    if (strcmp(p->split, "dev") && strcmp(p->split, "devtest"))
        return pq_fail(err, POLYQ_INVALID_ARG, "%s: \"split\" is dev or devtest", path);
    if (int_key(p->root, "max_sentences", 0, 0, 1000000, path, &p->max_sent, err) ||
        int_key(p->root, "calib_samples", 128, 1, 1000000, path, &p->calib_samples, err) ||
        int_key(p->root, "batch_tokens", 512, 1, 1 << 20, path, &p->batch, err) ||
        int_key(p->root, "threads", 0, 0, 1024, path, &p->threads, err))
        return -1;
    p->parsed = calloc(p->n_specs, sizeof *p->parsed);
    if (!p->parsed)
        return pq_fail(err, POLYQ_NOMEM, "out of memory");
    for (size_t i = 0; i < p->n_specs; i++)
        if (pq_qspec_parse(p->specs[i], &p->parsed[i], err)) {
            pq_fail_context(err, "%s", path);
            return -1;
        }
    /* the identity of the plan: what it computes (threads and batching change no number) */
    json_t *id = json_deep_copy(p->root);
    json_object_del(id, "threads");
    p->canon = id ? json_dumps(id, JSON_SORT_KEYS | JSON_COMPACT) : NULL;
    json_decref(id);
    return p->canon ? 0 : pq_fail(err, POLYQ_NOMEM, "out of memory");
}
