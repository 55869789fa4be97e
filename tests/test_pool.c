/* The thread pool: every task runs exactly once, for any thread count, across many
 * create/run/free cycles (the sanitizer build checks the start-up and shutdown races). */
#include <stdatomic.h>
#include <stdlib.h>

#include "kernels/pool.h"
#include "test.h"

typedef struct {
    atomic_int *hits;
} job;

static void count_task(void *ctx, size_t t, int thread)
{
    job *j = ctx;
    atomic_fetch_add(&j->hits[t], 1);
    (void)thread;
}

TEST(pool_runs_each_task_once)
{
    atomic_int hits[257];
    for (int cycle = 0; cycle < 40; cycle++) {
        int threads = 1 + cycle % 4;
        pq_pool *p = pq_pool_create(threads);
        CHECK(p != NULL);
        if (!p)
            return;
        CHECK_INT(pq_pool_threads(p), threads);
        for (int round = 0; round < 5; round++) {
            size_t n = (size_t)(cycle * 7 + round * 13) % 257 + 1;
            for (size_t i = 0; i < 257; i++)
                atomic_store(&hits[i], 0);
            job j = {hits};
            pq_pool_run(p, n, count_task, &j);
            int bad = 0;
            for (size_t i = 0; i < 257; i++)
                bad += atomic_load(&hits[i]) != (i < n);
            CHECK_INT(bad, 0);
        }
        pq_pool_free(p);
    }
    pq_pool_free(NULL);
}
