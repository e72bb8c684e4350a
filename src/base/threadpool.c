#include "base/threadpool.h"

#include <pthread.h>
#include <sched.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#if defined(__x86_64__) || defined(__i386__)
#include <immintrin.h>
#define cpu_relax() _mm_pause()
#elif defined(__aarch64__)
#define cpu_relax() __asm__ __volatile__("yield")
#else
#define cpu_relax() ((void)0)
#endif

/* A decode step is a few hundred short parallel loops (one per matmul, norm, attention...).
 * Waking a sleeping worker through a condition variable costs tens of microseconds in a VM, and
 * the worker then starts late, so waiters first spin on the atomics for up to SPIN_NS and only
 * then sleep: back-to-back loops never touch the kernel, an idle pool costs no CPU. */
#define SPIN_NS 2000000LL

struct ty_pool {
    int n;
    pthread_t *threads;
    pthread_mutex_t mu; /* held by a worker from counting itself a sleeper until it waits */
    pthread_cond_t start;
    ty_pool_fn fn; /* written by the runner before the release store to generation */
    void *arg;
    atomic_ullong generation; /* bumped for each loop; workers wait for a new value */
    atomic_int pending;       /* workers still running the current loop */
    atomic_int quit;
    atomic_int sleepers; /* workers blocked (or about to block) on start */
};

typedef struct worker_arg {
    ty_pool *pool;
    int ith;
} worker_arg;

static long long now_ns(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (long long)ts.tv_sec * 1000000000LL + ts.tv_nsec;
}

/* Spins until generation differs from seen (true) or SPIN_NS pass (false). */
static int spin_for_work(ty_pool *pool, unsigned long long seen) {
    long long t0 = now_ns();
    for (unsigned i = 1;; i++) {
        if (atomic_load_explicit(&pool->generation, memory_order_acquire) != seen ||
            atomic_load_explicit(&pool->quit, memory_order_relaxed))
            return 1;
        cpu_relax();
        if ((i & 255) == 0) {
            if (now_ns() - t0 > SPIN_NS) return 0;
            sched_yield(); /* lets a runnable thread have the core when there are more threads than cores */
        }
    }
}

static void *worker_main(void *p) {
    worker_arg wa = *(worker_arg *)p;
    free(p);
    ty_pool *pool = wa.pool;
    unsigned long long seen = 0;
    for (;;) {
        if (!spin_for_work(pool, seen)) {
            pthread_mutex_lock(&pool->mu);
            atomic_fetch_add(&pool->sleepers, 1);
            while (!atomic_load(&pool->quit) && atomic_load(&pool->generation) == seen)
                pthread_cond_wait(&pool->start, &pool->mu);
            atomic_fetch_sub(&pool->sleepers, 1);
            pthread_mutex_unlock(&pool->mu);
        }
        if (atomic_load(&pool->quit)) break;
        seen = atomic_load_explicit(&pool->generation, memory_order_acquire);
        pool->fn(pool->arg, wa.ith, pool->n);
        atomic_fetch_sub_explicit(&pool->pending, 1, memory_order_release);
    }
    return NULL;
}

ty_pool *ty_pool_new(int n_threads) {
    if (n_threads < 1) n_threads = 1;
    ty_pool *pool = calloc(1, sizeof *pool);
    if (!pool) return NULL;
    pool->n = n_threads;
    pthread_mutex_init(&pool->mu, NULL);
    pthread_cond_init(&pool->start, NULL);
    atomic_init(&pool->generation, 0);
    atomic_init(&pool->pending, 0);
    atomic_init(&pool->quit, 0);
    atomic_init(&pool->sleepers, 0);
    pool->threads = calloc((size_t)n_threads, sizeof *pool->threads);
    if (!pool->threads) { ty_pool_free(pool); return NULL; }
    for (int i = 1; i < n_threads; i++) {
        worker_arg *wa = malloc(sizeof *wa);
        if (!wa) { pool->n = i; ty_pool_free(pool); return NULL; }
        wa->pool = pool;
        wa->ith = i;
        if (pthread_create(&pool->threads[i], NULL, worker_main, wa) != 0) {
            free(wa);
            pool->n = i;
            ty_pool_free(pool);
            return NULL;
        }
    }
    return pool;
}

void ty_pool_free(ty_pool *pool) {
    if (!pool) return;
    pthread_mutex_lock(&pool->mu);
    atomic_store(&pool->quit, 1);
    pthread_cond_broadcast(&pool->start);
    pthread_mutex_unlock(&pool->mu);
    for (int i = 1; i < pool->n; i++) pthread_join(pool->threads[i], NULL);
    pthread_mutex_destroy(&pool->mu);
    pthread_cond_destroy(&pool->start);
    free(pool->threads);
    free(pool);
}

int ty_pool_size(const ty_pool *pool) { return pool->n; }

void ty_pool_run(ty_pool *pool, ty_pool_fn fn, void *arg) {
    if (pool->n == 1) {
        fn(arg, 0, 1);
        return;
    }
    pool->fn = fn;
    pool->arg = arg;
    atomic_store_explicit(&pool->pending, pool->n - 1, memory_order_relaxed);
    /* Bump, then look for sleepers; a sleeper counts itself, then checks generation (both
     * seq_cst): one of the two sees the other, so no wake-up is lost. The empty critical section
     * waits until a sleeper that counted itself is really waiting. */
    atomic_fetch_add(&pool->generation, 1);
    if (atomic_load(&pool->sleepers) > 0) {
        pthread_mutex_lock(&pool->mu);
        pthread_cond_broadcast(&pool->start);
        pthread_mutex_unlock(&pool->mu);
    }
    fn(arg, 0, pool->n);
    /* Loops are short and balanced: spin, yielding the core now and then in case it is shared. */
    for (unsigned i = 1; atomic_load_explicit(&pool->pending, memory_order_acquire) > 0; i++) {
        cpu_relax();
        if ((i & 255) == 0) sched_yield();
    }
}
/* Counts distinct (physical id, core id) pairs in /proc/cpuinfo. */
int ty_physical_cores(void) {
    long logical = sysconf(_SC_NPROCESSORS_ONLN);
    if (logical < 1) logical = 1;
    FILE *f = fopen("/proc/cpuinfo", "r");
    if (!f) return (int)logical;
    char line[256];
    int phys = -1, n = 0;
    int seen[1024][2];
    while (fgets(line, sizeof line, f)) {
        int v;
        if (sscanf(line, "physical id : %d", &v) == 1) phys = v;
        else if (sscanf(line, "core id : %d", &v) == 1) {
            int dup = 0;
            for (int i = 0; i < n; i++)
                if (seen[i][0] == phys && seen[i][1] == v) dup = 1;
            if (!dup && n < 1024) { seen[n][0] = phys; seen[n][1] = v; n++; }
        }
    }
    fclose(f);
    return n > 0 && n <= logical ? n : (int)logical;
}
