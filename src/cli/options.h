/* One table-driven option parser for every polyq command: each option's name, the value it
 * takes, its help text and where its value goes; --help is printed from the same table. */
#ifndef PQ_CLI_OPTIONS_H
#define PQ_CLI_OPTIONS_H

#include <stdbool.h>
#include <stdio.h>

typedef enum {
    OPT_FLAG,  /* bool *: set by the option alone */
    OPT_STR,   /* const char **: the value as given */
    OPT_COUNT, /* unsigned long long * within [lo, hi] */
    OPT_SIZE,  /* double *: bytes, from 8G, 512M, ... */
} opt_kind;

typedef struct cli_opt {
    const char *name;  /* "--quant" */
    const char *value; /* how --help names its value ("LIST"); NULL for a flag */
    const char *help;  /* one line, or lines joined by \n (printed indented) */
    opt_kind kind;
    void *dst;
    unsigned long long lo, hi; /* OPT_COUNT's range */
    const char *bad;           /* what a bad value is told: "is not a positive count" */
    bool *seen;                /* set when the option is given (may be NULL) */
} cli_opt;

/* A command: its usage line, what it does, and its options (ended by {NULL}). */
typedef struct cli_cmd {
    const char *usage, *about;
    const cli_opt *opts;
} cli_cmd;

/* Parses argv[first..argc): options of cmd into their destinations, other words into
 * pos[0..max_pos) (*n_pos of them). Returns 0, or the exit status (a message printed; 0 after
 * --help, which is printed to stdout). *done is set when the command should stop (--help or
 * an error). */
int cli_parse(int argc, char **argv, int first, const cli_cmd *cmd, const char **pos, int max_pos,
              int *n_pos, bool *done);
/* cli_parse from argv[2] (after the command's name): true when the command is to stop now with
 * exit status *status (--help, or a message printed). */
bool cli_args(int argc, char **argv, const cli_cmd *cmd, const char **pos, int max_pos, int *n_pos,
              int *status);
/* The command's usage, about text and options, as --help prints them. */
void cli_help(FILE *f, const cli_cmd *cmd);

#endif
