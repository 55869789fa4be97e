/* A fixed thread pool with one operation: run tasks 0..n-1 and wait. Tasks are claimed
 * dynamically, but each task's work is fixed by its index, so results never depend on how
 * many threads ran them. The calling thread takes part. */
#ifndef PQ_POOL_H
#define PQ_POOL_H

#include <stddef.h>

typedef struct pq_pool pq_pool;
typedef void (*pq_task_fn)(void *ctx, size_t task, int thread);

/* n_threads >= 1 (1 = run everything on the caller). NULL on failure. */
pq_pool *pq_pool_create(int n_threads);
void pq_pool_free(pq_pool *p);
int pq_pool_threads(const pq_pool *p);
void pq_pool_run(pq_pool *p, size_t n_tasks, pq_task_fn fn, void *ctx);

#endif
