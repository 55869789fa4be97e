/* Pre-tokenizer steps (see pretok.h). Every step turns a list of pieces into a new list: it
 * finds the spans of each piece that its pattern matches (a regex, a string or a character
 * class; a class matches one character at a time), then joins matches and the text between
 * them by the step's behavior, exactly as tokenizers' NormalizedString::split does. Empty
 * pieces are dropped. */
#define PCRE2_CODE_UNIT_WIDTH 8
#include "tok/pretok.h"

#include <pcre2.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "base/base.h"
#include "format/json.h"
#include "tok/regex.h"
#include "tok/uclass.h"

#define GPT2_PATTERN                                                                               \
    "'s|'t|'re|'ve|'m|'ll|'d| ?\\p{L}+| ?\\p{N}+| ?[^\\s\\p{L}\\p{N}]+|\\s+(?!\\S)|\\s+"

typedef enum { B_REMOVED, B_ISOLATED, B_WITH_PREVIOUS, B_WITH_NEXT, B_CONTIGUOUS } behavior;
/* S_WORDS: Whitespace's \w+|[^\w\s]+ with the regex crate's \w, scanned directly */
typedef enum { S_REGEX, S_WHITE, S_PUNCT, S_DIGIT, S_WORDS, S_BYTE_LEVEL, S_METASPACE } step_kind;

typedef struct step {
    step_kind kind;
    pcre2_code *re; /* S_REGEX, and S_BYTE_LEVEL with its regex */
    behavior beh;
    bool invert;
    bool prefix; /* S_BYTE_LEVEL: add a space before a piece not starting with one */
    char rep[8]; /* S_METASPACE */
    size_t rep_len;
    char scheme; /* 'a'lways, 'f'irst, 'n'ever */
    bool split;
} step;

struct pq_pretok {
    step *steps;
    size_t n;
    bool byte_level;
};

void pq_pretok_free(pq_pretok *p)
{
    if (!p)
        return;
    for (size_t i = 0; i < p->n; i++)
        pcre2_code_free(p->steps[i].re);
    free(p->steps);
    free(p);
}

bool pq_pretok_byte_level(const pq_pretok *p)
{
    return p && p->byte_level;
}

void pq_pieces_free(pq_pieces *ps)
{
    free(ps->arena);
    free(ps->off);
    free(ps->len);
    free(ps->start);
    memset(ps, 0, sizeof *ps);
}

static int pieces_push(pq_pieces *ps, const char *s, size_t n, bool start)
{
    if (!n)
        return 0;
    if (ps->n == ps->cap) {
        size_t nc = ps->cap ? ps->cap * 2 : 64;
        size_t *o = realloc(ps->off, nc * sizeof *o);
        if (!o)
            return -1;
        ps->off = o;
        size_t *l = realloc(ps->len, nc * sizeof *l);
        if (!l)
            return -1;
        ps->len = l;
        bool *st = realloc(ps->start, nc * sizeof *st);
        if (!st)
            return -1;
        ps->start = st;
        ps->cap = nc;
    }
    if (ps->n_arena + n > ps->cap_arena) {
        size_t nc = ps->cap_arena ? ps->cap_arena * 2 : 1024;
        while (nc < ps->n_arena + n)
            nc *= 2;
        char *a = realloc(ps->arena, nc);
        if (!a)
            return -1;
        ps->arena = a;
        ps->cap_arena = nc;
    }
    memcpy(ps->arena + ps->n_arena, s, n);
    ps->off[ps->n] = ps->n_arena;
    ps->len[ps->n] = n;
    ps->start[ps->n] = start;
    ps->n_arena += n;
    ps->n++;
    return 0;
}

static int compile(pcre2_code **out, const char *pattern, uint32_t flags, const char *what,
                   polyq_err *err);

/* tokenizers compiles its patterns with Oniguruma, where a '[' inside a character class opens
 * a nested class whose members join the outer one (BLOOM's " ?[^(\s|[.,!?…])]+"). PCRE2 reads
 * that '[' as a literal, so nested classes are flattened into their parent here. A negated
 * or intersected nested class cannot be flattened: 1 is returned and the pattern refused. */
static int onig_flatten_classes(const char *in, char *out)
{
    int depth = 0;
    size_t w = 0;
    for (size_t i = 0; in[i]; i++) {
        char c = in[i];
        if (c == '\\' && in[i + 1]) {
            out[w++] = c;
            out[w++] = in[++i];
            continue;
        }
        if (depth > 0 && c == '&' && in[i + 1] == '&')
            return 1;
        if (c == '[' && depth > 0 && in[i + 1] == ':') { /* POSIX class: copy through ":]" */
            const char *end = strstr(in + i, ":]");
            if (!end)
                return 1;
            size_t n = (size_t)(end + 2 - (in + i));
            memcpy(out + w, in + i, n);
            w += n;
            i += n - 1;
            continue;
        }
        if (c == '[') {
            if (depth > 0 && in[i + 1] == '^')
                return 1;
            if (depth++ > 0)
                continue; /* nested: keep only its members */
            out[w++] = c;
            if (in[i + 1] == '^')
                out[w++] = in[++i];
            if (in[i + 1] == ']') /* a leading ']' is a member */
                out[w++] = in[++i];
            continue;
        }
        if (c == ']' && depth > 0) {
            if (--depth > 0)
                continue;
        }
        out[w++] = c;
    }
    out[w] = 0;
    return 0;
}

static size_t put(char *out, size_t w, const char *s, size_t n)
{
    if (out)
        memcpy(out + w, s, n);
    return w + n;
}

/* Writes the widened pattern into out (when not NULL); returns its length. */
static size_t widen_classes(const char *in, char *out)
{
    bool in_class = false;
    size_t w = 0;
    for (size_t i = 0; in[i];) {
        char c = in[i];
        if (c == '\\' && in[i + 1]) {
            const char *add = NULL;
            bool prop = false, neg = false;
            if (!strncmp(in + i + 1, "p{L}", 4) || !strncmp(in + i + 1, "P{L}", 4)) {
                add = pq_u_pcre2_extra_L;
                prop = true;
            } else if (!strncmp(in + i + 1, "p{N}", 4) || !strncmp(in + i + 1, "P{N}", 4)) {
                add = pq_u_pcre2_extra_N;
                prop = true;
            } else if (in[i + 1] == 's' || in[i + 1] == 'S') {
                add = PQ_WHITE_SPACE_CLASS;
            }
            neg = add && (in[i + 1] == 'P' || in[i + 1] == 'S');
            if (!add || (neg && in_class)) { /* copied as it is */
                w = put(out, w, in + i, 2);
                i += 2;
                continue;
            }
            if (!in_class)
                w = put(out, w, neg ? "[^" : "[", neg ? 2 : 1);
            if (prop)
                w = put(out, w, in[i + 3] == 'L' ? "\\p{L}" : "\\p{N}", 5);
            w = put(out, w, add, strlen(add));
            if (!in_class)
                w = put(out, w, "]", 1);
            i += prop ? 5 : 2;
            continue;
        }
        if (c == '[' && !in_class) {
            in_class = true;
            w = put(out, w, in + i++, 1);
            if (in[i] == '^')
                w = put(out, w, in + i++, 1);
            if (in[i] == ']')
                w = put(out, w, in + i++, 1);
            continue;
        }
        if (c == '[' && in_class && in[i + 1] == ':') { /* POSIX class */
            const char *end = strstr(in + i, ":]");
            size_t k = end ? (size_t)(end + 2 - (in + i)) : 1;
            w = put(out, w, in + i, k);
            i += k;
            continue;
        }
        if (c == ']' && in_class)
            in_class = false;
        w = put(out, w, in + i++, 1);
    }
    return w;
}

/* PCRE2's Unicode tables are not Oniguruma's: \p{L} and \p{N} (and \P{L}, \P{N} outside
 * classes) get the letters and numbers tokenizers knows beyond PCRE2 10.42's Unicode 14.0,
 * and \s (\S outside classes) becomes White_Space's 25 characters (PCRE2 adds U+180E). Other
 * properties are PCRE2's own. NULL when out of memory. */
static char *onig_unicode_classes(const char *in)
{
    size_t n = widen_classes(in, NULL);
    char *out = malloc(n + 1);
    if (out) {
        widen_classes(in, out);
        out[n] = 0;
    }
    return out;
}

static int compile(pcre2_code **out, const char *pattern, uint32_t flags, const char *what,
                   polyq_err *err)
{
    int ec;
    PCRE2_SIZE eo;
    char *flat = malloc(strlen(pattern) + 1);
    if (!flat)
        return pq_fail(err, POLYQ_NOMEM, "out of memory");
    if (!(flags & PCRE2_LITERAL) && onig_flatten_classes(pattern, flat)) {
        free(flat);
        return pq_fail(err, POLYQ_UNSUPPORTED,
                       "%s: pre-tokenizer regex uses a negated or intersected nested class", what);
    }
    if (flags & PCRE2_LITERAL) {
        strcpy(flat, pattern);
    } else {
        char *wide = onig_unicode_classes(flat);
        free(flat);
        if (!(flat = wide))
            return pq_fail(err, POLYQ_NOMEM, "out of memory");
    }
    /* a literal pattern takes no UCP (PCRE2 refuses the pair); it has no classes to read */
    uint32_t opts = PCRE2_UTF | flags | (flags & PCRE2_LITERAL ? 0 : PCRE2_UCP);
    *out = pcre2_compile((PCRE2_SPTR)flat, PCRE2_ZERO_TERMINATED, opts, &ec, &eo, NULL);
    if (!*out) {
        PCRE2_UCHAR msg[256];
        pcre2_get_error_message(ec, msg, sizeof msg);
        int rc = pq_fail(err, POLYQ_FORMAT,
                         "%s: pre-tokenizer regex \"%.80s\" does not compile at %zu: %s", what,
                         flat, (size_t)eo, (char *)msg);
        free(flat);
        return rc;
    }
    free(flat);
    pcre2_jit_compile(*out, PCRE2_JIT_COMPLETE); /* falls back to the interpreter if absent */
    return 0;
}

static int add(pq_pretok *p, step s, polyq_err *err)
{
    step *ns = realloc(p->steps, (p->n + 1) * sizeof *ns);
    if (!ns) {
        pcre2_code_free(s.re);
        return pq_fail(err, POLYQ_NOMEM, "out of memory");
    }
    p->steps = ns;
    p->steps[p->n++] = s;
    return 0;
}

static int parse_behavior(const json_t *j, behavior def, behavior *out, const char *what,
                          polyq_err *err)
{
    static const char *const names[] = {"Removed", "Isolated", "MergedWithPrevious",
                                        "MergedWithNext", "Contiguous"};
    const char *b = NULL;
    *out = def;
    pq_json_str(j, "behavior", false, &b, what, NULL);
    if (!b)
        return 0;
    for (int i = 0; i < 5; i++)
        if (!strcmp(b, names[i])) {
            *out = (behavior)i;
            return 0;
        }
    return pq_fail(err, POLYQ_UNSUPPORTED, "%s: pre-tokenizer behavior \"%s\" is not supported",
                   what, b);
}

static int add_json(pq_pretok *p, const json_t *j, const char *what, int depth, polyq_err *err)
{
    const char *type = NULL;
    if (!json_is_object(j) || pq_json_str(j, "type", true, &type, what, err))
        return pq_fail(err, POLYQ_FORMAT, "%s: a pre_tokenizer needs a \"type\"", what);
    step s = {0};
    int rc;
    if (!strcmp(type, "Sequence")) {
        json_t *list = json_object_get(j, "pretokenizers"), *v;
        size_t i;
        if (!json_is_array(list) || depth > 8)
            return pq_fail(err, POLYQ_FORMAT,
                           "%s: Sequence pre_tokenizer needs a \"pretokenizers\" array", what);
        json_array_foreach(list, i, v) if ((rc = add_json(p, v, what, depth + 1, err))) return rc;
        return 0;
    }
    if (!strcmp(type, "ByteLevel")) {
        bool use_regex = true;
        s.kind = S_BYTE_LEVEL;
        pq_json_bool(j, "add_prefix_space", false, &s.prefix, what, NULL);
        pq_json_bool(j, "use_regex", false, &use_regex, what, NULL);
        if (use_regex && (rc = compile(&s.re, GPT2_PATTERN, 0, what, err)))
            return rc;
        p->byte_level = true;
        return add(p, s, err);
    }
    if (!strcmp(type, "Metaspace")) {
        const char *rep = "\xe2\x96\x81", *scheme = "always";
        bool prefix = true;
        s.kind = S_METASPACE;
        s.split = true;
        pq_json_str(j, "replacement", false, &rep, what, NULL);
        pq_json_str(j, "prepend_scheme", false, &scheme, what, NULL);
        if (pq_json_bool(j, "add_prefix_space", false, &prefix, what, NULL) == 0 && !prefix &&
            !json_object_get(j, "prepend_scheme"))
            scheme = "never";
        pq_json_bool(j, "split", false, &s.split, what, NULL);
        if (strcmp(scheme, "always") && strcmp(scheme, "first") && strcmp(scheme, "never"))
            return pq_fail(err, POLYQ_UNSUPPORTED, "%s: Metaspace prepend_scheme \"%s\"", what,
                           scheme);
        if (strlen(rep) >= sizeof s.rep || !*rep)
            return pq_fail(err, POLYQ_FORMAT, "%s: Metaspace replacement \"%s\"", what, rep);
        snprintf(s.rep, sizeof s.rep, "%s", rep);
        s.rep_len = strlen(rep);
        s.scheme = scheme[0];
        return add(p, s, err);
    }
    if (!strcmp(type, "Split")) {
        const json_t *pat = json_object_get(j, "pattern");
        const char *str = NULL, *rx = NULL;
        pq_json_str(pat, "String", false, &str, what, NULL);
        pq_json_str(pat, "Regex", false, &rx, what, NULL);
        if ((!str && !rx) || (str && !*str))
            return pq_fail(err, POLYQ_FORMAT,
                           "%s: Split pre_tokenizer needs a String or Regex pattern", what);
        s.kind = S_REGEX;
        pq_json_bool(j, "invert", false, &s.invert, what, NULL);
        if ((rc = parse_behavior(j, B_ISOLATED, &s.beh, what, err)))
            return rc;
        if ((rc = compile(&s.re, str ? str : rx, str ? PCRE2_LITERAL : 0, what, err)))
            return rc;
        return add(p, s, err);
    }
    if (!strcmp(type, "Whitespace")) {
        s.kind = S_WORDS;
        s.invert = true;
        s.beh = B_REMOVED;
        return add(p, s, err);
    }
    if (!strcmp(type, "WhitespaceSplit") || !strcmp(type, "BertPreTokenizer")) {
        s.kind = S_WHITE;
        s.beh = B_REMOVED;
        if ((rc = add(p, s, err)) || strcmp(type, "BertPreTokenizer"))
            return rc;
        s.kind = S_PUNCT;
        s.beh = B_ISOLATED;
        return add(p, s, err);
    }
    if (!strcmp(type, "Punctuation")) {
        s.kind = S_PUNCT;
        if ((rc = parse_behavior(j, B_ISOLATED, &s.beh, what, err)))
            return rc;
        return add(p, s, err);
    }
    if (!strcmp(type, "Digits")) {
        bool individual = false;
        pq_json_bool(j, "individual_digits", false, &individual, what, NULL);
        s.kind = S_DIGIT;
        s.beh = individual ? B_ISOLATED : B_CONTIGUOUS;
        return add(p, s, err);
    }
    return pq_fail(err, POLYQ_UNSUPPORTED, "%s: pre_tokenizer \"%s\" is not supported", what, type);
}

int pq_pretok_from_json(pq_pretok **out, const json_t *j, const char *what, polyq_err *err)
{
    *out = NULL;
    if (!j || json_is_null(j))
        return 0;
    pq_pretok *p = calloc(1, sizeof *p);
    if (!p)
        return pq_fail(err, POLYQ_NOMEM, "out of memory");
    int rc = add_json(p, j, what, 0, err);
    if (rc) {
        pq_pretok_free(p);
        return rc;
    }
    *out = p;
    return 0;
}

/* Spans of one piece: [s, e) and whether the pattern matched it. */
typedef struct span {
    size_t s, e;
    bool match;
} span;
typedef struct spans {
    span *v;
    size_t n, cap;
} spans;

static int spans_push(spans *sp, size_t s, size_t e, bool match)
{
    if (sp->n == sp->cap) {
        size_t nc = sp->cap ? sp->cap * 2 : 64;
        span *v = realloc(sp->v, nc * sizeof *v);
        if (!v)
            return -1;
        sp->v = v;
        sp->cap = nc;
    }
    sp->v[sp->n++] = (span){s, e, match};
    return 0;
}

static bool class_match(step_kind k, uint32_t cp)
{
    return k == S_WHITE   ? pq_is_white_space(cp)
           : k == S_PUNCT ? pq_is_punct(cp)
                          : pq_is_numeric(cp);
}

/* Fills sp with the spans of text[0..n) under re or a character class; 1 on a regex error. */
static int find_spans(const step *st, const pcre2_code *re, const char *text, size_t n,
                      pcre2_match_data *md, spans *sp)
{
    sp->n = 0;
    size_t prev = 0;
    if (st->kind == S_WORDS) { /* runs of word characters, runs of other non-space ones */
        int run = 0;           /* 0 none, 1 word, 2 other */
        size_t run_start = 0;
        for (size_t i = 0;;) {
            uint32_t cp = 0;
            size_t k = i < n ? (size_t)pq_utf8_decode(text + i, &cp) : 0;
            int cls = i >= n ? 0 : pq_u_in(PQ_U_WORD, cp) ? 1 : pq_is_white_space(cp) ? 0 : 2;
            if (cls != run && run) {
                if ((run_start > prev && spans_push(sp, prev, run_start, false)) ||
                    spans_push(sp, run_start, i, true))
                    return -1;
                prev = i;
            }
            if (cls != run)
                run_start = i;
            run = cls;
            if (i >= n)
                break;
            i += k;
        }
    } else if (!re) {
        for (size_t i = 0; i < n;) {
            uint32_t cp;
            size_t k = (size_t)pq_utf8_decode(text + i, &cp);
            if (class_match(st->kind, cp)) {
                if ((i > prev && spans_push(sp, prev, i, false)) || spans_push(sp, i, i + k, true))
                    return -1;
                prev = i + k;
            }
            i += k;
        }
    } else {
        size_t pos = 0;
        while (pos <= n) {
            int r =
                pcre2_match(re, (PCRE2_SPTR)text, n, pos, PCRE2_NO_UTF_CHECK, md, pq_re_limits());
            if (r == PCRE2_ERROR_NOMATCH)
                break;
            if (r < 0)
                return pq_re_limited(r) ? 2 : 1;
            PCRE2_SIZE *ov = pcre2_get_ovector_pointer(md);
            size_t ms = ov[0], me = ov[1];
            if ((ms > prev && spans_push(sp, prev, ms, false)) || spans_push(sp, ms, me, true))
                return -1;
            prev = me;
            if (me == ms) { /* an empty match: search again one character on */
                if (me >= n)
                    break;
                uint32_t cp;
                pos = me + (size_t)pq_utf8_decode(text + me, &cp);
            } else {
                pos = me;
            }
        }
    }
    if (n > prev && spans_push(sp, prev, n, false))
        return -1;
    return 0;
}

/* Joins spans by the behavior (tokenizers' SplitDelimiterBehavior) and pushes the pieces. */
static int emit(const span *v, size_t n, behavior beh, bool invert, const char *text, bool start,
                pq_pieces *out, spans *tmp)
{
    tmp->n = 0;
    bool prev_match = false;
    if (beh == B_WITH_NEXT) {
        for (size_t k = n; k-- > 0;) {
            bool m = v[k].match != invert;
            if (m && !prev_match && tmp->n)
                tmp->v[tmp->n - 1].s = v[k].s;
            else if (spans_push(tmp, v[k].s, v[k].e, false))
                return -1;
            prev_match = m;
        }
        for (size_t a = 0, b = tmp->n; a + 1 < b; a++, b--) {
            span t = tmp->v[a];
            tmp->v[a] = tmp->v[b - 1];
            tmp->v[b - 1] = t;
        }
    } else {
        for (size_t k = 0; k < n; k++) {
            bool m = v[k].match != invert;
            if (beh == B_REMOVED) {
                if (!m && spans_push(tmp, v[k].s, v[k].e, false))
                    return -1;
            } else if (beh == B_ISOLATED) {
                if (spans_push(tmp, v[k].s, v[k].e, false))
                    return -1;
            } else if (beh == B_WITH_PREVIOUS) {
                if (m && !prev_match && tmp->n)
                    tmp->v[tmp->n - 1].e = v[k].e;
                else if (spans_push(tmp, v[k].s, v[k].e, false))
                    return -1;
            } else { /* B_CONTIGUOUS */
                if (m == prev_match && tmp->n)
                    tmp->v[tmp->n - 1].e = v[k].e;
                else if (spans_push(tmp, v[k].s, v[k].e, false))
                    return -1;
            }
            prev_match = m;
        }
    }
    for (size_t k = 0; k < tmp->n; k++)
        if (pieces_push(out, text + tmp->v[k].s, tmp->v[k].e - tmp->v[k].s,
                        start && tmp->v[k].s == 0))
            return -1;
    return 0;
}

typedef struct ctx {
    spans sp, tmp;
    char *buf;
    size_t cap;
    pcre2_match_data *md;
} ctx;

static int reserve(ctx *c, size_t n)
{
    if (n <= c->cap)
        return 0;
    char *b = realloc(c->buf, n);
    if (!b)
        return -1;
    c->buf = b;
    c->cap = n;
    return 0;
}

/* One step on one piece; 1 on a regex failure, -1 out of memory. */
static int run_step(const step *st, const char *text, size_t n, bool start, pq_pieces *out, ctx *c)
{
    int r;
    switch (st->kind) {
    case S_BYTE_LEVEL:
        if (st->prefix && text[0] != ' ') {
            if (reserve(c, n + 1))
                return -1;
            c->buf[0] = ' ';
            memcpy(c->buf + 1, text, n);
            text = c->buf;
            n++;
        }
        if (!st->re)
            return pieces_push(out, text, n, start);
        if ((r = find_spans(st, st->re, text, n, c->md, &c->sp)))
            return r;
        return emit(c->sp.v, c->sp.n, B_ISOLATED, false, text, start, out, &c->tmp);
    case S_METASPACE: {
        size_t spaces = 0;
        for (size_t i = 0; i < n; i++)
            spaces += text[i] == ' ';
        if (reserve(c, n + (spaces + 1) * st->rep_len))
            return -1;
        size_t w = 0;
        bool starts =
            (n && text[0] == ' ') || (n >= st->rep_len && !memcmp(text, st->rep, st->rep_len));
        if (!starts && (st->scheme == 'a' || (st->scheme == 'f' && start))) {
            memcpy(c->buf, st->rep, st->rep_len);
            w = st->rep_len;
        }
        for (size_t i = 0; i < n; i++) {
            if (text[i] == ' ') {
                memcpy(c->buf + w, st->rep, st->rep_len);
                w += st->rep_len;
            } else {
                c->buf[w++] = text[i];
            }
        }
        if (!st->split)
            return pieces_push(out, c->buf, w, start);
        c->sp.n = 0;
        size_t prev = 0;
        for (size_t i = 0; i + st->rep_len <= w;) {
            if (!memcmp(c->buf + i, st->rep, st->rep_len)) {
                if ((i > prev && spans_push(&c->sp, prev, i, false)) ||
                    spans_push(&c->sp, i, i + st->rep_len, true))
                    return -1;
                i += st->rep_len;
                prev = i;
            } else {
                i++;
            }
        }
        if (w > prev && spans_push(&c->sp, prev, w, false))
            return -1;
        return emit(c->sp.v, c->sp.n, B_WITH_NEXT, false, c->buf, start, out, &c->tmp);
    }
    default:
        if ((r = find_spans(st, st->kind == S_REGEX ? st->re : NULL, text, n, c->md, &c->sp)))
            return r;
        return emit(c->sp.v, c->sp.n, st->beh, st->invert, text, start, out, &c->tmp);
    }
}

static void pieces_reset(pq_pieces *ps)
{
    ps->n = 0;
    ps->n_arena = 0;
}

int pq_pretok_run(const pq_pretok *p, const char *text, size_t len, bool first, pq_pieces *out,
                  pq_pieces *tmp, polyq_err *err)
{
    pieces_reset(out);
    if (pieces_push(out, text, len, first))
        return pq_fail(err, POLYQ_NOMEM, "out of memory while tokenizing");
    if (!p)
        return 0;
    ctx c = {0};
    c.md = pcre2_match_data_create(1, NULL);
    int r = c.md ? 0 : -1;
    for (size_t i = 0; i < p->n && !r; i++) {
        pq_pieces t = *tmp;
        *tmp = *out;
        *out = t;
        pieces_reset(out);
        for (size_t k = 0; k < tmp->n && !r; k++)
            r = run_step(&p->steps[i], tmp->arena + tmp->off[k], tmp->len[k], tmp->start[k], out,
                         &c);
    }
    pcre2_match_data_free(c.md);
    free(c.sp.v);
    free(c.tmp.v);
    free(c.buf);
    if (r == 2)
        return pq_fail(err, POLYQ_TEXT,
                       "a pre-tokenizer regex reached polyq's match limit (%d steps, %d KiB) on a "
                       "piece of text: the pattern backtracks too much on it",
                       PQ_RE_MATCH_LIMIT, PQ_RE_HEAP_KIB);
    if (r > 0)
        return pq_fail(err, POLYQ_TEXT, "pre-tokenizer regex failed on the text");
    if (r < 0)
        return pq_fail(err, POLYQ_NOMEM, "out of memory while tokenizing");
    return 0;
}
