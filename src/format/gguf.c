/* GGUF reading and writing (gguf.h). The reader trusts nothing in the file: each read is
 * checked against the bytes left, counts against what those bytes could hold. */
#include "format/gguf.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define GGUF_MAGIC 0x46554747u /* "GGUF" */
#define ALIGN 32

/* llama.cpp's own types (ggml.h), and the block formats registered with their ggml type */
typedef struct {
    uint32_t type;
    int block;
    size_t bytes;
} type_size;
static const type_size ggml_sizes[] = {
    {PQ_GGML_F32, 1, 4},      {PQ_GGML_F16, 1, 2},      {PQ_GGML_BF16, 1, 2},
    {PQ_GGML_Q4_0, 32, 18},   {PQ_GGML_Q4_1, 32, 20},   {PQ_GGML_Q5_0, 32, 22},
    {PQ_GGML_Q5_1, 32, 24},   {PQ_GGML_Q8_0, 32, 34},   {PQ_GGML_Q2_K, 256, 84},
    {PQ_GGML_Q3_K, 256, 110}, {PQ_GGML_Q4_K, 256, 144}, {PQ_GGML_Q5_K, 256, 176},
    {PQ_GGML_Q6_K, 256, 210}};
static type_size extra_sizes[8];
static int n_extra_sizes;

void pq_ggml_type_size(uint32_t type, int *block, size_t *bytes)
{
    *block = 0;
    *bytes = 0;
    for (size_t i = 0; i < sizeof ggml_sizes / sizeof ggml_sizes[0] + (size_t)n_extra_sizes; i++) {
        const type_size *t = i < sizeof ggml_sizes / sizeof ggml_sizes[0]
                                 ? &ggml_sizes[i]
                                 : &extra_sizes[i - sizeof ggml_sizes / sizeof ggml_sizes[0]];
        if (t->type == type) {
            *block = t->block;
            *bytes = t->bytes;
        }
    }
}

int pq_ggml_type_register(uint32_t type, int block, size_t bytes)
{
    int b;
    size_t n;
    pq_ggml_type_size(type, &b, &n);
    if (b)
        return b == block && n == bytes ? 0 : -1;
    if (n_extra_sizes == (int)(sizeof extra_sizes / sizeof extra_sizes[0]) || block <= 0 || !bytes)
        return -1;
    extra_sizes[n_extra_sizes++] = (type_size){type, block, bytes};
    return 0;
}

/* ---- writing ---------------------------------------------------------------------------- */

typedef struct {
    uint8_t *p;
    size_t n, cap;
    int failed;
} buf;

static void put(buf *b, const void *src, size_t n)
{
    if (b->failed)
        return;
    if (b->n + n > b->cap) {
        size_t cap = b->cap ? b->cap : 4096;
        while (cap < b->n + n)
            cap *= 2;
        uint8_t *p = realloc(b->p, cap);
        if (!p) {
            b->failed = 1;
            return;
        }
        b->p = p;
        b->cap = cap;
    }
    if (n) /* (an empty array may come with no pointer) */
        memcpy(b->p + b->n, src, n);
    b->n += n;
}

static void put_u32(buf *b, uint32_t v)
{
    put(b, &v, 4);
}
static void put_u64(buf *b, uint64_t v)
{
    put(b, &v, 8);
}
static void put_str(buf *b, const char *s)
{
    put_u64(b, strlen(s));
    put(b, s, strlen(s));
}

typedef struct {
    char *name;
    uint32_t type;
    int n_dims;
    uint64_t ne[4];
    uint8_t *data;
    size_t nbytes;
} w_tensor;

struct pq_gguf_w {
    buf kv;
    uint64_t n_kv;
    w_tensor *t;
    size_t n_t, cap_t;
    int failed;
};

pq_gguf_w *pq_gguf_w_new(void)
{
    return calloc(1, sizeof(pq_gguf_w));
}

void pq_gguf_w_free(pq_gguf_w *w)
{
    if (!w)
        return;
    for (size_t i = 0; i < w->n_t; i++) {
        free(w->t[i].name);
        free(w->t[i].data);
    }
    free(w->t);
    free(w->kv.p);
    free(w);
}

static int kv_head(pq_gguf_w *w, const char *key, uint32_t type)
{
    put_str(&w->kv, key);
    put_u32(&w->kv, type);
    w->n_kv++;
    return w->kv.failed ? -1 : 0;
}

int pq_gguf_w_str(pq_gguf_w *w, const char *key, const char *val)
{
    kv_head(w, key, PQ_GGUF_STR);
    put_str(&w->kv, val);
    return w->kv.failed ? -1 : 0;
}

int pq_gguf_w_u32(pq_gguf_w *w, const char *key, uint32_t val)
{
    kv_head(w, key, PQ_GGUF_U32);
    put_u32(&w->kv, val);
    return w->kv.failed ? -1 : 0;
}

int pq_gguf_w_bool(pq_gguf_w *w, const char *key, bool val)
{
    uint8_t b = val;
    kv_head(w, key, PQ_GGUF_BOOL);
    put(&w->kv, &b, 1);
    return w->kv.failed ? -1 : 0;
}

int pq_gguf_w_f32(pq_gguf_w *w, const char *key, float val)
{
    kv_head(w, key, PQ_GGUF_F32);
    put(&w->kv, &val, 4);
    return w->kv.failed ? -1 : 0;
}

int pq_gguf_w_strs(pq_gguf_w *w, const char *key, const char *const *vals, size_t n)
{
    kv_head(w, key, PQ_GGUF_ARR);
    put_u32(&w->kv, PQ_GGUF_STR);
    put_u64(&w->kv, n);
    for (size_t i = 0; i < n; i++)
        put_str(&w->kv, vals[i]);
    return w->kv.failed ? -1 : 0;
}

static size_t scalar_size(int type)
{
    switch (type) {
    case PQ_GGUF_U8:
    case PQ_GGUF_I8:
    case PQ_GGUF_BOOL:
        return 1;
    case PQ_GGUF_U16:
    case PQ_GGUF_I16:
        return 2;
    case PQ_GGUF_U32:
    case PQ_GGUF_I32:
    case PQ_GGUF_F32:
        return 4;
    case PQ_GGUF_U64:
    case PQ_GGUF_I64:
    case PQ_GGUF_F64:
        return 8;
    default:
        return 0;
    }
}

int pq_gguf_w_arr(pq_gguf_w *w, const char *key, int type, const void *vals, size_t n)
{
    if (!scalar_size(type))
        return -1;
    kv_head(w, key, PQ_GGUF_ARR);
    put_u32(&w->kv, (uint32_t)type);
    put_u64(&w->kv, n);
    put(&w->kv, vals, n * scalar_size(type));
    return w->kv.failed ? -1 : 0;
}

int pq_gguf_w_tensor(pq_gguf_w *w, const char *name, uint32_t type, int n_dims, const uint64_t *ne,
                     const void *data, size_t nbytes)
{
    if (n_dims < 1 || n_dims > 4)
        return -1;
    if (w->n_t == w->cap_t) {
        size_t cap = w->cap_t ? 2 * w->cap_t : 64;
        w_tensor *t = realloc(w->t, cap * sizeof *t);
        if (!t)
            return -1;
        w->t = t;
        w->cap_t = cap;
    }
    w_tensor *t = &w->t[w->n_t];
    memset(t, 0, sizeof *t);
    t->name = pq_strdup(name);
    t->data = malloc(nbytes ? nbytes : 1);
    if (!t->name || !t->data) {
        free(t->name);
        free(t->data);
        return -1;
    }
    memcpy(t->data, data, nbytes);
    t->type = type;
    t->n_dims = n_dims;
    memcpy(t->ne, ne, sizeof(uint64_t) * (size_t)n_dims);
    t->nbytes = nbytes;
    w->n_t++;
    return 0;
}

int pq_gguf_w_save(pq_gguf_w *w, const char *path, polyq_err *err)
{
    if (w->kv.failed)
        return pq_fail(err, POLYQ_NOMEM, "%s: out of memory building the GGUF metadata", path);
    buf h = {0};
    put_u32(&h, GGUF_MAGIC);
    put_u32(&h, 3);
    put_u64(&h, w->n_t);
    put_u64(&h, w->n_kv);
    put(&h, w->kv.p, w->kv.n);
    uint64_t off = 0;
    for (size_t i = 0; i < w->n_t; i++) {
        put_str(&h, w->t[i].name);
        put_u32(&h, (uint32_t)w->t[i].n_dims);
        for (int d = 0; d < w->t[i].n_dims; d++)
            put_u64(&h, w->t[i].ne[d]);
        put_u32(&h, w->t[i].type);
        put_u64(&h, off);
        off += (w->t[i].nbytes + ALIGN - 1) / ALIGN * ALIGN;
    }
    static const uint8_t zeros[ALIGN] = {0};
    put(&h, zeros, (ALIGN - h.n % ALIGN) % ALIGN);
    if (h.failed) {
        free(h.p);
        return pq_fail(err, POLYQ_NOMEM, "%s: out of memory building the GGUF header", path);
    }
    char *tmp = pq_asprintf("%s.tmp", path);
    FILE *f = tmp ? fopen(tmp, "wb") : NULL;
    int bad = !f || fwrite(h.p, 1, h.n, f) != h.n;
    for (size_t i = 0; !bad && i < w->n_t; i++) {
        size_t pad = (ALIGN - w->t[i].nbytes % ALIGN) % ALIGN;
        bad = fwrite(w->t[i].data, 1, w->t[i].nbytes, f) != w->t[i].nbytes ||
              fwrite(zeros, 1, pad, f) != pad;
    }
    if (f && fclose(f) != 0)
        bad = 1;
    free(h.p);
    if (bad || rename(tmp, path) != 0) {
        if (tmp)
            unlink(tmp);
        free(tmp);
        return pq_fail(err, POLYQ_IO, "%s: cannot write the GGUF file", path);
    }
    free(tmp);
    return 0;
}

/* ---- reading ---------------------------------------------------------------------------- */

typedef struct {
    const uint8_t *p;
    size_t n, at;
    const char *name;
    polyq_err *err;
} cursor;

static int need(cursor *c, size_t n, const char *what)
{
    if (n > c->n - c->at)
        return pq_fail(c->err, POLYQ_FORMAT, "%s: GGUF ends inside %s (byte %zu of %zu)", c->name,
                       what, c->at, c->n);
    return 0;
}

static int get_u32(cursor *c, uint32_t *v, const char *what)
{
    if (need(c, 4, what))
        return -1;
    memcpy(v, c->p + c->at, 4);
    c->at += 4;
    return 0;
}

static int get_u64(cursor *c, uint64_t *v, const char *what)
{
    if (need(c, 8, what))
        return -1;
    memcpy(v, c->p + c->at, 8);
    c->at += 8;
    return 0;
}

/* a string: its bytes copied NUL-terminated into *out (heap) when out is given */
static int get_str(cursor *c, char **out, const char *what)
{
    uint64_t len;
    if (get_u64(c, &len, what) || need(c, len, what))
        return -1;
    if (out) {
        if (len > 65535)
            return pq_fail(c->err, POLYQ_FORMAT,
                           "%s: %s is %llu bytes long (at most 65535 allowed)", c->name, what,
                           (unsigned long long)len);
        char *s = malloc((size_t)len + 1);
        if (!s)
            return pq_fail(c->err, POLYQ_NOMEM, "out of memory reading %s", c->name);
        memcpy(s, c->p + c->at, (size_t)len);
        s[len] = 0;
        if (strlen(s) != len) {
            free(s);
            return pq_fail(c->err, POLYQ_FORMAT, "%s: %s holds a NUL byte", c->name, what);
        }
        *out = s;
    }
    c->at += (size_t)len;
    return 0;
}

/* skips one value of type t (not an array) */
static int skip_value(cursor *c, int t, const char *key)
{
    if (t == PQ_GGUF_STR)
        return get_str(c, NULL, key);
    size_t n = scalar_size(t);
    if (!n)
        return pq_fail(c->err, POLYQ_FORMAT, "%s: metadata \"%s\" has unknown value type %d",
                       c->name, key, t);
    if (need(c, n, key))
        return -1;
    c->at += n;
    return 0;
}

void pq_gguf_close(pq_gguf *g)
{
    if (!g)
        return;
    for (size_t i = 0; i < g->n_kv; i++)
        free((char *)g->kv[i].key);
    for (size_t i = 0; i < g->n_t; i++)
        free((char *)g->t[i].name);
    free(g->kv);
    free(g->t);
    pq_strmap_free(&g->tensor_index);
    pq_strmap_free(&g->kv_index);
    pq_map_close(&g->map);
    memset(g, 0, sizeof *g);
}

/* Adds key -> i to an index; a repeated key fails with "<file>: " and `repeated` (a message
 * whose %s is the key). */
static int index_name(pq_strmap *m, const char *key, size_t i, const char *file,
                      const char *repeated, polyq_err *err)
{
    int r = pq_strmap_put(m, key, strlen(key), (int32_t)i);
    if (r < 0)
        return pq_fail(err, POLYQ_NOMEM, "out of memory indexing %s", file);
    if (!r)
        return 0;
    char what[96];
    snprintf(what, sizeof what, repeated, key);
    return pq_fail(err, POLYQ_FORMAT, "%s: %s", file, what);
}

static int by_offset(const void *a, const void *b)
{
    const uint8_t *x = (*(const pq_gguf_tensor *const *)a)->data,
                  *y = (*(const pq_gguf_tensor *const *)b)->data;
    return (x > y) - (x < y);
}

int pq_gguf_parse(pq_gguf *g, const uint8_t *data, size_t size, const char *name, polyq_err *err)
{
    pq_map keep = g->map;
    memset(g, 0, sizeof *g);
    g->map = keep;
    g->path = name;
    cursor c = {data, size, 0, name, err};
    uint32_t magic;
    uint64_t n_t, n_kv;
    if (get_u32(&c, &magic, "the header"))
        goto fail;
    if (magic != GGUF_MAGIC) {
        pq_fail(err, POLYQ_FORMAT, "%s: not a GGUF file (no \"GGUF\" magic)", name);
        goto fail;
    }
    if (get_u32(&c, &g->version, "the header") || get_u64(&c, &n_t, "the header") ||
        get_u64(&c, &n_kv, "the header"))
        goto fail;
    if (g->version != 3 && g->version != 2) {
        pq_fail(err, POLYQ_UNSUPPORTED, "%s: GGUF version %u (2 and 3 are read)", name, g->version);
        goto fail;
    }
    /* each key takes at least 12 bytes, each tensor at least 24: counts beyond that are lies */
    if (n_kv > (size - c.at) / 12 || n_t > (size - c.at) / 24 || n_kv > INT32_MAX ||
        n_t > INT32_MAX) {
        pq_fail(err, POLYQ_FORMAT,
                "%s: the header counts %llu keys and %llu tensors, more than the file can hold",
                name, (unsigned long long)n_kv, (unsigned long long)n_t);
        goto fail;
    }
    g->kv = calloc(n_kv ? (size_t)n_kv : 1, sizeof *g->kv);
    g->t = calloc(n_t ? (size_t)n_t : 1, sizeof *g->t);
    if (!g->kv || !g->t) {
        pq_fail(err, POLYQ_NOMEM, "out of memory reading %s", name);
        goto fail;
    }
    uint64_t align = ALIGN;
    for (uint64_t i = 0; i < n_kv; i++) {
        pq_gguf_kv *kv = &g->kv[g->n_kv];
        char *key = NULL;
        uint32_t t;
        if (get_str(&c, &key, "a metadata key"))
            goto fail;
        kv->key = key;
        g->n_kv++;
        if (get_u32(&c, &t, key))
            goto fail;
        kv->type = (int)t;
        kv->n = 1;
        if (t == PQ_GGUF_ARR) {
            uint32_t at;
            uint64_t n;
            if (get_u32(&c, &at, key) || get_u64(&c, &n, key))
                goto fail;
            if (at == PQ_GGUF_ARR) {
                pq_fail(err, POLYQ_UNSUPPORTED, "%s: metadata \"%s\" is an array of arrays", name,
                        key);
                goto fail;
            }
            if (at != PQ_GGUF_STR && !scalar_size((int)at)) { /* also when it has no elements */
                pq_fail(err, POLYQ_FORMAT, "%s: metadata \"%s\" is an array of unknown type %u",
                        name, key, at);
                goto fail;
            }
            if (n > size - c.at) {
                pq_fail(err, POLYQ_FORMAT,
                        "%s: metadata \"%s\" claims %llu elements, more than the file holds", name,
                        key, (unsigned long long)n);
                goto fail;
            }
            kv->arr_type = (int)at;
            kv->n = n;
            kv->at = data + c.at;
            for (uint64_t k = 0; k < n; k++)
                if (skip_value(&c, (int)at, key))
                    goto fail;
        } else {
            kv->at = data + c.at;
            if (skip_value(&c, (int)t, key))
                goto fail;
        }
        if (!strcmp(key, "general.alignment")) {
            uint32_t a = 0;
            if (t == PQ_GGUF_U32)
                memcpy(&a, kv->at, 4);
            if (a == 0 || (a & (a - 1)) || a > 65536) {
                pq_fail(err, POLYQ_FORMAT,
                        "%s: general.alignment must be a power of two up to 65536", name);
                goto fail;
            }
            align = a;
        }
    }
    for (uint64_t i = 0; i < n_t; i++) {
        pq_gguf_tensor *t = &g->t[g->n_t];
        char *tn = NULL;
        uint32_t nd, type;
        uint64_t off;
        if (get_str(&c, &tn, "a tensor name"))
            goto fail;
        t->name = tn;
        g->n_t++;
        if (get_u32(&c, &nd, tn))
            goto fail;
        if (nd < 1 || nd > 4) {
            pq_fail(err, POLYQ_FORMAT, "%s: tensor \"%s\" has %u dimensions (1 to 4 allowed)", name,
                    tn, nd);
            goto fail;
        }
        t->n_dims = (int)nd;
        uint64_t numel = 1;
        for (uint32_t d = 0; d < nd; d++) {
            if (get_u64(&c, &t->ne[d], tn))
                goto fail;
            if (t->ne[d] == 0 || t->ne[d] > ((uint64_t)1 << 40) ||
                numel > ((uint64_t)1 << 50) / t->ne[d]) {
                pq_fail(err, POLYQ_FORMAT, "%s: tensor \"%s\" has a dimension of %llu", name, tn,
                        (unsigned long long)t->ne[d]);
                goto fail;
            }
            numel *= t->ne[d];
        }
        if (get_u32(&c, &type, tn) || get_u64(&c, &off, tn))
            goto fail;
        int block;
        size_t bytes;
        pq_ggml_type_size(type, &block, &bytes);
        if (!block) {
            pq_fail(err, POLYQ_UNSUPPORTED,
                    "%s: tensor \"%s\" has ggml type %u, which polyq does not read", name, tn,
                    type);
            goto fail;
        }
        if (t->ne[0] % (uint64_t)block) {
            pq_fail(err, POLYQ_FORMAT, "%s: tensor \"%s\" has rows of %llu, not whole blocks of %d",
                    name, tn, (unsigned long long)t->ne[0], block);
            goto fail;
        }
        t->type = type;
        t->nbytes = (size_t)(numel / (uint64_t)block * bytes);
        t->data = (const uint8_t *)(uintptr_t)off; /* relative until the data section is known */
    }
    size_t data_start = (c.at + align - 1) / align * align;
    if (data_start > size && n_t) {
        pq_fail(err, POLYQ_FORMAT, "%s: no room for the tensor data after the header", name);
        goto fail;
    }
    for (size_t i = 0; i < g->n_t; i++) {
        uint64_t off = (uint64_t)(uintptr_t)g->t[i].data;
        if (off % align || off > size - data_start || g->t[i].nbytes > size - data_start - off) {
            pq_fail(err, POLYQ_FORMAT,
                    "%s: tensor \"%s\" (offset %llu, %zu bytes) lies outside the data section",
                    name, g->t[i].name, (unsigned long long)off, g->t[i].nbytes);
            goto fail;
        }
        g->t[i].data = data + data_start + off;
    }
    /* no two tensors share a name (a hash map of the names) or bytes (by offset, each against
     * the next): linear-time in the tensor count, and the lookups the loaders make are too */
    for (size_t i = 0; i < g->n_t; i++)
        if (index_name(&g->tensor_index, g->t[i].name, i, name,
                       "two tensors share the name \"%.60s\"", err))
            goto fail;
    for (size_t i = 0; i < g->n_kv; i++)
        if (index_name(&g->kv_index, g->kv[i].key, i, name, "the key \"%.60s\" appears twice", err))
            goto fail;
    if (g->n_t > 1) {
        const pq_gguf_tensor **by = malloc(g->n_t * sizeof *by);
        if (!by) {
            pq_fail(err, POLYQ_NOMEM, "out of memory checking %s", name);
            goto fail;
        }
        size_t n = 0;
        for (size_t i = 0; i < g->n_t; i++)
            if (g->t[i].nbytes)
                by[n++] = &g->t[i];
        qsort(by, n, sizeof *by, by_offset);
        for (size_t i = 0; i + 1 < n; i++)
            if (by[i]->data + by[i]->nbytes > by[i + 1]->data) {
                pq_fail(err, POLYQ_FORMAT, "%s: tensors \"%s\" and \"%s\" overlap", name,
                        by[i]->name, by[i + 1]->name);
                free(by);
                goto fail;
            }
        free(by);
    }
    return 0;
fail:
    pq_gguf_close(g);
    return -1;
}

int pq_gguf_open(pq_gguf *g, const char *path, polyq_err *err)
{
    memset(g, 0, sizeof *g);
    if (pq_map_file(&g->map, path, err))
        return -1;
    return pq_gguf_parse(g, g->map.data, g->map.size, path, err);
}

const pq_gguf_kv *pq_gguf_find_kv(const pq_gguf *g, const char *key)
{
    int32_t i = pq_strmap_get(&g->kv_index, key, strlen(key));
    return i >= 0 && (size_t)i < g->n_kv ? &g->kv[i] : NULL;
}

const pq_gguf_tensor *pq_gguf_find_tensor(const pq_gguf *g, const char *name)
{
    int32_t i = pq_strmap_get(&g->tensor_index, name, strlen(name));
    return i >= 0 && (size_t)i < g->n_t ? &g->t[i] : NULL;
}

int pq_gguf_get_int(const pq_gguf *g, const char *key, int64_t *out, polyq_err *err)
{
    const pq_gguf_kv *kv = pq_gguf_find_kv(g, key);
    if (!kv)
        return pq_fail(err, POLYQ_FORMAT, "%s: metadata \"%s\" is missing", g->path, key);
    int8_t i8;
    int16_t i16;
    int32_t i32;
    uint16_t u16;
    uint32_t u32;
    uint64_t u64;
    switch (kv->type) {
    case PQ_GGUF_U8:
        *out = kv->at[0];
        return 0;
    case PQ_GGUF_I8:
        memcpy(&i8, kv->at, 1);
        *out = i8;
        return 0;
    case PQ_GGUF_U16:
        memcpy(&u16, kv->at, 2);
        *out = u16;
        return 0;
    case PQ_GGUF_I16:
        memcpy(&i16, kv->at, 2);
        *out = i16;
        return 0;
    case PQ_GGUF_U32:
        memcpy(&u32, kv->at, 4);
        *out = u32;
        return 0;
    case PQ_GGUF_I32:
        memcpy(&i32, kv->at, 4);
        *out = i32;
        return 0;
    case PQ_GGUF_U64:
    case PQ_GGUF_I64:
        memcpy(&u64, kv->at, 8);
        if (u64 > INT64_MAX)
            break;
        *out = (int64_t)u64;
        return 0;
    default:
        break;
    }
    return pq_fail(err, POLYQ_FORMAT, "%s: metadata \"%s\" is not an integer", g->path, key);
}

int pq_gguf_get_str(const pq_gguf *g, const char *key, const char **s, size_t *len, polyq_err *err)
{
    const pq_gguf_kv *kv = pq_gguf_find_kv(g, key);
    if (!kv || kv->type != PQ_GGUF_STR)
        return pq_fail(err, POLYQ_FORMAT, "%s: metadata \"%s\" is %s", g->path, key,
                       kv ? "not a string" : "missing");
    uint64_t n;
    memcpy(&n, kv->at, 8);
    *s = (const char *)kv->at + 8;
    *len = (size_t)n;
    return 0;
}
