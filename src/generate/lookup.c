/* lookup.c - prompt lookup (n-gram matches against the sequence so far). */
#include <string.h>

#include "generate/lookup.h"

int64_t ty_lookup_propose(const ty_token *seq, int64_t n_seq, int64_t max, ty_token *out) {
    if (max <= 0) return 0;
    for (int64_t n = TY_LOOKUP_NGRAM_MAX; n >= TY_LOOKUP_NGRAM_MIN; n--) {
        if (n_seq < n + 1) continue;
        const ty_token *tail = seq + n_seq - n;
        /* latest first: a match at j is followed by seq[j + n], which must lie before the tail */
        for (int64_t j = n_seq - n - 1; j >= 0; j--) {
            if (seq[j + n - 1] != tail[n - 1] || memcmp(seq + j, tail, sizeof *tail * (size_t)n)) continue;
            int64_t avail = n_seq - (j + n), m = avail < max ? avail : max;
            memcpy(out, seq + j + n, sizeof *out * (size_t)m);
            return m;
        }
    }
    return 0;
}
