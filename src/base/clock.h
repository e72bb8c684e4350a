/* clock.h - monotonic wall time in seconds. */
#ifndef TY_BASE_CLOCK_H
#define TY_BASE_CLOCK_H

#include <time.h>

static inline double ty_now(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

#endif
