#include "check.h"

#include <stdlib.h>

int check_passed, check_failed;

int check_summary(const char *test_name) {
    printf("%s: %d passed, %d failed\n", test_name, check_passed, check_failed);
    return check_failed ? 1 : 0;
}

void *read_file(const char *path, size_t *size) {
    FILE *f = fopen(path, "rb");
    if (!f) return NULL;
    if (fseek(f, 0, SEEK_END) != 0) { fclose(f); return NULL; }
    long n = ftell(f);
    if (n < 0) { fclose(f); return NULL; }
    rewind(f);
    char *buf = malloc((size_t)n + 1);
    if (buf && fread(buf, 1, (size_t)n, f) != (size_t)n) { free(buf); buf = NULL; }
    fclose(f);
    if (!buf) return NULL;
    buf[n] = 0;
    if (size) *size = (size_t)n;
    return buf;
}

unsigned long long test_rand_u64(unsigned long long *state) {
    unsigned long long z = (*state += 0x9E3779B97F4A7C15ull);
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    return z ^ (z >> 31);
}

float test_rand_uniform(unsigned long long *state) {
    return (float)((double)(test_rand_u64(state) >> 11) * (1.0 / 9007199254740992.0) * 2.0 - 1.0);
}
