#include "pipeline/coverage.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

static int insert_at(struct coverage *c, size_t i, struct cov_interval v)
{
    if (c->n == c->cap) {
        size_t cap = c->cap ? c->cap * 2 : 16;
        struct cov_interval *p = realloc(c->iv, cap * sizeof *p);
        if (!p)
            return -ENOMEM;
        c->iv = p;
        c->cap = cap;
    }
    memmove(c->iv + i + 1, c->iv + i, (c->n - i) * sizeof *c->iv);
    c->iv[i] = v;
    c->n++;
    if (c->n > COVERAGE_MAX_INTERVALS) { /* keep the newest: old days are closed already */
        memmove(c->iv, c->iv + 1, (c->n - 1) * sizeof *c->iv);
        c->n--;
        c->dropped++;
    }
    return 0;
}

int coverage_add(struct coverage *c, int64_t t, int64_t gap)
{
    /* k = number of intervals starting at or before t */
    size_t lo = 0, hi = c->n;
    if (c->n && c->iv[c->n - 1].a <= t) {
        lo = c->n; /* in time order: the newest interval or a new one */
    } else {
        while (lo < hi) {
            size_t mid = lo + (hi - lo) / 2;
            if (c->iv[mid].a <= t)
                lo = mid + 1;
            else
                hi = mid;
        }
    }
    size_t k = lo;
    struct cov_interval *prev = k ? &c->iv[k - 1] : NULL;
    struct cov_interval *next = k < c->n ? &c->iv[k] : NULL;
    if (prev && t <= prev->b)
        return 0; /* inside */
    int join_prev = prev && t - prev->b <= gap;
    int join_next = next && next->a - t <= gap;
    if (join_prev && join_next) { /* t bridges two runs */
        prev->b = next->b;
        memmove(c->iv + k, c->iv + k + 1, (c->n - k - 1) * sizeof *c->iv);
        c->n--;
        return 0;
    }
    if (join_prev) {
        prev->b = t;
        return 0;
    }
    if (join_next) {
        next->a = t;
        return 0;
    }
    return insert_at(c, k, (struct cov_interval){t, t});
}

double coverage_fraction(const struct coverage *c, int64_t start, int64_t end)
{
    if (end <= start)
        return 0;
    int64_t covered = 0;
    for (size_t i = 0; i < c->n; i++) {
        int64_t a = c->iv[i].a > start ? c->iv[i].a : start;
        int64_t b = c->iv[i].b < end ? c->iv[i].b : end;
        if (b > a)
            covered += b - a;
    }
    return (double)covered / (double)(end - start);
}

int64_t coverage_last(const struct coverage *c) { return c->n ? c->iv[c->n - 1].b : INT64_MIN; }

void coverage_trim(struct coverage *c, int64_t before)
{
    size_t k = 0;
    while (k < c->n && c->iv[k].b < before)
        k++;
    if (k) {
        memmove(c->iv, c->iv + k, (c->n - k) * sizeof *c->iv);
        c->n -= k;
    }
}

void coverage_release(struct coverage *c)
{
    free(c->iv);
    memset(c, 0, sizeof *c);
}
