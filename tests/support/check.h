/* check.h - the tests' tiny assertion kit. A test binary calls CHECK*(...) freely and ends with
 * `return check_summary("name");`, which prints "N passed, N failed" and returns the exit code. */
#ifndef TY_TEST_CHECK_H
#define TY_TEST_CHECK_H

#include <stdio.h>

extern int check_passed, check_failed;

#define CHECK(cond, ...)                                                                  \
    do {                                                                                  \
        if (cond) {                                                                       \
            check_passed++;                                                               \
        } else {                                                                          \
            check_failed++;                                                               \
            fprintf(stderr, "%s:%d: CHECK(%s) failed: ", __FILE__, __LINE__, #cond);      \
            fprintf(stderr, __VA_ARGS__);                                                 \
            fputc('\n', stderr);                                                          \
        }                                                                                 \
    } while (0)

/* Stops the test binary: for conditions after which nothing else can be checked. */
#define REQUIRE(cond, ...)                                                                \
    do {                                                                                  \
        if (!(cond)) {                                                                    \
            fprintf(stderr, "%s:%d: REQUIRE(%s) failed: ", __FILE__, __LINE__, #cond);    \
            fprintf(stderr, __VA_ARGS__);                                                 \
            fputc('\n', stderr);                                                          \
            return 1;                                                                     \
        }                                                                                 \
    } while (0)

int check_summary(const char *test_name);

/* Reads a whole file into a malloc'd buffer (NUL-terminated for convenience); NULL on failure. */
void *read_file(const char *path, size_t *size);

/* Deterministic test randomness (splitmix64). */
unsigned long long test_rand_u64(unsigned long long *state);
float test_rand_uniform(unsigned long long *state); /* in [-1, 1) */

#endif
