/* Helpers the polyq commands share (main.c, options.c). */
#ifndef PQ_CLI_H
#define PQ_CLI_H

#include "base/status.h"

/* Prints err's message; the exit status for it (2 for a bad argument, else 1). */
int die(const polyq_err *err);
/* Prints a usage error (fmt with one %s); returns 2. */
int bad_arg(const char *fmt, const char *a);

#endif
