/* Status table and error formatting. The message of a pq_err is what the CLI prints. */
#include "base/status.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>

const char *polyq_status_name(int code)
{
    switch (code) {
#define PQ_X(name, value, text)                                                                    \
    case value:                                                                                    \
        return #name;
        POLYQ_STATUS_MAP(PQ_X)
#undef PQ_X
    }
    return "UNKNOWN";
}

const char *polyq_status_text(int code)
{
    switch (code) {
#define PQ_X(name, value, text)                                                                    \
    case value:                                                                                    \
        return text;
        POLYQ_STATUS_MAP(PQ_X)
#undef PQ_X
    }
    return "unknown status";
}

int pq_fail(polyq_err *err, int code, const char *fmt, ...)
{
    if (!err)
        return code;
    err->code = code;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(err->msg, sizeof err->msg, fmt, ap);
    va_end(ap);
    return code;
}

int pq_fail_context(polyq_err *err, const char *fmt, ...)
{
    if (!err)
        return POLYQ_INVALID_ARG;
    char buf[2 * sizeof err->msg + 8];
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(buf, sizeof err->msg, fmt, ap);
    va_end(ap);
    size_t w = n < 0 ? 0 : (size_t)n < sizeof err->msg ? (size_t)n : sizeof err->msg - 1;
    memcpy(buf + w, ": ", 2);
    memcpy(buf + w + 2, err->msg, sizeof err->msg);
    buf[sizeof buf - 1] = 0;
    memcpy(err->msg, buf, sizeof err->msg - 1); /* the end of a very long message is cut */
    err->msg[sizeof err->msg - 1] = 0;
    return err->code;
}
