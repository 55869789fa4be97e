/* BPE as Hugging Face `tokenizers` runs it (models/bpe, pre_tokenizers/byte_level,
 * added_vocabulary). Pre-tokenization uses PCRE2 with UTF+UCP and the GPT-2 pattern; the BPE
 * merge loop pops the lowest (rank, position) pair from a heap exactly as tokenizers'
 * Word::merge_all does, so ties resolve the same way. Sentencepiece-style BPE (Llama) works
 * on characters with byte_fallback; Metaspace and no pre-tokenizer are supported; normalizers
 * live in normalizer.c. WordPiece (greedy longest match from the start, as models/wordpiece)
 * and Unigram (Viterbi over the pieces' log-probabilities, as models/unigram) are here too. */
#include "tok/tokenizer.h"

#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#include "base/base.h"
#include "base/strmap.h"
#include "format/json.h"
#include "tok/legacy.h"
#include "tok/normalizer.h"
#include "tok/pretok.h"
#include "tok/uclass.h"

typedef enum { M_BPE, M_WORDPIECE, M_UNIGRAM } model_kind;

/* An added token as tokenizers' AddedToken: normalized ones are matched on normalized text
 * (the second pass) by their content normalized; lstrip/rstrip take the white space before /
 * after a match into the token; single_word matches only where no word character (the regex
 * crate's \w) touches the match. */
typedef struct added_flags {
    bool special, normalized, lstrip, rstrip, single_word;
} added_flags;

typedef struct added_token {
    char *content;
    size_t len;
    char *pat; /* what is matched: content, normalized for normalized tokens */
    size_t pat_len;
    int32_t id;
    added_flags f;
    bool added_only; /* not in the model's vocabulary */
} added_token;

struct pq_tokenizer {
    const char *path; /* for messages */
    char *path_owned;
    pq_strmap vocab;             /* byte-level token string -> id */
    int32_t n_vocab;             /* largest id + 1 */
    uint32_t *dec_off, *dec_len; /* per id: its bytes in dec_arena (decoded byte-level) */
    char *dec_arena;
    size_t dec_arena_len;
    pq_u64map merges;        /* (left id << 32 | right id) -> (rank << 32 | merged id) */
    int32_t byte_id[256];    /* id of each single byte's symbol, -1 if none */
    uint16_t byte_char[256]; /* GPT-2 bytes_to_unicode */
    int16_t char_byte[324];  /* inverse, -1 where not a byte char */
    added_token *added;
    size_t n_added, added_cap;
    pq_strmap added_all;         /* content -> index in added */
    pq_strmap added_pass[2];     /* [normalized]: content -> index, for matching in text */
    size_t added_max[2];         /* [normalized]: the longest added token in bytes */
    uint8_t added_first[2][256]; /* first bytes of added tokens: [normalized] */
    size_t max_len;              /* the longest vocabulary entry in bytes */
    pq_normalizer *norm;         /* NULL: none */
    bool byte_fallback;          /* BPE: characters missing from the vocabulary become <0xXX> */
    bool fuse_unk;
    int32_t fallback_id[256]; /* id of "<0xXX>" for each byte, -1 if absent */
    /* decoder (besides ByteLevel): Replace a -> b on each token, ByteFallback, Strip */
    char *dec_from, *dec_to;
    bool dec_byte_fallback;
    int strip_start, strip_stop;
    uint16_t *is_byte_token;     /* per id: 1 + byte value for <0xXX> tokens under ByteFallback */
    uint8_t *is_fallback;        /* per id: a byte-fallback token of the model */
    uint8_t *model_lacks;        /* per id: an added token the model's vocabulary lacks */
    const char *dec_unsupported; /* a decoder step decode() cannot run (static or JSON-owned) */
    char dec_unsupported_buf[64];
    pq_pretok *pre; /* NULL: each normalized piece is one word */
    bool byte_level, ignore_merges;
    char *pre_json; /* tokenizer.json's pre_tokenizer, compact, NULL when none */
    int32_t unk, bos, eos;
    model_kind model;
    /* WordPiece */
    char wp_prefix[16];
    size_t wp_prefix_len, wp_max_chars;
    /* Unigram: per id its log-probability; the longest piece in bytes */
    double *score;
    double min_score;
    size_t max_piece;
    /* post-processor for one sequence: ids before and after it */
    int32_t pre_ids[8], post_ids[8];
    int n_pre, n_post;
    /* WordPiece decoder */
    bool dec_wordpiece, dec_cleanup;
    char dec_wp_prefix[16];
    /* tokenizer.json's padding and truncation (which polyq does not apply): -1 when unset */
    int64_t pad_length, trunc_length;
    bool pads, truncates;
};

int pq_ids_push(pq_ids *ids, int32_t id)
{
    if (ids->n == ids->cap) {
        size_t nc = ids->cap ? ids->cap * 2 : 64;
        int32_t *v = realloc(ids->v, nc * sizeof *v);
        if (!v)
            return -1;
        ids->v = v;
        ids->cap = nc;
    }
    ids->v[ids->n++] = id;
    return 0;
}

void pq_ids_free(pq_ids *ids)
{
    if (!ids)
        return;
    free(ids->v);
    memset(ids, 0, sizeof *ids);
}

static void byte_tables(pq_tokenizer *t)
{
    int n = 0;
    for (int i = 0; i < 324; i++)
        t->char_byte[i] = -1;
    for (int b = 0; b < 256; b++) {
        bool printable = (b >= '!' && b <= '~') || (b >= 0xa1 && b <= 0xac) || (b >= 0xae);
        t->byte_char[b] = (uint16_t)(printable ? b : 256 + n++);
        t->char_byte[t->byte_char[b]] = (int16_t)b;
    }
}

static pq_tokenizer *tok_new(const char *path)
{
    pq_tokenizer *t = calloc(1, sizeof *t);
    if (!t)
        return NULL;
    t->path = t->path_owned = pq_strdup(path);
    if (!t->path_owned) {
        free(t);
        return NULL;
    }
    t->unk = t->bos = t->eos = -1;
    for (int i = 0; i < 256; i++)
        t->byte_id[i] = t->fallback_id[i] = -1;
    byte_tables(t);
    return t;
}

void pq_tok_free(pq_tokenizer *t)
{
    if (!t)
        return;
    pq_strmap_free(&t->vocab);
    pq_u64map_free(&t->merges);
    free(t->pre_json);
    free(t->dec_off);
    free(t->dec_len);
    free(t->dec_arena);
    for (size_t i = 0; i < t->n_added; i++) {
        free(t->added[i].content);
        free(t->added[i].pat);
    }
    free(t->added);
    free(t->model_lacks);
    pq_strmap_free(&t->added_all);
    pq_strmap_free(&t->added_pass[0]);
    pq_strmap_free(&t->added_pass[1]);
    pq_pretok_free(t->pre);
    free(t->score);
    pq_normalizer_free(t->norm);
    free(t->dec_from);
    free(t->dec_to);
    free(t->is_byte_token);
    free(t->is_fallback);
    free(t->path_owned);
    free(t);
}

/* Adds a vocabulary entry (byte-level string). */
static int vocab_add(pq_tokenizer *t, const char *s, size_t len, int64_t id, polyq_err *err)
{
    if (len > PQ_TOK_MAX_TOKEN)
        return pq_fail(err, POLYQ_FORMAT,
                       "%s: token %lld is %zu bytes long (polyq reads tokens of at most %d bytes)",
                       t->path, (long long)id, len, PQ_TOK_MAX_TOKEN);
    if (len > t->max_len)
        t->max_len = len;
    if (id < 0 || id >= (1 << 30))
        return pq_fail(err, POLYQ_FORMAT, "%s: token \"%.*s\" has id %lld out of range", t->path,
                       (int)(len > 40 ? 40 : len), s, (long long)id);
    int r = pq_strmap_put(&t->vocab, s, len, (int32_t)id);
    if (r < 0)
        return pq_fail(err, POLYQ_NOMEM, "%s: out of memory", t->path);
    if (r == 1)
        return pq_fail(err, POLYQ_FORMAT, "%s: token \"%.*s\" appears twice in the vocabulary",
                       t->path, (int)(len > 40 ? 40 : len), s);
    if (id + 1 > t->n_vocab)
        t->n_vocab = (int32_t)id + 1;
    return 0;
}

/* "<0xAB>" -> 0xAB, else -1 */
static int byte_token(const char *s, size_t n)
{
    static const char hex[] = "0123456789ABCDEF";
    if (n != 6 || memcmp(s, "<0x", 3) || s[5] != '>')
        return -1;
    const char *h = strchr(hex, s[3]), *l = strchr(hex, s[4]);
    return h && l && s[3] && s[4] ? (int)((h - hex) * 16 + (l - hex)) : -1;
}

/* Builds per-id decoded bytes and the single-byte ids once the vocabulary is complete:
 * byte-level tokens map their characters back to bytes; others get the decoder's Replace,
 * and <0xXX> tokens become their byte under ByteFallback. */
static int vocab_finish(pq_tokenizer *t, polyq_err *err)
{
    if ((size_t)t->n_vocab > 4 * t->vocab.n + 65536)
        return pq_fail(err, POLYQ_FORMAT, "%s: the largest token id is %d for only %zu tokens",
                       t->path, t->n_vocab - 1, t->vocab.n);
    size_t from_len = t->dec_from ? strlen(t->dec_from) : 0,
           to_len = t->dec_to ? strlen(t->dec_to) : 0;
    size_t cap = t->vocab.arena_len + 1;
    if (to_len > from_len && from_len)
        cap = cap / from_len * to_len + cap; /* every token could be made of replacements */
    t->dec_off = pq_calloc_array((size_t)t->n_vocab + 1, sizeof *t->dec_off);
    t->dec_len = pq_calloc_array((size_t)t->n_vocab + 1, sizeof *t->dec_len);
    t->is_byte_token = pq_calloc_array((size_t)t->n_vocab + 1, sizeof *t->is_byte_token);
    t->is_fallback = pq_calloc_array((size_t)t->n_vocab + 1, 1);
    t->model_lacks = pq_calloc_array((size_t)t->n_vocab + 1, 1);
    t->dec_arena = malloc(cap);
    if (!t->dec_off || !t->dec_len || !t->dec_arena || !t->is_byte_token || !t->is_fallback ||
        !t->model_lacks)
        return pq_fail(err, POLYQ_NOMEM, "%s: out of memory", t->path);
    for (size_t i = 0; i < t->n_added; i++)
        if (t->added[i].added_only)
            t->model_lacks[t->added[i].id] = 1;
    for (int32_t i = 0; i < t->n_vocab; i++)
        t->dec_len[i] = UINT32_MAX; /* marks ids with no token */
    size_t w = 0;
    for (size_t e = 0; e < t->vocab.n; e++) {
        const struct pq_strmap_entry *en = &t->vocab.entries[e];
        const char *s = t->vocab.arena + en->off;
        if (!pq_utf8_valid(s, en->len, NULL))
            return pq_fail(err, POLYQ_FORMAT, "%s: token with id %d is not valid UTF-8", t->path,
                           en->value);
        t->dec_off[en->value] = (uint32_t)w;
        size_t start = w;
        bool all_bytes = t->byte_level;
        for (size_t i = 0; i < en->len && all_bytes;) {
            uint32_t cp;
            i += (size_t)pq_utf8_decode(s + i, &cp);
            if (cp >= 324 || t->char_byte[cp] < 0)
                all_bytes = false;
            else
                t->dec_arena[w++] = (char)t->char_byte[cp];
        }
        int bt = byte_token(s, en->len);
        if (bt >= 0 && t->byte_fallback) {
            t->fallback_id[bt] = en->value;
            t->is_fallback[en->value] = 1;
        }
        if (all_bytes) {
            /* done */
        } else if (bt >= 0 && t->dec_byte_fallback) {
            w = start;
            t->is_byte_token[en->value] = (uint16_t)(1 + bt);
        } else { /* the token's text, with the decoder's Replace */
            w = start;
            for (size_t i = 0; i < en->len;) {
                if (from_len && en->len - i >= from_len && !memcmp(s + i, t->dec_from, from_len)) {
                    memcpy(t->dec_arena + w, t->dec_to, to_len);
                    w += to_len;
                    i += from_len;
                } else {
                    t->dec_arena[w++] = s[i++];
                }
            }
        }
        t->dec_len[en->value] = (uint32_t)(w - start);
    }
    t->dec_arena_len = w;
    if (t->byte_level) {
        for (int b = 0; b < 256; b++) {
            char u[4];
            int n = pq_utf8_encode(t->byte_char[b], u);
            t->byte_id[b] = pq_strmap_get(&t->vocab, u, (size_t)n);
        }
    }
    return 0;
}

static int merge_add(pq_tokenizer *t, const char *a, size_t la, const char *b, size_t lb,
                     uint32_t rank, polyq_err *err)
{
    int32_t ia = pq_strmap_get(&t->vocab, a, la), ib = pq_strmap_get(&t->vocab, b, lb);
    char stack[256];
    char *m = la + lb <= sizeof stack ? stack : malloc(la + lb);
    if (!m)
        return pq_fail(err, POLYQ_NOMEM, "%s: out of memory", t->path);
    memcpy(m, a, la);
    memcpy(m + la, b, lb);
    int32_t im = pq_strmap_get(&t->vocab, m, la + lb);
    if (m != stack)
        free(m);
    if (ia < 0 || ib < 0 || im < 0)
        return pq_fail(err, POLYQ_FORMAT,
                       "%s: merge %u (\"%.*s\" + \"%.*s\") uses a token not in the vocabulary",
                       t->path, rank, (int)(la > 40 ? 40 : la), a, (int)(lb > 40 ? 40 : lb), b);
    uint64_t key = ((uint64_t)(uint32_t)ia << 32) | (uint32_t)ib;
    uint64_t val = ((uint64_t)rank << 32) | (uint32_t)im;
    int r = pq_u64map_put(&t->merges, key, val);
    if (r < 0)
        return pq_fail(err, POLYQ_NOMEM, "%s: out of memory", t->path);
    if (r == 1) /* a repeated pair takes its last rank: tokenizers collects merges into a map */
        pq_u64map_set(&t->merges, key, val);
    return 0;
}

static int added_add(pq_tokenizer *t, const char *content, int32_t id, added_flags f,
                     polyq_err *err)
{
    size_t len = strlen(content);
    if (!len)
        return pq_fail(err, POLYQ_FORMAT, "%s: added token %d has empty content", t->path, id);
    if (len > PQ_TOK_MAX_TOKEN)
        return pq_fail(
            err, POLYQ_FORMAT,
            "%s: added token %d is %zu bytes long (polyq reads tokens of at most %d bytes)",
            t->path, id, len, PQ_TOK_MAX_TOKEN);
    int r = pq_strmap_put(&t->added_all, content, len, (int32_t)t->n_added);
    if (r < 0)
        return pq_fail(err, POLYQ_NOMEM, "%s: out of memory", t->path);
    if (r == 1) /* the first of equal contents stands */
        return 0;
    if (t->n_added == t->added_cap) {
        size_t nc = t->added_cap ? 2 * t->added_cap : 64;
        added_token *a = realloc(t->added, nc * sizeof *a);
        if (!a)
            return pq_fail(err, POLYQ_NOMEM, "%s: out of memory", t->path);
        t->added = a;
        t->added_cap = nc;
    }
    /* tokenizers matches a normalized token by its content normalized */
    char *pat = NULL;
    size_t pat_len = len;
    int rc = f.normalized && t->norm
                 ? pq_normalizer_apply(t->norm, content, len, &pat, &pat_len, err)
             : (pat = pq_strdup(content)) ? 0
                                          : pq_fail(err, POLYQ_NOMEM, "out of memory");
    if (rc)
        return rc;
    /* tokenizers gives a token the model already has the model's id, whatever the file says;
     * one the model lacks stays out of the model's vocabulary (the model never produces it) */
    int32_t model_id = pq_strmap_get(&t->vocab, content, len);
    bool in_model = model_id >= 0; /* the model's vocabulary is loaded before added tokens */
    if (in_model)
        id = model_id;
    char *c = pq_strdup(content);
    int pr = pat_len && c
                 ? pq_strmap_put(&t->added_pass[f.normalized], pat, pat_len, (int32_t)t->n_added)
                 : 0;
    if (!c || pr < 0) {
        free(c);
        free(pat);
        return pq_fail(err, POLYQ_NOMEM, "%s: out of memory", t->path);
    }
    t->added[t->n_added++] = (added_token){c, len, pat, pat_len, id, f, !in_model};
    if (pat_len && pr == 0) { /* an empty pattern never matches; equal patterns: the first */
        if (pat_len > t->added_max[f.normalized])
            t->added_max[f.normalized] = pat_len;
        t->added_first[f.normalized][(uint8_t)pat[0]] = 1;
    }
    if (model_id < 0) {
        rc = vocab_add(t, content, len, id, err);
        if (rc)
            return rc;
    }
    return 0;
}

/* "bos_token": "<s>" or {"content": "<s>", ...} in tokenizer_config.json */
static const char *config_token(const json_t *cfg, const char *key)
{
    json_t *v = json_object_get(cfg, key);
    if (json_is_object(v))
        v = json_object_get(v, "content");
    return json_is_string(v) ? json_string_value(v) : NULL;
}

static int read_tokenizer_config(pq_tokenizer *t, const char *dir, polyq_err *err)
{
    char *path = pq_path_join(dir, "tokenizer_config.json");
    if (!path)
        return pq_fail(err, POLYQ_NOMEM, "out of memory");
    int rc = 0;
    json_t *cfg = NULL;
    if (pq_file_exists(path)) {
        if ((rc = pq_json_load_reals(path, 16u << 20, &cfg, err)))
            goto out;
        const char *bos = config_token(cfg, "bos_token"), *eos = config_token(cfg, "eos_token");
        if (bos && (t->bos = pq_tok_token_id(t, bos)) < 0)
            rc = pq_fail(err, POLYQ_FORMAT, "%s: bos_token \"%s\" is not in the vocabulary", path,
                         bos);
        if (!rc && eos && (t->eos = pq_tok_token_id(t, eos)) < 0)
            rc = pq_fail(err, POLYQ_FORMAT, "%s: eos_token \"%s\" is not in the vocabulary", path,
                         eos);
    }
out:
    json_decref(cfg);
    free(path);
    return rc;
}

/* Unigram's vocab: [[piece, log-probability], ...], the id being the position. */
static int load_unigram_vocab(pq_tokenizer *t, const json_t *model, const json_t *vocab,
                              polyq_err *err)
{
    size_t n = json_array_size(vocab), i;
    json_t *v;
    if (!json_is_array(vocab) || !n || n > (1u << 30))
        return pq_fail(err, POLYQ_FORMAT, "%s: Unigram model needs a non-empty \"vocab\" array",
                       t->path);
    if (!(t->score = pq_calloc_array(n, sizeof *t->score)))
        return pq_fail(err, POLYQ_NOMEM, "%s: out of memory", t->path);
    json_array_foreach(vocab, i, v)
    {
        json_t *piece = json_array_get(v, 0), *score = json_array_get(v, 1);
        if (json_array_size(v) != 2 || !json_is_string(piece) || !json_is_number(score) ||
            !json_string_length(piece))
            return pq_fail(err, POLYQ_FORMAT, "%s: Unigram vocab entry %zu is not [piece, score]",
                           t->path, i);
        int rc = vocab_add(t, json_string_value(piece), json_string_length(piece), (int64_t)i, err);
        if (rc)
            return rc;
        t->score[i] = json_number_value(score);
        if (i == 0 || t->score[i] < t->min_score)
            t->min_score = t->score[i];
        if (json_string_length(piece) > t->max_piece)
            t->max_piece = json_string_length(piece);
    }
    int64_t unk = -1;
    if (json_object_get(model, "unk_id") && !json_is_null(json_object_get(model, "unk_id")) &&
        pq_json_int(model, "unk_id", true, 0, (int64_t)n - 1, &unk, t->path, err))
        return err->code;
    t->unk = (int32_t)unk;
    bool b = false;
    pq_json_bool(model, "byte_fallback", false, &b, t->path, NULL);
    t->byte_fallback = b;
    return 0;
}

/* The post-processor's tokens around one sequence: TemplateProcessing ("single"),
 * RobertaProcessing and BertProcessing (cls, sep), ByteLevel (none), Sequence. */
static int load_json_post(pq_tokenizer *t, const json_t *j, int depth, polyq_err *err)
{
    const char *type = NULL;
    if (!j || json_is_null(j))
        return 0;
    if (pq_json_str(j, "type", true, &type, t->path, err))
        return err->code;
    if (!strcmp(type, "ByteLevel"))
        return 0;
    if (!strcmp(type, "Sequence")) {
        json_t *list = json_object_get(j, "processors"), *v;
        size_t i;
        if (!json_is_array(list) || depth > 8)
            return pq_fail(err, POLYQ_FORMAT,
                           "%s: Sequence post_processor needs a \"processors\" array", t->path);
        json_array_foreach(list, i, v)
        {
            int rc = load_json_post(t, v, depth + 1, err);
            if (rc)
                return rc;
        }
        return 0;
    }
    if (t->n_pre || t->n_post)
        return pq_fail(err, POLYQ_UNSUPPORTED, "%s: two post-processors adding tokens", t->path);
    if (!strcmp(type, "RobertaProcessing") || !strcmp(type, "BertProcessing")) {
        json_t *cls = json_array_get(json_object_get(j, "cls"), 1),
               *sep = json_array_get(json_object_get(j, "sep"), 1);
        if (!json_is_integer(cls) || !json_is_integer(sep))
            return pq_fail(err, POLYQ_FORMAT, "%s: %s needs \"cls\" and \"sep\" as [token, id]",
                           t->path, type);
        t->pre_ids[t->n_pre++] = (int32_t)json_integer_value(cls);
        t->post_ids[t->n_post++] = (int32_t)json_integer_value(sep);
    } else if (!strcmp(type, "TemplateProcessing")) {
        json_t *single = json_object_get(j, "single"),
               *specials = json_object_get(j, "special_tokens"), *it;
        size_t i;
        bool seen_seq = false;
        if (!json_is_array(single))
            return pq_fail(err, POLYQ_FORMAT, "%s: TemplateProcessing needs a \"single\" array",
                           t->path);
        json_array_foreach(single, i, it)
        {
            json_t *sp = json_object_get(it, "SpecialToken");
            if (json_object_get(it, "Sequence")) {
                if (seen_seq)
                    return pq_fail(err, POLYQ_UNSUPPORTED, "%s: a template with the sequence twice",
                                   t->path);
                seen_seq = true;
                continue;
            }
            const char *name = NULL;
            if (!sp || pq_json_str(sp, "id", true, &name, t->path, err))
                return pq_fail(err, POLYQ_FORMAT,
                               "%s: template item %zu is neither SpecialToken nor Sequence",
                               t->path, i);
            json_t *ids = json_object_get(json_object_get(specials, name), "ids"), *id;
            size_t k;
            if (!json_is_array(ids))
                return pq_fail(err, POLYQ_FORMAT, "%s: template special token \"%s\" has no ids",
                               t->path, name);
            json_array_foreach(ids, k, id)
            {
                int *n = seen_seq ? &t->n_post : &t->n_pre;
                int32_t *dst = seen_seq ? t->post_ids : t->pre_ids;
                if (!json_is_integer(id) || json_integer_value(id) < 0 ||
                    json_integer_value(id) >= t->n_vocab)
                    return pq_fail(err, POLYQ_FORMAT,
                                   "%s: template special token \"%s\" has a bad id", t->path, name);
                if (*n >= 8)
                    return pq_fail(err, POLYQ_UNSUPPORTED,
                                   "%s: a template with over 8 special tokens", t->path);
                dst[(*n)++] = (int32_t)json_integer_value(id);
            }
        }
    } else {
        return pq_fail(err, POLYQ_UNSUPPORTED, "%s: post_processor \"%s\" is not supported",
                       t->path, type);
    }
    for (int i = 0; i < t->n_pre; i++)
        if (t->pre_ids[i] < 0 || t->pre_ids[i] >= t->n_vocab)
            return pq_fail(err, POLYQ_FORMAT, "%s: post_processor id %d is out of the vocabulary",
                           t->path, t->pre_ids[i]);
    for (int i = 0; i < t->n_post; i++)
        if (t->post_ids[i] < 0 || t->post_ids[i] >= t->n_vocab)
            return pq_fail(err, POLYQ_FORMAT, "%s: post_processor id %d is out of the vocabulary",
                           t->path, t->post_ids[i]);
    return 0;
}

static int load_json_model(pq_tokenizer *t, json_t *root, polyq_err *err)
{
    json_t *model = json_object_get(root, "model");
    const char *type = NULL;
    if (!json_is_object(model))
        return pq_fail(err, POLYQ_FORMAT, "%s: \"model\" is missing or not an object", t->path);
    pq_json_str(model, "type", false, &type, t->path, NULL);
    json_t *vocab = json_object_get(model, "vocab"), *merges = json_object_get(model, "merges");
    if (!type && vocab && merges)
        type = "BPE";
    const char *k;
    json_t *v;
    int rc;
    if (type && !strcmp(type, "Unigram")) {
        t->model = M_UNIGRAM;
        if ((rc = load_unigram_vocab(t, model, vocab, err)))
            return rc;
    } else if (type && (!strcmp(type, "BPE") || !strcmp(type, "WordPiece"))) {
        t->model = type[0] == 'B' ? M_BPE : M_WORDPIECE;
        if (!json_is_object(vocab) || (t->model == M_BPE && !json_is_array(merges)))
            return pq_fail(err, POLYQ_FORMAT, "%s: %s model needs a \"vocab\" object%s", t->path,
                           type, t->model == M_BPE ? " and a \"merges\" array" : "");
        if (t->model == M_BPE && !json_object_size(vocab))
            return pq_fail(err, POLYQ_FORMAT, "%s: the BPE model's vocabulary is empty", t->path);
        json_object_foreach(vocab, k, v)
        {
            if (!json_is_integer(v))
                return pq_fail(err, POLYQ_FORMAT, "%s: vocab entry \"%.40s\" is not an integer id",
                               t->path, k);
            if ((rc = vocab_add(t, k, strlen(k), json_integer_value(v), err)))
                return rc;
        }
    } else {
        return pq_fail(err, POLYQ_UNSUPPORTED, "%s: tokenizer model type \"%s\" is not supported",
                       t->path, type ? type : "(none)");
    }
    if (t->model == M_WORDPIECE) {
        const char *prefix = "##";
        int64_t max_chars = 100;
        pq_json_str(model, "continuing_subword_prefix", false, &prefix, t->path, NULL);
        pq_json_int(model, "max_input_chars_per_word", false, 1, 1 << 20, &max_chars, t->path,
                    NULL);
        if (strlen(prefix) >= sizeof t->wp_prefix)
            return pq_fail(err, POLYQ_FORMAT, "%s: WordPiece prefix \"%.20s\" is too long", t->path,
                           prefix);
        snprintf(t->wp_prefix, sizeof t->wp_prefix, "%s", prefix);
        t->wp_prefix_len = strlen(prefix);
        t->wp_max_chars = (size_t)max_chars;
    }
    bool b = false;
    if (t->model == M_BPE) {
        pq_json_bool(model, "ignore_merges", false, &b, t->path, NULL);
        t->ignore_merges = b;
        b = false;
        pq_json_bool(model, "byte_fallback", false, &b, t->path, NULL);
        t->byte_fallback = b;
        b = false;
        pq_json_bool(model, "fuse_unk", false, &b, t->path, NULL);
        t->fuse_unk = b;
        const char *s = NULL;
        if (pq_json_str(model, "continuing_subword_prefix", false, &s, t->path, NULL) == 0 && s &&
            *s)
            return pq_fail(err, POLYQ_UNSUPPORTED,
                           "%s: BPE continuing_subword_prefix is not supported", t->path);
        s = NULL;
        if (pq_json_str(model, "end_of_word_suffix", false, &s, t->path, NULL) == 0 && s && *s)
            return pq_fail(err, POLYQ_UNSUPPORTED, "%s: BPE end_of_word_suffix is not supported",
                           t->path);
    }
    const char *unk = NULL;
    pq_json_str(model, "unk_token", false, &unk, t->path, NULL);
    json_t *added = json_object_get(root, "added_tokens");
    if (added && !json_is_array(added))
        return pq_fail(err, POLYQ_FORMAT, "%s: \"added_tokens\" is not an array", t->path);
    size_t i;
    json_array_foreach(added, i, v)
    {
        const char *content;
        int64_t id;
        bool special = false;
        if (!json_is_object(v) || pq_json_str(v, "content", true, &content, t->path, err) ||
            pq_json_int(v, "id", true, 0, (1 << 30) - 1, &id, t->path, err))
            return pq_fail(err, POLYQ_FORMAT, "%s: added_tokens[%zu] needs \"id\" and \"content\"",
                           t->path, i);
        pq_json_bool(v, "special", false, &special, t->path, NULL);
        added_flags f = {.special = special, .normalized = !special}; /* tokenizers' default */
        pq_json_bool(v, "normalized", false, &f.normalized, t->path, NULL);
        pq_json_bool(v, "lstrip", false, &f.lstrip, t->path, NULL);
        pq_json_bool(v, "rstrip", false, &f.rstrip, t->path, NULL);
        pq_json_bool(v, "single_word", false, &f.single_word, t->path, NULL);
        if ((rc = added_add(t, content, (int32_t)id, f, err)))
            return rc;
    }
    if ((rc = vocab_finish(t, err)))
        return rc;
    if (unk && t->model != M_UNIGRAM)
        t->unk = pq_tok_token_id(t, unk);
    if (t->model == M_WORDPIECE && t->unk < 0)
        return pq_fail(err, POLYQ_FORMAT, "%s: WordPiece unk_token \"%s\" is not in the vocabulary",
                       t->path, unk ? unk : "(none)");
    /* padding and truncation are batching settings of transformers' pipelines: noted, for
     * polyq info to say that polyq scores every sentence whole */
    json_t *pad = json_object_get(root, "padding"), *trunc = json_object_get(root, "truncation");
    t->pads = json_is_object(pad);
    t->truncates = json_is_object(trunc);
    json_t *pl = json_object_get(json_object_get(pad, "strategy"), "Fixed");
    t->pad_length = json_is_integer(pl) ? json_integer_value(pl) : -1;
    json_t *tl = json_object_get(trunc, "max_length");
    t->trunc_length = json_is_integer(tl) ? json_integer_value(tl) : -1;
    if ((rc = load_json_post(t, json_object_get(root, "post_processor"), 0, err)) ||
        t->model != M_BPE)
        return rc;
    json_array_foreach(merges, i, v)
    {
        if (json_is_string(v)) {
            const char *m = json_string_value(v), *sp = strchr(m + (m[0] != 0), ' ');
            if (!sp)
                return pq_fail(err, POLYQ_FORMAT, "%s: merge %zu \"%.40s\" has no space", t->path,
                               i, m);
            rc = merge_add(t, m, (size_t)(sp - m), sp + 1, strlen(sp + 1), (uint32_t)i, err);
        } else if (json_is_array(v) && json_array_size(v) == 2 &&
                   json_is_string(json_array_get(v, 0)) && json_is_string(json_array_get(v, 1))) {
            json_t *a = json_array_get(v, 0), *bb = json_array_get(v, 1);
            rc = merge_add(t, json_string_value(a), json_string_length(a), json_string_value(bb),
                           json_string_length(bb), (uint32_t)i, err);
        } else {
            return pq_fail(err, POLYQ_FORMAT, "%s: merge %zu is neither \"a b\" nor [a, b]",
                           t->path, i);
        }
        if (rc)
            return rc;
    }
    return 0;
}

/* The decoder: ByteLevel, Metaspace, or a Sequence of Replace(String), ByteFallback, Fuse,
 * Strip. Anything else leaves the tokenizer usable for encoding; decode() then refuses. */
static int load_json_decoder(pq_tokenizer *t, const json_t *dec, polyq_err *err)
{
    if (!dec || json_is_null(dec))
        return 0;
    const json_t *list = dec, *one = NULL;
    const char *type = NULL;
    pq_json_str(dec, "type", false, &type, t->path, NULL);
    bool seq = type && !strcmp(type, "Sequence");
    if (seq)
        list = json_object_get(dec, "decoders");
    size_t n = seq ? json_array_size(list) : 1;
    for (size_t i = 0; i < n; i++) {
        one = seq ? json_array_get(list, i) : dec;
        type = NULL;
        pq_json_str(one, "type", false, &type, t->path, NULL);
        if (!type) {
            t->dec_unsupported = "(untyped)";
        } else if (!strcmp(type, "ByteLevel") || !strcmp(type, "Fuse")) {
            /* ByteLevel is implied by the byte-level pre-tokenizer; Fuse by concatenation */
        } else if (!strcmp(type, "ByteFallback")) {
            t->dec_byte_fallback = true;
        } else if (!strcmp(type, "WordPiece")) {
            const char *prefix = "##";
            bool cleanup = true;
            pq_json_str(one, "prefix", false, &prefix, t->path, NULL);
            pq_json_bool(one, "cleanup", false, &cleanup, t->path, NULL);
            if (strlen(prefix) >= sizeof t->wp_prefix || n > 1) {
                t->dec_unsupported = "WordPiece";
                continue;
            }
            t->dec_wordpiece = true;
            t->dec_cleanup = cleanup;
            snprintf(t->dec_wp_prefix, sizeof t->dec_wp_prefix, "%s", prefix);
        } else if (!strcmp(type, "Replace") || !strcmp(type, "Metaspace")) {
            const char *from = NULL, *to = " ", *scheme = "always";
            if (!strcmp(type, "Replace")) {
                pq_json_str(json_object_get(one, "pattern"), "String", false, &from, t->path, NULL);
                pq_json_str(one, "content", false, &to, t->path, NULL);
            } else {
                from = "\xe2\x96\x81";
                pq_json_str(one, "replacement", false, &from, t->path, NULL);
                pq_json_str(one, "prepend_scheme", false, &scheme, t->path, NULL);
                if (strcmp(scheme, "never"))
                    t->strip_start = 1;
            }
            if (!from || !*from || t->dec_from) {
                t->dec_unsupported = "Replace";
                continue;
            }
            t->dec_from = pq_strdup(from);
            t->dec_to = pq_strdup(to);
            if (!t->dec_from || !t->dec_to)
                return pq_fail(err, POLYQ_NOMEM, "out of memory");
        } else if (!strcmp(type, "Strip")) {
            int64_t a = 0, b = 0;
            const char *content = " ";
            pq_json_str(one, "content", false, &content, t->path, NULL);
            pq_json_int(one, "start", false, 0, 64, &a, t->path, NULL);
            pq_json_int(one, "stop", false, 0, 64, &b, t->path, NULL);
            if (strcmp(content, " "))
                t->dec_unsupported = "Strip";
            t->strip_start = (int)a;
            t->strip_stop = (int)b;
        } else {
            snprintf(t->dec_unsupported_buf, sizeof t->dec_unsupported_buf, "%s", type);
            t->dec_unsupported = t->dec_unsupported_buf;
        }
    }
    (void)err;
    return 0;
}

/* normalizer, pre-tokenizer, decoder and post-processor */
static int load_json_pipeline(pq_tokenizer *t, json_t *root, polyq_err *err)
{
    int rc = pq_normalizer_from_json(&t->norm, json_object_get(root, "normalizer"), t->path, err);
    if (!rc)
        rc = load_json_decoder(t, json_object_get(root, "decoder"), err);
    if (!rc)
        rc = pq_pretok_from_json(&t->pre, json_object_get(root, "pre_tokenizer"), t->path, err);
    const json_t *pre = json_object_get(root, "pre_tokenizer");
    if (!rc && pre && !json_is_null(pre) &&
        !(t->pre_json = json_dumps(pre, JSON_COMPACT | JSON_SORT_KEYS)))
        rc = pq_fail(err, POLYQ_NOMEM, "out of memory");
    t->byte_level = pq_pretok_byte_level(t->pre);
    return rc;
}

static int load_json_root(pq_tokenizer **out, const char *what, json_t *root, polyq_err *err)
{
    pq_tokenizer *t = tok_new(what);
    if (!t) {
        json_decref(root);
        return pq_fail(err, POLYQ_NOMEM, "out of memory");
    }
    int rc = 0;
    if (!json_is_object(root))
        rc = pq_fail(err, POLYQ_FORMAT, "%s: not a JSON object", what);
    if (!rc)
        rc = load_json_pipeline(t, root, err);
    if (!rc)
        rc = load_json_model(t, root, err);
    json_decref(root);
    if (rc) {
        pq_tok_free(t);
        return rc;
    }
    *out = t;
    return 0;
}

int pq_tok_load_json(pq_tokenizer **out, const char *path, polyq_err *err)
{
    *out = NULL;
    json_t *root = NULL;
    int rc = pq_json_load(path, 1u << 30, &root, err);
    return rc ? rc : load_json_root(out, path, root, err);
}

int pq_tok_load_json_buffer(pq_tokenizer **out, const char *what, const char *buf, size_t len,
                            polyq_err *err)
{
    *out = NULL;
    json_t *root = NULL;
    int rc = pq_json_parse(what, buf, len, &root, err);
    return rc ? rc : load_json_root(out, what, root, err);
}

int pq_tok_load_vocab_merges(pq_tokenizer **out, const char *vocab_path, const char *merges_path,
                             polyq_err *err)
{
    *out = NULL;
    pq_tokenizer *t = tok_new(vocab_path);
    if (!t)
        return pq_fail(err, POLYQ_NOMEM, "out of memory");
    json_t *vocab = NULL;
    char *merges = NULL;
    size_t mlen = 0;
    int rc = pq_json_load(vocab_path, 1u << 30, &vocab, err);
    if (!rc && !json_is_object(vocab))
        rc = pq_fail(err, POLYQ_FORMAT, "%s: not a JSON object of token -> id", vocab_path);
    const char *k;
    json_t *v;
    if (!rc) {
        json_object_foreach(vocab, k, v)
        {
            if (!json_is_integer(v)) {
                rc = pq_fail(err, POLYQ_FORMAT, "%s: entry \"%.40s\" is not an integer id",
                             vocab_path, k);
                break;
            }
            if ((rc = vocab_add(t, k, strlen(k), json_integer_value(v), err)))
                break;
        }
    }
    json_t *bl = json_pack("{s:s, s:b}", "type", "ByteLevel", "add_prefix_space", 0);
    if (!rc && (!bl || pq_pretok_from_json(&t->pre, bl, vocab_path, err)))
        rc = err->code ? err->code : pq_fail(err, POLYQ_NOMEM, "out of memory");
    json_decref(bl);
    t->byte_level = true;
    if (!rc && pq_strmap_get(&t->vocab, "<|endoftext|>", 13) >= 0) {
        int32_t id = pq_strmap_get(&t->vocab, "<|endoftext|>", 13);
        rc = added_add(t, "<|endoftext|>", id, (added_flags){.special = true}, err);
        t->bos = t->eos = id;
    }
    if (!rc)
        rc = vocab_finish(t, err);
    if (!rc)
        rc = pq_read_file(merges_path, 1u << 30, &merges, &mlen, err);
    if (!rc && !pq_utf8_valid(merges, mlen, NULL))
        rc = pq_fail(err, POLYQ_FORMAT, "%s: not valid UTF-8", merges_path);
    t->path = merges_path;
    uint32_t rank = 0;
    size_t line_no = 0;
    for (char *line = merges; !rc && line && *line;) {
        char *nl = strchr(line, '\n');
        size_t len = nl ? (size_t)(nl - line) : strlen(line);
        line_no++;
        if (len && line[len - 1] == '\r')
            len--;
        if (len && !(line_no == 1 && strncmp(line, "#version", 8) == 0)) {
            char *sp = memchr(line + 1, ' ', len - 1 + (len == 0));
            if (!sp || memchr(sp + 1, ' ', len - (size_t)(sp + 1 - line)))
                rc = pq_fail(err, POLYQ_FORMAT, "%s: line %zu is not \"left right\"", merges_path,
                             line_no);
            else
                rc = merge_add(t, line, (size_t)(sp - line), sp + 1, len - (size_t)(sp + 1 - line),
                               rank++, err);
        }
        line = nl ? nl + 1 : NULL;
    }
    t->path = t->path_owned;
    json_decref(vocab);
    free(merges);
    if (rc) {
        pq_tok_free(t);
        return rc;
    }
    *out = t;
    return 0;
}

/* A legacy file (vocab.txt, tokenizer.model) converted to the tokenizer.json form. */
static int load_legacy(pq_tokenizer **out, const char *dir, const char *path, bool spm,
                       polyq_err *err)
{
    json_t *cfg = NULL, *root = NULL;
    char *cp = pq_path_join(dir, "tokenizer_config.json");
    int rc = cp ? 0 : pq_fail(err, POLYQ_NOMEM, "out of memory");
    if (!rc && pq_file_exists(cp))
        rc = pq_json_load_reals(cp, 16u << 20, &cfg, err);
    if (!rc)
        rc = spm ? pq_legacy_spm_model(&root, path, err)
                 : pq_legacy_vocab_txt(&root, path, cfg, err);
    json_decref(cfg);
    free(cp);
    return rc ? rc : load_json_root(out, path, root, err);
}

int pq_tok_load_spm_model(pq_tokenizer **out, const char *path, polyq_err *err)
{
    *out = NULL;
    json_t *root = NULL;
    int rc = pq_legacy_spm_model(&root, path, err);
    return rc ? rc : load_json_root(out, path, root, err);
}

bool pq_tok_dir_has(const char *dir)
{
    static const char *const names[] = {"tokenizer.json", "vocab.json", "vocab.txt",
                                        "tokenizer.model"};
    for (int i = 0; i < 4; i++) {
        char *p = pq_path_join(dir, names[i]);
        bool yes = p && pq_file_exists(p);
        free(p);
        if (yes)
            return true;
    }
    return false;
}

int pq_tok_load_dir(pq_tokenizer **out, const char *dir, polyq_err *err)
{
    *out = NULL;
    char *tj = pq_path_join(dir, "tokenizer.json"), *vj = pq_path_join(dir, "vocab.json"),
         *mt = pq_path_join(dir, "merges.txt"), *vt = pq_path_join(dir, "vocab.txt"),
         *sp = pq_path_join(dir, "tokenizer.model");
    int rc;
    if (!tj || !vj || !mt || !vt || !sp)
        rc = pq_fail(err, POLYQ_NOMEM, "out of memory");
    else if (pq_file_exists(tj))
        rc = pq_tok_load_json(out, tj, err);
    else if (pq_file_exists(vj) && pq_file_exists(mt))
        rc = pq_tok_load_vocab_merges(out, vj, mt, err);
    else if (pq_file_exists(vt))
        rc = load_legacy(out, dir, vt, false, err);
    else if (pq_file_exists(sp))
        rc = load_legacy(out, dir, sp, true, err);
    else
        rc = pq_fail(err, POLYQ_NOT_FOUND,
                     "%s: no tokenizer.json, vocab.json + merges.txt, vocab.txt or tokenizer.model",
                     dir);
    if (!rc && (rc = read_tokenizer_config(*out, dir, err))) {
        pq_tok_free(*out);
        *out = NULL;
    }
    free(tj);
    free(vj);
    free(mt);
    free(vt);
    free(sp);
    return rc;
}

const char *pq_tok_kind(const pq_tokenizer *t)
{
    switch (t->model) {
    case M_WORDPIECE:
        return "WordPiece";
    case M_UNIGRAM:
        return t->byte_fallback ? "Unigram with byte fallback" : "Unigram";
    default:
        return t->byte_level      ? "byte-level BPE"
               : t->byte_fallback ? "BPE with byte fallback"
                                  : "BPE";
    }
}

bool pq_tok_batching(const pq_tokenizer *t, bool *pads, int64_t *pad_length, bool *truncates,
                     int64_t *trunc_length)
{
    *pads = t->pads;
    *truncates = t->truncates;
    *pad_length = t->pad_length;
    *trunc_length = t->trunc_length;
    return t->pads || t->truncates;
}

int32_t pq_tok_vocab_size(const pq_tokenizer *t)
{
    return t->n_vocab;
}
int32_t pq_tok_bos(const pq_tokenizer *t)
{
    return t->bos;
}
bool pq_tok_is_fallback(const pq_tokenizer *t, int32_t id)
{
    return id >= 0 && id < t->n_vocab && (id == t->unk || t->is_fallback[id]);
}
int32_t pq_tok_eos(const pq_tokenizer *t)
{
    return t->eos;
}
int32_t pq_tok_token_id(const pq_tokenizer *t, const char *token)
{
    return pq_strmap_get(&t->vocab, token, strlen(token));
}

/* The model's own id of a string: an added token the model's vocabulary lacks is not one. */
static int32_t model_get(const pq_tokenizer *t, const char *s, size_t n)
{
    int32_t id = pq_strmap_get(&t->vocab, s, n);
    return id >= 0 && t->model_lacks[id] ? -1 : id;
}

static int32_t model_get_fnv(const pq_tokenizer *t, const char *s, size_t n, uint64_t h)
{
    int32_t id = pq_strmap_get_fnv(&t->vocab, s, n, h);
    return id >= 0 && t->model_lacks[id] ? -1 : id;
}

/* ---- BPE on one pre-token --------------------------------------------------------------- */

typedef struct {
    uint32_t rank;
    int32_t left, left_id, right_id, merged;
} cand;

static bool cand_less(const cand *a, const cand *b)
{
    return a->rank != b->rank ? a->rank < b->rank : a->left < b->left;
}

static void heap_push(cand *h, size_t *n, cand c)
{
    size_t i = (*n)++;
    h[i] = c;
    while (i && cand_less(&h[i], &h[(i - 1) / 2])) {
        cand tmp = h[i];
        h[i] = h[(i - 1) / 2];
        h[(i - 1) / 2] = tmp;
        i = (i - 1) / 2;
    }
}

static cand heap_pop(cand *h, size_t *n)
{
    cand top = h[0];
    h[0] = h[--*n];
    for (size_t i = 0;;) {
        size_t l = 2 * i + 1, r = l + 1, m = i;
        if (l < *n && cand_less(&h[l], &h[m]))
            m = l;
        if (r < *n && cand_less(&h[r], &h[m]))
            m = r;
        if (m == i)
            break;
        cand tmp = h[i];
        h[i] = h[m];
        h[m] = tmp;
        i = m;
    }
    return top;
}

typedef struct {
    int32_t id, prev, next;
} sym;

typedef struct scratch {
    sym *syms;
    cand *heap;
    size_t cap;
    char *mapped;
    size_t mapped_cap;
    pq_pieces pieces, pieces_tmp;
    double *best;      /* Unigram lattice: best score ending at each byte */
    int32_t *best_id;  /* ... the id of its last piece (-1: unknown) */
    size_t *best_from; /* ... and where that piece starts */
    size_t lat_cap;
} scratch;

static void try_pair(const pq_tokenizer *t, scratch *s, size_t *nh, int32_t l)
{
    if (l < 0)
        return;
    int32_t r = s->syms[l].next;
    if (r < 0)
        return;
    uint64_t v;
    uint64_t key = ((uint64_t)(uint32_t)s->syms[l].id << 32) | (uint32_t)s->syms[r].id;
    if (pq_u64map_get(&t->merges, key, &v))
        heap_push(
            s->heap, nh,
            (cand){(uint32_t)(v >> 32), l, s->syms[l].id, s->syms[r].id, (int32_t)(uint32_t)v});
}

static int bpe_word(const pq_tokenizer *t, const uint8_t *w, size_t n, scratch *s, pq_ids *out)
{
    if (t->ignore_merges && !t->byte_level) {
        int32_t id = model_get(t, (const char *)w, n);
        if (id >= 0)
            return pq_ids_push(out, id);
    } else if (t->ignore_merges) {
        /* the whole byte-level word may be a token */
        size_t need = n * 2 + 1;
        if (need > s->mapped_cap) {
            char *m = realloc(s->mapped, need);
            if (!m)
                return -1;
            s->mapped = m;
            s->mapped_cap = need;
        }
        size_t k = 0;
        for (size_t i = 0; i < n; i++)
            k += (size_t)pq_utf8_encode(t->byte_char[w[i]], s->mapped + k);
        int32_t id = model_get(t, s->mapped, k);
        if (id >= 0)
            return pq_ids_push(out, id);
    }
    if (n > s->cap) {
        size_t nc = n * 2;
        sym *sy = realloc(s->syms, nc * sizeof *sy);
        if (!sy)
            return -1;
        s->syms = sy;
        cand *h = realloc(s->heap, nc * 2 * sizeof *h);
        if (!h)
            return -1;
        s->heap = h;
        s->cap = nc;
    }
    /* Initial symbols: one per byte (byte-level) or per character. A character missing from
     * the vocabulary becomes its <0xXX> byte tokens (byte_fallback), else unk (consecutive
     * unks fused with fuse_unk), else it is dropped, as tokenizers' BPE::merge_word does. */
    int32_t m = 0;
    bool last_unk = false;
    for (size_t i = 0; i < n;) {
        int32_t id;
        size_t k = 1;
        if (t->byte_level) {
            id = t->byte_id[w[i]];
        } else {
            uint32_t cp;
            k = (size_t)pq_utf8_decode((const char *)w + i, &cp);
            id = model_get(t, (const char *)w + i, k);
            if (id < 0 && t->byte_fallback) {
                bool all = true;
                for (size_t b = 0; b < k; b++)
                    all &= t->fallback_id[w[i + b]] >= 0;
                if (all) {
                    for (size_t b = 0; b < k; b++, m++)
                        s->syms[m] = (sym){t->fallback_id[w[i + b]], m - 1, m + 1};
                    i += k;
                    last_unk = false;
                    continue;
                }
            }
        }
        i += k;
        if (id >= 0) {
            last_unk = false;
        } else if (t->unk >= 0) {
            if (last_unk && t->fuse_unk)
                continue;
            id = t->unk;
            last_unk = true;
        } else {
            continue;
        }
        s->syms[m] = (sym){id, m - 1, m + 1};
        m++;
    }
    if (!m)
        return 0;
    s->syms[m - 1].next = -1;
    size_t nh = 0;
    for (int32_t i = 0; i + 1 < m; i++)
        try_pair(t, s, &nh, i);
    /* Each merge removes a symbol and pushes at most two candidates: the heap stays < 2m. */
    while (nh) {
        cand c = heap_pop(s->heap, &nh);
        sym *l = &s->syms[c.left];
        if (l->id != c.left_id || l->next < 0 || s->syms[l->next].id != c.right_id)
            continue;
        int32_t r = l->next;
        l->id = c.merged;
        l->next = s->syms[r].next;
        if (l->next >= 0)
            s->syms[l->next].prev = c.left;
        s->syms[r].id = -1;
        try_pair(t, s, &nh, l->prev);
        try_pair(t, s, &nh, c.left);
    }
    for (int32_t i = 0; i >= 0; i = s->syms[i].next)
        if (pq_ids_push(out, s->syms[i].id))
            return -1;
    return 0;
}

/* WordPiece (tokenizers' models/wordpiece): the longest vocabulary entry at the start of the
 * word, then the longest "##"-prefixed entry at each next position; a word with a part no
 * entry covers, or longer than max_input_chars_per_word characters, is one unknown token. */
static int wordpiece_word(const pq_tokenizer *t, const char *w, size_t n, scratch *s, pq_ids *out)
{
    if (pq_utf8_count(w, n) > t->wp_max_chars)
        return pq_ids_push(out, t->unk);
    size_t need = n + t->wp_prefix_len;
    if (need > s->mapped_cap) {
        char *m = realloc(s->mapped, need);
        if (!m)
            return -1;
        s->mapped = m;
        s->mapped_cap = need;
    }
    memcpy(s->mapped + t->wp_prefix_len, w, n);
    uint64_t h_prefix = pq_fnv1a(PQ_FNV_OFFSET, t->wp_prefix, t->wp_prefix_len);
    size_t first = out->n;
    for (size_t start = 0; start < n;) {
        /* the longest entry from start ending on a character boundary: the key (with "##"
         * after the start) grows a byte at a time, its hash with it */
        int32_t id = -1;
        size_t end = start;
        /* mapped holds w after the prefix's length: the prefix written just before w[start]
         * (over bytes already consumed) makes "##" + w[start..] one key */
        if (start)
            memcpy(s->mapped + start, t->wp_prefix, t->wp_prefix_len);
        const char *key = start ? s->mapped + start : w;
        size_t pre = start ? t->wp_prefix_len : 0;
        uint64_t h = start ? h_prefix : PQ_FNV_OFFSET;
        size_t max = n - start < t->max_len ? n - start : t->max_len;
        for (size_t k = 1; k <= max; k++) {
            h = pq_fnv1a(h, w + start + k - 1, 1);
            if (start + k < n && ((uint8_t)w[start + k] & 0xc0) == 0x80)
                continue; /* not a character boundary */
            int32_t got = model_get_fnv(t, key, pre + k, h);
            if (got >= 0) {
                id = got;
                end = start + k;
            }
        }
        if (id < 0) {
            out->n = first;
            return pq_ids_push(out, t->unk);
        }
        if (pq_ids_push(out, id))
            return -1;
        start = end;
    }
    return 0;
}

/* Pushes the id of piece w[0..n) of a Unigram segmentation: the piece itself, else its
 * <0xXX> byte tokens (byte_fallback), else the unknown token. */
static int unigram_emit(const pq_tokenizer *t, const char *w, size_t n, pq_ids *out)
{
    int32_t id = model_get(t, w, n);
    if (id >= 0)
        return pq_ids_push(out, id);
    if (t->byte_fallback) {
        bool all = true;
        for (size_t b = 0; b < n; b++)
            all &= t->fallback_id[(uint8_t)w[b]] >= 0;
        if (all) {
            for (size_t b = 0; b < n; b++)
                if (pq_ids_push(out, t->fallback_id[(uint8_t)w[b]]))
                    return -1;
            return 0;
        }
    }
    return pq_ids_push(out, t->unk);
}

#define UNIGRAM_UNK_PENALTY 10.0

/* Unigram (tokenizers' models/unigram, encode_optimized): Viterbi over the byte positions
 * of character starts. Each vocabulary piece starting at a position extends the best path
 * there by its score; a character no single piece covers is an unknown of score
 * min_score - 10. Ties keep the piece starting earliest. Consecutive unknowns are fused. */
static int unigram_word(const pq_tokenizer *t, const char *w, size_t n, scratch *s, pq_ids *out)
{
    if (n + 1 > s->lat_cap) {
        size_t nc = (n + 1) * 2;
        double *b = realloc(s->best, nc * sizeof *b);
        if (!b)
            return -1;
        s->best = b;
        int32_t *bi = realloc(s->best_id, nc * sizeof *bi);
        if (!bi)
            return -1;
        s->best_id = bi;
        size_t *bf = realloc(s->best_from, nc * sizeof *bf);
        if (!bf)
            return -1;
        s->best_from = bf;
        s->lat_cap = nc;
    }
    for (size_t i = 0; i <= n; i++)
        s->best_from[i] = SIZE_MAX; /* no path yet */
    s->best[0] = 0;
    double unk_score = t->min_score - UNIGRAM_UNK_PENALTY;
    for (size_t at = 0; at < n;) {
        uint32_t cp;
        size_t clen = (size_t)pq_utf8_decode(w + at, &cp);
        double here = s->best[at];
        bool single = false;
        size_t max = n - at < t->max_piece ? n - at : t->max_piece;
        uint64_t h = PQ_FNV_OFFSET; /* the piece's hash, a byte longer each step */
        for (size_t len = 1; len <= max; len++) {
            h = pq_fnv1a(h, w + at + len - 1, 1);
            if (at + len < n && ((uint8_t)w[at + len] & 0xc0) == 0x80)
                continue; /* not a character boundary */
            int32_t id = model_get_fnv(t, w + at, len, h);
            if (id < 0 || !t->score)
                continue;
            double c = here + t->score[id];
            size_t to = at + len;
            if (s->best_from[to] == SIZE_MAX || c > s->best[to]) {
                s->best[to] = c;
                s->best_from[to] = at;
                s->best_id[to] = id;
            }
            single |= len == clen;
        }
        if (!single) {
            size_t to = at + clen;
            double c = here + unk_score;
            if (s->best_from[to] == SIZE_MAX || c > s->best[to]) {
                s->best[to] = c;
                s->best_from[to] = at;
                s->best_id[to] = -1;
            }
        }
        at += clen;
    }
    /* Walk back, then emit forwards: pieces reversed in place into best_id/best_from. */
    size_t k = 0;
    for (size_t end = n; end > 0; end = s->best_from[end])
        k++;
    size_t *starts = malloc((k + 1) * sizeof *starts);
    if (!starts)
        return -1;
    size_t j = k;
    starts[k] = n;
    for (size_t end = n; end > 0; end = s->best_from[end])
        starts[--j] = s->best_from[end];
    int rc = 0;
    for (size_t i = 0; i < k && !rc;) {
        size_t a = starts[i], b = starts[i + 1];
        bool unknown = s->best_id[b] < 0 || s->best_id[b] == t->unk;
        if (unknown) { /* fuse a run of unknowns into one piece */
            while (i + 1 < k &&
                   (s->best_id[starts[i + 2]] < 0 || s->best_id[starts[i + 2]] == t->unk))
                b = starts[++i + 1];
            if (t->unk < 0 && model_get(t, w + a, b - a) < 0 && !t->byte_fallback)
                rc = -2;
            else
                rc = unigram_emit(t, w + a, b - a, out);
        } else {
            rc = pq_ids_push(out, s->best_id[b]);
        }
        i++;
    }
    free(starts);
    return rc;
}

static int model_word(const pq_tokenizer *t, const char *w, size_t n, scratch *s, pq_ids *out)
{
    switch (t->model) {
    case M_WORDPIECE:
        return wordpiece_word(t, w, n, s, out);
    case M_UNIGRAM:
        return unigram_word(t, w, n, s, out);
    default:
        return bpe_word(t, (const uint8_t *)w, n, s, out);
    }
}

/* Pre-tokenizes one segment without added tokens and runs the model on each piece. */
static int encode_segment(const pq_tokenizer *t, const char *text, size_t len, bool first,
                          scratch *s, pq_ids *out, polyq_err *err)
{
    int rc = pq_pretok_run(t->pre, text, len, first, &s->pieces, &s->pieces_tmp, err);
    for (size_t i = 0; !rc && i < s->pieces.n; i++) {
        int r = model_word(t, s->pieces.arena + s->pieces.off[i], s->pieces.len[i], s, out);
        if (r == -2)
            rc = pq_fail(err, POLYQ_TEXT,
                         "%s: \"%.*s\" needs the unknown token, which the Unigram model lacks",
                         t->path, (int)(s->pieces.len[i] > 40 ? 40 : s->pieces.len[i]),
                         s->pieces.arena + s->pieces.off[i]);
        else if (r)
            rc = pq_fail(err, POLYQ_NOMEM, "out of memory while tokenizing");
    }
    return rc;
}

typedef struct encoder {
    const pq_tokenizer *t;
    scratch s;
    pq_ids *out;
    polyq_err *err;
} encoder;

static int encode_normalized(encoder *e, const char *text, size_t len, bool first);

/* The code point that ends text[0..i) (i > 0). */
static uint32_t cp_before(const char *text, size_t i, size_t *start)
{
    size_t k = i - 1;
    while (k > 0 && ((uint8_t)text[k] & 0xc0) == 0x80)
        k--;
    uint32_t cp;
    pq_utf8_decode(text + k, &cp);
    *start = k;
    return cp;
}

/* tokenizers' AddedVocabulary split (find_matches): the leftmost-longest added token of this
 * pass is cut out, the search going on after it; the text between goes on to the next stage.
 * Pass 0 matches tokens that are not normalized, on the raw text; pass 1 the normalized ones,
 * on normalized text. A single_word match touching a word character is passed over (and the
 * search still goes on after it); lstrip takes the white space before the match, back to the
 * end of the previous token at most; rstrip the white space after it. */
static int split_added(encoder *e, int pass, const char *text, size_t len, bool first)
{
    const pq_tokenizer *t = e->t;
    int rc = 0;
    size_t seg = 0, i = 0;
    while (i <= len && !rc) {
        const added_token *best = NULL;
        size_t best_len = 0;
        if (i < len && t->added_first[pass][(uint8_t)text[i]]) {
            /* the longest added token here: every prefix looked up as its hash grows */
            uint64_t h = PQ_FNV_OFFSET;
            size_t max = len - i < t->added_max[pass] ? len - i : t->added_max[pass];
            for (size_t k = 1; k <= max; k++) {
                h = pq_fnv1a(h, text + i + k - 1, 1);
                int32_t a = pq_strmap_get_fnv(&t->added_pass[pass], text + i, k, h);
                if (a >= 0) {
                    best = &t->added[a];
                    best_len = k;
                }
            }
        }
        if (!best && i < len) {
            i++;
            continue;
        }
        size_t start = i, stop = i + best_len, k;
        if (best && best->f.single_word) {
            uint32_t cp;
            bool word_before = i > 0 && pq_u_in(PQ_U_WORD, cp_before(text, i, &k));
            bool word_after =
                stop < len && (pq_utf8_decode(text + stop, &cp), pq_u_in(PQ_U_WORD, cp));
            if (word_before || word_after) {
                i = stop;
                continue;
            }
        }
        if (best && best->f.lstrip) {
            while (start > seg && pq_is_white_space(cp_before(text, start, &k)))
                start = k;
        }
        if (best && best->f.rstrip) {
            uint32_t cp;
            while (stop < len) {
                int l = pq_utf8_decode(text + stop, &cp);
                if (!pq_is_white_space(cp))
                    break;
                stop += (size_t)l;
            }
        }
        if (!best)
            start = len;
        if (start > seg)
            rc = pass == 0 ? encode_normalized(e, text + seg, start - seg, first && seg == 0)
                           : encode_segment(t, text + seg, start - seg, first && seg == 0, &e->s,
                                            e->out, e->err);
        if (!rc && best && pq_ids_push(e->out, best->id))
            rc = pq_fail(e->err, POLYQ_NOMEM, "out of memory while tokenizing");
        if (!best)
            break;
        i += best_len;
        seg = stop;
    }
    return rc;
}

static int encode_normalized(encoder *e, const char *text, size_t len, bool first)
{
    if (!e->t->norm)
        return split_added(e, 1, text, len, first);
    char *norm = NULL;
    size_t nlen = 0;
    int rc = pq_normalizer_apply(e->t->norm, text, len, &norm, &nlen, e->err);
    if (!rc)
        rc = split_added(e, 1, norm, nlen, first);
    free(norm);
    return rc;
}

int pq_tok_encode(const pq_tokenizer *t, const char *text, size_t len, pq_ids *out, polyq_err *err)
{
    size_t bad;
    if (!pq_utf8_valid(text, len, &bad))
        return pq_fail(err, POLYQ_TEXT, "text is not valid UTF-8 at byte %zu", bad);
    encoder e = {.t = t, .out = out, .err = err};
    int rc = split_added(&e, 0, text, len, true);
    pq_pieces_free(&e.s.pieces);
    pq_pieces_free(&e.s.pieces_tmp);
    free(e.s.best);
    free(e.s.best_id);
    free(e.s.best_from);
    free(e.s.syms);
    free(e.s.heap);
    free(e.s.mapped);
    return rc;
}

/* tokenizers' WordPiece decoder: tokens after the first lose their "##" prefix or get a space
 * before them; with cleanup, " ." " ?" " !" " ," " ' " " n't" " 'm" " do not" " 's" " 've"
 * " 're" are tidied within each token. */
static int decode_wordpiece(const pq_tokenizer *t, const int32_t *ids, size_t n, size_t total,
                            char **out, size_t *out_len, polyq_err *err)
{
    static const char *const from[] = {" .",  " ?",      " !",  " ,",   " ' ", " n't",
                                       " 'm", " do not", " 's", " 've", " 're"};
    static const char *const to[] = {".",  "?",      "!",  ",",   "'",  "n't",
                                     "'m", " don't", "'s", "'ve", "'re"};
    size_t pl = strlen(t->dec_wp_prefix);
    char *s = malloc(2 * total + 16), *tok = malloc(2 * total + 16), *tmp = malloc(2 * total + 16);
    if (!s || !tok || !tmp) {
        free(s);
        free(tok);
        free(tmp);
        return pq_fail(err, POLYQ_NOMEM, "out of memory while decoding");
    }
    size_t w = 0;
    for (size_t i = 0; i < n; i++) {
        const char *src = t->dec_arena + t->dec_off[ids[i]];
        size_t len = t->dec_len[ids[i]], k = 0;
        if (i && len >= pl && !memcmp(src, t->dec_wp_prefix, pl)) {
            src += pl;
            len -= pl;
        } else if (i) {
            tok[k++] = ' ';
        }
        memcpy(tok + k, src, len);
        k += len;
        for (size_t r = 0; t->dec_cleanup && r < sizeof from / sizeof from[0]; r++) {
            size_t fl = strlen(from[r]), tl = strlen(to[r]), m = 0;
            for (size_t p = 0; p < k;) {
                if (k - p >= fl && !memcmp(tok + p, from[r], fl)) {
                    memcpy(tmp + m, to[r], tl);
                    m += tl;
                    p += fl;
                } else {
                    tmp[m++] = tok[p++];
                }
            }
            memcpy(tok, tmp, m);
            k = m;
        }
        memcpy(s + w, tok, k);
        w += k;
    }
    s[w] = 0;
    free(tok);
    free(tmp);
    *out = s;
    if (out_len)
        *out_len = w;
    return 0;
}

int pq_tok_encode_special(const pq_tokenizer *t, const char *text, size_t len, pq_ids *out,
                          polyq_err *err)
{
    for (int i = 0; i < t->n_pre; i++)
        if (pq_ids_push(out, t->pre_ids[i]))
            return pq_fail(err, POLYQ_NOMEM, "out of memory while tokenizing");
    int rc = pq_tok_encode(t, text, len, out, err);
    for (int i = 0; !rc && i < t->n_post; i++)
        if (pq_ids_push(out, t->post_ids[i]))
            rc = pq_fail(err, POLYQ_NOMEM, "out of memory while tokenizing");
    return rc;
}

int pq_tok_special_around(const pq_tokenizer *t, const int32_t **pre, int *n_pre,
                          const int32_t **post, int *n_post)
{
    *pre = t->pre_ids;
    *n_pre = t->n_pre;
    *post = t->post_ids;
    *n_post = t->n_post;
    return t->n_pre + t->n_post;
}

int pq_tok_decode(const pq_tokenizer *t, const int32_t *ids, size_t n, char **out, size_t *out_len,
                  polyq_err *err)
{
    *out = NULL;
    if (t->dec_unsupported)
        return pq_fail(err, POLYQ_UNSUPPORTED, "%s: decoder \"%s\" is not supported", t->path,
                       t->dec_unsupported);
    size_t total = 0;
    for (size_t i = 0; i < n; i++) {
        if (ids[i] < 0 || ids[i] >= t->n_vocab || t->dec_len[ids[i]] == UINT32_MAX)
            return pq_fail(err, POLYQ_INVALID_ARG, "%s: token id %d is not in the vocabulary",
                           t->path, ids[i]);
        total += t->dec_len[ids[i]] + 3; /* a byte token may become U+FFFD */
    }
    if (t->dec_wordpiece)
        return decode_wordpiece(t, ids, n, total, out, out_len, err);
    char *s = malloc(total + 1);
    if (!s)
        return pq_fail(err, POLYQ_NOMEM, "out of memory while decoding");
    size_t w = 0;
    for (size_t i = 0; i < n;) {
        if (!t->is_byte_token[ids[i]]) {
            memcpy(s + w, t->dec_arena + t->dec_off[ids[i]], t->dec_len[ids[i]]);
            w += t->dec_len[ids[i]];
            i++;
            continue;
        }
        /* ByteFallback: a run of <0xXX> tokens is its bytes when they are valid UTF-8, else
         * one U+FFFD per token */
        size_t j = i, start = w;
        for (; j < n && t->is_byte_token[ids[j]]; j++)
            s[w++] = (char)(t->is_byte_token[ids[j]] - 1);
        if (!pq_utf8_valid(s + start, w - start, NULL)) {
            w = start;
            for (size_t k = i; k < j; k++) {
                memcpy(s + w, "\xef\xbf\xbd", 3);
                w += 3;
            }
        }
        i = j;
    }
    s[w] = 0;
    /* Strip: up to strip_start leading and strip_stop trailing spaces */
    size_t b = 0;
    while ((int)b < t->strip_start && b < w && s[b] == ' ')
        b++;
    for (int k = 0; k < t->strip_stop && w > b && s[w - 1] == ' '; k++)
        w--;
    memmove(s, s + b, w - b);
    w -= b;
    s[w] = 0;
    *out = s;
    if (out_len)
        *out_len = w;
    return 0;
}

void pq_tok_vocab_free(pq_tok_vocab *v)
{
    for (int32_t i = 0; v->tokens && i < v->n; i++)
        free(v->tokens[i]);
    for (size_t i = 0; v->merges && i < v->n_merges; i++)
        free(v->merges[i]);
    free(v->tokens);
    free(v->types);
    free(v->merges);
    memset(v, 0, sizeof *v);
}

typedef struct {
    uint32_t rank;
    int32_t l, r;
} merge_ref;
static int cmp_merge(const void *a, const void *b)
{
    const merge_ref *x = a, *y = b;
    return x->rank < y->rank ? -1 : x->rank > y->rank;
}

int pq_tok_export(const pq_tokenizer *t, pq_tok_vocab *v, polyq_err *err)
{
    memset(v, 0, sizeof *v);
    v->n = t->n_vocab;
    v->tokens = calloc((size_t)v->n, sizeof *v->tokens);
    v->types = calloc((size_t)v->n, sizeof *v->types);
    if (!v->tokens || !v->types)
        goto nomem;
    for (size_t i = 0; i < t->vocab.n; i++) {
        const struct pq_strmap_entry *e = &t->vocab.entries[i];
        if (e->value < 0 || e->value >= v->n || v->tokens[e->value])
            continue;
        char *s = malloc(e->len + 1);
        if (!s)
            goto nomem;
        memcpy(s, t->vocab.arena + e->off, e->len);
        s[e->len] = 0;
        v->tokens[e->value] = s;
        v->types[e->value] = 1;
    }
    for (size_t i = 0; i < t->n_added; i++) {
        int32_t id = t->added[i].id;
        if (id < 0 || id >= v->n)
            continue;
        if (!v->tokens[id] && !(v->tokens[id] = pq_strdup(t->added[i].content)))
            goto nomem;
        v->types[id] = t->added[i].f.special ? 3 : 4;
    }
    for (int32_t id = 0; id < v->n; id++) {
        if (!v->tokens[id] && !(v->tokens[id] = pq_asprintf("[PAD%d]", id)))
            goto nomem;
        if (id == t->unk)
            v->types[id] = 2;
        else if (t->byte_fallback && strlen(v->tokens[id]) == 6 &&
                 !strncmp(v->tokens[id], "<0x", 3))
            v->types[id] = 6;
        else if (!v->types[id])
            v->types[id] = 1;
    }
    merge_ref *m = t->merges.n ? malloc(t->merges.n * sizeof *m) : NULL;
    if (t->merges.n && !m)
        goto nomem;
    size_t n = 0;
    for (size_t i = 0; i < t->merges.n_slots; i++)
        if (t->merges.keys[i] != UINT64_MAX)
            m[n++] =
                (merge_ref){(uint32_t)(t->merges.vals[i] >> 32), (int32_t)(t->merges.keys[i] >> 32),
                            (int32_t)(uint32_t)t->merges.keys[i]};
    if (n) /* a model without merges (WordPiece, Unigram) has none to order */
        qsort(m, n, sizeof *m, cmp_merge);
    v->merges = calloc(n ? n : 1, sizeof *v->merges);
    if (!v->merges) {
        free(m);
        goto nomem;
    }
    for (size_t i = 0; i < n; i++) {
        if (m[i].l < 0 || m[i].l >= v->n || m[i].r < 0 || m[i].r >= v->n)
            continue;
        if (!(v->merges[v->n_merges] =
                  pq_asprintf("%s %s", v->tokens[m[i].l], v->tokens[m[i].r]))) {
            free(m);
            goto nomem;
        }
        v->n_merges++;
    }
    free(m);
    return 0;
nomem:
    pq_tok_vocab_free(v);
    return pq_fail(err, POLYQ_NOMEM, "out of memory exporting the vocabulary");
}

const char *pq_tok_pre_json(const pq_tokenizer *t, bool *byte_level, bool *ignore_merges)
{
    *byte_level = t->byte_level;
    *ignore_merges = t->ignore_merges;
    return t->pre_json;
}
