/* pytorch_model.bin (torch.save ZIP + pickle): strided views, dtypes and 0-dim tensors
 * against values set in tools/gen_fixtures.py; a pickle that calls os.system refused with its
 * name; non-ZIP and truncated files refused; a sharded checkpoint gives transformers' logits
 * (test_model.c). */
#include <stdlib.h>
#include <string.h>

#include "base/base.h"
#include "format/torchbin.h"
#include "test.h"

TEST(torchbin_views_and_dtypes)
{
    polyq_err err = {0};
    pq_tensors ts = {0};
    CHECK_OK(pq_tensors_open_torch(&ts, pq_test_fixture("torch/views.bin"), &err));
    const pq_tensor_info *base = pq_tensors_find(&ts, "base"), *t = pq_tensors_find(&ts, "t"),
                         *sl = pq_tensors_find(&ts, "slice"), *h = pq_tensors_find(&ts, "h"),
                         *bf = pq_tensors_find(&ts, "bf"), *i64 = pq_tensors_find(&ts, "i64"),
                         *sc = pq_tensors_find(&ts, "scalar");
    CHECK(base && t && sl && h && bf && i64 && sc);
    if (base && t && sl && h && bf && i64 && sc) {
        float v[12];
        CHECK(base->n_dims == 2 && base->shape[0] == 3 && base->shape[1] == 4);
        CHECK_OK(pq_tensor_to_f32(t, v, &err));
        CHECK(t->shape[0] == 4 && t->shape[1] == 3);
        for (int i = 0; i < 4; i++)
            for (int j = 0; j < 3; j++)
                CHECK_NEAR(v[i * 3 + j], j * 4 + i, 0);
        CHECK_OK(pq_tensor_to_f32(sl, v, &err));
        CHECK(sl->numel == 4 && v[0] == 5 && v[1] == 6 && v[2] == 9 && v[3] == 10);
        CHECK_OK(pq_tensor_to_f32(h, v, &err));
        CHECK(h->dtype == PQ_DT_F16 && v[11] == 11);
        CHECK_OK(pq_tensor_to_f32(bf, v, &err));
        CHECK(bf->dtype == PQ_DT_BF16 && v[7] == 7);
        CHECK(i64->dtype == PQ_DT_I64 && i64->numel == 5 && ((const int64_t *)i64->data)[4] == 4);
        CHECK_OK(pq_tensor_to_f32(sc, v, &err));
        CHECK(sc->n_dims == 0 && sc->numel == 1 && v[0] == 2.5f);
    }
    pq_tensors_close(&ts);
}

TEST(torchbin_refuses_code_and_damage)
{
    polyq_err err = {0};
    pq_tensors ts = {0};
    CHECK_FAILS(pq_tensors_open_torch(&ts, pq_test_fixture("torch/evil.bin"), &err),
                POLYQ_UNSUPPORTED, "refers to os system at offset");
    pq_tensors_close(&ts);
    /* not a ZIP (a pre-1.6 checkpoint starts with a pickle) */
    static const uint8_t legacy[] = {0x80, 0x02, 0x8a, 0x0a, 0x6c, 0xfc, 0x9c, 0x46, 0xf9, 0x20};
    CHECK_FAILS(pq_torch_add_buffer(&ts, "old.bin", legacy, sizeof legacy, &err), POLYQ_UNSUPPORTED,
                "torch before 1.6");
    /* every truncation of a real file fails cleanly */
    char *buf;
    size_t len;
    CHECK_OK(pq_read_file(pq_test_fixture("torch/views.bin"), 1 << 20, &buf, &len, &err));
    int failures = 0;
    for (size_t cut = 0; buf && cut < len; cut += 7) {
        pq_tensors t2 = {0};
        failures += pq_torch_add_buffer(&t2, "cut.bin", (const uint8_t *)buf, cut, &err) != 0;
        pq_tensors_close(&t2);
    }
    CHECK_INT(failures, (len + 6) / 7);
    free(buf);
}

static void put16(uint8_t *p, unsigned v)
{
    p[0] = (uint8_t)v;
    p[1] = (uint8_t)(v >> 8);
}

static void put32(uint8_t *p, uint32_t v)
{
    put16(p, v & 0xffff);
    put16(p + 2, v >> 16);
}

/* A stored (uncompressed) ZIP of one file, name, holding body; *size its length (heap). */
static uint8_t *zip_one(const char *name, const uint8_t *body, size_t n, size_t *size)
{
    size_t nl = strlen(name), at = 0;
    *size = 30 + nl + n + 46 + nl + 22;
    uint8_t *z = calloc(1, *size);
    put32(z, 0x04034b50); /* local header: method 0, sizes, name */
    put32(z + 18, (uint32_t)n);
    put32(z + 22, (uint32_t)n);
    put16(z + 26, (unsigned)nl);
    memcpy(z + 30, name, nl);
    memcpy(z + 30 + nl, body, n);
    at = 30 + nl + n;
    uint8_t *c = z + at; /* central directory entry */
    put32(c, 0x02014b50);
    put32(c + 20, (uint32_t)n);
    put32(c + 24, (uint32_t)n);
    put16(c + 28, (unsigned)nl);
    put32(c + 42, 0);
    memcpy(c + 46, name, nl);
    uint8_t *e = c + 46 + nl; /* end of central directory */
    put32(e, 0x06054b50);
    put16(e + 8, 1);
    put16(e + 10, 1);
    put32(e + 12, (uint32_t)(46 + nl));
    put32(e + 16, (uint32_t)at);
    return z;
}

/* Memory bounded by the file: a view larger than its storage (stride 0) is refused instead of
 * copied, and a pickle of a million nested one-tuples stops at the value limit. */
TEST(torchbin_memory_bounded_by_the_file)
{
    polyq_err err = {0};
    pq_tensors ts = {0};
    char *buf = NULL;
    size_t len = 0;
    CHECK_OK(pq_read_file(pq_test_fixture("torch/views.bin"), 1 << 20, &buf, &len, &err));
    /* tensor "t": size (4, 3) stride (1, 4) made size (255, 255) stride (0, 0) */
    static const uint8_t was[] = {'K', 0, 'K', 4, 'K', 3, 0x86, 'q', 16, 'K', 1, 'K', 4, 0x86};
    uint8_t *at = buf ? memmem(buf, len, was, sizeof was) : NULL;
    CHECK(at != NULL);
    if (at) {
        at[3] = at[5] = 255;
        at[10] = at[12] = 0;
        CHECK_FAILS(pq_torch_add_buffer(&ts, "broadcast.bin", (const uint8_t *)buf, len, &err),
                    POLYQ_UNSUPPORTED, "is a view of 65025 elements over a storage of 12");
        pq_tensors_close(&ts);
    }
    free(buf);
    size_t n = (1u << 20) + 16, zs;
    uint8_t *pkl = malloc(n + 4);
    pkl[0] = 0x80;
    pkl[1] = 2;
    pkl[2] = ')';
    memset(pkl + 3, 0x85, n - 3); /* TUPLE1, over and over */
    pkl[n] = '.';
    uint8_t *z = zip_one("a/data.pkl", pkl, n + 1, &zs);
    memset(&ts, 0, sizeof ts);
    CHECK_FAILS(pq_torch_add_buffer(&ts, "nested.bin", z, zs, &err), POLYQ_FORMAT,
                "more than 1048576 values");
    pq_tensors_close(&ts);
    free(z);
    free(pkl);
    /* MEMOIZE stores at len(memo), as Python's unpickler: after BINPUT 5, at 1 (not at the first
     * free slot, 0) */
    static const uint8_t memo[] = {0x80, 2,   '}', 'q', 5, 'X', 1,   0,   0,   0, 'k', ')', 0x94,
                                   's',  'X', 2,   0,   0, 0,   'k', '2', 'h', 1, 's', '.'};
    z = zip_one("a/data.pkl", memo, sizeof memo, &zs);
    memset(&ts, 0, sizeof ts); /* memo[1] found: the dict holds tuples, not tensors */
    CHECK_FAILS(pq_torch_add_buffer(&ts, "memo.bin", z, zs, &err), POLYQ_FORMAT,
                "state dict entry 0 is not name -> tensor");
    pq_tensors_close(&ts);
    free(z);
}
