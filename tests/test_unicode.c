/* Character classes against Hugging Face `tokenizers` on every Unicode scalar value: each
 * normalizer and pre-tokenizer that classifies characters (BertNormalizer's cleaning, CJK
 * padding, accent stripping and lower-casing; BertPreTokenizer, Whitespace, Punctuation,
 * Digits, ByteLevel's GPT-2 regex under PCRE2; added tokens' single_word and lstrip) is run on
 * one character at a time and compared with tests/golden/unicode_tokenizers.txt
 * (tools/gen_unicode_golden.py). */
#include <jansson.h>
#include <stdlib.h>
#include <string.h>

#include "base/base.h"
#include "test.h"
#include "tok/normalizer.h"
#include "tok/pretok.h"
#include "tok/tokenizer.h"

#define N_CP 0x110000
#define N_CLASS_MAX 16

typedef struct golden {
    char *text;
    char *cls[N_CLASS_MAX]; /* per class section: one byte per code point */
    const char *names[N_CLASS_MAX];
    int n;
    char *map_text[2]; /* accents, lower: per code point the expected output or NULL */
    char **map[2];
    bool hangul;
} golden;

static const char *const class_names[] = {"clean",  "cjk",  "bert", "whitespace", "punct",
                                          "digits", "byte", "word", "space",      "nfd",
                                          "nfkd",   "nfc",  "nfkc", "ccc",        "strip"};
enum { N_CLASS = 15 };

static int section_index(const char *name)
{
    for (int i = 0; i < N_CLASS; i++)
        if (!strcmp(name, class_names[i]))
            return i;
    if (!strcmp(name, "accents"))
        return 100;
    if (!strcmp(name, "lower"))
        return 101;
    return -1;
}

static char *utf8_of_hex_list(const char *s)
{
    if (!strcmp(s, "-"))
        return pq_strdup("");
    char *out = malloc(strlen(s) * 4 + 1), *o = out;
    while (*s) {
        char *end;
        unsigned long c = strtoul(s, &end, 16);
        o += pq_utf8_encode((uint32_t)c, o);
        s = end;
        while (*s == ' ')
            s++;
    }
    *o = 0;
    return out;
}

static bool golden_load(golden *g)
{
    polyq_err err = {0};
    memset(g, 0, sizeof *g);
    if (pq_read_file(pq_test_fixture("../golden/unicode_tokenizers.txt"), 8u << 20, &g->text, NULL,
                     &err)) {
        FAILF("%s", err.msg);
        return false;
    }
    for (int i = 0; i < N_CLASS; i++) {
        g->cls[i] = calloc(N_CP, 1);
        g->names[i] = class_names[i];
    }
    for (int m = 0; m < 2; m++)
        g->map[m] = calloc(N_CP, sizeof(char *));
    int sec = -1;
    long prev = -1;
    char prev_k = 0;
    char *save = NULL;
    for (char *line = strtok_r(g->text, "\n", &save);; line = strtok_r(NULL, "\n", &save)) {
        if (!line || line[0] == '@') {
            if (sec >= 0 && sec < N_CLASS && prev >= 0)
                memset(g->cls[sec] + prev, prev_k, (size_t)(N_CP - prev));
            if (!line)
                break;
            sec = section_index(line + 2);
            prev = -1;
            if (sec < 0) {
                FAILF("unicode golden: unknown section %s", line);
                return false;
            }
            continue;
        }
        if (line[0] == '#')
            continue;
        if (!strncmp(line, "hangul ", 7)) {
            g->hangul = true;
            continue;
        }
        char *end;
        long c = strtol(line, &end, 16);
        if (sec < N_CLASS) {
            if (prev >= 0)
                memset(g->cls[sec] + prev, prev_k, (size_t)(c - prev));
            prev = c;
            prev_k = end[1];
        } else {
            g->map[sec - 100][c] = utf8_of_hex_list(end + 1);
        }
    }
    return true;
}

static void golden_free(golden *g)
{
    free(g->text);
    for (int i = 0; i < N_CLASS; i++)
        free(g->cls[i]);
    for (int m = 0; m < 2; m++) {
        for (long c = 0; g->map[m] && c < N_CP; c++)
            free(g->map[m][c]);
        free(g->map[m]);
    }
}

static bool scalar(long c)
{
    return c < 0xd800 || c > 0xdfff;
}

/* Reports the first few code points where polyq's class differs, and how many. */
static void compare(const golden *g, int sec, const char *got, const char *what)
{
    long bad = 0;
    for (long c = 0; c < N_CP; c++) {
        if (!scalar(c) || got[c] == g->cls[sec][c])
            continue;
        if (bad++ < 8)
            FAILF("%s: U+%04lX is '%c' in polyq, '%c' in tokenizers", what, c, got[c],
                  g->cls[sec][c]);
    }
    if (bad)
        FAILF("%s: %ld code points differ", what, bad);
}

static pq_normalizer *normalizer(const char *json)
{
    polyq_err err = {0};
    json_error_t je;
    json_t *j = json_loads(json, 0, &je);
    pq_normalizer *n = NULL;
    CHECK_OK(pq_normalizer_from_json(&n, j, "test", &err));
    json_decref(j);
    return n;
}

static pq_pretok *pretok(const char *json)
{
    polyq_err err = {0};
    json_error_t je;
    json_t *j = json_loads(json, 0, &je);
    pq_pretok *p = NULL;
    CHECK_OK(pq_pretok_from_json(&p, j, "test", &err));
    json_decref(j);
    return p;
}

static char *normalize(const pq_normalizer *n, const char *s, size_t len)
{
    polyq_err err = {0};
    char *out = NULL;
    size_t n_out;
    if (pq_normalizer_apply(n, s, len, &out, &n_out, &err)) {
        FAILF("%s", err.msg);
        return NULL;
    }
    return out;
}

/* s: a prefix character, the code point c, maybe a suffix character (c may be NUL) */
static size_t n_pieces(const pq_pretok *p, char pre, long c, char post, pq_pieces *ps,
                       pq_pieces *tmp)
{
    polyq_err err = {0};
    char s[8];
    size_t n = 0;
    s[n++] = pre;
    n += (size_t)pq_utf8_encode((uint32_t)c, s + n);
    if (post)
        s[n++] = post;
    if (pq_pretok_run(p, s, n, true, ps, tmp, &err)) {
        FAILF("%s", err.msg);
        return 0;
    }
    return ps->n;
}

TEST(unicode_bert_normalizer_every_code_point)
{
    golden g;
    if (!golden_load(&g)) {
        golden_free(&g);
        return;
    }
    static const char *const base = "{\"type\":\"BertNormalizer\",\"clean_text\":%s,"
                                    "\"handle_chinese_chars\":%s,\"strip_accents\":%s,"
                                    "\"lowercase\":%s}";
    char js[4][256];
    snprintf(js[0], sizeof js[0], base, "true", "false", "false", "false");
    snprintf(js[1], sizeof js[1], base, "false", "true", "false", "false");
    snprintf(js[2], sizeof js[2], base, "false", "false", "true", "false");
    snprintf(js[3], sizeof js[3], base, "false", "false", "false", "true");
    pq_normalizer *clean = normalizer(js[0]), *cjk = normalizer(js[1]), *acc = normalizer(js[2]),
                  *low = normalizer(js[3]);
    char *got_clean = calloc(N_CP, 1), *got_cjk = calloc(N_CP, 1);
    long bad[2] = {0, 0};
    for (long c = 0; c < N_CP && clean && cjk && acc && low; c++) {
        if (!scalar(c))
            continue;
        char ch[8];
        int l = pq_utf8_encode((uint32_t)c, ch);
        ch[l] = 0;
        char *r = normalize(clean, ch, (size_t)l);
        got_clean[c] = !r                            ? '?'
                       : !*r                         ? 'd'
                       : !strcmp(r, " ") && c != ' ' ? 's'
                       : !strcmp(r, ch)              ? 'k'
                                                     : 'X';
        free(r);
        r = normalize(cjk, ch, (size_t)l);
        char padded[16];
        snprintf(padded, sizeof padded, " %s ", ch);
        got_cjk[c] = !r ? '?' : !strcmp(r, ch) ? 'k' : !strcmp(r, padded) ? 'p' : 'X';
        free(r);
        for (int m = 0; m < 2; m++) {
            r = normalize(m ? low : acc, ch, (size_t)l);
            const char *want = g.map[m][c] ? g.map[m][c] : ch;
            char hang[16];
            if (m == 0 && g.hangul && c >= 0xac00 && c <= 0xd7a3) { /* Unicode's algorithm */
                long s = c - 0xac00, t = 0x11a7 + s % 28;
                int k = pq_utf8_encode((uint32_t)(0x1100 + s / 588), hang);
                k += pq_utf8_encode((uint32_t)(0x1161 + (s % 588) / 28), hang + k);
                if (t != 0x11a7)
                    k += pq_utf8_encode((uint32_t)t, hang + k);
                hang[k] = 0;
                want = hang;
            }
            if (r && strcmp(r, want) && bad[m]++ < 8)
                FAILF("%s: U+%04lX gives \"%s\" in polyq, \"%s\" in tokenizers",
                      m ? "BertNormalizer lowercase" : "BertNormalizer strip_accents", c, r, want);
            free(r);
        }
    }
    compare(&g, 0, got_clean, "BertNormalizer clean_text");
    compare(&g, 1, got_cjk, "BertNormalizer handle_chinese_chars");
    for (int m = 0; m < 2; m++)
        if (bad[m])
            FAILF("%s: %ld code points differ", m ? "lowercase" : "strip_accents", bad[m]);
    free(got_clean);
    free(got_cjk);
    pq_normalizer_free(clean);
    pq_normalizer_free(cjk);
    pq_normalizer_free(acc);
    pq_normalizer_free(low);
    golden_free(&g);
}

TEST(unicode_pre_tokenizers_every_code_point)
{
    golden g;
    if (!golden_load(&g)) {
        golden_free(&g);
        return;
    }
    pq_pretok *bp = pretok("{\"type\":\"BertPreTokenizer\"}"),
              *ws = pretok("{\"type\":\"Whitespace\"}"),
              *pu = pretok("{\"type\":\"Punctuation\",\"behavior\":\"Isolated\"}"),
              *dg = pretok("{\"type\":\"Digits\",\"individual_digits\":false}"),
              *bl = pretok("{\"type\":\"ByteLevel\",\"add_prefix_space\":false,"
                           "\"trim_offsets\":true,\"use_regex\":true}");
    char *got[5];
    for (int i = 0; i < 5; i++)
        got[i] = calloc(N_CP, 1);
    pq_pieces ps = {0}, tmp = {0};
    for (long c = 0; c < N_CP && bp && ws && pu && dg && bl; c++) {
        if (!scalar(c))
            continue;
        size_t n = n_pieces(bp, 'a', c, 'a', &ps, &tmp);
        got[0][c] = n == 1 ? 'k' : n == 2 ? 's' : n == 3 ? 'p' : 'X';
        n = n_pieces(ws, 'a', c, 'a', &ps, &tmp);
        got[1][c] = n == 1 ? 'w' : n == 2 ? 's' : n == 3 ? 'o' : 'X';
        n = n_pieces(pu, 'a', c, 'a', &ps, &tmp);
        got[2][c] = n == 1 ? 'k' : n == 3 ? 'p' : 'X';
        n = n_pieces(dg, 'a', c, 'a', &ps, &tmp);
        got[3][c] = n == 1 ? 'k' : n == 3 ? 'n' : 'X';
        char k = n_pieces(bl, 'a', c, 0, &ps, &tmp) == 1   ? 'L'
                 : n_pieces(bl, '1', c, 0, &ps, &tmp) == 1 ? 'N'
                 : n_pieces(bl, '!', c, 0, &ps, &tmp) == 1 ? 'O'
                                                           : 'S';
        got[4][c] = k;
    }
    compare(&g, 2, got[0], "BertPreTokenizer");
    compare(&g, 3, got[1], "Whitespace");
    compare(&g, 4, got[2], "Punctuation");
    compare(&g, 5, got[3], "Digits");
    compare(&g, 6, got[4], "ByteLevel regex");
    for (int i = 0; i < 5; i++)
        free(got[i]);
    pq_pieces_free(&ps);
    pq_pieces_free(&tmp);
    pq_pretok_free(bp);
    pq_pretok_free(ws);
    pq_pretok_free(pu);
    pq_pretok_free(dg);
    pq_pretok_free(bl);
    golden_free(&g);
}

/* An added token after each character: single_word (the regex crate's \w before the match)
 * and lstrip (its \s, taken into the token) as tokenizers decides them. */
TEST(unicode_added_token_boundaries_every_code_point)
{
    golden g;
    if (!golden_load(&g)) {
        golden_free(&g);
        return;
    }
    static const char *const base =
        "{\"model\":{\"type\":\"WordPiece\",\"unk_token\":\"[UNK]\",\"vocab\":{\"[UNK]\":0}},"
        "\"added_tokens\":[{\"id\":1,\"content\":\"\\u2400\",\"special\":false,"
        "\"normalized\":false,\"%s\":true}]}";
    polyq_err err = {0};
    pq_tokenizer *tok[2] = {NULL, NULL};
    for (int f = 0; f < 2; f++) {
        char js[512];
        snprintf(js, sizeof js, base, f ? "lstrip" : "single_word");
        CHECK_OK(pq_tok_load_json_buffer(&tok[f], "test", js, strlen(js), &err));
    }
    char *got[2] = {calloc(N_CP, 1), calloc(N_CP, 1)};
    pq_ids ids = {0};
    for (long c = 0; c < N_CP && tok[0] && tok[1]; c++) {
        if (!scalar(c))
            continue;
        char s[8];
        int l = pq_utf8_encode((uint32_t)c, s);
        memcpy(s + l, "\xe2\x90\x80", 3); /* U+2400 */
        for (int f = 0; f < 2; f++) {
            ids.n = 0;
            CHECK_OK(pq_tok_encode(tok[f], s, (size_t)l + 3, &ids, &err));
            bool whole = ids.n == 1; /* one id: the token took the character, or was refused */
            got[f][c] = c == 0x2400 ? 'k' : f == 0 ? (whole ? 'w' : 'k') : (whole ? 's' : 'k');
        }
    }
    compare(&g, 7, got[0], "single_word");
    compare(&g, 8, got[1], "lstrip");
    pq_ids_free(&ids);
    free(got[0]);
    free(got[1]);
    pq_tok_free(tok[0]);
    pq_tok_free(tok[1]);
    golden_free(&g);
}

/* Whole lines of unassigned, private-use, noncharacter, format and recent characters in real
 * pipelines (mBERT, XLM-R and pretok-mix stand-ins, Pythia, all-MiniLM-L6-v2 when installed),
 * against tokenizers' ids with the special tokens (tests/golden/unicode_lines.txt). */
TEST(unicode_lines_in_real_pipelines)
{
    polyq_err err = {0};
    char *text;
    if (pq_read_file(pq_test_fixture("../golden/unicode_lines.txt"), 1u << 20, &text, NULL, &err)) {
        FAILF("%s", err.msg);
        return;
    }
    static const char *const names[] = {"mbert-standin", "xlmr-standin", "pretok-mix", "pythia",
                                        "minilm"};
    pq_tokenizer *tok[5] = {NULL};
    char path[1200];
    for (int i = 0; i < 3; i++) {
        snprintf(path, sizeof path, "%s", pq_test_fixture(""));
        snprintf(path + strlen(path), sizeof path - strlen(path), "tokenizers/%s/tokenizer.json",
                 names[i]);
        CHECK_OK(pq_tok_load_json(&tok[i], path, &err));
    }
    CHECK_OK(pq_tok_load_json(
        &tok[3], pq_test_shared("data/tokenizers/pythia-160m/20B_tokenizer.json"), &err));
    const char *minilm = pq_test_minilm_dir();
    if (minilm) {
        snprintf(path, sizeof path, "%s/tokenizer.json", minilm);
        CHECK_OK(pq_tok_load_json(&tok[4], path, &err));
    }
    size_t n_lines = 0, n_checked = 0;
    const char *line_text = NULL;
    json_t *line_json = NULL;
    char *save = NULL;
    for (char *line = strtok_r(text, "\n", &save); line; line = strtok_r(NULL, "\n", &save)) {
        if (line[0] == '#')
            continue;
        if (line[0] == '"') {
            json_decref(line_json);
            json_error_t je;
            line_json = json_loads(line, JSON_DECODE_ANY | JSON_ALLOW_NUL, &je);
            line_text = json_string_value(line_json);
            n_lines++;
            continue;
        }
        char *sp = strchr(line, ' ');
        if (!sp || !line_text)
            continue;
        *sp = 0;
        int t = -1;
        for (int i = 0; i < 5; i++)
            if (!strcmp(line, names[i]))
                t = i;
        if (t < 0 || !tok[t])
            continue;
        pq_ids ids = {0};
        CHECK_OK(
            pq_tok_encode_special(tok[t], line_text, json_string_length(line_json), &ids, &err));
        char got[1024];
        pq_test_ids_text(ids.v, ids.n, got, sizeof got);
        if (strcmp(got, sp + 1))
            FAILF("%s on %s: polyq %s, tokenizers %s", line, json_dumps(line_json, JSON_ENCODE_ANY),
                  got, sp + 1);
        n_checked++;
        pq_ids_free(&ids);
    }
    json_decref(line_json);
    CHECK_INT(n_lines, 21);
    CHECK_INT(n_checked, n_lines * (minilm ? 5 : 4));
    for (int i = 0; i < 5; i++)
        pq_tok_free(tok[i]);
    free(text);
    if (!minilm)
        pq_test_skip("all-MiniLM-L6-v2 is not installed (scripts/install-deps.sh --tests); the "
                     "other four pipelines were checked");
}

/* NFD, NFKD, NFC and NFKC on each character alone (changed or kept) and StripAccents (removed
 * or kept), as tokenizers' older normalization tables have them: characters utf8proc knows
 * and tokenizers does not are kept. */
TEST(unicode_normalization_forms_every_code_point)
{
    golden g;
    if (!golden_load(&g)) {
        golden_free(&g);
        return;
    }
    static const char *const types[] = {"NFD", "NFKD", "NFC", "NFKC", "StripAccents"};
    for (int f = 0; f < 5; f++) {
        char js[64];
        snprintf(js, sizeof js, "{\"type\":\"%s\"}", types[f]);
        pq_normalizer *n = normalizer(js);
        char *got = calloc(N_CP, 1);
        for (long c = 0; c < N_CP && n; c++) {
            if (!scalar(c))
                continue;
            char ch[8];
            int l = pq_utf8_encode((uint32_t)c, ch);
            ch[l] = 0;
            char *r = NULL;
            size_t rl = 0;
            polyq_err err = {0};
            CHECK_OK(pq_normalizer_apply(n, ch, (size_t)l, &r, &rl, &err));
            bool same = r && rl == (size_t)l && !memcmp(r, ch, (size_t)l);
            got[c] = f == 4 ? (r && !rl ? 'r' : 'k') : same ? 'k' : 'c';
            free(r);
        }
        compare(&g, f == 4 ? 14 : 9 + f, got, types[f]);
        free(got);
        pq_normalizer_free(n);
    }
    golden_free(&g);
}
