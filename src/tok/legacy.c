/* Legacy tokenizer files turned into the tokenizer.json pipeline that transformers' converters
 * (convert_slow_tokenizer) would make of them, then loaded like any tokenizer.json:
 *   vocab.txt (BERT): BertNormalizer (lowercase = do_lower_case, default true), BertPreTokenizer,
 *     WordPiece (##, [UNK], 100 characters), [CLS] $A [SEP], WordPiece decoder.
 *   tokenizer.model (sentencepiece, BPE type as Llama-2 and Mistral ship): the pieces as the
 *     vocabulary, merges derived from it as transformers' generate_merges does (every split
 *     of a piece into two pieces, ranked by the merged piece's id, then the parts' lengths),
 *     byte fallback from the trainer spec, Prepend("▁") for add_dummy_prefix and
 *     Replace(" ", "▁") for escape_whitespaces, <s> $A. The protobuf is read field by field
 *     (ModelProto: pieces = 1, trainer_spec = 2, normalizer_spec = 3); unknown fields are
 *     skipped; every length is checked against the bytes left. */
#include "tok/legacy.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "base/base.h"
#include "base/strmap.h"
#include "format/json.h"
#include "tok/tokenizer.h"

static json_t *added_token(const char *content, json_int_t id, bool is_special)
{
    return json_pack("{s:I, s:s, s:b, s:b, s:b, s:b, s:b}", "id", id, "content", content,
                     "single_word", 0, "lstrip", 0, "rstrip", 0, "normalized", 0, "special",
                     is_special);
}

static json_t *special(const char *content, json_int_t id)
{
    return added_token(content, id, true);
}

static json_t *template_single(const char *pre, json_int_t pre_id, const char *post,
                               json_int_t post_id)
{
    json_t *single = json_array(), *specials = json_object();
    if (pre) {
        json_array_append_new(single,
                              json_pack("{s:{s:s, s:i}}", "SpecialToken", "id", pre, "type_id", 0));
        json_object_set_new(
            specials, pre,
            json_pack("{s:s, s:[I], s:[s]}", "id", pre, "ids", pre_id, "tokens", pre));
    }
    json_array_append_new(single, json_pack("{s:{s:s, s:i}}", "Sequence", "id", "A", "type_id", 0));
    if (post) {
        json_array_append_new(
            single, json_pack("{s:{s:s, s:i}}", "SpecialToken", "id", post, "type_id", 0));
        json_object_set_new(
            specials, post,
            json_pack("{s:s, s:[I], s:[s]}", "id", post, "ids", post_id, "tokens", post));
    }
    return json_pack("{s:s, s:o, s:o}", "type", "TemplateProcessing", "single", single,
                     "special_tokens", specials);
}

static const char *cfg_str(const json_t *cfg, const char *key, const char *def)
{
    json_t *v = json_object_get(cfg, key);
    if (json_is_object(v))
        v = json_object_get(v, "content");
    return json_is_string(v) ? json_string_value(v) : def;
}

static bool cfg_bool(const json_t *cfg, const char *key, bool def)
{
    json_t *v = json_object_get(cfg, key);
    return json_is_boolean(v) ? json_is_true(v) : def;
}

int pq_legacy_vocab_txt(json_t **out, const char *path, const json_t *cfg, polyq_err *err)
{
    *out = NULL;
    char *text = NULL;
    size_t len = 0;
    int rc = pq_read_file(path, 256u << 20, &text, &len, err);
    if (rc)
        return rc;
    if (!pq_utf8_valid(text, len, NULL)) {
        free(text);
        return pq_fail(err, POLYQ_FORMAT, "%s: not valid UTF-8", path);
    }
    json_t *vocab = json_object();
    json_int_t id = 0;
    size_t line_no = 0;
    for (char *line = text; line < text + len;) {
        char *nl = memchr(line, '\n', (size_t)(text + len - line));
        size_t n = nl ? (size_t)(nl - line) : (size_t)(text + len - line);
        line_no++;
        while (n && (line[n - 1] == '\r' || line[n - 1] == ' ' || line[n - 1] == '\t'))
            n--; /* transformers' load_vocab strips the line */
        while (n && (line[0] == ' ' || line[0] == '\t')) {
            line++;
            n--;
        }
        char save = line[n];
        line[n] = 0;
        if (!json_object_get(vocab, line)) /* a repeated token keeps its first id */
            json_object_set_new(vocab, line, json_integer(id));
        line[n] = save;
        id++;
        line = nl ? nl + 1 : text + len;
    }
    free(text);
    const char *unk = cfg_str(cfg, "unk_token", "[UNK]"), *cls = cfg_str(cfg, "cls_token", "[CLS]"),
               *sep = cfg_str(cfg, "sep_token", "[SEP]");
    const char *names[] = {cfg_str(cfg, "pad_token", "[PAD]"), unk, cls, sep,
                           cfg_str(cfg, "mask_token", "[MASK]")};
    json_t *cls_id = json_object_get(vocab, cls), *sep_id = json_object_get(vocab, sep);
    if (!json_object_get(vocab, unk) || !cls_id || !sep_id) {
        json_decref(vocab);
        return pq_fail(err, POLYQ_FORMAT, "%s: %s, %s or %s is not in the vocabulary (%zu lines)",
                       path, unk, cls, sep, line_no);
    }
    json_t *added = json_array();
    for (int i = 0; i < 5; i++) {
        json_t *v = json_object_get(vocab, names[i]);
        if (v)
            json_array_append_new(added, special(names[i], json_integer_value(v)));
    }
    bool lower = cfg_bool(cfg, "do_lower_case", true);
    json_t *accents = json_object_get(cfg, "strip_accents");
    json_t *root =
        json_pack("{s:o, s:{s:s, s:b, s:b, s:O, s:b}, s:{s:s}, s:{s:s, s:s, s:s, s:i, s:O}, s:o, "
                  "s:{s:s, s:s, s:b}}",
                  "added_tokens", added, "normalizer", "type", "BertNormalizer", "clean_text", 1,
                  "handle_chinese_chars", cfg_bool(cfg, "tokenize_chinese_chars", true),
                  "strip_accents", json_is_boolean(accents) ? accents : json_null(), "lowercase",
                  lower, "pre_tokenizer", "type", "BertPreTokenizer", "model", "type", "WordPiece",
                  "unk_token", unk, "continuing_subword_prefix", "##", "max_input_chars_per_word",
                  100, "vocab", vocab, "post_processor",
                  template_single(cls, json_integer_value(cls_id), sep, json_integer_value(sep_id)),
                  "decoder", "type", "WordPiece", "prefix", "##", "cleanup", 1);
    json_decref(vocab);
    if (!root)
        return pq_fail(err, POLYQ_NOMEM, "out of memory");
    *out = root;
    return 0;
}

/* ---- protobuf wire format ---- */

typedef struct pb {
    const uint8_t *p, *end;
} pb;

static bool pb_varint(pb *b, uint64_t *v)
{
    *v = 0;
    for (int shift = 0; shift < 64; shift += 7) {
        if (b->p >= b->end)
            return false;
        uint8_t c = *b->p++;
        *v |= (uint64_t)(c & 0x7f) << shift;
        if (!(c & 0x80))
            return true;
    }
    return false;
}

/* Next field: its number, wire type, and for length-delimited ones the bytes (sub);
 * varints in *v, fixed32 in *v. */
static bool pb_field(pb *b, uint32_t *field, int *wire, uint64_t *v, pb *sub)
{
    uint64_t key;
    if (!pb_varint(b, &key) || key >> 3 == 0 || key >> 3 > UINT32_MAX)
        return false;
    *field = (uint32_t)(key >> 3);
    *wire = (int)(key & 7);
    switch (*wire) {
    case 0:
        return pb_varint(b, v);
    case 1:
        if (b->end - b->p < 8)
            return false;
        b->p += 8;
        return true;
    case 2:
        if (!pb_varint(b, v) || *v > (uint64_t)(b->end - b->p))
            return false;
        sub->p = b->p;
        sub->end = b->p + *v;
        b->p += *v;
        return true;
    case 5:
        if (b->end - b->p < 4)
            return false;
        *v = (uint64_t)b->p[0] | (uint64_t)b->p[1] << 8 | (uint64_t)b->p[2] << 16 |
             (uint64_t)b->p[3] << 24;
        b->p += 4;
        return true;
    default:
        return false;
    }
}

typedef struct piece {
    const char *s;
    size_t n;
    float score;
    int type;
} piece;
typedef struct merge {
    int32_t merged, left, right, left_chars, right_chars;
    float score; /* the merged piece's */
} merge;

/* transformers' generate_merges without scores: by merged piece id, then the left part's
 * length in characters, the right part's, then the ids of the parts. */
static int merge_cmp(const void *a, const void *b)
{
    const merge *x = a, *y = b;
    if (x->merged != y->merged)
        return x->merged < y->merged ? -1 : 1;
    if (x->left_chars != y->left_chars)
        return x->left_chars < y->left_chars ? -1 : 1;
    if (x->right_chars != y->right_chars)
        return x->right_chars < y->right_chars ? -1 : 1;
    if (x->left != y->left)
        return x->left < y->left ? -1 : 1;
    return (x->right > y->right) - (x->right < y->right);
}

/* transformers' generate_merges with the pieces' scores, as the hub's tokenizer.json files of
 * sentencepiece models were made, and as sentencepiece itself merges (the pair whose merged
 * piece scores highest first): by score, highest first, then the longer left part, the longer
 * right part; equal keys keep the order of the merged piece's id, then the parts' ids (Python's
 * sort is stable). Llama-2's runs of "▁" score -1e9 and so merge last. */
static int merge_score_cmp(const void *a, const void *b)
{
    const merge *x = a, *y = b;
    if (x->score != y->score)
        return x->score > y->score ? -1 : 1;
    if (x->left_chars != y->left_chars)
        return x->left_chars > y->left_chars ? -1 : 1;
    if (x->right_chars != y->right_chars)
        return x->right_chars > y->right_chars ? -1 : 1;
    if (x->merged != y->merged)
        return x->merged < y->merged ? -1 : 1;
    if (x->left != y->left)
        return x->left < y->left ? -1 : 1;
    return (x->right > y->right) - (x->right < y->right);
}

/* The tokenizer.json of a sentencepiece BPE vocabulary (what = where it came from); merges by
 * score when the pieces have scores. */
static int spm_json(json_t **out, const char *what, const piece *pieces, size_t n, int64_t unk_id,
                    int64_t bos_id, bool byte_fallback, bool dummy_prefix, bool escape_ws,
                    bool by_score, polyq_err *err)
{
    const char *path = what;
    int rc = 0;
    /* scores all equal (llama.cpp writes -1000 for every piece of a vocabulary converted from
     * tokenizer.json) say nothing of the order: the pieces' ids order the merges then */
    bool equal = true;
    for (size_t i = 1; i < n && equal; i++)
        equal = pieces[i].score == pieces[0].score;
    by_score = by_score && !equal;
    for (size_t i = 0; i < n; i++) /* bounds the merges' search: every split of every piece */
        if (pieces[i].n > PQ_TOK_MAX_TOKEN)
            return pq_fail(
                err, POLYQ_FORMAT,
                "%s: piece %zu is %zu bytes long (polyq reads pieces of at most %d bytes)", what, i,
                pieces[i].n, PQ_TOK_MAX_TOKEN);
    pq_strmap ids = {0};
    merge *merges = NULL;
    json_t *root = NULL;
    if (unk_id < 0 || (size_t)unk_id >= n) {
        rc = pq_fail(err, POLYQ_FORMAT, "%s: unk_id %lld is not a piece", path, (long long)unk_id);
        goto out;
    }
    json_t *vocab = json_object(), *added = json_array(), *mlist = json_array();
    root = json_object();
    for (size_t i = 0; i < n; i++) {
        char *s = malloc(pieces[i].n + 1);
        if (!s) {
            rc = pq_fail(err, POLYQ_NOMEM, "out of memory");
            json_decref(vocab);
            json_decref(added);
            json_decref(mlist);
            goto out;
        }
        memcpy(s, pieces[i].s, pieces[i].n);
        s[pieces[i].n] = 0;
        if (!json_object_get(vocab, s))
            json_object_set_new(vocab, s, json_integer((json_int_t)i));
        if (pieces[i].type == 2 || pieces[i].type == 3) /* UNKNOWN, CONTROL */
            json_array_append_new(added, special(s, (json_int_t)i));
        /* USER_DEFINED: matched whole in the raw text, as sentencepiece, transformers'
         * converter (an added token, neither normalized nor special) and llama.cpp do */
        else if (pieces[i].type == 4)
            json_array_append_new(added, added_token(s, (json_int_t)i, false));
        free(s);
        if (pq_strmap_put(&ids, pieces[i].s, pieces[i].n, (int32_t)i) < 0) {
            rc = pq_fail(err, POLYQ_NOMEM, "out of memory");
            json_decref(vocab);
            json_decref(added);
            json_decref(mlist);
            goto out;
        }
    }
    size_t nm = 0, mcap = 0;
    for (size_t i = 0; i < n; i++) {
        const char *s = pieces[i].s;
        uint64_t hl = PQ_FNV_OFFSET; /* the left part's hash, a byte longer each step */
        for (size_t k = 1; k < pieces[i].n; k++) {
            hl = pq_fnv1a(hl, s + k - 1, 1);
            if (((uint8_t)s[k] & 0xc0) == 0x80)
                continue;
            int32_t l = pq_strmap_get_fnv(&ids, s, k, hl);
            int32_t r = l < 0 ? -1 : pq_strmap_get(&ids, s + k, pieces[i].n - k);
            if (l < 0 || r < 0)
                continue;
            if (nm == mcap) {
                mcap = mcap ? mcap * 2 : 4096;
                merge *nmg = realloc(merges, mcap * sizeof *nmg);
                if (!nmg) {
                    rc = pq_fail(err, POLYQ_NOMEM, "out of memory");
                    json_decref(vocab);
                    json_decref(added);
                    json_decref(mlist);
                    goto out;
                }
                merges = nmg;
            }
            merges[nm++] = (merge){(int32_t)i,
                                   l,
                                   r,
                                   (int32_t)pq_utf8_count(s, k),
                                   (int32_t)pq_utf8_count(s + k, pieces[i].n - k),
                                   pieces[i].score};
        }
    }
    if (nm)
        qsort(merges, nm, sizeof *merges, by_score ? merge_score_cmp : merge_cmp);
    for (size_t i = 0; i < nm; i++)
        json_array_append_new(mlist, json_pack("[s#, s#]", pieces[merges[i].left].s,
                                               pieces[merges[i].left].n, pieces[merges[i].right].s,
                                               pieces[merges[i].right].n));
    json_t *norm = json_array();
    if (dummy_prefix)
        json_array_append_new(
            norm, json_pack("{s:s, s:s}", "type", "Prepend", "prepend", "\xe2\x96\x81"));
    if (escape_ws)
        json_array_append_new(norm, json_pack("{s:s, s:{s:s}, s:s}", "type", "Replace", "pattern",
                                              "String", " ", "content", "\xe2\x96\x81"));
    char unk_piece[256];
    snprintf(unk_piece, sizeof unk_piece, "%.*s",
             (int)(pieces[unk_id].n < 255 ? pieces[unk_id].n : 255), pieces[unk_id].s);
    json_object_set_new(root, "added_tokens", added);
    json_object_set_new(root, "normalizer",
                        json_pack("{s:s, s:o}", "type", "Sequence", "normalizers", norm));
    json_object_set_new(root, "pre_tokenizer", json_null());
    json_object_set_new(root, "model",
                        json_pack("{s:s, s:s, s:b, s:b, s:o, s:o}", "type", "BPE", "unk_token",
                                  unk_piece, "fuse_unk", 1, "byte_fallback", byte_fallback, "vocab",
                                  vocab, "merges", mlist));
    if (bos_id >= 0 && (size_t)bos_id < n) {
        char bos[256];
        snprintf(bos, sizeof bos, "%.*s", (int)(pieces[bos_id].n < 255 ? pieces[bos_id].n : 255),
                 pieces[bos_id].s);
        json_object_set_new(root, "post_processor", template_single(bos, bos_id, NULL, 0));
    }
    json_object_set_new(
        root, "decoder",
        json_pack("{s:s, s:[{s:s, s:{s:s}, s:s}, {s:s}, {s:s}, {s:s, s:s, s:i, s:i}]}", "type",
                  "Sequence", "decoders", "type", "Replace", "pattern", "String", "\xe2\x96\x81",
                  "content", " ", "type", "ByteFallback", "type", "Fuse", "type", "Strip",
                  "content", " ", "start", dummy_prefix ? 1 : 0, "stop", 0));
    *out = root;
    root = NULL;
out:
    json_decref(root);
    pq_strmap_free(&ids);
    free(merges);
    return rc;
}

int pq_legacy_spm_model(json_t **out, const char *path, polyq_err *err)
{
    *out = NULL;
    char *data = NULL;
    size_t len = 0;
    int rc = pq_read_file(path, 256u << 20, &data, &len, err);
    if (rc)
        return rc;
    piece *pieces = NULL;
    size_t n = 0, cap = 0;
    int64_t model_type = 1, unk_id = 0, bos_id = 1, eos_id = 2;
    bool byte_fallback = false, dummy_prefix = true, escape_ws = true, extra_ws = true;
    size_t charsmap_len = 0;
    pb b = {(const uint8_t *)data, (const uint8_t *)data + len}, sub, f;
    uint32_t field;
    int wire;
    uint64_t v;
    json_t *root = NULL;
    while (b.p < b.end) {
        if (!pb_field(&b, &field, &wire, &v, &sub)) {
            rc = pq_fail(err, POLYQ_FORMAT,
                         "%s: not a sentencepiece model (bad protobuf at byte %zu)", path,
                         (size_t)(b.p - (const uint8_t *)data));
            goto out;
        }
        if (field == 1 && wire == 2) { /* SentencePiece { piece = 1; score = 2; type = 3 } */
            piece pc = {NULL, 0, 0, 1};
            while (sub.p < sub.end) {
                if (!pb_field(&sub, &field, &wire, &v, &f)) {
                    rc = pq_fail(err, POLYQ_FORMAT, "%s: piece %zu is malformed", path, n);
                    goto out;
                }
                if (field == 1 && wire == 2) {
                    pc.s = (const char *)f.p;
                    pc.n = (size_t)(f.end - f.p);
                } else if (field == 2 && wire == 5) {
                    uint32_t u = (uint32_t)v;
                    memcpy(&pc.score, &u, 4);
                } else if (field == 3 && wire == 0) {
                    pc.type = (int)v;
                }
            }
            if (!pc.s || !pc.n || !pq_utf8_valid(pc.s, pc.n, NULL)) {
                rc = pq_fail(err, POLYQ_FORMAT, "%s: piece %zu is empty or not UTF-8", path, n);
                goto out;
            }
            if (n == cap) {
                cap = cap ? cap * 2 : 1024;
                piece *np = realloc(pieces, cap * sizeof *np);
                if (!np) {
                    rc = pq_fail(err, POLYQ_NOMEM, "out of memory");
                    goto out;
                }
                pieces = np;
            }
            pieces[n++] = pc;
        } else if ((field == 2 || field == 3) && wire == 2) {
            bool trainer = field == 2;
            while (sub.p < sub.end) {
                if (!pb_field(&sub, &field, &wire, &v, &f)) {
                    rc = pq_fail(err, POLYQ_FORMAT, "%s: %s is malformed", path,
                                 trainer ? "trainer_spec" : "normalizer_spec");
                    goto out;
                }
                if (trainer && wire == 0) {
                    if (field == 3)
                        model_type = (int64_t)v;
                    else if (field == 35)
                        byte_fallback = v != 0;
                    else if (field == 40)
                        unk_id = (int32_t)(uint32_t)v;
                    else if (field == 41)
                        bos_id = (int32_t)(uint32_t)v;
                    else if (field == 42)
                        eos_id = (int32_t)(uint32_t)v;
                } else if (!trainer && field == 2 && wire == 2) {
                    charsmap_len = (size_t)(f.end - f.p);
                } else if (!trainer && wire == 0) {
                    if (field == 3)
                        dummy_prefix = v != 0;
                    else if (field == 4)
                        extra_ws = v != 0;
                    else if (field == 5)
                        escape_ws = v != 0;
                }
            }
        }
    }
    if (!n) {
        rc = pq_fail(err, POLYQ_FORMAT, "%s: a sentencepiece model without pieces", path);
        goto out;
    }
    if (model_type != 2) {
        rc =
            pq_fail(err, POLYQ_UNSUPPORTED,
                    "%s: sentencepiece model type %lld (only BPE, 2, is read from tokenizer.model; "
                    "use the model's tokenizer.json)",
                    path, (long long)model_type);
        goto out;
    }
    if (charsmap_len || extra_ws) {
        rc = pq_fail(err, POLYQ_UNSUPPORTED,
                     "%s: a BPE sentencepiece model with %s is not supported (use tokenizer.json)",
                     path, charsmap_len ? "a normalization charsmap" : "remove_extra_whitespaces");
        goto out;
    }
    rc = spm_json(&root, path, pieces, n, unk_id, bos_id, byte_fallback, dummy_prefix, escape_ws,
                  true, err);
    if (rc)
        goto out;
    (void)eos_id;
    *out = root;
    root = NULL;
out:
    json_decref(root);
    free(pieces);
    free(data);
    return rc;
}

int pq_legacy_spm_pieces(json_t **out, const char *what, const char *const *s, const size_t *len,
                         const float *scores, const int32_t *types, size_t n, int64_t unk_id,
                         int64_t bos_id, bool dummy_prefix, polyq_err *err)
{
    *out = NULL;
    if (!n)
        return pq_fail(err, POLYQ_FORMAT, "%s: a vocabulary without pieces", what);
    piece *pieces = calloc(n, sizeof *pieces);
    if (!pieces)
        return pq_fail(err, POLYQ_NOMEM, "out of memory");
    bool byte_fallback = false;
    for (size_t i = 0; i < n; i++) {
        if (!len[i] || !pq_utf8_valid(s[i], len[i], NULL)) {
            free(pieces);
            return pq_fail(err, POLYQ_FORMAT, "%s: piece %zu is empty or not UTF-8", what, i);
        }
        pieces[i] = (piece){s[i], len[i], scores ? scores[i] : 0, types ? types[i] : 1};
        byte_fallback |= pieces[i].type == 6;
    }
    int rc = spm_json(out, what, pieces, n, unk_id, bos_id, byte_fallback, dummy_prefix, true,
                      scores != NULL, err);
    free(pieces);
    return rc;
}
