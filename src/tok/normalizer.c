/* Normalizer steps (see normalizer.h). Unicode forms go through utf8proc, except for the
 * characters tokenizers' older normalization tables do not know (kept as they are); lower-casing
 * and BertNormalizer's character classes follow tokenizers' own tables (tok/uclass.h); Replace with
 * a regex through PCRE2 (UTF + UCP), replacing every match by literal text. Prepend adds its text
 * only to a non-empty piece, as tokenizers' Prepend does. StripAccents drops every combining mark
 * (Mn, Mc, Me); BERT's accent stripping only Mn. BertNormalizer: clean text (drop NUL, U+FFFD and
 * Cc/Cf/Co characters except tab/newline/CR, keeping unassigned code points as tokenizers does, map
 * white space to ' '), pad CJK ideographs with spaces, strip accents (NFD, drop Mn; by default when
 * lower-casing), lower-case. Precompiled: sentencepiece's compiled character map, a Darts
 * double-array trie over UTF-8 bytes whose leaves point into a pool of NUL-terminated replacements.
 * Text is taken one extended grapheme cluster at a time: a cluster under 6 bytes whose prefix has a
 * rule is replaced whole by the shortest such rule's text; otherwise each character is looked up on
 * its own (spm_precompiled's procedure, which tokenizers uses). */
#define PCRE2_CODE_UNIT_WIDTH 8
#include "tok/normalizer.h"

#include <pcre2.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <utf8proc.h>

#include "base/base.h"
#include "format/json.h"
#include "tok/regex.h"
#include "tok/uclass.h"

typedef enum {
    N_UNICODE,
    N_LOWER,
    N_PREPEND,
    N_REPLACE,
    N_STRIP,
    N_BERT,
    N_STRIP_ACCENTS,
    N_PRECOMPILED
} step_kind;

typedef struct step {
    step_kind kind;
    int uflags;  /* N_UNICODE: utf8proc options */
    char *a, *b; /* PREPEND: a; REPLACE: a -> b (a NULL when regex) */
    size_t la, lb;
    pcre2_code *re;                  /* REPLACE with a regex */
    bool left, right;                /* STRIP */
    bool clean, cjk, accents, lower; /* BERT */
    uint32_t *trie;                  /* PRECOMPILED: double-array units */
    size_t n_trie;
    const char *pool; /* PRECOMPILED: replacements, inside `a` (the whole charsmap) */
    size_t n_pool;
} step;

struct pq_normalizer {
    step *steps;
    size_t n;
};

void pq_normalizer_free(pq_normalizer *n)
{
    if (!n)
        return;
    for (size_t i = 0; i < n->n; i++) {
        free(n->steps[i].a);
        free(n->steps[i].b);
        pcre2_code_free(n->steps[i].re);
        free(n->steps[i].trie);
    }
    free(n->steps);
    free(n);
}

/* Reads {"precompiled_charsmap": base64} into s: u32 trie size in bytes, the units, the pool. */
static int precompiled_load(step *s, const json_t *j, const char *what, polyq_err *err)
{
    const char *b64;
    if (pq_json_str(j, "precompiled_charsmap", true, &b64, what, err))
        return err->code;
    unsigned char *raw;
    size_t n;
    if (pq_base64_decode(b64, strlen(b64), &raw, &n))
        return pq_fail(err, POLYQ_FORMAT, "%s: Precompiled precompiled_charsmap is not base64",
                       what);
    s->kind = N_PRECOMPILED;
    s->a = (char *)raw;
    s->la = n;
    uint32_t trie_bytes = 0;
    if (n >= 4)
        trie_bytes = (uint32_t)raw[0] | (uint32_t)raw[1] << 8 | (uint32_t)raw[2] << 16 |
                     (uint32_t)raw[3] << 24;
    if (n < 4 || trie_bytes > n - 4 || trie_bytes < 4) {
        free(raw);
        return pq_fail(err, POLYQ_FORMAT,
                       "%s: Precompiled charsmap of %zu bytes claims a trie of %u bytes", what, n,
                       trie_bytes);
    }
    s->n_trie = trie_bytes / 4;
    s->trie = malloc(s->n_trie * sizeof *s->trie);
    if (!s->trie) {
        free(raw);
        return pq_fail(err, POLYQ_NOMEM, "out of memory");
    }
    for (size_t i = 0; i < s->n_trie; i++) {
        const unsigned char *u = raw + 4 + 4 * i;
        s->trie[i] =
            (uint32_t)u[0] | (uint32_t)u[1] << 8 | (uint32_t)u[2] << 16 | (uint32_t)u[3] << 24;
    }
    s->pool = (const char *)raw + 4 + trie_bytes;
    s->n_pool = n - 4 - trie_bytes;
    if (!pq_utf8_valid(s->pool, s->n_pool, NULL)) {
        free(raw);
        free(s->trie);
        return pq_fail(err, POLYQ_FORMAT, "%s: Precompiled replacement pool is not UTF-8", what);
    }
    return 0;
}

/* The replacement of the shortest rule matching a prefix of key[0..n), or NULL. */
static const char *precompiled_lookup(const step *s, const char *key, size_t n, size_t *out_len)
{
    const uint32_t *a = s->trie;
    size_t pos = 0;
#define UNIT_OFFSET(u) (((u) >> 10) << (((u) & (1u << 9)) >> 6))
    pos ^= UNIT_OFFSET(a[0]);
    for (size_t i = 0; i < n && key[i]; i++) {
        uint8_t c = (uint8_t)key[i];
        pos ^= c;
        if (pos >= s->n_trie)
            return NULL;
        uint32_t u = a[pos];
        if ((u & (0x80000000u | 0xffu)) != c)
            return NULL;
        pos ^= UNIT_OFFSET(u);
        if (pos >= s->n_trie)
            return NULL;
        if ((u >> 8) & 1) {
            size_t v = a[pos] & 0x7fffffffu;
            if (v >= s->n_pool)
                return NULL;
            const char *r = s->pool + v, *z = memchr(r, 0, s->n_pool - v);
            *out_len = z ? (size_t)(z - r) : s->n_pool - v;
            return r;
        }
    }
#undef UNIT_OFFSET
    return NULL;
}

static int add_step(pq_normalizer *n, const json_t *j, const char *what, int depth, polyq_err *err)
{
    const char *type = NULL;
    if (!json_is_object(j) || pq_json_str(j, "type", true, &type, what, err))
        return pq_fail(err, POLYQ_FORMAT, "%s: a normalizer needs a \"type\"", what);
    if (!strcmp(type, "Sequence")) {
        json_t *list = json_object_get(j, "normalizers"), *v;
        size_t i;
        if (!json_is_array(list) || depth > 8)
            return pq_fail(err, POLYQ_FORMAT,
                           "%s: Sequence normalizer needs a \"normalizers\" array", what);
        json_array_foreach(list, i, v)
        {
            int rc = add_step(n, v, what, depth + 1, err);
            if (rc)
                return rc;
        }
        return 0;
    }
    step s = {0};
    static const struct {
        const char *name;
        int flags;
    } forms[] = {
        {"NFC", UTF8PROC_STABLE | UTF8PROC_COMPOSE},
        {"NFD", UTF8PROC_STABLE | UTF8PROC_DECOMPOSE},
        {"NFKC", UTF8PROC_STABLE | UTF8PROC_COMPOSE | UTF8PROC_COMPAT},
        {"NFKD", UTF8PROC_STABLE | UTF8PROC_DECOMPOSE | UTF8PROC_COMPAT},
    };
    bool known = false;
    for (size_t i = 0; i < sizeof forms / sizeof forms[0]; i++)
        if (!strcmp(type, forms[i].name)) {
            s.kind = N_UNICODE;
            s.uflags = forms[i].flags;
            known = true;
        }
    if (!known && !strcmp(type, "Lowercase")) {
        s.kind = N_LOWER;
        known = true;
    } else if (!known && !strcmp(type, "Prepend")) {
        const char *p;
        if (pq_json_str(j, "prepend", true, &p, what, err))
            return err->code;
        s.kind = N_PREPEND;
        s.a = pq_strdup(p);
        s.la = strlen(p);
        if (!s.a)
            return pq_fail(err, POLYQ_NOMEM, "out of memory");
        known = true;
    } else if (!known && !strcmp(type, "Replace")) {
        const json_t *pat = json_object_get(j, "pattern");
        const char *content, *str = NULL, *rx = NULL;
        if (pq_json_str(j, "content", true, &content, what, err))
            return err->code;
        pq_json_str(pat, "String", false, &str, what, NULL);
        pq_json_str(pat, "Regex", false, &rx, what, NULL);
        if ((!str && !rx) || (str && !*str))
            return pq_fail(err, POLYQ_FORMAT,
                           "%s: Replace normalizer needs a String or Regex pattern", what);
        s.kind = N_REPLACE;
        if (!(s.b = pq_strdup(content)))
            return pq_fail(err, POLYQ_NOMEM, "out of memory");
        s.lb = strlen(content);
        if (str) {
            s.a = pq_strdup(str);
            s.la = strlen(str);
            if (!s.a) {
                free(s.b);
                return pq_fail(err, POLYQ_NOMEM, "out of memory");
            }
        } else {
            int ec;
            PCRE2_SIZE eo;
            s.re = pcre2_compile((PCRE2_SPTR)rx, PCRE2_ZERO_TERMINATED, PCRE2_UTF | PCRE2_UCP, &ec,
                                 &eo, NULL);
            if (!s.re) {
                PCRE2_UCHAR msg[256];
                pcre2_get_error_message(ec, msg, sizeof msg);
                free(s.b);
                return pq_fail(err, POLYQ_FORMAT,
                               "%s: Replace regex \"%.80s\" does not compile at %zu: %s", what, rx,
                               (size_t)eo, (char *)msg);
            }
        }
        known = true;
    } else if (!known && !strcmp(type, "Strip")) {
        s.kind = N_STRIP;
        s.left = s.right = true;
        pq_json_bool(j, "strip_left", false, &s.left, what, NULL);
        pq_json_bool(j, "strip_right", false, &s.right, what, NULL);
        known = true;
    } else if (!known && !strcmp(type, "BertNormalizer")) {
        s.kind = N_BERT;
        s.clean = s.cjk = s.lower = true;
        pq_json_bool(j, "clean_text", false, &s.clean, what, NULL);
        pq_json_bool(j, "handle_chinese_chars", false, &s.cjk, what, NULL);
        pq_json_bool(j, "lowercase", false, &s.lower, what, NULL);
        s.accents = s.lower; /* strip_accents null: follow lowercase */
        pq_json_bool(j, "strip_accents", false, &s.accents, what, NULL);
        known = true;
    } else if (!known && !strcmp(type, "StripAccents")) {
        s.kind = N_STRIP_ACCENTS;
        known = true;
    } else if (!known && !strcmp(type, "Precompiled")) {
        int rc = precompiled_load(&s, j, what, err);
        if (rc)
            return rc;
        known = true;
    }
    if (!known)
        return pq_fail(err, POLYQ_UNSUPPORTED, "%s: normalizer \"%s\" is not supported", what,
                       type);
    step *ns = realloc(n->steps, (n->n + 1) * sizeof *ns);
    if (!ns) {
        free(s.a);
        free(s.b);
        pcre2_code_free(s.re);
        free(s.trie);
        return pq_fail(err, POLYQ_NOMEM, "out of memory");
    }
    n->steps = ns;
    n->steps[n->n++] = s;
    return 0;
}

int pq_normalizer_from_json(pq_normalizer **out, const json_t *j, const char *what, polyq_err *err)
{
    *out = NULL;
    if (!j || json_is_null(j))
        return 0;
    pq_normalizer *n = calloc(1, sizeof *n);
    if (!n)
        return pq_fail(err, POLYQ_NOMEM, "out of memory");
    int rc = add_step(n, j, what, 0, err);
    if (rc) {
        pq_normalizer_free(n);
        return rc;
    }
    *out = n;
    return 0;
}

/* A growable byte buffer. */
typedef struct buf {
    char *p;
    size_t n, cap;
} buf;

static bool buf_put(buf *b, const void *data, size_t n)
{
    if (b->n + n + 1 > b->cap) {
        size_t nc = b->cap ? b->cap * 2 : 256;
        while (nc < b->n + n + 1)
            nc *= 2;
        char *np = realloc(b->p, nc);
        if (!np)
            return false;
        b->p = np;
        b->cap = nc;
    }
    memcpy(b->p + b->n, data, n);
    b->n += n;
    b->p[b->n] = 0;
    return true;
}

static int apply_step(const step *s, const char *src, size_t n, buf *dst, polyq_err *err);

static int put_cp(buf *dst, uint32_t cp)
{
    char enc[4];
    int k = pq_utf8_encode(cp, enc);
    return buf_put(dst, enc, (size_t)k) ? 0 : -1;
}

/* Puts each character's mapping (f: lower-casing or accent stripping) code point by code
 * point, as tokenizers maps chars: no context (a final sigma is σ) and no reordering of
 * combining marks across characters (after the nonspacing marks are gone, only two combining
 * marks of different classes that are not nonspacing, such as U+1D165 and U+1D16D, could be
 * ordered differently; no text polyq has seen has them). */
static int map_chars(size_t (*f)(uint32_t, uint32_t[4]), const char *src, size_t n, buf *dst)
{
    for (size_t i = 0; i < n;) {
        uint32_t cp, m[4];
        i += (size_t)pq_utf8_decode(src + i, &cp);
        size_t k = f(cp, m);
        for (size_t j = 0; j < k; j++)
            if (put_cp(dst, m[j]))
                return -1;
    }
    return buf_put(dst, "", 0) ? 0 : -1;
}

/* NFD, then every nonspacing mark dropped, per character (the Hangul syllables by Unicode's
 * algorithm, the rest from tokenizers' table) */
static size_t accents_of(uint32_t c, uint32_t out[4])
{
    if (c >= 0xac00 && c <= 0xd7a3) {
        uint32_t s = c - 0xac00, t = 0x11a7 + s % 28;
        out[0] = 0x1100 + s / 588;
        out[1] = 0x1161 + (s % 588) / 28;
        out[2] = t;
        return t == 0x11a7 ? 2 : 3;
    }
    return pq_u_accents(c, out);
}

static int bert_normalize(const step *s, const char *src, size_t n, buf *dst, polyq_err *err)
{
    buf t = {0};
    for (size_t i = 0; i < n;) {
        uint32_t cp;
        i += (size_t)pq_utf8_decode(src + i, &cp);
        if (s->clean) {
            bool tnr = cp == '\t' || cp == '\n' || cp == '\r';
            if (!tnr && pq_u_in(PQ_U_BERT_DROP, cp)) /* NUL, U+FFFD, Cc, Cf, Co */
                continue;
            if (tnr || pq_is_white_space(cp))
                cp = ' ';
        }
        bool pad = s->cjk && pq_is_cjk(cp);
        if ((pad && put_cp(&t, ' ')) || put_cp(&t, cp) || (pad && put_cp(&t, ' '))) {
            free(t.p);
            return pq_fail(err, POLYQ_NOMEM, "out of memory normalizing text");
        }
    }
    if (!t.p && !buf_put(&t, "", 0))
        return pq_fail(err, POLYQ_NOMEM, "out of memory");
    int rc = 0;
    if (s->accents) {
        buf u = {0};
        if (map_chars(accents_of, t.p, t.n, &u))
            rc = pq_fail(err, POLYQ_NOMEM, "out of memory normalizing text");
        free(t.p);
        t = u;
    }
    if (!rc && s->lower) {
        step low = {.kind = N_LOWER};
        rc = apply_step(&low, t.p, t.n, dst, err);
    } else if (!rc) {
        rc = buf_put(dst, t.p, t.n) ? 0 : pq_fail(err, POLYQ_NOMEM, "out of memory");
    }
    free(t.p);
    return rc;
}

static int precompiled_apply(const step *s, const char *src, size_t n, buf *dst, polyq_err *err)
{
    utf8proc_int32_t state = 0;
    size_t g = 0;
    while (g < n) {
        /* the extended grapheme cluster src[g..e) */
        uint32_t prev;
        size_t e = g + (size_t)pq_utf8_decode(src + g, &prev);
        while (e < n) {
            uint32_t cp;
            int l = pq_utf8_decode(src + e, &cp);
            if (utf8proc_grapheme_break_stateful((utf8proc_int32_t)prev, (utf8proc_int32_t)cp,
                                                 &state))
                break;
            prev = cp;
            e += (size_t)l;
        }
        size_t rl;
        const char *r = e - g < 6 ? precompiled_lookup(s, src + g, e - g, &rl) : NULL;
        if (r) {
            if (!buf_put(dst, r, rl))
                return pq_fail(err, POLYQ_NOMEM, "out of memory normalizing text");
        } else {
            for (size_t i = g; i < e;) {
                uint32_t cp;
                size_t l = (size_t)pq_utf8_decode(src + i, &cp);
                const char *c = precompiled_lookup(s, src + i, l, &rl);
                if (!(c ? buf_put(dst, c, rl) : buf_put(dst, src + i, l)))
                    return pq_fail(err, POLYQ_NOMEM, "out of memory normalizing text");
                i += l;
            }
        }
        g = e;
    }
    return buf_put(dst, "", 0) ? 0 : pq_fail(err, POLYQ_NOMEM, "out of memory");
}

/* A character utf8proc's tables (Unicode 15.0) normalize but tokenizers' older ones do not: a
 * decomposition or a combining class tokenizers lacks. tokenizers leaves it as it is and it
 * stops reordering and composition, as a starter. */
static bool unknown_to_tokenizers(uint32_t c, bool compat)
{
    const utf8proc_property_t *p = utf8proc_get_property((utf8proc_int32_t)c);
    bool dec = p->decomp_seqindex != UINT16_MAX && (compat || p->decomp_type == 0);
    if (dec && !(compat ? pq_u_in(PQ_U_DECOMPOSES, c) : pq_u_in(PQ_U_CANONICAL, c)))
        return true;
    return p->combining_class != 0 && !pq_u_in(PQ_U_COMBINING, c);
}

/* utf8proc on src[0..n): one of NFC/NFD/NFKC/NFKD; a composition tokenizers' tables do not
 * know (its result unknown_to_tokenizers) is undone. */
static int unicode_segment(int flags, const char *src, size_t n, buf *dst, polyq_err *err)
{
    utf8proc_uint8_t *o = NULL;
    utf8proc_ssize_t k = utf8proc_map((const utf8proc_uint8_t *)src, (utf8proc_ssize_t)n, &o,
                                      (utf8proc_option_t)flags);
    if (k < 0)
        return pq_fail(err, k == UTF8PROC_ERROR_NOMEM ? POLYQ_NOMEM : POLYQ_TEXT,
                       "normalizing text: %s", utf8proc_errmsg(k));
    bool ok = true, compat = flags & UTF8PROC_COMPAT;
    for (utf8proc_ssize_t i = 0; ok && i < k;) {
        uint32_t cp;
        int l = pq_utf8_decode((const char *)o + i, &cp);
        if ((flags & UTF8PROC_COMPOSE) && unknown_to_tokenizers(cp, compat)) {
            utf8proc_int32_t parts[8];
            int last = 0;
            utf8proc_ssize_t np = utf8proc_decompose_char(
                (utf8proc_int32_t)cp, parts, 8,
                (utf8proc_option_t)(UTF8PROC_DECOMPOSE | (compat ? UTF8PROC_COMPAT : 0)), &last);
            for (utf8proc_ssize_t j = 0; ok && j < np && np <= 8; j++)
                ok = put_cp(dst, (uint32_t)parts[j]) == 0;
        } else {
            ok = buf_put(dst, o + i, (size_t)l);
        }
        i += l;
    }
    free(o);
    return ok ? 0 : pq_fail(err, POLYQ_NOMEM, "out of memory normalizing text");
}

/* NFC/NFD/NFKC/NFKD as tokenizers computes them: utf8proc on the runs between characters
 * tokenizers' tables do not normalize, which are kept as they are. */
static int unicode_form(int flags, const char *src, size_t n, buf *dst, polyq_err *err)
{
    bool compat = flags & UTF8PROC_COMPAT;
    size_t seg = 0;
    for (size_t i = 0;;) {
        uint32_t cp = 0;
        size_t l = i < n ? (size_t)pq_utf8_decode(src + i, &cp) : 0;
        if (i == n || unknown_to_tokenizers(cp, compat)) {
            int rc = i > seg ? unicode_segment(flags, src + seg, i - seg, dst, err) : 0;
            if (rc)
                return rc;
            if (i == n)
                break;
            if (!buf_put(dst, src + i, l))
                return pq_fail(err, POLYQ_NOMEM, "out of memory normalizing text");
            seg = i + l;
        }
        i += l;
    }
    return buf_put(dst, "", 0) ? 0 : pq_fail(err, POLYQ_NOMEM, "out of memory");
}

/* One step: src[0..n) -> *dst (heap). */
static int apply_step(const step *s, const char *src, size_t n, buf *dst, polyq_err *err)
{
    switch (s->kind) {
    case N_BERT:
        return bert_normalize(s, src, n, dst, err);
    case N_STRIP_ACCENTS: /* tokenizers' combining marks (Mn, Mc, Me of its tables); a NFD step
                             comes before it in the pipelines */
        for (size_t i = 0; i < n;) {
            uint32_t cp;
            size_t l = (size_t)pq_utf8_decode(src + i, &cp);
            if (!pq_u_in(PQ_U_MARK, cp) && !buf_put(dst, src + i, l))
                return pq_fail(err, POLYQ_NOMEM, "out of memory normalizing text");
            i += l;
        }
        return buf_put(dst, "", 0) ? 0 : pq_fail(err, POLYQ_NOMEM, "out of memory");
    case N_PRECOMPILED:
        return precompiled_apply(s, src, n, dst, err);
    case N_LOWER: /* Rust's char::to_lowercase, character by character */
        return map_chars(pq_u_lower, src, n, dst)
                   ? pq_fail(err, POLYQ_NOMEM, "out of memory normalizing text")
                   : 0;
    case N_UNICODE:
        return unicode_form(s->uflags, src, n, dst, err);
    case N_PREPEND:
        if (n && !buf_put(dst, s->a, s->la))
            return pq_fail(err, POLYQ_NOMEM, "out of memory normalizing text");
        return buf_put(dst, src, n) ? 0
                                    : pq_fail(err, POLYQ_NOMEM, "out of memory normalizing text");
    case N_STRIP: {
        size_t b = 0, e = n;
        while (s->left && b < e) {
            uint32_t cp;
            int k = pq_utf8_decode(src + b, &cp);
            if (!pq_is_white_space(cp))
                break;
            b += (size_t)k;
        }
        while (s->right && e > b) {
            size_t k = e - 1;
            while (k > b && ((uint8_t)src[k] & 0xc0) == 0x80)
                k--;
            uint32_t cp;
            pq_utf8_decode(src + k, &cp);
            if (!pq_is_white_space(cp))
                break;
            e = k;
        }
        return buf_put(dst, src + b, e - b) ? 0 : pq_fail(err, POLYQ_NOMEM, "out of memory");
    }
    case N_REPLACE:
        if (s->a) {
            size_t i = 0;
            while (i < n) {
                const char *hit = s->la <= n - i ? memmem(src + i, n - i, s->a, s->la) : NULL;
                size_t upto = hit ? (size_t)(hit - src) : n;
                if (!buf_put(dst, src + i, upto - i) || (hit && !buf_put(dst, s->b, s->lb)))
                    return pq_fail(err, POLYQ_NOMEM, "out of memory normalizing text");
                i = hit ? upto + s->la : n;
            }
            if (!dst->p && !buf_put(dst, "", 0))
                return pq_fail(err, POLYQ_NOMEM, "out of memory");
            return 0;
        } else {
            pcre2_match_data *md = pcre2_match_data_create_from_pattern(s->re, NULL);
            if (!md)
                return pq_fail(err, POLYQ_NOMEM, "out of memory");
            size_t i = 0;
            int rc = 0;
            while (i <= n && !rc) {
                int r = pcre2_match(s->re, (PCRE2_SPTR)src, n, i, PCRE2_NO_UTF_CHECK, md,
                                    pq_re_limits());
                if (r == PCRE2_ERROR_NOMATCH) {
                    if (!buf_put(dst, src + i, n - i))
                        rc = pq_fail(err, POLYQ_NOMEM, "out of memory");
                    break;
                }
                if (r < 0) {
                    rc = pq_re_limited(r)
                             ? pq_fail(err, POLYQ_TEXT,
                                       "a Replace normalizer regex reached polyq's match limit (%d "
                                       "steps, %d KiB) on the text",
                                       PQ_RE_MATCH_LIMIT, PQ_RE_HEAP_KIB)
                             : pq_fail(err, POLYQ_TEXT, "Replace normalizer regex failed (%d)", r);
                    break;
                }
                PCRE2_SIZE *ov = pcre2_get_ovector_pointer(md);
                if (!buf_put(dst, src + i, ov[0] - i) || !buf_put(dst, s->b, s->lb)) {
                    rc = pq_fail(err, POLYQ_NOMEM, "out of memory");
                    break;
                }
                i = ov[1];
                if (ov[1] == ov[0]) { /* empty match: copy one character and go on */
                    if (i >= n)
                        break;
                    uint32_t cp;
                    size_t k = (size_t)pq_utf8_decode(src + i, &cp);
                    if (!buf_put(dst, src + i, k)) {
                        rc = pq_fail(err, POLYQ_NOMEM, "out of memory");
                        break;
                    }
                    i += k;
                }
            }
            pcre2_match_data_free(md);
            if (!rc && !dst->p && !buf_put(dst, "", 0))
                rc = pq_fail(err, POLYQ_NOMEM, "out of memory");
            return rc;
        }
    }
    return 0;
}

int pq_normalizer_apply(const pq_normalizer *n, const char *text, size_t len, char **out,
                        size_t *out_len, polyq_err *err)
{
    buf cur = {0};
    if (!buf_put(&cur, text, len))
        return pq_fail(err, POLYQ_NOMEM, "out of memory normalizing text");
    for (size_t i = 0; n && i < n->n; i++) {
        buf next = {0};
        int rc = apply_step(&n->steps[i], cur.p, cur.n, &next, err);
        free(cur.p);
        if (rc) {
            free(next.p);
            return rc;
        }
        if (!next.p && !buf_put(&next, "", 0))
            return pq_fail(err, POLYQ_NOMEM, "out of memory");
        cur = next;
    }
    *out = cur.p;
    *out_len = cur.n;
    return 0;
}
