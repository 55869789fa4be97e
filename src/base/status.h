/* Status codes and the caller-owned error record every fallible function fills.
 * One X-macro table gives each code its name and text (after libuv's UV_ERRNO_MAP);
 * the message in pq_err names the file, the item and the problem. Nothing here exits. */
#ifndef PQ_STATUS_H
#define PQ_STATUS_H

#include "polyq.h"

/* Sets err (may be NULL) to code and a printf-style message; returns code. */
int pq_fail(polyq_err *err, int code, const char *fmt, ...) __attribute__((format(printf, 3, 4)));

/* Prepends "prefix: " to the message already in err; returns err->code. */
int pq_fail_context(polyq_err *err, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

#endif
