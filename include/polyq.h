/* polyq: measures how quantizing a language model treats each human language.
 *
 * Public API. Handles are opaque; every fallible call returns a polyq status (0 = OK) and
 * fills a caller-owned polyq_err whose message names the file, the item and the problem.
 * Options structs zeroed with {0} mean "defaults". Nothing in the library exits or aborts. */
#ifndef POLYQ_H
#define POLYQ_H

#include <stddef.h>
#include <stdint.h>

#define POLYQ_VERSION "0.1.0"

/* X(name, value, text) */
#define POLYQ_STATUS_MAP(X)                                          \
    X(OK, 0, "ok")                                                   \
    X(NOMEM, 1, "out of memory")                                     \
    X(IO, 2, "input/output error")                                   \
    X(NOT_FOUND, 3, "not found")                                     \
    X(FORMAT, 4, "malformed file")                                   \
    X(UNSUPPORTED, 5, "not supported")                               \
    X(INVALID_ARG, 6, "invalid argument")                            \
    X(NETWORK, 7, "network error")                                   \
    X(OFFLINE, 8, "not available offline")                           \
    X(TEXT, 9, "invalid text")                                       \
    X(NUMERIC, 10, "non-finite number")

enum {
#define PQ_X(name, value, text) POLYQ_##name = value,
    POLYQ_STATUS_MAP(PQ_X)
#undef PQ_X
};

typedef struct polyq_err {
    int code;
    char msg[1024];
} polyq_err;

/* Static text for a status code ("unknown status" for others). */
const char *polyq_status_name(int code);
const char *polyq_status_text(int code);

#endif
