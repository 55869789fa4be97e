/* Status table and error formatting. The message of a pq_err is what the CLI prints. */
#include "base/status.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>

const char *polyq_status_name(int code)
{
    switch (code) {
#define PQ_X(name, value, text) case value: return #name;
        POLYQ_STATUS_MAP(PQ_X)
#undef PQ_X
    }
    return "UNKNOWN";
}

const char *polyq_status_text(int code)
{
    switch (code) {
#define PQ_X(name, value, text) case value: return text;
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
    char prefix[512], old[sizeof err->msg];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(prefix, sizeof prefix, fmt, ap);
    va_end(ap);
    memcpy(old, err->msg, sizeof old);
    snprintf(err->msg, sizeof err->msg, "%s: %s", prefix, old);
    return err->code;
}
