/* Lookups in tokenizers' character tables (tok/uclass.h): sorted ranges and per-character
 * mappings, searched by bisection. The data is src/tok/utables.inc, generated. */
#include "tok/uclass.h"

#include <stddef.h>

#include "tok/utables.inc"

#define N_OF(a) (sizeof(a) / sizeof((a)[0]))

static bool in_ranges(const uint32_t (*r)[2], size_t n, uint32_t c)
{
    size_t lo = 0, hi = n;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        if (c < r[mid][0])
            hi = mid;
        else if (c > r[mid][1])
            lo = mid + 1;
        else
            return true;
    }
    return false;
}

/* m[0..n) sorted by code point: out[0..return) is c's mapping, c itself when it has none */
static size_t mapped(const pq_umap *m, size_t n, const uint32_t *pool, uint32_t c, uint32_t out[4])
{
    size_t lo = 0, hi = n;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        if (c < m[mid].cp) {
            hi = mid;
        } else if (c > m[mid].cp) {
            lo = mid + 1;
        } else {
            for (size_t i = 0; i < m[mid].len; i++)
                out[i] = pool[m[mid].off + i];
            return m[mid].len;
        }
    }
    out[0] = c;
    return 1;
}

bool pq_u_in(pq_uclass k, uint32_t c)
{
    static const struct {
        const uint32_t (*r)[2];
        size_t n;
    } tables[] = {
        [PQ_U_BERT_DROP] = {t_bert_drop, N_OF(t_bert_drop)},
        [PQ_U_PUNCT] = {t_punct, N_OF(t_punct)},
        [PQ_U_NUMERIC] = {t_numeric, N_OF(t_numeric)},
        [PQ_U_WORD] = {t_word, N_OF(t_word)},
        [PQ_U_CANONICAL] = {t_canonical, N_OF(t_canonical)},
        [PQ_U_DECOMPOSES] = {t_decomposes, N_OF(t_decomposes)},
        [PQ_U_COMBINING] = {t_combining, N_OF(t_combining)},
        [PQ_U_MARK] = {t_mark, N_OF(t_mark)},
    };
    return in_ranges(tables[k].r, tables[k].n, c);
}

size_t pq_u_lower(uint32_t c, uint32_t out[4])
{
    return mapped(m_lower, N_OF(m_lower), m_lower_pool, c, out);
}

size_t pq_u_accents(uint32_t c, uint32_t out[4])
{
    return mapped(m_accents, N_OF(m_accents), m_accents_pool, c, out);
}
