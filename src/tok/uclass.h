/* Character classes and mappings as Hugging Face `tokenizers` 0.23.3 has them, from tables made
 * by tools/gen_unicode_tables.py out of tokenizers' own behaviour on every code point
 * (tests/golden/unicode_tokenizers.txt), so that they do not follow the Unicode version of the
 * system's utf8proc: White_Space (char::is_whitespace), punctuation (ASCII punctuation or a P*
 * category of the unicode_categories crate), numeric (char::is_numeric), the regex crate's \w,
 * the characters BertNormalizer's clean_text deletes (Cc, Cf, Co of unicode_categories' tables:
 * unassigned code points are kept), BERT's CJK ideograph blocks, char::to_lowercase and
 * BertNormalizer's accent stripping (NFD, then nonspacing marks dropped) per character. */
#ifndef PQ_UCLASS_H
#define PQ_UCLASS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

typedef struct pq_umap {
    uint32_t cp;
    uint16_t off, len;
} pq_umap;

typedef enum pq_uclass {
    PQ_U_BERT_DROP,  /* BertNormalizer's clean_text deletes it (NUL, U+FFFD, Cc, Cf, Co) */
    PQ_U_PUNCT,      /* punctuation (BertPreTokenizer, Punctuation) */
    PQ_U_NUMERIC,    /* char::is_numeric (Digits) */
    PQ_U_WORD,       /* the regex crate's \w (Whitespace, single_word) */
    PQ_U_CANONICAL,  /* tokenizers' normalization tables: a canonical decomposition, */
    PQ_U_DECOMPOSES, /* any decomposition, */
    PQ_U_COMBINING,  /* a nonzero combining class, */
    PQ_U_MARK,       /* a combining mark StripAccents removes */
} pq_uclass;

bool pq_u_in(pq_uclass k, uint32_t c);
/* out[0..return): the character's lower case / its accent-stripped form (possibly empty) */
size_t pq_u_lower(uint32_t c, uint32_t out[4]);
size_t pq_u_accents(uint32_t c, uint32_t out[4]);
/* PCRE2 class members ("\x{a}-\x{b}...") that tokenizers' Oniguruma counts as letters /
 * numbers beyond Unicode 14.0's \p{L} / \p{N} */
extern const char pq_u_pcre2_extra_L[];
extern const char pq_u_pcre2_extra_N[];

/* White_Space: the same 25 characters in Rust's char::is_whitespace, the regex crate's \s and
 * Oniguruma's \s */
static inline bool pq_is_white_space(uint32_t c)
{
    return (c >= 0x9 && c <= 0xd) || c == 0x20 || c == 0x85 || c == 0xa0 || c == 0x1680 ||
           (c >= 0x2000 && c <= 0x200a) || c == 0x2028 || c == 0x2029 || c == 0x202f ||
           c == 0x205f || c == 0x3000;
}
#define PQ_WHITE_SPACE_CLASS                                                                       \
    "\\t-\\r \\x{85}\\x{a0}\\x{1680}\\x{2000}-\\x{200a}\\x{2028}\\x{2029}\\x{202f}\\x{205f}"       \
    "\\x{3000}"

static inline bool pq_is_punct(uint32_t c)
{
    return pq_u_in(PQ_U_PUNCT, c);
}

static inline bool pq_is_numeric(uint32_t c)
{
    return pq_u_in(PQ_U_NUMERIC, c);
}

static inline bool pq_is_cjk(uint32_t c)
{
    return (c >= 0x4e00 && c <= 0x9fff) || (c >= 0x3400 && c <= 0x4dbf) ||
           (c >= 0x20000 && c <= 0x2a6df) || (c >= 0x2a700 && c <= 0x2b73f) ||
           (c >= 0x2b740 && c <= 0x2b81f) || (c >= 0x2b920 && c <= 0x2ceaf) ||
           (c >= 0xf900 && c <= 0xfaff) || (c >= 0x2f800 && c <= 0x2fa1f);
}

#endif
