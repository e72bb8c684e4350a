/* threadpool.h - a fixed set of worker threads that run one parallel loop at a time.
 *
 * ty_pool_run(pool, fn, arg) calls fn(arg, i, n) once for every thread i in [0, n) (the caller is
 * thread 0) and returns when all have finished. Between loops, workers spin briefly, then sleep;
 * no thread is created per call. */
#ifndef TY_BASE_THREADPOOL_H
#define TY_BASE_THREADPOOL_H

typedef struct ty_pool ty_pool;
typedef void (*ty_pool_fn)(void *arg, int ith, int nth);

/* n_threads >= 1; returns NULL when threads cannot be created. */
ty_pool *ty_pool_new(int n_threads);
void ty_pool_free(ty_pool *pool);
int ty_pool_size(const ty_pool *pool);
void ty_pool_run(ty_pool *pool, ty_pool_fn fn, void *arg);

/* The [begin, end) share of n items for thread ith of nth. */
static inline void ty_split(long long n, int ith, int nth, long long *begin, long long *end) {
    long long per = (n + nth - 1) / nth;
    *begin = per * ith < n ? per * ith : n;
    *end = *begin + per < n ? *begin + per : n;
}

/* Physical cores of this machine (logical CPUs when that cannot be told), at least 1. */
int ty_physical_cores(void);

#endif
