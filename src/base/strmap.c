/* Hash maps for the tokenizer: linear probing, power-of-two tables kept under 50% load. */
#include "base/strmap.h"

#include <stdlib.h>
#include <string.h>

#include "base/base.h"

static uint32_t hash_bytes(const char *k, size_t n)
{
    uint64_t h = pq_fnv1a(PQ_FNV_OFFSET, k, n);
    return (uint32_t)(h ^ (h >> 32));
}

static int strmap_grow(pq_strmap *m)
{
    size_t ns = m->n_slots ? m->n_slots * 2 : 1024;
    uint32_t *slots = pq_calloc_array(ns, sizeof *slots);
    if (!slots)
        return -1;
    for (size_t i = 0; i < m->n; i++) {
        size_t j = m->entries[i].hash & (ns - 1);
        while (slots[j])
            j = (j + 1) & (ns - 1);
        slots[j] = (uint32_t)i + 1;
    }
    free(m->slots);
    m->slots = slots;
    m->n_slots = ns;
    return 0;
}

int pq_strmap_put(pq_strmap *m, const char *key, size_t len, int32_t value)
{
    if (len > UINT32_MAX / 2)
        return -1;
    if ((m->n + 1) * 2 > m->n_slots && strmap_grow(m) != 0)
        return -1;
    uint32_t h = hash_bytes(key, len);
    size_t j = h & (m->n_slots - 1);
    while (m->slots[j]) {
        struct pq_strmap_entry *e = &m->entries[m->slots[j] - 1];
        if (e->hash == h && e->len == len && memcmp(m->arena + e->off, key, len) == 0)
            return 1;
        j = (j + 1) & (m->n_slots - 1);
    }
    if (m->n == m->cap) {
        size_t nc = m->cap ? m->cap * 2 : 1024;
        void *ne = realloc(m->entries, nc * sizeof *m->entries);
        if (!ne)
            return -1;
        m->entries = ne;
        m->cap = nc;
    }
    if (m->arena_len + len + 1 > m->arena_cap) {
        size_t nc = m->arena_cap ? m->arena_cap * 2 : 1 << 16;
        while (nc < m->arena_len + len + 1)
            nc *= 2;
        if (nc > UINT32_MAX)
            return -1;
        char *na = realloc(m->arena, nc);
        if (!na)
            return -1;
        m->arena = na;
        m->arena_cap = nc;
    }
    memcpy(m->arena + m->arena_len, key, len);
    m->arena[m->arena_len + len] = 0;
    m->entries[m->n] = (struct pq_strmap_entry){(uint32_t)m->arena_len, (uint32_t)len, value, h};
    m->arena_len += len + 1;
    m->slots[j] = (uint32_t)++m->n;
    return 0;
}

int32_t pq_strmap_get(const pq_strmap *m, const char *key, size_t len)
{
    return m->n_slots ? pq_strmap_get_fnv(m, key, len, pq_fnv1a(PQ_FNV_OFFSET, key, len)) : -1;
}

int32_t pq_strmap_get_fnv(const pq_strmap *m, const char *key, size_t len, uint64_t fnv)
{
    if (!m->n_slots)
        return -1;
    uint32_t h = (uint32_t)(fnv ^ (fnv >> 32));
    size_t j = h & (m->n_slots - 1);
    while (m->slots[j]) {
        const struct pq_strmap_entry *e = &m->entries[m->slots[j] - 1];
        if (e->hash == h && e->len == len && memcmp(m->arena + e->off, key, len) == 0)
            return e->value;
        j = (j + 1) & (m->n_slots - 1);
    }
    return -1;
}

void pq_strmap_free(pq_strmap *m)
{
    if (!m)
        return;
    free(m->slots);
    free(m->entries);
    free(m->arena);
    memset(m, 0, sizeof *m);
}

static size_t mix64(uint64_t k)
{
    k ^= k >> 33;
    k *= 0xff51afd7ed558ccdULL;
    k ^= k >> 33;
    return (size_t)k;
}

static int u64map_grow(pq_u64map *m)
{
    size_t ns = m->n_slots ? m->n_slots * 2 : 1024;
    uint64_t *keys = pq_alloc_array(ns, sizeof *keys), *vals = pq_alloc_array(ns, sizeof *vals);
    if (!keys || !vals) {
        free(keys);
        free(vals);
        return -1;
    }
    memset(keys, 0xff, ns * sizeof *keys);
    for (size_t i = 0; i < m->n_slots; i++) {
        if (m->keys[i] == UINT64_MAX)
            continue;
        size_t j = mix64(m->keys[i]) & (ns - 1);
        while (keys[j] != UINT64_MAX)
            j = (j + 1) & (ns - 1);
        keys[j] = m->keys[i];
        vals[j] = m->vals[i];
    }
    free(m->keys);
    free(m->vals);
    m->keys = keys;
    m->vals = vals;
    m->n_slots = ns;
    return 0;
}

int pq_u64map_put(pq_u64map *m, uint64_t key, uint64_t val)
{
    if (key == UINT64_MAX)
        return -1;
    if ((m->n + 1) * 2 > m->n_slots && u64map_grow(m) != 0)
        return -1;
    size_t j = mix64(key) & (m->n_slots - 1);
    while (m->keys[j] != UINT64_MAX) {
        if (m->keys[j] == key)
            return 1;
        j = (j + 1) & (m->n_slots - 1);
    }
    m->keys[j] = key;
    m->vals[j] = val;
    m->n++;
    return 0;
}

void pq_u64map_set(pq_u64map *m, uint64_t key, uint64_t val)
{
    if (!m->n_slots)
        return;
    size_t j = mix64(key) & (m->n_slots - 1);
    while (m->keys[j] != UINT64_MAX) {
        if (m->keys[j] == key) {
            m->vals[j] = val;
            return;
        }
        j = (j + 1) & (m->n_slots - 1);
    }
}

int pq_u64map_get(const pq_u64map *m, uint64_t key, uint64_t *val)
{
    if (!m->n_slots)
        return 0;
    size_t j = mix64(key) & (m->n_slots - 1);
    while (m->keys[j] != UINT64_MAX) {
        if (m->keys[j] == key) {
            *val = m->vals[j];
            return 1;
        }
        j = (j + 1) & (m->n_slots - 1);
    }
    return 0;
}

void pq_u64map_free(pq_u64map *m)
{
    if (!m)
        return;
    free(m->keys);
    free(m->vals);
    memset(m, 0, sizeof *m);
}
