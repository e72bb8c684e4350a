/* test_threadpool.c - every loop runs each thread index exactly once and returns only when all
 * are done: back to back (workers spinning) and after pauses long enough for them to sleep. */
#include <stdatomic.h>
#include <time.h>

#include "base/threadpool.h"
#include "check.h"

typedef struct loop_state {
    atomic_int calls[8];
    atomic_int done; /* threads finished with this loop */
    int n_threads;
    atomic_int nth_bad; /* calls that saw a wrong nth */
} loop_state;

static void count_task(void *arg, int ith, int nth) {
    loop_state *s = arg;
    if (ith >= 0 && ith < 8) atomic_fetch_add(&s->calls[ith], 1);
    if (nth != s->n_threads) atomic_fetch_add(&s->nth_bad, 1);
    atomic_fetch_add(&s->done, 1);
}

static int run_loops(ty_pool *pool, int n_threads, int n_loops, long pause_ns) {
    int bad = 0;
    for (int l = 0; l < n_loops; l++) {
        loop_state s = {.n_threads = n_threads};
        ty_pool_run(pool, count_task, &s);
        /* ty_pool_run must not return before every thread finished */
        if (atomic_load(&s.done) != n_threads || atomic_load(&s.nth_bad)) bad++;
        for (int i = 0; i < 8; i++)
            if (atomic_load(&s.calls[i]) != (i < n_threads ? 1 : 0)) bad++;
        if (pause_ns) nanosleep(&(struct timespec){0, pause_ns}, NULL);
    }
    return bad;
}

int main(void) {
    for (int n = 1; n <= 4; n++) {
        ty_pool *pool = ty_pool_new(n);
        REQUIRE(pool, "ty_pool_new(%d) failed", n);
        CHECK(ty_pool_size(pool) == n, "size %d, want %d", ty_pool_size(pool), n);
        CHECK(run_loops(pool, n, 20000, 0) == 0, "%d threads, back-to-back loops", n);
        /* 5 ms pauses outlast the workers' spin, so they go to sleep and must be woken */
        CHECK(run_loops(pool, n, 20, 5000000) == 0, "%d threads, loops after sleeping", n);
        CHECK(run_loops(pool, n, 200, 100000) == 0, "%d threads, loops at the spin boundary", n);
        ty_pool_free(pool);
    }
    ty_pool_free(NULL);
    return check_summary("test_threadpool");
}
