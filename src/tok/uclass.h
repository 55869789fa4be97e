/* Character classes as Hugging Face `tokenizers` (Rust) defines them, over utf8proc's tables:
 * White_Space (char::is_whitespace), punctuation (ASCII punctuation or a P* category),
 * numeric (char::is_numeric: Nd, Nl, No), "other" (Cc, Cf, Cn, Co, Cs), nonspacing marks,
 * and BERT's CJK ideograph blocks. */
#ifndef PQ_UCLASS_H
#define PQ_UCLASS_H

#include <stdbool.h>
#include <stdint.h>
#include <utf8proc.h>

static inline int pq_ucat(uint32_t cp)
{
    return utf8proc_category((utf8proc_int32_t)cp);
}

static inline bool pq_is_white_space(uint32_t c)
{
    return (c >= 0x9 && c <= 0xd) || c == 0x20 || c == 0x85 || c == 0xa0 || c == 0x1680 ||
           (c >= 0x2000 && c <= 0x200a) || c == 0x2028 || c == 0x2029 || c == 0x202f ||
           c == 0x205f || c == 0x3000;
}

static inline bool pq_is_punct(uint32_t c)
{
    if (c < 0x80)
        return (c >= 0x21 && c <= 0x2f) || (c >= 0x3a && c <= 0x40) || (c >= 0x5b && c <= 0x60) ||
               (c >= 0x7b && c <= 0x7e);
    int k = pq_ucat(c);
    return k >= UTF8PROC_CATEGORY_PC && k <= UTF8PROC_CATEGORY_PO;
}

static inline bool pq_is_numeric(uint32_t c)
{
    int k = pq_ucat(c);
    return k == UTF8PROC_CATEGORY_ND || k == UTF8PROC_CATEGORY_NL || k == UTF8PROC_CATEGORY_NO;
}

static inline bool pq_is_other(uint32_t c)
{
    int k = pq_ucat(c);
    return k == UTF8PROC_CATEGORY_CC || k == UTF8PROC_CATEGORY_CF || k == UTF8PROC_CATEGORY_CN ||
           k == UTF8PROC_CATEGORY_CO || k == UTF8PROC_CATEGORY_CS;
}

static inline bool pq_is_cjk(uint32_t c)
{
    return (c >= 0x4e00 && c <= 0x9fff) || (c >= 0x3400 && c <= 0x4dbf) ||
           (c >= 0x20000 && c <= 0x2a6df) || (c >= 0x2a700 && c <= 0x2b73f) ||
           (c >= 0x2b740 && c <= 0x2b81f) || (c >= 0x2b920 && c <= 0x2ceaf) ||
           (c >= 0xf900 && c <= 0xfaff) || (c >= 0x2f800 && c <= 0x2fa1f);
}

#endif
