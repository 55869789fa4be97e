/* Open-addressing hash maps: byte string -> int32 (vocabularies) and u64 -> u64 (BPE merge
 * pairs). Keys of the string map are copied into the map's own arena. Not thread-safe for
 * writes; lookups may run concurrently. */
#ifndef PQ_STRMAP_H
#define PQ_STRMAP_H

#include <stddef.h>
#include <stdint.h>

typedef struct pq_strmap {
    uint32_t *slots; /* index+1 into entries, 0 = empty */
    size_t n_slots, n;
    struct pq_strmap_entry {
        uint32_t off, len;
        int32_t value;
        uint32_t hash;
    } * entries;
    size_t cap;
    char *arena;
    size_t arena_len, arena_cap;
} pq_strmap;

/* Returns 0, 1 if the key was already present (value left unchanged), or -1 out of memory. */
int pq_strmap_put(pq_strmap *m, const char *key, size_t len, int32_t value);
/* Value or -1 when absent. */
int32_t pq_strmap_get(const pq_strmap *m, const char *key, size_t len);
/* The same with the key's 64-bit FNV-1a already known (pq_fnv1a from PQ_FNV_OFFSET), so that
 * the prefixes of a word are looked up while its hash grows one byte at a time: every prefix
 * length in time linear in the longest. */
int32_t pq_strmap_get_fnv(const pq_strmap *m, const char *key, size_t len, uint64_t fnv);
void pq_strmap_free(pq_strmap *m); /* accepts a zeroed map */

typedef struct pq_u64map {
    uint64_t *keys, *vals; /* key UINT64_MAX = empty */
    size_t n_slots, n;
} pq_u64map;

int pq_u64map_put(pq_u64map *m, uint64_t key, uint64_t val);  /* 0, 1 if present, -1 nomem */
void pq_u64map_set(pq_u64map *m, uint64_t key, uint64_t val); /* replaces an existing key's value */
int pq_u64map_get(const pq_u64map *m, uint64_t key, uint64_t *val); /* 1 found, 0 not */
void pq_u64map_free(pq_u64map *m);

#endif
