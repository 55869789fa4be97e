/* Quantized models on disk (model.h: pq_qfile_write, pq_qfile_load): one safetensors file,
 * polyq-quant.safetensors, holding every quantized linear of the model exactly as polyq keeps
 * it in memory, and a JSON description. Per linear (b<block>.<index> in PQ_LAYER_LINEARS
 * order, or "head"):
 *   <name>.info     I32 [10] format (its frozen file_id: 0 polyq's integers, 1 Q8_0, 2 Q4_0,
 *                            3 Q4_1, 4 Q5_0, 5 Q5_1, 6 NF4, 7 FP4, 8..12 Q2_K..Q6_K), bits,
 *                            n_out, n_in, granularity, group, groups, sym, act8,
 *                            double-quantized (files without the tenth value: 0)
 *   <name>.data     U8       the packed weights (polyq's integer layout or the tool's blocks)
 *   <name>.scale    F32      scales (absent for llama.cpp blocks, which hold their own; for
 *                            double-quantized bitsandbytes, the nested absmax then the offset)
 *   <name>.zero     U8       zero points (asymmetric integer formats), or the absmax codes of
 *                            double-quantized bitsandbytes blocks
 *   <name>.in_scale F32      AWQ's per-input-channel factors
 *   <name>.outlier  F32 [1]  LLM.int8()'s threshold
 *   b<block>.ln1_w, .ln1_b, .ln2_w, .ln2_b  F32 [C]  norms that differ from the base model's
 *                            (SmoothQuant folds its scales into them)
 *   polyq.meta      U8       JSON: format version, spec, method, base model, calibration */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/base.h"
#include "format/json.h"
#include "model/model.h"

#define QFILE "polyq-quant.safetensors"
#define QFILE_VERSION 1

typedef struct entry {
    char name[48];
    pq_dtype dt;
    int n_dims;
    int64_t shape[2];
    const void *data;
    size_t bytes;
} entry;

static size_t data_bytes(const pq_qweight *q)
{
    if (pq_qfmt_get(q->fmt)->flat)
        return ((size_t)q->n_out * q->n_in + 1) / 2;
    return (size_t)q->n_out * q->row_bytes;
}

static size_t n_scales(const pq_qweight *q)
{
    const pq_qfmt_traits *t = pq_qfmt_get(q->fmt);
    if (t->flat && q->dq)
        return (size_t)(q->n_groups + 255) / 256 + 1;
    if (t->flat)
        return (size_t)q->n_groups;
    if (t->block) /* the blocks hold their scales */
        return 0;
    return q->gran == PQ_GRAN_TENSOR ? 1 : (size_t)q->n_out * q->n_groups;
}

/* What the spec gives linear `name` (b<layer>.<role> or head) of n_in inputs: *want, or
 * want->none when the spec leaves it in full precision. */
static int spec_of_linear(const pq_qspec *spec, const char *name, int n_layer, int n_in,
                          pq_qspec *want, polyq_err *err)
{
    int l = n_layer, j = PQ_ROLE_HEAD;
    if (strcmp(name, "head") && sscanf(name, "b%d.%d", &l, &j) != 2)
        return pq_fail(err, POLYQ_INVALID_ARG, "linear %s", name);
    if (spec->none || (j == PQ_ROLE_HEAD && !spec->head)) {
        *want = (pq_qspec){.none = true};
        return 0;
    }
    return pq_qspec_for_linear(spec, (pq_role)j, l, n_layer, n_in, want, err);
}

/* Whether a stored weight is what the spec makes of its linear (else a file relabelled, or
 * made with another spec, would be reported under the wrong name). */
static bool fits_spec(const pq_qweight *w, const pq_qspec *want)
{
    if (want->none || w->fmt != want->fmt || w->act8 != want->act8)
        return false;
    if (pq_qfmt_get(w->fmt)->block) /* a block format: its traits fix the rest */
        return w->dq == want->dq;
    if (w->bits != want->bits || w->sym != want->sym)
        return false;
    /* groups as wide as the row are one group per channel (GPTQ stores them so) */
    pq_gran g =
        want->gran == PQ_GRAN_GROUP && want->group >= w->n_in ? PQ_GRAN_CHANNEL : want->gran;
    if (w->gran == PQ_GRAN_GROUP && w->group >= w->n_in) /* and RTN keeps them as a group */
        return g == PQ_GRAN_CHANNEL || g == PQ_GRAN_GROUP;
    if (w->gran != g)
        return false;
    return w->gran != PQ_GRAN_GROUP || w->group == want->group;
}

/* The quantized linears of q, in a fixed order, with their names. */
static int linears(const pq_model *q, pq_linear **lins, char (*names)[24], int max)
{
    int n = 0;
    for (int l = 0; l < q->cfg.n_layer; l++) {
        pq_linear *ls[PQ_N_LAYER_LINEARS] = PQ_LAYER_LINEARS(&q->layers[l]);
        for (int j = 0; j < PQ_N_LAYER_LINEARS && n < max; j++)
            if (ls[j]->n_out) {
                lins[n] = ls[j];
                snprintf(names[n++], 24, "b%d.%d", l, j);
            }
    }
    if (n < max) {
        lins[n] = (pq_linear *)&q->lm_head;
        snprintf(names[n++], 24, "head");
    }
    return n;
}

int pq_qfile_write(const char *dir, const pq_model *q, const char *meta_json, polyq_err *err)
{
    int max = q->cfg.n_layer * PQ_N_LAYER_LINEARS + 1, n;
    pq_linear **lins = calloc((size_t)max, sizeof *lins);
    char(*names)[24] = calloc((size_t)max, sizeof *names);
    entry *e = calloc((size_t)max * 6 + 4 * (size_t)q->cfg.n_layer + 1, sizeof *e);
    int32_t *info = calloc((size_t)max * 10, sizeof *info);
    char *path = NULL, *tmp = NULL, *header = NULL;
    json_t *h = NULL;
    FILE *f = NULL;
    int rc = 0;
    size_t ne = 0, off = 0;
    if (!lins || !names || !e || !info) {
        rc = pq_fail(err, POLYQ_NOMEM, "out of memory");
        goto out;
    }
    if ((rc = pq_mkdirs(dir, err)))
        goto out;
    n = linears(q, lins, names, max);
    for (int i = 0; i < n; i++) {
        const pq_qweight *w = lins[i]->q;
        if (!w || w->borrowed) /* none, or the base's own (a quantized GGUF's blocks) */
            continue;
        int32_t *in = info + (size_t)i * 10;
        int32_t v[10] = {pq_qfmt_get(w->fmt)->file_id,
                         w->bits,
                         w->n_out,
                         w->n_in,
                         w->gran,
                         w->group,
                         w->n_groups,
                         w->sym,
                         w->act8,
                         w->dq};
        memcpy(in, v, sizeof v);
        e[ne++] = (entry){"", PQ_DT_I32, 1, {10}, in, sizeof v};
        snprintf(e[ne - 1].name, sizeof e[0].name, "%s.info", names[i]);
        e[ne++] = (entry){"", PQ_DT_U8, 1, {(int64_t)data_bytes(w)}, w->data, data_bytes(w)};
        snprintf(e[ne - 1].name, sizeof e[0].name, "%s.data", names[i]);
        if (n_scales(w)) {
            e[ne++] = (entry){"", PQ_DT_F32, 1, {(int64_t)n_scales(w)}, w->scale, 4 * n_scales(w)};
            snprintf(e[ne - 1].name, sizeof e[0].name, "%s.scale", names[i]);
        }
        if (w->zero) {
            size_t nz = w->dq ? (size_t)w->n_groups : n_scales(w);
            e[ne++] = (entry){"", PQ_DT_U8, 1, {(int64_t)nz}, w->zero, nz};
            snprintf(e[ne - 1].name, sizeof e[0].name, "%s.zero", names[i]);
        }
        if (w->in_scale) {
            e[ne++] = (entry){"", PQ_DT_F32, 1, {w->n_in}, w->in_scale, 4 * (size_t)w->n_in};
            snprintf(e[ne - 1].name, sizeof e[0].name, "%s.in_scale", names[i]);
        }
        if (w->outlier > 0) {
            e[ne++] = (entry){"", PQ_DT_F32, 1, {1}, &w->outlier, 4};
            snprintf(e[ne - 1].name, sizeof e[0].name, "%s.outlier", names[i]);
        }
    }
    for (int l = 0; q->base && l < q->cfg.n_layer; l++) { /* norms rewritten by the method */
        const pq_layer *L = &q->layers[l], *B = &q->base->layers[l];
        const float *p[4] = {L->ln1_w, L->ln1_b, L->ln2_w, L->ln2_b},
                    *bp[4] = {B->ln1_w, B->ln1_b, B->ln2_w, B->ln2_b};
        static const char *const nm[4] = {"ln1_w", "ln1_b", "ln2_w", "ln2_b"};
        for (int k = 0; k < 4; k++)
            if (p[k] && p[k] != bp[k]) {
                e[ne++] =
                    (entry){"", PQ_DT_F32, 1, {q->cfg.n_embd}, p[k], 4 * (size_t)q->cfg.n_embd};
                snprintf(e[ne - 1].name, sizeof e[0].name, "b%d.%s", l, nm[k]);
            }
    }
    e[ne++] = (entry){"polyq.meta", PQ_DT_U8,         1, {(int64_t)strlen(meta_json)},
                      meta_json,    strlen(meta_json)};
    h = json_object();
    json_object_set_new(h, "__metadata__", json_pack("{s:s}", "format", "polyq-quant"));
    for (size_t i = 0; i < ne; i++) {
        json_t *shape = json_array();
        for (int d = 0; d < e[i].n_dims; d++)
            json_array_append_new(shape, json_integer(e[i].shape[d]));
        json_object_set_new(h, e[i].name,
                            json_pack("{s:s, s:o, s:[I, I]}", "dtype", pq_dtype_name(e[i].dt),
                                      "shape", shape, "data_offsets", (json_int_t)off,
                                      (json_int_t)(off + e[i].bytes)));
        off += e[i].bytes;
    }
    header = json_dumps(h, JSON_COMPACT | JSON_SORT_KEYS);
    path = pq_path_join(dir, QFILE);
    tmp = path ? pq_asprintf("%s.tmp", path) : NULL;
    if (!header || !path || !tmp) {
        rc = pq_fail(err, POLYQ_NOMEM, "out of memory");
        goto out;
    }
    size_t hl = strlen(header), pad = (8 - hl % 8) % 8;
    uint64_t hlen = hl + pad;
    uint8_t len8[8];
    for (int b = 0; b < 8; b++)
        len8[b] = (uint8_t)(hlen >> (8 * b));
    if (!(f = fopen(tmp, "wb"))) {
        rc = pq_fail(err, POLYQ_IO, "%s: cannot create", tmp);
        goto out;
    }
    bool ok = fwrite(len8, 1, 8, f) == 8 && fwrite(header, 1, hl, f) == hl &&
              fwrite("        ", 1, pad, f) == pad;
    for (size_t i = 0; i < ne && ok; i++)
        ok = fwrite(e[i].data, 1, e[i].bytes, f) == e[i].bytes;
    ok = fclose(f) == 0 && ok;
    f = NULL;
    if (!ok || rename(tmp, path) != 0) {
        remove(tmp);
        rc = pq_fail(err, POLYQ_IO, "%s: could not write the quantized model", path);
    }
out:
    if (f)
        fclose(f);
    json_decref(h);
    free(header);
    free(path);
    free(tmp);
    free(lins);
    free(names);
    free(e);
    free(info);
    return rc;
}

static const pq_tensor_info *need(const pq_tensors *ts, const char *lin, const char *part,
                                  pq_dtype dt, size_t numel, const char *path, polyq_err *err)
{
    char name[64];
    snprintf(name, sizeof name, "%s.%s", lin, part);
    const pq_tensor_info *t = pq_tensors_find(ts, name);
    if (!t)
        pq_fail(err, POLYQ_FORMAT, "%s: tensor \"%s\" is missing", path, name);
    else if (t->dtype != dt || t->numel != numel)
        pq_fail(err, POLYQ_FORMAT, "%s: tensor \"%s\" is %s with %zu values, expected %s with %zu",
                path, name, pq_dtype_name(t->dtype), t->numel, pq_dtype_name(dt), numel);
    else
        return t;
    return NULL;
}

int pq_qfile_load(pq_model **out, const pq_model *base, const char *dir, char **meta_json,
                  polyq_err *err)
{
    *out = NULL;
    *meta_json = NULL;
    char *path = pq_path_join(dir, QFILE);
    if (!path)
        return pq_fail(err, POLYQ_NOMEM, "out of memory");
    pq_tensors ts = {0};
    pq_model *q = NULL;
    json_t *meta = NULL;
    int rc = pq_tensors_open_file(&ts, path, err);
    const pq_tensor_info *mt = rc ? NULL : pq_tensors_find(&ts, "polyq.meta");
    if (!rc && (!mt || mt->dtype != PQ_DT_U8))
        rc = pq_fail(err, POLYQ_FORMAT, "%s: not a polyq quantized model (no polyq.meta)", path);
    if (!rc && pq_json_parse(path, (const char *)mt->data, mt->nbytes, &meta, err))
        rc = err->code;
    int64_t version = 0;
    const char *spec_name = NULL;
    if (!rc && (pq_json_int(meta, "version", true, 1, 1000, &version, path, err) ||
                pq_json_str(meta, "spec", true, &spec_name, path, err)))
        rc = err->code;
    if (!rc && version != QFILE_VERSION)
        rc = pq_fail(err, POLYQ_UNSUPPORTED, "%s: format version %lld; this polyq reads version %d",
                     path, (long long)version, QFILE_VERSION);
    pq_qspec spec, none = {.none = true, .name = "fp32"};
    if (!rc && (rc = pq_qspec_parse(spec_name, &spec, err)))
        pq_fail_context(err, "%s", path);
    if (!rc && (rc = pq_model_quantize(&q, base, &none, err)))
        goto out;
    if (q)
        q->spec = spec;
    int max = base->cfg.n_layer * PQ_N_LAYER_LINEARS + 1, n = 0, loaded = 0;
    pq_linear **lins = calloc((size_t)max, sizeof *lins);
    char(*names)[24] = calloc((size_t)max, sizeof *names);
    if (!rc && (!lins || !names))
        rc = pq_fail(err, POLYQ_NOMEM, "out of memory");
    if (!rc)
        n = linears(q, lins, names, max);
    for (int i = 0; i < n && !rc; i++) {
        char in_name[48];
        snprintf(in_name, sizeof in_name, "%s.info", names[i]);
        const pq_tensor_info *it = pq_tensors_find(&ts, in_name);
        pq_qspec want;
        if ((rc = spec_of_linear(&spec, names[i], base->cfg.n_layer, lins[i]->n_in, &want, err)))
            break;
        if (!it && !want.none) {
            rc = pq_fail(err, POLYQ_FORMAT, "%s: names spec %s, but holds no quantized %s", path,
                         spec.name, names[i]);
            break;
        }
        if (!it)
            continue; /* this linear stays in full precision */
        if (!(it = need(&ts, names[i], "info", PQ_DT_I32, it->numel == 9 ? 9 : 10, path, err))) {
            rc = err->code;
            break;
        }
        int32_t v[10] = {0};
        memcpy(v, it->data, it->nbytes);
        pq_qweight *w = calloc(1, sizeof *w);
        if (!w) {
            rc = pq_fail(err, POLYQ_NOMEM, "out of memory");
            break;
        }
        bool known = pq_qfmt_by_file_id(v[0], &w->fmt);
        w->bits = v[1];
        w->n_out = v[2];
        w->n_in = v[3];
        w->gran = (pq_gran)v[4];
        w->group = v[5];
        w->n_groups = v[6];
        w->sym = v[7] != 0;
        w->act8 = v[8] != 0;
        w->dq = v[9] != 0;
        if (!known) {
            free(w);
            rc = pq_fail(err, POLYQ_FORMAT,
                         "%s: %s is stored in format number %d, which this polyq does not know "
                         "(written by a newer version?)",
                         path, names[i], (int)v[0]);
            break;
        }
        const pq_qfmt_traits *t = pq_qfmt_get(w->fmt);
        bool bnb = t->flat;
        int B = t->block;
        bool sane = w->n_out == lins[i]->n_out && w->n_in == lins[i]->n_in && w->bits >= 2 &&
                    w->bits <= 8 && v[4] >= PQ_GRAN_CHANNEL && v[4] <= PQ_GRAN_TENSOR &&
                    w->group >= 1 && w->n_groups >= 1;
        if (sane && w->dq)
            sane = bnb;
        if (sane && w->act8) /* int8 products read one byte per weight, one scale per row */
            sane = w->fmt == PQ_QF_INT && w->bits == 8 && w->sym && w->gran == PQ_GRAN_CHANNEL;
        if (sane && w->fmt == PQ_QF_INT)
            sane = (w->gran == PQ_GRAN_TENSOR ? w->n_groups == 1
                                              : w->n_groups == (w->n_in + w->group - 1) / w->group);
        else if (sane && bnb)
            sane = w->n_groups == (int)(((size_t)w->n_out * w->n_in + 63) / 64);
        else if (sane)
            sane = w->n_in % B == 0 && w->n_groups == w->n_in / B;
        if (!sane) {
            free(w);
            rc = pq_fail(
                err, POLYQ_FORMAT,
                "%s: %s does not fit this model's [%d, %d] linear (made from another model?)", path,
                names[i], lins[i]->n_out, lins[i]->n_in);
            break;
        }
        if (!fits_spec(w, &want)) {
            rc = pq_fail(err, POLYQ_FORMAT,
                         "%s: %s is stored as %s, %d bits, which spec %s (its polyq.meta) does not "
                         "make of it: a relabelled file, or made by another polyq",
                         path, names[i], pq_qfmt_get(w->fmt)->name, w->bits, spec.name);
            free(w);
            break;
        }
        w->row_bytes = w->fmt == PQ_QF_INT ? ((size_t)w->n_in * (size_t)w->bits + 7) / 8
                       : bnb               ? 0
                                           : (size_t)(w->n_in / B) * t->block_bytes;
        const pq_tensor_info *d = need(&ts, names[i], "data", PQ_DT_U8, data_bytes(w), path, err);
        const pq_tensor_info *s =
            n_scales(w) ? need(&ts, names[i], "scale", PQ_DT_F32, n_scales(w), path, err) : NULL;
        const pq_tensor_info *z =
            w->fmt == PQ_QF_INT && !w->sym
                ? need(&ts, names[i], "zero", PQ_DT_U8, n_scales(w), path, err)
            : w->dq ? need(&ts, names[i], "zero", PQ_DT_U8, (size_t)w->n_groups, path, err)
                    : NULL;
        snprintf(in_name, sizeof in_name, "%s.in_scale", names[i]);
        bool has_is = pq_tensors_find(&ts, in_name) != NULL;
        const pq_tensor_info *is =
            has_is ? need(&ts, names[i], "in_scale", PQ_DT_F32, (size_t)w->n_in, path, err) : NULL;
        snprintf(in_name, sizeof in_name, "%s.outlier", names[i]);
        bool has_ot = pq_tensors_find(&ts, in_name) != NULL;
        const pq_tensor_info *ot =
            has_ot ? need(&ts, names[i], "outlier", PQ_DT_F32, 1, path, err) : NULL;
        /* (every failed need() has set err; err's code on entry is the caller's, not ours) */
        if (!d || (n_scales(w) && !s) || (((w->fmt == PQ_QF_INT && !w->sym) || w->dq) && !z) ||
            (has_is && !is) || (has_ot && !ot)) {
            free(w);
            rc = err->code ? err->code : POLYQ_FORMAT;
            break;
        }
        w->data = malloc(d->nbytes ? d->nbytes : 1);
        w->scale = s ? malloc(s->nbytes) : NULL;
        w->zero = z ? malloc(z->nbytes) : NULL;
        w->in_scale = is ? malloc(is->nbytes) : NULL;
        if (!w->data || (s && !w->scale) || (z && !w->zero) || (is && !w->in_scale)) {
            pq_qweight_free(w);
            rc = pq_fail(err, POLYQ_NOMEM, "out of memory loading %s", names[i]);
            break;
        }
        memcpy(w->data, d->data, d->nbytes);
        if (s)
            memcpy(w->scale, s->data, s->nbytes);
        if (z)
            memcpy(w->zero, z->data, z->nbytes);
        if (is)
            memcpy(w->in_scale, is->data, is->nbytes);
        if (ot)
            memcpy(&w->outlier, ot->data, 4);
        if ((rc = pq_model_set_qweight(q, lins[i], w, err)))
            break;
        loaded++;
    }
    for (int l = 0; !rc && l < base->cfg.n_layer; l++) { /* rewritten norms */
        pq_layer *L = &q->layers[l];
        const float **p[4] = {&L->ln1_w, &L->ln1_b, &L->ln2_w, &L->ln2_b};
        static const char *const nm[4] = {"ln1_w", "ln1_b", "ln2_w", "ln2_b"};
        for (int k = 0; k < 4 && !rc; k++) {
            char tn[48];
            snprintf(tn, sizeof tn, "b%d.%s", l, nm[k]);
            if (!pq_tensors_find(&ts, tn))
                continue;
            snprintf(tn, sizeof tn, "b%d", l);
            const pq_tensor_info *t =
                need(&ts, tn, nm[k], PQ_DT_F32, (size_t)base->cfg.n_embd, path, err);
            float *dst = t ? pq_model_alloc(q, (size_t)base->cfg.n_embd) : NULL;
            if (!t)
                rc = err->code;
            else if (!dst)
                rc = pq_fail(err, POLYQ_NOMEM, "out of memory");
            else {
                memcpy(dst, t->data, t->nbytes);
                *p[k] = dst;
            }
        }
    }
    if (!rc && !loaded)
        rc = pq_fail(err, POLYQ_FORMAT, "%s: no quantized linear in the file", path);
    free(lins);
    free(names);
    if (!rc && !(*meta_json = json_dumps(meta, JSON_COMPACT)))
        rc = pq_fail(err, POLYQ_NOMEM, "out of memory");
out:
    json_decref(meta);
    pq_tensors_close(&ts);
    free(path);
    if (rc) {
        pq_model_free(q);
        free(*meta_json);
        *meta_json = NULL;
        return rc;
    }
    *out = q;
    return 0;
}
