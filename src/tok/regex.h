/* The limits every regex match of the tokenizer runs under (PCRE2's match, depth and heap
 * limits), so that a hostile pattern or text ends with a message instead of running on: at most
 * PQ_RE_MATCH_LIMIT backtracking steps and PQ_RE_HEAP_KIB KiB of backtracking memory per match
 * (the JIT's own stack, when PCRE2 has a JIT, ends a match too).
 */
#ifndef PQ_TOK_REGEX_H
#define PQ_TOK_REGEX_H

#ifndef PCRE2_CODE_UNIT_WIDTH
#define PCRE2_CODE_UNIT_WIDTH 8
#endif
#include <pcre2.h>

#define PQ_RE_MATCH_LIMIT 10000000
#define PQ_RE_HEAP_KIB 65536

/* One shared match context with those limits (made once; NULL when out of memory, then
 * PCRE2's own defaults apply). */
pcre2_match_context *pq_re_limits(void);
/* Whether a pcre2_match status is one of the limits above. */
static inline int pq_re_limited(int r)
{
    return r == PCRE2_ERROR_MATCHLIMIT || r == PCRE2_ERROR_DEPTHLIMIT ||
           r == PCRE2_ERROR_HEAPLIMIT || r == PCRE2_ERROR_JIT_STACKLIMIT;
}

#endif
