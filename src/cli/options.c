/* The option parser of every polyq command (options.h). */
#include "cli/options.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "base/base.h"
#include "cli/cli.h"
#include "eval/memory.h"

static bool parse_count(const char *s, unsigned long long lo, unsigned long long hi,
                        unsigned long long *out)
{
    char *end;
    errno = 0;
    if (!s || !*s || *s == '-')
        return false;
    unsigned long long v = strtoull(s, &end, 10);
    if (errno || *end || v < lo || v > hi)
        return false;
    *out = v;
    return true;
}

static int bad_value(const cli_opt *o, const char *v)
{
    char fmt[256];
    snprintf(fmt, sizeof fmt, "%s \"%%s\" %s", o->name, o->bad ? o->bad : "is not valid");
    return bad_arg(fmt, v);
}

int cli_parse(int argc, char **argv, int first, const cli_cmd *cmd, const char **pos, int max_pos,
              int *n_pos, bool *done)
{
    *n_pos = 0;
    *done = true;
    for (int i = first; i < argc; i++) {
        const char *a = argv[i];
        if (!strcmp(a, "-h") || !strcmp(a, "--help")) {
            cli_help(stdout, cmd);
            return 0;
        }
        const cli_opt *o = NULL;
        for (const cli_opt *k = cmd->opts; k && k->name && !o; k++)
            if (!strcmp(a, k->name))
                o = k;
        if (!o) {
            if (a[0] == '-' && a[1]) {
                const char *names[64];
                size_t n = 0;
                for (const cli_opt *k = cmd->opts; k && k->name && n < 64; k++)
                    names[n++] = k->name;
                const char *near = pq_nearest(a, names, n);
                if (near) {
                    char fmt[96];
                    snprintf(fmt, sizeof fmt, "unknown option %%s (did you mean %s?)", near);
                    return bad_arg(fmt, a);
                }
                return bad_arg("unknown option %s", a);
            }
            if (*n_pos == max_pos)
                return bad_arg("unexpected argument \"%s\"", a);
            pos[(*n_pos)++] = a;
            continue;
        }
        if (o->seen)
            *o->seen = true;
        if (o->kind == OPT_FLAG) {
            *(bool *)o->dst = true;
            continue;
        }
        bool next_is_option = false; /* "--quant --langs x": --quant was given no value */
        for (const cli_opt *k = cmd->opts; i + 1 < argc && k && k->name; k++)
            next_is_option |= !strcmp(argv[i + 1], k->name);
        if (i + 1 >= argc || next_is_option)
            return bad_arg("%s needs a value", a);
        const char *v = argv[++i];
        if (o->kind == OPT_STR)
            *(const char **)o->dst = v;
        else if (o->kind == OPT_COUNT) {
            if (!parse_count(v, o->lo, o->hi, o->dst))
                return bad_value(o, v);
        } else if ((*(double *)o->dst = pq_parse_size(v)) <= 0)
            return bad_value(o, v);
    }
    *done = false;
    return 0;
}

bool cli_args(int argc, char **argv, const cli_cmd *cmd, const char **pos, int max_pos, int *n_pos,
              int *status)
{
    bool done;
    *status = cli_parse(argc, argv, 2, cmd, pos, max_pos, n_pos, &done);
    return done;
}

void cli_help(FILE *f, const cli_cmd *cmd)
{
    fprintf(f, "usage: %s\n", cmd->usage);
    if (cmd->about)
        fprintf(f, "%s\n", cmd->about);
    if (cmd->opts && cmd->opts->name)
        fprintf(f, "\noptions:\n");
    for (const cli_opt *o = cmd->opts; o && o->name; o++) {
        char head[64];
        snprintf(head, sizeof head, "%s%s%s", o->name, o->value ? " " : "",
                 o->value ? o->value : "");
        fprintf(f, "  %-20s", head);
        if (strlen(head) > 19)
            fprintf(f, "\n  %-20s", "");
        for (const char *h = o->help; *h; h++) {
            fputc(*h, f);
            if (*h == '\n')
                fprintf(f, "  %-20s", "");
        }
        fputc('\n', f);
    }
}
