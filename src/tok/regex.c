/* The tokenizer's regex limits (regex.h). */
#define PCRE2_CODE_UNIT_WIDTH 8

#include <pcre2.h>
#include <pthread.h>

#include "tok/regex.h"

static pcre2_match_context *limits;
static pthread_once_t once = PTHREAD_ONCE_INIT;

static void make_limits(void)
{
    limits = pcre2_match_context_create(NULL);
    if (limits) {
        pcre2_set_match_limit(limits, PQ_RE_MATCH_LIMIT);
        pcre2_set_depth_limit(limits, PQ_RE_MATCH_LIMIT);
        pcre2_set_heap_limit(limits, PQ_RE_HEAP_KIB);
    }
}

pcre2_match_context *pq_re_limits(void)
{
    pthread_once(&once, make_limits);
    return limits;
}
