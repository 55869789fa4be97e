/* pq_lang_eval to bytes and back; the layout is in wire.h. */
#include "eval/wire.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "base/base.h"

#define MAGIC "PQLANG02"
#define HEAD 128

int pq_lang_eval_pack(const pq_lang_eval *e, int qi, char **out, size_t *len, polyq_err *err)
{
    *out = NULL;
    *len = 0;
    if (qi < 0 || qi >= e->n_q)
        return pq_fail(err, POLYQ_INVALID_ARG, "%s: no quantized result %d to send", e->lang, qi);
    size_t n = e->n_sent;
    uint64_t T = 0;
    for (size_t i = 0; i < n; i++)
        T += e->tokens[i];
    bool pos = e->kl_pos && e->kl_pos[qi];
    bool dp = e->dp_q && e->dp_q[qi] && e->dp2_q && e->dp2_q[qi];
    size_t size =
        HEAD + n * (4 + 4 + 8 * 3 + 4) + 1 + (pos ? 4 * (size_t)T : 0) + 1 + (dp ? 16 * n : 0);
    char *b = calloc(1, size);
    if (!b)
        return pq_fail(err, POLYQ_NOMEM, "out of memory sending %s", e->lang);
    memcpy(b, MAGIC, 8);
    memcpy(b + 8, e->lang, strnlen(e->lang, 63));
    uint64_t h[6] = {n, e->bytes, e->chars, e->words, e->fallback, T};
    memcpy(b + 72, h, sizeof h);
    b[120] = e->spaced;
    char *p = b + HEAD;
#define PUT(src, bytes) (memcpy(p, (src), (bytes)), p += (bytes))
    PUT(e->tokens, 4 * n);
    PUT(e->sbytes, 4 * n);
    PUT(e->nll_fp, 8 * n);
    PUT(e->nll_q[qi], 8 * n);
    PUT(e->kld_q[qi], 8 * n);
    PUT(e->agree_q[qi], 4 * n);
    *p++ = pos;
    if (pos)
        PUT(e->kl_pos[qi], 4 * (size_t)T);
    *p++ = dp;
    if (dp) {
        PUT(e->dp_q[qi], 8 * n);
        PUT(e->dp2_q[qi], 8 * n);
    }
#undef PUT
    *out = b;
    *len = size;
    return 0;
}

int pq_lang_eval_unpack(const char *buf, size_t len, pq_lang_eval *e, polyq_err *err)
{
    memset(e, 0, sizeof *e);
    if (len < HEAD || memcmp(buf, MAGIC, 8) || memchr(buf + 8, 0, 64) == NULL)
        return pq_fail(err, POLYQ_FORMAT, "a language's results: not polyq's layout (%zu bytes)",
                       len);
    uint64_t h[6];
    memcpy(h, buf + 72, sizeof h);
    uint64_t n = h[0], T = h[5];
    /* sizes from the message are checked before they are used */
    if (n > (len - HEAD) / 36 || T > len / 4)
        return pq_fail(err, POLYQ_FORMAT,
                       "a language's results: %llu sentences, %llu tokens do not fit in %zu bytes",
                       (unsigned long long)n, (unsigned long long)T, len);
    const char *p = buf + HEAD, *end = buf + len;
    size_t fixed = (size_t)n * 36 + 1;
    if ((size_t)(end - p) < fixed)
        return pq_fail(err, POLYQ_FORMAT, "a language's results: truncated");
    bool pos = p[fixed - 1];
    size_t with_kl = fixed + (pos ? 4 * (size_t)T : 0);
    if ((size_t)(end - p) <= with_kl)
        return pq_fail(err, POLYQ_FORMAT, "a language's results: truncated");
    bool dp = p[with_kl] != 0;
    size_t want = with_kl + 1 + (dp ? 16 * (size_t)n : 0);
    if ((size_t)(end - p) != want)
        return pq_fail(err, POLYQ_FORMAT, "a language's results: %zu bytes, want %zu", len,
                       HEAD + want);
    memcpy(e->lang, buf + 8, 64);
    e->n_sent = (size_t)n;
    e->bytes = h[1];
    e->chars = h[2];
    e->words = h[3];
    e->fallback = h[4];
    e->spaced = buf[120] != 0;
    e->n_q = 1;
    size_t m = n ? (size_t)n : 1;
    e->tokens = malloc(4 * m);
    e->sbytes = malloc(4 * m);
    e->nll_fp = malloc(8 * m);
    e->nll_q = calloc(1, sizeof *e->nll_q);
    e->kld_q = calloc(1, sizeof *e->kld_q);
    e->agree_q = calloc(1, sizeof *e->agree_q);
    e->kl_pos = calloc(1, sizeof *e->kl_pos);
    if (dp &&
        (!(e->dp_q = calloc(1, sizeof *e->dp_q)) || !(e->dp2_q = calloc(1, sizeof *e->dp2_q)) ||
         !(e->dp_q[0] = malloc(8 * m)) || !(e->dp2_q[0] = malloc(8 * m))))
        return pq_fail(err, POLYQ_NOMEM, "out of memory reading %s", e->lang);
    if (!e->tokens || !e->sbytes || !e->nll_fp || !e->nll_q || !e->kld_q || !e->agree_q ||
        !e->kl_pos || !(e->nll_q[0] = malloc(8 * m)) || !(e->kld_q[0] = malloc(8 * m)) ||
        !(e->agree_q[0] = malloc(4 * m)) ||
        (pos && !(e->kl_pos[0] = malloc(T ? 4 * (size_t)T : 4))))
        return pq_fail(err, POLYQ_NOMEM, "out of memory reading %s", e->lang);
#define GET(dst, bytes) (memcpy((dst), p, (bytes)), p += (bytes))
    GET(e->tokens, 4 * (size_t)n);
    GET(e->sbytes, 4 * (size_t)n);
    GET(e->nll_fp, 8 * (size_t)n);
    GET(e->nll_q[0], 8 * (size_t)n);
    GET(e->kld_q[0], 8 * (size_t)n);
    GET(e->agree_q[0], 4 * (size_t)n);
    p++;
    if (pos)
        GET(e->kl_pos[0], 4 * (size_t)T);
    p++;
    if (dp) {
        GET(e->dp_q[0], 8 * (size_t)n);
        GET(e->dp2_q[0], 8 * (size_t)n);
    }
#undef GET
    uint64_t sum = 0;
    for (size_t i = 0; i < n; i++)
        sum += e->tokens[i];
    if (sum != T)
        return pq_fail(err, POLYQ_FORMAT,
                       "%s: %llu scored tokens, but the sentences add up to %llu", e->lang,
                       (unsigned long long)T, (unsigned long long)sum);
    return 0;
}
