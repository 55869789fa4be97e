/* safetensors reader (format table in safetensors.h). Reproduces the checks of the
 * reference Rust loader (huggingface/safetensors: header too large, invalid offsets,
 * metadata incomplete buffer, tensor invalid info, duplicate names, overflow). */
#include "format/safetensors.h"

#include <stdlib.h>
#include <string.h>

#include "format/json.h"
#include "format/torchbin.h"

#define ST_MAX_HEADER 100000000ULL

static const struct {
    const char *name;
    size_t size;
} dtypes[PQ_DT_COUNT] = {
    [PQ_DT_F64] = {"F64", 8},   [PQ_DT_F32] = {"F32", 4},         [PQ_DT_F16] = {"F16", 2},
    [PQ_DT_BF16] = {"BF16", 2}, [PQ_DT_I64] = {"I64", 8},         [PQ_DT_I32] = {"I32", 4},
    [PQ_DT_I16] = {"I16", 2},   [PQ_DT_I8] = {"I8", 1},           [PQ_DT_U8] = {"U8", 1},
    [PQ_DT_BOOL] = {"BOOL", 1}, [PQ_DT_U16] = {"U16", 2},         [PQ_DT_U32] = {"U32", 4},
    [PQ_DT_U64] = {"U64", 8},   [PQ_DT_F8_E4M3] = {"F8_E4M3", 1}, [PQ_DT_F8_E5M2] = {"F8_E5M2", 1},
};

const char *pq_dtype_name(pq_dtype t)
{
    return (unsigned)t < PQ_DT_COUNT ? dtypes[t].name : "?";
}
size_t pq_dtype_size(pq_dtype t)
{
    return (unsigned)t < PQ_DT_COUNT ? dtypes[t].size : 0;
}

static int grow_tensors(pq_tensors *ts, size_t extra)
{
    size_t n;
    if (!pq_add_size(ts->n, extra, &n))
        return -1;
    pq_tensor_info *t = realloc(ts->t, (n ? n : 1) * sizeof *t);
    if (!t)
        return -1;
    ts->t = t;
    char **names = realloc(ts->names, (n ? n : 1) * sizeof *names);
    if (!names)
        return -1;
    ts->names = names;
    return 0;
}

static int cmp_begin(const void *a, const void *b)
{
    const pq_tensor_info *x = *(pq_tensor_info *const *)a, *y = *(pq_tensor_info *const *)b;
    return x->data < y->data ? -1 : x->data > y->data;
}

int pq_tensors_add_buffer(pq_tensors *ts, const char *what, const uint8_t *buf, size_t size,
                          polyq_err *err)
{
    if (size < 8)
        return pq_fail(err, POLYQ_FORMAT, "%s: %zu bytes, too short for the 8-byte header length",
                       what, size);
    uint64_t hlen = 0;
    for (int i = 7; i >= 0; i--)
        hlen = (hlen << 8) | buf[i];
    if (hlen > ST_MAX_HEADER)
        return pq_fail(err, POLYQ_FORMAT, "%s: header length %llu exceeds the 100 MB limit", what,
                       (unsigned long long)hlen);
    if (hlen > size - 8)
        return pq_fail(err, POLYQ_FORMAT,
                       "%s: header length %llu runs past the end of the file (%zu bytes)", what,
                       (unsigned long long)hlen, size);
    const uint8_t *data = buf + 8 + hlen;
    size_t data_len = size - 8 - (size_t)hlen;
    if (hlen == 0 || buf[8] != '{')
        return pq_fail(err, POLYQ_FORMAT, "%s: header does not start with '{'", what);
    json_t *root;
    int rc = pq_json_parse(what, (const char *)buf + 8, (size_t)hlen, &root, err);
    if (rc)
        return rc;
    if (!json_is_object(root)) {
        json_decref(root);
        return pq_fail(err, POLYQ_FORMAT, "%s: header is not a JSON object", what);
    }
    size_t first = ts->n, n_new = json_object_size(root);
    pq_tensor_info **order = NULL;
    if (grow_tensors(ts, n_new) != 0 ||
        !(order = pq_alloc_array(n_new ? n_new : 1, sizeof *order))) {
        json_decref(root);
        return pq_fail(err, POLYQ_NOMEM, "%s: out of memory for %zu tensors", what, n_new);
    }
    const char *key;
    json_t *v;
    size_t n_order = 0;
    json_object_foreach(root, key, v)
    {
        if (strcmp(key, "__metadata__") == 0) {
            if (!json_is_object(v)) {
                rc = pq_fail(err, POLYQ_FORMAT, "%s: __metadata__ is not an object", what);
                goto out;
            }
            continue;
        }
        pq_tensor_info *t = &ts->t[ts->n];
        memset(t, 0, sizeof *t);
        const char *dt;
        json_t *shape = json_object_get(v, "shape"), *offs = json_object_get(v, "data_offsets");
        if (!json_is_object(v) || pq_json_str(v, "dtype", true, &dt, what, NULL) != 0 ||
            !json_is_array(shape) || !json_is_array(offs) || json_array_size(offs) != 2) {
            rc = pq_fail(err, POLYQ_FORMAT,
                         "%s: tensor \"%s\" needs \"dtype\", \"shape\" and two \"data_offsets\"",
                         what, key);
            goto out;
        }
        t->dtype = PQ_DT_COUNT;
        for (int i = 0; i < PQ_DT_COUNT; i++)
            if (strcmp(dt, dtypes[i].name) == 0)
                t->dtype = (pq_dtype)i;
        if (t->dtype == PQ_DT_COUNT) {
            rc = pq_fail(err, POLYQ_FORMAT, "%s: tensor \"%s\" has unknown dtype \"%s\"", what, key,
                         dt);
            goto out;
        }
        if (json_array_size(shape) > PQ_MAX_DIMS) {
            rc = pq_fail(err, POLYQ_FORMAT, "%s: tensor \"%s\" has %zu dimensions (at most %d)",
                         what, key, json_array_size(shape), PQ_MAX_DIMS);
            goto out;
        }
        t->n_dims = (int)json_array_size(shape);
        size_t numel = 1, nbytes;
        for (int d = 0; d < t->n_dims; d++) {
            json_t *s = json_array_get(shape, (size_t)d);
            if (!json_is_integer(s) || json_integer_value(s) < 0) {
                rc = pq_fail(err, POLYQ_FORMAT, "%s: tensor \"%s\" dimension %d is not a size",
                             what, key, d);
                goto out;
            }
            t->shape[d] = json_integer_value(s);
            if (!pq_mul_size(numel, (size_t)t->shape[d], &numel)) {
                rc = pq_fail(err, POLYQ_FORMAT, "%s: tensor \"%s\" shape overflows", what, key);
                goto out;
            }
        }
        json_t *b = json_array_get(offs, 0), *e = json_array_get(offs, 1);
        if (!json_is_integer(b) || !json_is_integer(e) || json_integer_value(b) < 0 ||
            json_integer_value(e) < json_integer_value(b)) {
            rc =
                pq_fail(err, POLYQ_FORMAT, "%s: tensor \"%s\" has invalid data_offsets", what, key);
            goto out;
        }
        uint64_t begin = (uint64_t)json_integer_value(b), end = (uint64_t)json_integer_value(e);
        if (end > data_len) {
            rc =
                pq_fail(err, POLYQ_FORMAT,
                        "%s: tensor \"%s\" data_offsets [%llu, %llu] run past the data (%zu bytes)",
                        what, key, (unsigned long long)begin, (unsigned long long)end, data_len);
            goto out;
        }
        if (!pq_mul_size(numel, dtypes[t->dtype].size, &nbytes) || nbytes != end - begin) {
            rc = pq_fail(err, POLYQ_FORMAT,
                         "%s: tensor \"%s\" spans %llu bytes but its shape and dtype %s need %zu",
                         what, key, (unsigned long long)(end - begin), dt,
                         numel * dtypes[t->dtype].size);
            goto out;
        }
        if (!(ts->names[ts->n] = pq_strdup(key))) {
            rc = pq_fail(err, POLYQ_NOMEM, "%s: out of memory", what);
            goto out;
        }
        t->name = ts->names[ts->n];
        t->numel = numel;
        t->nbytes = nbytes;
        t->data = data + begin;
        int put = pq_strmap_put(&ts->by_name, key, strlen(key), (int32_t)ts->n);
        ts->n++;
        if (put < 0) {
            rc = pq_fail(err, POLYQ_NOMEM, "%s: out of memory", what);
            goto out;
        }
        if (put == 1) {
            rc = pq_fail(err, POLYQ_FORMAT, "%s: tensor \"%s\" appears in more than one file", what,
                         key);
            goto out;
        }
        order[n_order++] = t;
    }
    /* The tensors must tile the data section: sorted by begin, each starts where the last ended. */
    qsort(order, n_order, sizeof *order, cmp_begin);
    const uint8_t *expect = data;
    for (size_t i = 0; i < n_order; i++) {
        if (order[i]->data != expect) {
            rc = pq_fail(
                err, POLYQ_FORMAT,
                "%s: tensor \"%s\" starts at data offset %zu, expected %zu (overlap or gap)", what,
                order[i]->name, (size_t)(order[i]->data - data), (size_t)(expect - data));
            goto out;
        }
        expect += order[i]->nbytes;
    }
    if (expect != data + data_len)
        rc = pq_fail(err, POLYQ_FORMAT, "%s: tensors cover %zu of the %zu data bytes", what,
                     (size_t)(expect - data), data_len);
out:
    free(order);
    json_decref(root);
    (void)first;
    return rc;
}

int pq_tensors_open_with(pq_tensors *ts, const char *path, pq_parse_fn parse, polyq_err *err)
{
    struct pq_st_file *f = realloc(ts->files, (ts->n_files + 1) * sizeof *f);
    if (!f)
        return pq_fail(err, POLYQ_NOMEM, "%s: out of memory", path);
    ts->files = f;
    f = &ts->files[ts->n_files];
    memset(f, 0, sizeof *f);
    if (!(f->path = pq_strdup(path)))
        return pq_fail(err, POLYQ_NOMEM, "%s: out of memory", path);
    ts->n_files++;
    int rc = pq_map_file(&f->map, path, err);
    if (rc)
        return rc;
    size_t before = ts->n;
    rc = parse(ts, path, f->map.data, f->map.size, err);
    for (size_t i = before; i < ts->n; i++)
        ts->t[i].file = f->path;
    return rc;
}

int pq_tensors_open_file(pq_tensors *ts, const char *path, polyq_err *err)
{
    return pq_tensors_open_with(ts, path, pq_tensors_add_buffer, err);
}

typedef int (*open_fn)(pq_tensors *ts, const char *path, polyq_err *err);

/* Opens every shard named by an index's weight_map, once each, and checks the map. */
static int open_index(pq_tensors *ts, const char *dir, const char *index, open_fn open_one,
                      polyq_err *err)
{
    json_t *root = NULL;
    int rc = pq_json_load(index, 64u << 20, &root, err);
    if (rc)
        return rc;
    json_t *map = json_object_get(root, "weight_map");
    const char *key;
    json_t *v;
    if (!json_is_object(map)) {
        rc = pq_fail(err, POLYQ_FORMAT, "%s: \"weight_map\" is missing or not an object", index);
        goto out;
    }
    json_object_foreach(map, key, v)
    {
        if (!json_is_string(v)) {
            rc =
                pq_fail(err, POLYQ_FORMAT, "%s: weight_map[\"%s\"] is not a file name", index, key);
            goto out;
        }
        const char *file = json_string_value(v);
        if (strchr(file, '/') || strcmp(file, "..") == 0 || !*file) {
            rc = pq_fail(err, POLYQ_FORMAT, "%s: shard name \"%s\" is not a plain file name", index,
                         file);
            goto out;
        }
        char *path = pq_path_join(dir, file);
        if (!path) {
            rc = pq_fail(err, POLYQ_NOMEM, "out of memory");
            goto out;
        }
        bool seen = false;
        for (size_t i = 0; i < ts->n_files && !seen; i++)
            seen = strcmp(ts->files[i].path, path) == 0;
        if (!seen)
            rc = open_one(ts, path, err);
        free(path);
        if (rc)
            goto out;
    }
    json_object_foreach(map, key, v)
    {
        const pq_tensor_info *t = pq_tensors_find(ts, key);
        const char *file = json_string_value(v);
        size_t fl = strlen(file), pl = t ? strlen(t->file) : 0;
        if (!t || pl < fl || strcmp(t->file + pl - fl, file) != 0) {
            rc = pq_fail(err, POLYQ_FORMAT, "%s: tensor \"%s\" is not in its shard %s", index, key,
                         file);
            goto out;
        }
    }
out:
    json_decref(root);
    return rc;
}

int pq_tensors_open_dir(pq_tensors *ts, const char *dir, polyq_err *err)
{
    static const struct {
        const char *name;
        bool index;
        open_fn fn;
    } forms[] = {
        {"model.safetensors.index.json", true, pq_tensors_open_file},
        {"model.safetensors", false, pq_tensors_open_file},
        {"pytorch_model.bin.index.json", true, pq_tensors_open_torch},
        {"pytorch_model.bin", false, pq_tensors_open_torch},
    };
    for (size_t i = 0; i < sizeof forms / sizeof forms[0]; i++) {
        char *path = pq_path_join(dir, forms[i].name);
        if (!path)
            return pq_fail(err, POLYQ_NOMEM, "out of memory");
        int rc = -1;
        if (pq_file_exists(path))
            rc = forms[i].index ? open_index(ts, dir, path, forms[i].fn, err)
                                : forms[i].fn(ts, path, err);
        free(path);
        if (rc != -1)
            return rc;
    }
    return pq_fail(err, POLYQ_NOT_FOUND,
                   "%s: no model.safetensors, pytorch_model.bin or a sharded index of either", dir);
}

void pq_tensors_close(pq_tensors *ts)
{
    if (!ts)
        return;
    for (size_t i = 0; i < ts->n_files; i++) {
        pq_map_close(&ts->files[i].map);
        free(ts->files[i].path);
    }
    for (size_t i = 0; i < ts->n; i++)
        free(ts->names[i]);
    for (size_t i = 0; i < ts->n_owned; i++)
        free(ts->owned[i]);
    free(ts->owned);
    free(ts->names);
    free(ts->files);
    free(ts->t);
    pq_strmap_free(&ts->by_name);
    memset(ts, 0, sizeof *ts);
}

const pq_tensor_info *pq_tensors_find(const pq_tensors *ts, const char *name)
{
    int32_t i = pq_strmap_get(&ts->by_name, name, strlen(name));
    return i < 0 ? NULL : &ts->t[i];
}

int pq_tensor_to_f32(const pq_tensor_info *t, float *out, polyq_err *err)
{
    const uint8_t *p = t->data;
    switch (t->dtype) {
    case PQ_DT_F32:
        memcpy(out, p, t->numel * 4);
        return 0;
    case PQ_DT_F16:
    case PQ_DT_BF16:
        for (size_t i = 0; i < t->numel; i++) {
            uint16_t h = (uint16_t)(p[2 * i] | (p[2 * i + 1] << 8));
            out[i] = t->dtype == PQ_DT_F16 ? pq_f16_to_f32(h) : pq_bf16_to_f32(h);
        }
        return 0;
    case PQ_DT_F64:
        for (size_t i = 0; i < t->numel; i++) {
            double d;
            memcpy(&d, p + 8 * i, 8);
            out[i] = (float)d;
        }
        return 0;
    default:
        return pq_fail(err, POLYQ_UNSUPPORTED, "%s: tensor \"%s\" has dtype %s, not a float type",
                       t->file ? t->file : "safetensors", t->name, pq_dtype_name(t->dtype));
    }
}

int pq_tensors_add(pq_tensors *ts, const char *what, const char *name, pq_dtype dtype, int n_dims,
                   const int64_t *shape, const void *data, void *owned, polyq_err *err)
{
    if (owned) { /* the table owns it from here, whatever happens */
        void **no = realloc(ts->owned, (ts->n_owned + 1) * sizeof *no);
        if (!no) {
            free(owned);
            return pq_fail(err, POLYQ_NOMEM, "out of memory");
        }
        ts->owned = no;
        ts->owned[ts->n_owned++] = owned;
    }
    size_t numel = 1, nbytes;
    if (n_dims < 0 || n_dims > PQ_MAX_DIMS)
        return pq_fail(err, POLYQ_FORMAT, "%s: tensor \"%s\" has %d dimensions", what, name,
                       n_dims);
    for (int d = 0; d < n_dims; d++)
        if (shape[d] < 0 || !pq_mul_size(numel, (size_t)shape[d], &numel))
            return pq_fail(err, POLYQ_FORMAT, "%s: tensor \"%s\" size overflows", what, name);
    if (!pq_mul_size(numel, pq_dtype_size(dtype), &nbytes))
        return pq_fail(err, POLYQ_FORMAT, "%s: tensor \"%s\" size overflows", what, name);
    if (grow_tensors(ts, 1))
        return pq_fail(err, POLYQ_NOMEM, "out of memory");
    pq_tensor_info *x = &ts->t[ts->n];
    memset(x, 0, sizeof *x);
    x->dtype = dtype;
    x->n_dims = n_dims;
    memcpy(x->shape, shape, sizeof *shape * (size_t)n_dims);
    x->numel = numel;
    x->nbytes = nbytes;
    x->data = data;
    if (!(ts->names[ts->n] = pq_strdup(name)))
        return pq_fail(err, POLYQ_NOMEM, "out of memory");
    x->name = ts->names[ts->n];
    int put = pq_strmap_put(&ts->by_name, name, strlen(name), (int32_t)ts->n);
    ts->n++;
    if (put < 0)
        return pq_fail(err, POLYQ_NOMEM, "out of memory");
    if (put == 1)
        return pq_fail(err, POLYQ_FORMAT, "%s: tensor \"%s\" appears twice", what, name);
    return 0;
}

int pq_tensors_add_packed(pq_tensors *ts, const char *what, const char *name, int packed,
                          const int64_t *shape, const void *data, size_t nbytes, void *owned,
                          polyq_err *err)
{
    int64_t bytes = (int64_t)nbytes;
    size_t numel;
    if (nbytes > INT64_MAX || shape[0] < 0 || shape[1] < 0 ||
        !pq_mul_size((size_t)shape[0], (size_t)shape[1], &numel)) {
        free(owned);
        return pq_fail(err, POLYQ_FORMAT, "%s: tensor \"%s\" size overflows", what, name);
    }
    if (pq_tensors_add(ts, what, name, PQ_DT_U8, 1, &bytes, data, owned, err))
        return -1;
    pq_tensor_info *x = &ts->t[ts->n - 1];
    x->packed = packed;
    x->n_dims = 2;
    x->shape[0] = shape[0];
    x->shape[1] = shape[1];
    x->numel = numel;
    return 0;
}
