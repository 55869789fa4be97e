/* Replays every committed fuzz input (each file under fuzz/corpus/<target>/), seeds and past
 * crashes alike, through the plain-C targets, so `make test` and `make asan` keep them fixed. */
#include <dirent.h>
#include <stdlib.h>

#include "../fuzz/fuzz.h"
#include "base/base.h"
#include "test.h"

TEST(fuzz_corpus_replay)
{
    for (const pq_fuzz_target *t = pq_fuzz_targets; t->name; t++) {
        char dir[256];
        snprintf(dir, sizeof dir, "fuzz/corpus/%s", t->name);
        DIR *d = opendir(dir);
        int n = 0;
        struct dirent *e;
        while (d && (e = readdir(d))) {
            if (e->d_name[0] == '.')
                continue;
            char *path = pq_path_join(dir, e->d_name), *buf = NULL;
            size_t len = 0;
            polyq_err err = {0};
            if (path && pq_read_file(path, 1u << 24, &buf, &len, &err) == 0) {
                t->fn((const uint8_t *)buf, len);
                n++;
            }
            free(buf);
            free(path);
        }
        if (d)
            closedir(d);
        if (n == 0)
            FAILF("no corpus inputs in %s", dir);
    }
    pq_fuzz_cleanup();
}
