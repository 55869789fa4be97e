/* torch.save checkpoints (layout and allow-list in torchbin.h). Every size and offset read
 * from the file is checked before use; the interpreter bounds its stack, memo and values. */
#include "format/torchbin.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/base.h"
#include "base/strmap.h"

/* ---- ZIP ----------------------------------------------------------------------------- */

typedef struct zentry {
    const char *name;
    size_t name_len;
    const uint8_t *data;
    size_t size;
} zentry;

static uint16_t rd16(const uint8_t *p)
{
    return (uint16_t)(p[0] | p[1] << 8);
}
static uint32_t rd32(const uint8_t *p)
{
    return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}
static uint64_t rd64(const uint8_t *p)
{
    return (uint64_t)rd32(p) | (uint64_t)rd32(p + 4) << 32;
}

static int zip_entries(const char *what, const uint8_t *b, size_t n, zentry **out, size_t *n_out,
                       polyq_err *err)
{
    *out = NULL;
    *n_out = 0;
    if (n >= 4 && (b[0] != 'P' || b[1] != 'K'))
        return pq_fail(err, POLYQ_UNSUPPORTED,
                       "%s: not a ZIP archive (a checkpoint from torch before 1.6 or not from "
                       "torch.save); re-save it with a current torch or convert it to safetensors",
                       what);
    if (n < 22)
        return pq_fail(err, POLYQ_FORMAT, "%s: too short for a ZIP archive", what);
    size_t e = n - 22, stop = n > 22 + 65535 ? n - 22 - 65535 : 0;
    for (;; e--) {
        if (rd32(b + e) == 0x06054b50)
            break;
        if (e == stop)
            return pq_fail(err, POLYQ_FORMAT, "%s: no ZIP end-of-directory record", what);
    }
    uint64_t count = rd16(b + e + 10), dsize = rd32(b + e + 12), doff = rd32(b + e + 16);
    if ((count == 0xffff || dsize == 0xffffffff || doff == 0xffffffff) && e >= 20 &&
        rd32(b + e - 20) == 0x07064b50) {
        uint64_t z = rd64(b + e - 20 + 8);
        if (n < 56 || z > n - 56 || rd32(b + z) != 0x06064b50)
            return pq_fail(err, POLYQ_FORMAT, "%s: bad zip64 end-of-directory record", what);
        count = rd64(b + z + 32);
        dsize = rd64(b + z + 40);
        doff = rd64(b + z + 48);
    }
    if (doff > n || dsize > n - doff || count > dsize / 46)
        return pq_fail(err, POLYQ_FORMAT, "%s: ZIP central directory out of range", what);
    zentry *ents = pq_calloc_array(count ? count : 1, sizeof *ents);
    if (!ents)
        return pq_fail(err, POLYQ_NOMEM, "%s: out of memory", what);
    const uint8_t *p = b + doff, *end = b + doff + dsize;
    for (uint64_t i = 0; i < count; i++) {
        if ((size_t)(end - p) < 46 || rd32(p) != 0x02014b50)
            goto bad;
        uint16_t method = rd16(p + 10), nl = rd16(p + 28), xl = rd16(p + 30), cl = rd16(p + 32);
        uint64_t csize = rd32(p + 20), usize = rd32(p + 24), loff = rd32(p + 42);
        if ((size_t)(end - p) < 46u + nl + xl + cl)
            goto bad;
        /* zip64 extra field: the 64-bit values replace the saturated ones, in order */
        for (const uint8_t *x = p + 46 + nl, *xe = x + xl; xe - x >= 4;) {
            uint16_t id = rd16(x), len = rd16(x + 2);
            if ((size_t)(xe - x - 4) < len)
                goto bad;
            if (id == 1) {
                const uint8_t *v = x + 4, *ve = v + len;
                if (usize == 0xffffffff && ve - v >= 8) {
                    usize = rd64(v);
                    v += 8;
                }
                if (csize == 0xffffffff && ve - v >= 8) {
                    csize = rd64(v);
                    v += 8;
                }
                if (loff == 0xffffffff && ve - v >= 8) {
                    loff = rd64(v);
                }
            }
            x += 4 + len;
        }
        if (loff > n || n - loff < 30 || rd32(b + loff) != 0x04034b50)
            goto bad;
        uint64_t data = loff + 30 + (uint64_t)rd16(b + loff + 26) + rd16(b + loff + 28);
        if (data > n || csize > n - data)
            goto bad;
        ents[i] = (zentry){(const char *)p + 46, nl, b + data, (size_t)csize};
        if (method != 0 || csize != usize)
            ents[i].data = NULL; /* compressed: refused if it is ever needed */
        p += 46 + nl + xl + cl;
    }
    *out = ents;
    *n_out = (size_t)count;
    return 0;
bad:
    free(ents);
    return pq_fail(err, POLYQ_FORMAT, "%s: damaged ZIP central directory", what);
}

/* The entry prefix + name through the archive's name index (built once: constant time per
 * tensor however many the checkpoint holds), or NULL. */
static const zentry *zip_find(const zentry *e, const pq_strmap *index, const char *prefix,
                              size_t pl, const char *name)
{
    char full[600];
    size_t nl = strlen(name);
    if (pl + nl >= sizeof full)
        return NULL;
    memcpy(full, prefix, pl);
    memcpy(full + pl, name, nl);
    int32_t i = pq_strmap_get(index, full, pl + nl);
    return i >= 0 ? &e[i] : NULL;
}

/* ---- the pickle interpreter ------------------------------------------------------------ */

typedef enum {
    V_NONE,
    V_BOOL,
    V_INT,
    V_FLOAT,
    V_STR,
    V_TUPLE,
    V_LIST,
    V_DICT,
    V_GLOBAL,
    V_STORAGE,
    V_TENSOR,
    V_MARK
} vkind;

typedef struct val val;
struct val {
    vkind k;
    int64_t i;
    double f;
    char *s; /* V_STR, V_GLOBAL ("module name"), V_STORAGE key */
    size_t slen;
    val **items; /* V_TUPLE, V_LIST; V_DICT as key, value pairs */
    size_t n, cap;
    pq_dtype dtype; /* V_STORAGE */
    val *storage;   /* V_TENSOR */
    int64_t offset, shape[PQ_MAX_DIMS], stride[PQ_MAX_DIMS];
    int n_dims;
    val *next_alloc;
};

typedef struct vm {
    const char *what;
    polyq_err *err;
    val *all; /* every value, for freeing */
    size_t n_vals;
    val **stack;
    size_t sp, stack_cap;
    val **memo;
    size_t memo_cap;
    size_t memo_n; /* entries set: MEMOIZE stores at this index, as Python's len(memo) */
    int failed;
} vm;

/* Limits of the pickle interpreter (README, Robustness): a checkpoint of 100k tensors needs about
 * a tenth of these values; each value takes a few hundred bytes, so at most a few hundred MB */
#define MAX_VALUES (1u << 20)
#define MAX_STACK (1u << 20)
#define MAX_MEMO (1u << 20)

static val *mk(vm *m, vkind k)
{
    if (m->n_vals >= MAX_VALUES) {
        pq_fail(m->err, POLYQ_FORMAT, "%s: the pickle holds more than %u values (polyq's limit)",
                m->what, MAX_VALUES);
        return NULL;
    }
    val *v = calloc(1, sizeof *v);
    if (!v) {
        pq_fail(m->err, POLYQ_NOMEM, "%s: out of memory reading the pickle", m->what);
        return NULL;
    }
    v->k = k;
    v->next_alloc = m->all;
    m->all = v;
    m->n_vals++;
    return v;
}

static void vm_free(vm *m)
{
    for (val *v = m->all, *nx; v; v = nx) {
        nx = v->next_alloc;
        free(v->s);
        free(v->items);
        free(v);
    }
    free(m->stack);
    free(m->memo);
}

static int push(vm *m, val *v)
{
    if (!v)
        return -1;
    if (m->sp == m->stack_cap) {
        if (m->stack_cap >= MAX_STACK)
            return pq_fail(m->err, POLYQ_FORMAT, "%s: pickle stack too deep", m->what), -1;
        size_t nc = m->stack_cap ? m->stack_cap * 2 : 64;
        val **ns = realloc(m->stack, nc * sizeof *ns);
        if (!ns)
            return pq_fail(m->err, POLYQ_NOMEM, "%s: out of memory", m->what), -1;
        m->stack = ns;
        m->stack_cap = nc;
    }
    m->stack[m->sp++] = v;
    return 0;
}

static int add_item(vm *m, val *c, val *v)
{
    if (c->n == c->cap) {
        size_t nc = c->cap ? c->cap * 2 : 4;
        val **ni = realloc(c->items, nc * sizeof *ni);
        if (!ni)
            return pq_fail(m->err, POLYQ_NOMEM, "%s: out of memory", m->what), -1;
        c->items = ni;
        c->cap = nc;
    }
    c->items[c->n++] = v;
    return 0;
}

/* index of the topmost MARK, or -1 */
static long find_mark(vm *m)
{
    for (size_t i = m->sp; i-- > 0;)
        if (m->stack[i]->k == V_MARK)
            return (long)i;
    return -1;
}

static const struct {
    const char *name;
    pq_dtype dt;
} storages[] = {
    {"torch FloatStorage", PQ_DT_F32},     {"torch HalfStorage", PQ_DT_F16},
    {"torch BFloat16Storage", PQ_DT_BF16}, {"torch DoubleStorage", PQ_DT_F64},
    {"torch LongStorage", PQ_DT_I64},      {"torch IntStorage", PQ_DT_I32},
    {"torch ShortStorage", PQ_DT_I16},     {"torch CharStorage", PQ_DT_I8},
    {"torch ByteStorage", PQ_DT_U8},       {"torch BoolStorage", PQ_DT_BOOL},
};

static bool global_allowed(const char *g)
{
    if (!strcmp(g, "collections OrderedDict") || !strcmp(g, "torch._utils _rebuild_tensor_v2") ||
        !strcmp(g, "torch._utils _rebuild_parameter"))
        return true;
    for (size_t i = 0; i < sizeof storages / sizeof storages[0]; i++)
        if (!strcmp(g, storages[i].name))
            return true;
    return false;
}

static int int_list(vm *m, const val *t, int64_t *out, int *n, const char *what_arg)
{
    if (t->k != V_TUPLE || t->n > PQ_MAX_DIMS)
        return pq_fail(m->err, POLYQ_FORMAT, "%s: tensor %s is not a tuple of at most %d ints",
                       m->what, what_arg, PQ_MAX_DIMS),
               -1;
    for (size_t i = 0; i < t->n; i++) {
        if (t->items[i]->k != V_INT || t->items[i]->i < 0)
            return pq_fail(m->err, POLYQ_FORMAT, "%s: tensor %s holds a non-size", m->what,
                           what_arg),
                   -1;
        out[i] = t->items[i]->i;
    }
    *n = (int)t->n;
    return 0;
}

/* REDUCE: only the allow-listed callables. */
static val *reduce(vm *m, val *fn, val *args, size_t at)
{
    if (fn->k != V_GLOBAL || args->k != V_TUPLE) {
        pq_fail(m->err, POLYQ_FORMAT, "%s: pickle REDUCE at offset %zu on something not callable",
                m->what, at);
        return NULL;
    }
    if (!strcmp(fn->s, "collections OrderedDict")) {
        if (args->n)
            pq_fail(m->err, POLYQ_FORMAT, "%s: OrderedDict with arguments at offset %zu", m->what,
                    at);
        return args->n ? NULL : mk(m, V_DICT);
    }
    if (!strcmp(fn->s, "torch._utils _rebuild_parameter")) {
        if (args->n < 1 || args->items[0]->k != V_TENSOR) {
            pq_fail(m->err, POLYQ_FORMAT, "%s: _rebuild_parameter without a tensor at offset %zu",
                    m->what, at);
            return NULL;
        }
        return args->items[0];
    }
    if (!strcmp(fn->s, "torch._utils _rebuild_tensor_v2")) {
        val *t = mk(m, V_TENSOR);
        int ns = 0, nst = 0;
        if (!t)
            return NULL;
        if (args->n < 4 || args->items[0]->k != V_STORAGE || args->items[1]->k != V_INT ||
            args->items[1]->i < 0) {
            pq_fail(m->err, POLYQ_FORMAT, "%s: _rebuild_tensor_v2 arguments at offset %zu", m->what,
                    at);
            return NULL;
        }
        t->storage = args->items[0];
        t->offset = args->items[1]->i;
        if (int_list(m, args->items[2], t->shape, &ns, "size") ||
            int_list(m, args->items[3], t->stride, &nst, "stride"))
            return NULL;
        if (ns != nst) {
            pq_fail(m->err, POLYQ_FORMAT, "%s: tensor size and stride differ in length", m->what);
            return NULL;
        }
        t->n_dims = ns;
        return t;
    }
    pq_fail(m->err, POLYQ_UNSUPPORTED, "%s: pickle calls %s, which is not allowed", m->what, fn->s);
    return NULL;
}

/* Runs the pickle; *root is the value left by STOP. */
static int run_pickle(vm *m, const uint8_t *p, size_t n, val **root)
{
    size_t i = 0;
#define NEED(k)                                                                                    \
    do {                                                                                           \
        if (n - i < (size_t)(k))                                                                   \
            return pq_fail(m->err, POLYQ_FORMAT, "%s: pickle truncated at offset %zu", m->what,    \
                           i);                                                                     \
    } while (0)
#define POP(v)                                                                                     \
    do {                                                                                           \
        if (!m->sp || m->stack[m->sp - 1]->k == V_MARK)                                            \
            return pq_fail(m->err, POLYQ_FORMAT, "%s: pickle stack underflow at offset %zu",       \
                           m->what, at);                                                           \
        v = m->stack[--m->sp];                                                                     \
    } while (0)
#define PUSH(v)                                                                                    \
    do {                                                                                           \
        if (push(m, (v)))                                                                          \
            return m->err->code ? m->err->code : POLYQ_NOMEM;                                      \
    } while (0)
    while (i < n) {
        size_t at = i;
        uint8_t op = p[i++];
        val *v = NULL, *a = NULL, *b = NULL;
        switch (op) {
        case 0x80:
            NEED(1);
            i++;
            break; /* PROTO */
        case 0x95:
            NEED(8);
            i += 8;
            break; /* FRAME */
        case '}':
            PUSH(mk(m, V_DICT));
            break; /* EMPTY_DICT */
        case ']':
            PUSH(mk(m, V_LIST));
            break; /* EMPTY_LIST */
        case ')':
            PUSH(mk(m, V_TUPLE));
            break; /* EMPTY_TUPLE */
        case '(':
            PUSH(mk(m, V_MARK));
            break; /* MARK */
        case 'N':
            PUSH(mk(m, V_NONE));
            break;
        case 0x88:
        case 0x89: /* NEWTRUE, NEWFALSE */
            if (!(v = mk(m, V_BOOL)))
                return m->err->code;
            v->i = op == 0x88;
            PUSH(v);
            break;
        case 'K':
        case 'M':
        case 'J': { /* BININT1, BININT2, BININT */
            size_t k = op == 'K' ? 1 : op == 'M' ? 2 : 4;
            NEED(k);
            if (!(v = mk(m, V_INT)))
                return m->err->code;
            v->i = k == 1 ? p[i] : k == 2 ? rd16(p + i) : (int32_t)rd32(p + i);
            i += k;
            PUSH(v);
            break;
        }
        case 0x8a: { /* LONG1 */
            NEED(1);
            size_t k = p[i++];
            NEED(k);
            if (k > 8)
                return pq_fail(m->err, POLYQ_FORMAT, "%s: integer of %zu bytes at offset %zu",
                               m->what, k, at);
            uint64_t x = 0;
            for (size_t j = 0; j < k; j++)
                x |= (uint64_t)p[i + j] << (8 * j);
            if (k && k < 8 && (p[i + k - 1] & 0x80))
                x |= ~0ULL << (8 * k);
            if (!(v = mk(m, V_INT)))
                return m->err->code;
            v->i = (int64_t)x;
            i += k;
            PUSH(v);
            break;
        }
        case 'G': { /* BINFLOAT, big-endian */
            NEED(8);
            uint64_t x = 0;
            for (int j = 0; j < 8; j++)
                x = x << 8 | p[i + j];
            if (!(v = mk(m, V_FLOAT)))
                return m->err->code;
            memcpy(&v->f, &x, 8);
            i += 8;
            PUSH(v);
            break;
        }
        case 'X':
        case 0x8c:
        case 0x8d: { /* BINUNICODE, SHORT_BINUNICODE, BINUNICODE8 */
            size_t hl = op == 'X' ? 4 : op == 0x8c ? 1 : 8;
            NEED(hl);
            uint64_t len = hl == 1 ? p[i] : hl == 4 ? rd32(p + i) : rd64(p + i);
            i += hl;
            NEED(len);
            if (!(v = mk(m, V_STR)) || !(v->s = malloc((size_t)len + 1)))
                return pq_fail(m->err, POLYQ_NOMEM, "%s: out of memory", m->what);
            memcpy(v->s, p + i, (size_t)len);
            v->s[len] = 0;
            v->slen = (size_t)len;
            i += (size_t)len;
            PUSH(v);
            break;
        }
        case 'c': { /* GLOBAL "module\nname\n" */
            const uint8_t *nl1 = memchr(p + i, '\n', n - i);
            const uint8_t *nl2 = nl1 ? memchr(nl1 + 1, '\n', (size_t)(p + n - nl1 - 1)) : NULL;
            if (!nl2)
                return pq_fail(m->err, POLYQ_FORMAT, "%s: pickle GLOBAL truncated at offset %zu",
                               m->what, at);
            size_t l1 = (size_t)(nl1 - (p + i)), l2 = (size_t)(nl2 - nl1 - 1);
            if (!(v = mk(m, V_GLOBAL)) || !(v->s = malloc(l1 + l2 + 2)))
                return pq_fail(m->err, POLYQ_NOMEM, "%s: out of memory", m->what);
            memcpy(v->s, p + i, l1);
            v->s[l1] = ' ';
            memcpy(v->s + l1 + 1, nl1 + 1, l2);
            v->s[l1 + 1 + l2] = 0;
            i = (size_t)(nl2 + 1 - p);
            if (!global_allowed(v->s))
                return pq_fail(m->err, POLYQ_UNSUPPORTED,
                               "%s: pickle refers to %s at offset %zu, which is not allowed",
                               m->what, v->s, at);
            PUSH(v);
            break;
        }
        case 0x93: { /* STACK_GLOBAL */
            POP(b);
            POP(a);
            if (a->k != V_STR || b->k != V_STR)
                return pq_fail(m->err, POLYQ_FORMAT, "%s: STACK_GLOBAL without names at offset %zu",
                               m->what, at);
            if (!(v = mk(m, V_GLOBAL)) || !(v->s = pq_asprintf("%s %s", a->s, b->s)))
                return pq_fail(m->err, POLYQ_NOMEM, "%s: out of memory", m->what);
            if (!global_allowed(v->s))
                return pq_fail(m->err, POLYQ_UNSUPPORTED,
                               "%s: pickle refers to %s at offset %zu, which is not allowed",
                               m->what, v->s, at);
            PUSH(v);
            break;
        }
        case 'q':
        case 'r':
        case 0x94: { /* BINPUT, LONG_BINPUT, MEMOIZE */
            size_t idx;
            if (op == 0x94) {
                idx = m->memo_n; /* Python's memo[len(memo)] = stack[-1] */
            } else {
                NEED(op == 'q' ? 1 : 4);
                idx = op == 'q' ? p[i] : rd32(p + i);
                i += op == 'q' ? 1 : 4;
            }
            if (!m->sp)
                return pq_fail(m->err, POLYQ_FORMAT, "%s: memo of an empty stack at offset %zu",
                               m->what, at);
            if (idx >= MAX_MEMO)
                return pq_fail(m->err, POLYQ_FORMAT, "%s: memo index %zu too large", m->what, idx);
            if (idx >= m->memo_cap) {
                size_t nc = m->memo_cap ? m->memo_cap : 64;
                while (nc <= idx)
                    nc *= 2;
                val **nm = realloc(m->memo, nc * sizeof *nm);
                if (!nm)
                    return pq_fail(m->err, POLYQ_NOMEM, "%s: out of memory", m->what);
                memset(nm + m->memo_cap, 0, (nc - m->memo_cap) * sizeof *nm);
                m->memo = nm;
                m->memo_cap = nc;
            }
            m->memo_n += !m->memo[idx];
            m->memo[idx] = m->stack[m->sp - 1];
            break;
        }
        case 'h':
        case 'j': { /* BINGET, LONG_BINGET */
            NEED(op == 'h' ? 1 : 4);
            size_t idx = op == 'h' ? p[i] : rd32(p + i);
            i += op == 'h' ? 1 : 4;
            if (idx >= m->memo_cap || !m->memo[idx])
                return pq_fail(m->err, POLYQ_FORMAT, "%s: memo entry %zu is empty at offset %zu",
                               m->what, idx, at);
            PUSH(m->memo[idx]);
            break;
        }
        case 't':
        case 'l': { /* TUPLE, LIST: items since MARK */
            long mk_at = find_mark(m);
            if (mk_at < 0)
                return pq_fail(m->err, POLYQ_FORMAT, "%s: no MARK for offset %zu", m->what, at);
            if (!(v = mk(m, op == 't' ? V_TUPLE : V_LIST)))
                return m->err->code;
            for (size_t j = (size_t)mk_at + 1; j < m->sp; j++)
                if (add_item(m, v, m->stack[j]))
                    return m->err->code;
            m->sp = (size_t)mk_at;
            PUSH(v);
            break;
        }
        case 0x85:
        case 0x86:
        case 0x87: { /* TUPLE1..3 */
            size_t k = (size_t)(op - 0x84);
            if (m->sp < k)
                return pq_fail(m->err, POLYQ_FORMAT, "%s: pickle stack underflow at offset %zu",
                               m->what, at);
            if (!(v = mk(m, V_TUPLE)))
                return m->err->code;
            for (size_t j = m->sp - k; j < m->sp; j++) {
                if (m->stack[j]->k == V_MARK)
                    return pq_fail(m->err, POLYQ_FORMAT, "%s: bad tuple at offset %zu", m->what,
                                   at);
                if (add_item(m, v, m->stack[j]))
                    return m->err->code;
            }
            m->sp -= k;
            PUSH(v);
            break;
        }
        case 'Q': { /* BINPERSID: ('storage', type, key, loc, numel) */
            POP(a);
            if (a->k != V_TUPLE || a->n < 5 || a->items[0]->k != V_STR ||
                strcmp(a->items[0]->s, "storage") || a->items[1]->k != V_GLOBAL ||
                a->items[2]->k != V_STR || a->items[4]->k != V_INT || a->items[4]->i < 0)
                return pq_fail(m->err, POLYQ_FORMAT,
                               "%s: persistent id at offset %zu is not a storage", m->what, at);
            if (!(v = mk(m, V_STORAGE)))
                return m->err->code;
            v->dtype = PQ_DT_COUNT;
            for (size_t j = 0; j < sizeof storages / sizeof storages[0]; j++)
                if (!strcmp(a->items[1]->s, storages[j].name))
                    v->dtype = storages[j].dt;
            if (v->dtype == PQ_DT_COUNT)
                return pq_fail(m->err, POLYQ_UNSUPPORTED, "%s: storage type %s", m->what,
                               a->items[1]->s);
            if (!(v->s = pq_strdup(a->items[2]->s)))
                return pq_fail(m->err, POLYQ_NOMEM, "%s: out of memory", m->what);
            v->i = a->items[4]->i;
            PUSH(v);
            break;
        }
        case 'R': { /* REDUCE */
            POP(a);
            POP(b);
            PUSH(reduce(m, b, a, at));
            break;
        }
        case 's': { /* SETITEM */
            POP(b);
            POP(a);
            if (!m->sp || m->stack[m->sp - 1]->k != V_DICT)
                return pq_fail(m->err, POLYQ_FORMAT, "%s: SETITEM without a dict at offset %zu",
                               m->what, at);
            if (add_item(m, m->stack[m->sp - 1], a) || add_item(m, m->stack[m->sp - 1], b))
                return m->err->code;
            break;
        }
        case 'u':
        case 'e': { /* SETITEMS, APPENDS */
            long mk_at = find_mark(m);
            if (mk_at < 1 || m->stack[mk_at - 1]->k != (op == 'u' ? V_DICT : V_LIST) ||
                (op == 'u' && (m->sp - (size_t)mk_at - 1) % 2))
                return pq_fail(m->err, POLYQ_FORMAT, "%s: %s without a %s at offset %zu", m->what,
                               op == 'u' ? "SETITEMS" : "APPENDS", op == 'u' ? "dict" : "list", at);
            for (size_t j = (size_t)mk_at + 1; j < m->sp; j++)
                if (add_item(m, m->stack[mk_at - 1], m->stack[j]))
                    return m->err->code;
            m->sp = (size_t)mk_at;
            break;
        }
        case 'a': { /* APPEND */
            POP(a);
            if (!m->sp || m->stack[m->sp - 1]->k != V_LIST)
                return pq_fail(m->err, POLYQ_FORMAT, "%s: APPEND without a list at offset %zu",
                               m->what, at);
            if (add_item(m, m->stack[m->sp - 1], a))
                return m->err->code;
            break;
        }
        case '.': /* STOP */
            POP(v);
            *root = v;
            return 0;
        default:
            return pq_fail(m->err, POLYQ_UNSUPPORTED,
                           "%s: pickle opcode 0x%02x at offset %zu is not allowed", m->what, op,
                           at);
        }
    }
#undef NEED
#undef POP
#undef PUSH
    return pq_fail(m->err, POLYQ_FORMAT, "%s: pickle ends without STOP", m->what);
}

/* ---- tensors ----------------------------------------------------------------------------- */

static int add_tensor(pq_tensors *ts, const char *what, const char *name, const val *t,
                      const zentry *ents, const pq_strmap *index, const char *prefix, size_t pl,
                      polyq_err *err)
{
    char key[300];
    snprintf(key, sizeof key, "data/%s", t->storage->s);
    const zentry *z = zip_find(ents, index, prefix, pl, key);
    size_t dsz = pq_dtype_size(t->storage->dtype), snumel;
    if (!z)
        return pq_fail(err, POLYQ_FORMAT, "%s: tensor \"%s\" refers to missing storage %s", what,
                       name, key);
    if (!z->data)
        return pq_fail(err, POLYQ_UNSUPPORTED, "%s: storage %s is compressed", what, key);
    if (!pq_mul_size((size_t)t->storage->i, dsz, &snumel) || snumel > z->size)
        return pq_fail(err, POLYQ_FORMAT, "%s: storage %s is shorter than its %lld elements", what,
                       key, (long long)t->storage->i);
    /* the last element any index reaches must lie inside the storage */
    size_t numel = 1, last = (size_t)t->offset, expect = 1;
    bool is_contig = true;
    for (int d = t->n_dims - 1; d >= 0; d--) {
        size_t ext;
        if (!pq_mul_size(numel, (size_t)t->shape[d], &numel))
            return pq_fail(err, POLYQ_FORMAT, "%s: tensor \"%s\" size overflows", what, name);
        if (t->shape[d] > 1 && (uint64_t)t->stride[d] != expect)
            is_contig = false;
        if (t->shape[d] && (!pq_mul_size((size_t)(t->shape[d] - 1), (size_t)t->stride[d], &ext) ||
                            !pq_add_size(last, ext, &last)))
            return pq_fail(err, POLYQ_FORMAT, "%s: tensor \"%s\" strides overflow", what, name);
        if (!pq_mul_size(expect, (size_t)t->shape[d], &expect))
            return pq_fail(err, POLYQ_FORMAT, "%s: tensor \"%s\" size overflows", what, name);
    }
    if (numel && last >= (size_t)t->storage->i)
        return pq_fail(err, POLYQ_FORMAT, "%s: tensor \"%s\" reaches past its storage", what, name);
    if (is_contig || numel == 0)
        return pq_tensors_add(ts, what, name, t->storage->dtype, t->n_dims, t->shape,
                              z->data + (size_t)t->offset * dsz, NULL, err);
    /* a strided view: gathered into an owned copy, never larger than the storage it views (a
     * view with stride 0 could otherwise ask for any amount of memory from a few bytes) */
    if (numel > (size_t)t->storage->i)
        return pq_fail(err, POLYQ_UNSUPPORTED,
                       "%s: tensor \"%s\" is a view of %zu elements over a storage of %lld (a "
                       "broadcast view, stride 0): save it with .contiguous() or .clone()",
                       what, name, numel, (long long)t->storage->i);
    uint8_t *copy = pq_alloc_array(numel, dsz);
    if (!copy)
        return pq_fail(err, POLYQ_NOMEM, "out of memory");
    for (size_t e = 0; e < numel; e++) {
        size_t rem = e, src = (size_t)t->offset;
        for (int d = t->n_dims - 1; d >= 0; d--) {
            src += (rem % (size_t)t->shape[d]) * (size_t)t->stride[d];
            rem /= (size_t)t->shape[d];
        }
        memcpy(copy + e * dsz, z->data + src * dsz, dsz);
    }
    return pq_tensors_add(ts, what, name, t->storage->dtype, t->n_dims, t->shape, copy, copy, err);
}

int pq_torch_add_buffer(pq_tensors *ts, const char *what, const uint8_t *buf, size_t size,
                        polyq_err *err)
{
    zentry *ents = NULL;
    size_t n_ents = 0;
    int rc = zip_entries(what, buf, size, &ents, &n_ents, err);
    if (rc)
        return rc;
    const zentry *pkl = NULL;
    for (size_t i = 0; i < n_ents && !pkl; i++)
        if (ents[i].name_len >= 8 && !memcmp(ents[i].name + ents[i].name_len - 8, "data.pkl", 8) &&
            (ents[i].name_len == 8 || ents[i].name[ents[i].name_len - 9] == '/'))
            pkl = &ents[i];
    if (!pkl || !pkl->data) {
        free(ents);
        return pq_fail(err, POLYQ_FORMAT, "%s: no (uncompressed) data.pkl in the archive", what);
    }
    size_t pl = pkl->name_len - 8;
    pq_strmap index = {0}; /* entry name -> entry (the first of equal names) */
    for (size_t i = 0; i < n_ents && !rc; i++)
        if (ents[i].name_len < INT32_MAX &&
            pq_strmap_put(&index, ents[i].name, ents[i].name_len, (int32_t)i) < 0)
            rc = pq_fail(err, POLYQ_NOMEM, "%s: out of memory", what);
    vm m = {.what = what, .err = err};
    val *root = NULL;
    if (!rc)
        rc = run_pickle(&m, pkl->data, pkl->size, &root);
    if (!rc && root->k != V_DICT)
        rc = pq_fail(err, POLYQ_FORMAT, "%s: the pickle is not a state dict", what);
    for (size_t i = 0; !rc && i + 1 < root->n; i += 2) {
        const val *k = root->items[i], *v = root->items[i + 1];
        if (k->k != V_STR || v->k != V_TENSOR)
            rc = pq_fail(err, POLYQ_FORMAT, "%s: state dict entry %zu is not name -> tensor", what,
                         i / 2);
        else
            rc = add_tensor(ts, what, k->s, v, ents, &index, pkl->name, pl, err);
    }
    vm_free(&m);
    pq_strmap_free(&index);
    free(ents);
    return rc;
}

int pq_tensors_open_torch(pq_tensors *ts, const char *path, polyq_err *err)
{
    return pq_tensors_open_with(ts, path, pq_torch_add_buffer, err);
}
