/* make bench-loaders: how loading and tokenizing grow with their input, as the ratio of the time
 * for 10x the input to the time for 1x (linear: about 10; quadratic: about 100). Inputs made
 * here: a GGUF of N one-element tensors, a tokenizer.json of N added tokens, a word of N bytes
 * for WordPiece and for Unigram, a pickle of N nested tuples. Median of 3 runs each; never part
 * of the tests. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "base/base.h"
#include "format/gguf.h"
#include "format/torchbin.h"
#include "tok/tokenizer.h"

static double now(void)
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (double)t.tv_sec + 1e-9 * (double)t.tv_nsec;
}

typedef int (*job_fn)(size_t n, const char *dir);

static int gguf_tensors(size_t n, const char *dir)
{
    char path[512];
    snprintf(path, sizeof path, "%s/many.gguf", dir);
    polyq_err err = {0};
    pq_gguf_w *w = pq_gguf_w_new();
    for (size_t i = 0; w && i < n; i++) {
        char name[32];
        snprintf(name, sizeof name, "t%zu", i);
        float v = 0;
        uint64_t ne[1] = {1};
        pq_gguf_w_tensor(w, name, PQ_GGML_F32, 1, ne, &v, sizeof v);
    }
    int rc = w ? pq_gguf_w_save(w, path, &err) : -1;
    pq_gguf_w_free(w);
    double t0 = now();
    pq_gguf g;
    rc = rc ? rc : pq_gguf_open(&g, path, &err);
    if (!rc)
        pq_gguf_close(&g);
    return rc ? -1 : (int)((now() - t0) * 1e6);
}

static char *printf_buf(size_t *len, size_t n, const char *head, const char *item, const char *tail)
{
    size_t cap = strlen(head) + strlen(tail) + n * (strlen(item) + 24) + 1, at = 0;
    char *b = malloc(cap);
    at += (size_t)snprintf(b + at, cap - at, "%s", head);
    for (size_t i = 0; i < n; i++)
        at += (size_t)snprintf(b + at, cap - at, item, i ? "," : "", i + 1, i);
    at += (size_t)snprintf(b + at, cap - at, "%s", tail);
    *len = at;
    return b;
}

static int added_tokens(size_t n, const char *dir)
{
    (void)dir;
    size_t len;
    char *b =
        printf_buf(&len, n, "{\"added_tokens\":[",
                   "%s{\"id\":%zu,\"content\":\"<t%zu>\",\"single_word\":false,\"lstrip\":false,"
                   "\"rstrip\":false,\"normalized\":false,\"special\":true}",
                   "],\"model\":{\"type\":\"WordPiece\",\"unk_token\":\"u\",\"vocab\":{\"u\":0}}}");
    polyq_err err = {0};
    pq_tokenizer *t = NULL;
    double t0 = now();
    int rc = pq_tok_load_json_buffer(&t, "added.json", b, len, &err);
    double dt = now() - t0;
    pq_tok_free(t);
    free(b);
    return rc ? -1 : (int)(dt * 1e6);
}

static int word(size_t n, const char *json)
{
    polyq_err err = {0};
    pq_tokenizer *t = NULL;
    if (pq_tok_load_json_buffer(&t, "w.json", json, strlen(json), &err))
        return -1;
    char *w = malloc(n);
    memset(w, 'a', n);
    pq_ids ids = {0};
    double t0 = now();
    int rc = pq_tok_encode(t, w, n, &ids, &err);
    double dt = now() - t0;
    pq_ids_free(&ids);
    pq_tok_free(t);
    free(w);
    return rc ? -1 : (int)(dt * 1e6);
}

static int wordpiece_word(size_t n, const char *dir)
{
    (void)dir;
    return word(
        n, "{\"model\":{\"type\":\"WordPiece\",\"unk_token\":\"u\",\"max_input_chars_per_word\":"
           "1048576,\"vocab\":{\"u\":0,\"a\":1,\"##a\":2,\"aaaaaaaa\":3,\"##aaaaaaaa\":4}}}");
}

static int unigram_word(size_t n, const char *dir)
{
    (void)dir;
    return word(
        n, "{\"model\":{\"type\":\"Unigram\",\"unk_id\":0,\"vocab\":[[\"<unk>\",0.0],[\"a\",-1.0],"
           "[\"aa\",-1.5],[\"aaaaaaaa\",-2.5]]}}");
}

static int cmp_int(const void *a, const void *b)
{
    return *(const int *)a - *(const int *)b;
}

int main(void)
{
    static const struct {
        const char *what;
        job_fn fn;
        size_t n;
    } jobs[] = {
        {"GGUF open, tensors", gguf_tensors, 10000},
        {"tokenizer.json load, added tokens", added_tokens, 20000},
        {"WordPiece, bytes of one word", wordpiece_word, 100000},
        {"Unigram, bytes of one word", unigram_word, 100000},
    };
    char dir[] = "/tmp/polyq-bench-loaders-XXXXXX";
    if (!mkdtemp(dir))
        return 1;
    printf("%-36s %10s %12s %12s %8s\n", "input", "n", "time(n) us", "time(10n) us", "ratio");
    int bad = 0;
    for (size_t j = 0; j < sizeof jobs / sizeof jobs[0]; j++) {
        int t[2][3];
        for (int k = 0; k < 2; k++)
            for (int r = 0; r < 3; r++)
                t[k][r] = jobs[j].fn(jobs[j].n * (k ? 10 : 1), dir);
        qsort(t[0], 3, sizeof(int), cmp_int);
        qsort(t[1], 3, sizeof(int), cmp_int);
        if (t[0][0] < 0 || t[1][0] < 0) {
            printf("%-36s failed\n", jobs[j].what);
            bad = 1;
            continue;
        }
        printf("%-36s %10zu %12d %12d %8.1f\n", jobs[j].what, jobs[j].n, t[0][1], t[1][1],
               (double)t[1][1] / (t[0][1] > 0 ? t[0][1] : 1));
    }
    pq_rmtree(dir);
    return bad;
}
