/* Corpus files and data sets (see corpus.h). FLORES-200 files are <lang>_<Script>.<split>
 * inside <root>/<split>/. */
#include "eval/corpus.h"

#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "base/base.h"

int pq_corpus_load(pq_corpus *c, const char *lang, const char *path, size_t max_sentences,
                   polyq_err *err)
{
    memset(c, 0, sizeof *c);
    snprintf(c->lang, sizeof c->lang, "%s", lang);
    if (!(c->path = pq_strdup(path)))
        return pq_fail(err, POLYQ_NOMEM, "out of memory");
    size_t len;
    int rc = pq_read_file(path, 1u << 30, &c->text, &len, err);
    if (rc)
        return rc;
    size_t cap = 0;
    for (size_t i = 0; i < len; i++)
        cap += c->text[i] == '\n';
    cap++;
    c->lines = pq_alloc_array(cap, sizeof *c->lines);
    c->lens = pq_alloc_array(cap, sizeof *c->lens);
    if (!c->lines || !c->lens)
        return pq_fail(err, POLYQ_NOMEM, "%s: out of memory", path);
    size_t pos = 0, line_no = 0;
    while (pos < len && (!max_sentences || c->n < max_sentences)) {
        char *s = c->text + pos, *nl = memchr(s, '\n', len - pos);
        size_t l = nl ? (size_t)(nl - s) : len - pos;
        line_no++;
        pos += l + (nl != NULL);
        if (nl)
            *nl = 0;
        if (l && s[l - 1] == '\r')
            s[--l] = 0;
        size_t bad;
        if (l > PQ_MAX_LINE)
            return pq_fail(err, POLYQ_TEXT,
                           "%s: line %zu is %zu bytes long (polyq reads lines of at most %d bytes: "
                           "split the text into sentences or paragraphs)",
                           path, line_no, l, PQ_MAX_LINE);
        if (memchr(s, '\r', l))
            return pq_fail(err, POLYQ_TEXT,
                           "%s: line %zu holds a carriage return inside it (a file with CR line "
                           "endings? lines end in \\n or \\r\\n)",
                           path, line_no);
        if (memchr(s, 0, l))
            return pq_fail(err, POLYQ_TEXT, "%s: line %zu contains a NUL byte", path, line_no);
        if (!pq_utf8_valid(s, l, &bad))
            return pq_fail(err, POLYQ_TEXT, "%s: line %zu is not valid UTF-8 (byte %zu)", path,
                           line_no, bad + 1);
        c->lines[c->n] = s;
        c->lens[c->n++] = l;
    }
    if (!c->n)
        return pq_fail(err, POLYQ_TEXT, "%s: no sentences", path);
    return 0;
}

void pq_corpus_free(pq_corpus *c)
{
    if (!c)
        return;
    free(c->path);
    free(c->text);
    free(c->lines);
    free(c->lens);
    memset(c, 0, sizeof *c);
}

void pq_strlist_free(char **list, size_t n)
{
    for (size_t i = 0; list && i < n; i++)
        free(list[i]);
    free(list);
}

int pq_dataset_open(pq_dataset *d, const char *spec, const char *split, polyq_err *err)
{
    memset(d, 0, sizeof *d);
    if (strcmp(split, "dev") && strcmp(split, "devtest"))
        return pq_fail(err, POLYQ_INVALID_ARG, "split \"%s\" is not dev or devtest", split);
    snprintf(d->split, sizeof d->split, "%s", split);
    if (!strchr(spec, '=')) {
        if (!pq_dir_exists(spec))
            return pq_fail(
                err, POLYQ_NOT_FOUND,
                "%s: no such directory (--data takes a FLORES-200 folder or lang=file pairs)",
                spec);
        char *sub = pq_path_join(spec, split);
        if (!sub)
            return pq_fail(err, POLYQ_NOMEM, "out of memory");
        bool nested = pq_dir_exists(sub);
        free(sub);
        size_t l = strlen(spec);
        /* the split folder itself (".../devtest") is accepted too */
        bool is_split = l >= strlen(split) && !strcmp(spec + l - strlen(split), split);
        if (!nested && !is_split)
            return pq_fail(err, POLYQ_NOT_FOUND, "%s: no %s/ folder: not a FLORES-200 directory",
                           spec, split);
        d->root = nested ? pq_path_join(spec, split) : pq_strdup(spec);
        return d->root ? 0 : pq_fail(err, POLYQ_NOMEM, "out of memory");
    }
    char *copy = pq_strdup(spec), *save = NULL;
    if (!copy)
        return pq_fail(err, POLYQ_NOMEM, "out of memory");
    int rc = 0;
    for (char *item = strtok_r(copy, ",", &save); item && !rc; item = strtok_r(NULL, ",", &save)) {
        char *eq = strchr(item, '=');
        if (!eq || eq == item || !eq[1]) {
            rc = pq_fail(err, POLYQ_INVALID_ARG, "--data item \"%s\" is not lang=path", item);
            break;
        }
        *eq = 0;
        char **nl = realloc(d->langs, (d->n + 1) * sizeof *nl);
        if (nl)
            d->langs = nl;
        char **np = realloc(d->paths, (d->n + 1) * sizeof *np);
        if (np)
            d->paths = np;
        if (!nl || !np || !(d->langs[d->n] = pq_strdup(item))) {
            rc = pq_fail(err, POLYQ_NOMEM, "out of memory");
            break;
        }
        if (!(d->paths[d->n] = pq_strdup(eq + 1))) {
            free(d->langs[d->n]);
            rc = pq_fail(err, POLYQ_NOMEM, "out of memory");
            break;
        }
        d->n++;
    }
    free(copy);
    return rc;
}

void pq_dataset_free(pq_dataset *d)
{
    if (!d)
        return;
    free(d->root);
    pq_strlist_free(d->langs, d->n);
    pq_strlist_free(d->paths, d->n);
    memset(d, 0, sizeof *d);
}

static bool lang_code_ok(const char *s)
{
    size_t n = strlen(s);
    if (!n || n > 48)
        return false;
    for (size_t i = 0; i < n; i++)
        if (!((s[i] >= 'a' && s[i] <= 'z') || (s[i] >= 'A' && s[i] <= 'Z') ||
              (s[i] >= '0' && s[i] <= '9') || s[i] == '_' || s[i] == '-'))
            return false;
    return true;
}

/* " (did you mean eng_Latn?)" for lang among the dataset's languages: the same code in another
 * case, the codes whose language part it is ("zho": zho_Hans, zho_Hant), or the nearest code;
 * "" when none is close. */
static void lang_hint(const pq_dataset *d, const char *lang, char *hint, size_t size)
{
    hint[0] = 0;
    char **list;
    size_t n;
    polyq_err ignored = {0};
    if (pq_dataset_langs(d, &list, &n, &ignored))
        return;
    size_t ll = strlen(lang), at = 0, found = 0;
    char names[256] = "";
    for (size_t i = 0; i < n && found < 4; i++) {
        const char *c = list[i], *us = strchr(c, '_');
        bool same = !strcasecmp(c, lang);
        bool part = !strchr(lang, '_') && us && (size_t)(us - c) == ll && !strncasecmp(c, lang, ll);
        if (same || part) {
            int w = snprintf(names + at, sizeof names - at, "%s%s", found ? " or " : "", c);
            if (w > 0 && (size_t)w < sizeof names - at)
                at += (size_t)w;
            found++;
        }
    }
    if (!found) {
        const char *near = pq_nearest(lang, (const char *const *)list, n);
        if (near)
            snprintf(names, sizeof names, "%s", near);
    }
    if (names[0])
        snprintf(hint, size, " (did you mean %s?)", names);
    pq_strlist_free(list, n);
}

int pq_dataset_path(const pq_dataset *d, const char *lang, char **out, polyq_err *err)
{
    char hint[300];
    *out = NULL;
    if (!d->root) {
        for (size_t i = 0; i < d->n; i++)
            if (!strcmp(d->langs[i], lang))
                return (*out = pq_strdup(d->paths[i])) ? 0
                                                       : pq_fail(err, POLYQ_NOMEM, "out of memory");
        lang_hint(d, lang, hint, sizeof hint);
        return pq_fail(err, POLYQ_NOT_FOUND, "language \"%s\" is not among the --data files%s",
                       lang, hint);
    }
    if (!lang_code_ok(lang)) {
        lang_hint(d, lang, hint, sizeof hint);
        return pq_fail(err, POLYQ_INVALID_ARG,
                       "\"%s\" is not a language code (FLORES-200 codes look like eng_Latn)%s",
                       lang, hint);
    }
    char *p = pq_asprintf("%s/%s.%s", d->root, lang, d->split);
    if (!p)
        return pq_fail(err, POLYQ_NOMEM, "out of memory");
    if (!pq_file_exists(p)) {
        lang_hint(d, lang, hint, sizeof hint);
        pq_fail(err, POLYQ_NOT_FOUND, "unknown language code \"%s\"%s: %s does not exist", lang,
                hint, p);
        free(p);
        return POLYQ_NOT_FOUND;
    }
    *out = p;
    return 0;
}

static int cmp_str(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

int pq_dataset_langs(const pq_dataset *d, char ***out, size_t *n, polyq_err *err)
{
    *out = NULL;
    *n = 0;
    char **list = NULL;
    size_t cnt = 0;
    if (!d->root) {
        list = pq_calloc_array(d->n ? d->n : 1, sizeof *list);
        if (!list)
            return pq_fail(err, POLYQ_NOMEM, "out of memory");
        for (; cnt < d->n; cnt++)
            if (!(list[cnt] = pq_strdup(d->langs[cnt]))) {
                pq_strlist_free(list, cnt);
                return pq_fail(err, POLYQ_NOMEM, "out of memory");
            }
        *out = list;
        *n = cnt;
        return 0;
    }
    DIR *dir = opendir(d->root);
    if (!dir)
        return pq_fail(err, POLYQ_IO, "%s: cannot list", d->root);
    struct dirent *e;
    size_t sl = strlen(d->split);
    while ((e = readdir(dir))) {
        size_t l = strlen(e->d_name);
        if (l <= sl + 1 || e->d_name[l - sl - 1] != '.' || strcmp(e->d_name + l - sl, d->split))
            continue;
        char **nl = realloc(list, (cnt + 1) * sizeof *nl);
        char *name = nl ? pq_asprintf("%.*s", (int)(l - sl - 1), e->d_name) : NULL;
        if (nl)
            list = nl;
        if (!name) {
            closedir(dir);
            pq_strlist_free(list, cnt);
            return pq_fail(err, POLYQ_NOMEM, "out of memory");
        }
        list[cnt++] = name;
    }
    closedir(dir);
    if (!cnt) {
        free(list);
        return pq_fail(err, POLYQ_NOT_FOUND, "%s: no *.%s files", d->root, d->split);
    }
    qsort(list, cnt, sizeof *list, cmp_str);
    *out = list;
    *n = cnt;
    return 0;
}

bool pq_script_unspaced(const char *lang)
{
    static const char *const scripts[] = {"Hans", "Hant", "Jpan", "Thai", "Khmr", "Laoo",
                                          "Mymr", "Tibt", "Hani", "Bopo", NULL};
    const char *us = strrchr(lang, '_');
    if (!us)
        return false;
    for (int i = 0; scripts[i]; i++)
        if (!strcmp(us + 1, scripts[i]))
            return true;
    return false;
}

static const struct {
    const char *code, *name, *script;
} lang_names[] = {
#include "eval/langnames.inc"
};

const char *pq_lang_name(const char *code, const char **script)
{
    size_t lo = 0, hi = sizeof lang_names / sizeof lang_names[0];
    while (lo < hi) { /* sorted by code */
        size_t mid = lo + (hi - lo) / 2;
        int c = strcmp(code, lang_names[mid].code);
        if (!c) {
            if (script)
                *script = lang_names[mid].script;
            return lang_names[mid].name;
        }
        if (c < 0)
            hi = mid;
        else
            lo = mid + 1;
    }
    if (script)
        *script = NULL;
    return NULL;
}
