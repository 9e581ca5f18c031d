/* Axivity CWA decoding (drivers/cwa.c, drivers/file_cwa.c) and raw acceleration to counts
 * (pipeline/agcounts.c), one core.
 *
 * Generates, in a temp dir, a DAYS-day recording at 100 Hz in the packed format with valid
 * checksums (default 7 days: 504,000 blocks, 60,480,000 samples, 258 MB) and a 1-day one. The
 * simulated device runs at 99.3 Hz, not 100, and stamps each block with the whole second at
 * the sample it falls on, as an AX3 does, so the resampler does its real work. Samples come
 * from a pool of blocks generated before timing: rest (gravity in some orientation plus noise),
 * walking and running near 2 and 3 Hz, by time of day.
 *   read      baseline: read() of the file in 1 MiB chunks (from the page cache), nothing else
 *   decode    the same reads + cwa_block_decode of every block (checksum, fields, unpacking)
 *   reader    reader_cwa over the file: decode + resampling to the 100 Hz grid + accel events
 *   counts    reader_cwa + agc_feed of every event into 60-s ActiGraph counts
 * The four are interleaved ROUNDS times and the best of each kept (noise on a shared machine
 * only ever slows a run). Peak RSS is measured in child processes (this program run again
 * with --rss) that read the 1-day and the DAYS-day file through reader + counts: it must not
 * grow with the file's length.
 * Usage: bench_cwa [DAYS, default 7] [ROUNDS, default 3] */
#include "benchlib.h"
#include "drivers/cwa.h"
#include "drivers/reader.h"
#include "pipeline/agcounts.h"

#include <errno.h>
#include <fcntl.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <unistd.h>

#define RATE_CODE 0x4A /* 100 Hz, ±8 g */
#define ACTUAL_HZ 99.3
#define POOL 64
#define CHUNK (1 << 20)
#define T0 INT64_C(1709287200) /* 2024-03-01 10:00:00 on the device clock */

static uint64_t rng = 0x9e3779b97f4a7c15ULL;
static double uniform(void)
{
    rng ^= rng << 13;
    rng ^= rng >> 7;
    rng ^= rng << 17;
    return (double)(rng >> 11) / 9007199254740992.0;
}

static void put16(uint8_t *p, unsigned v)
{
    p[0] = (uint8_t)v;
    p[1] = (uint8_t)(v >> 8);
}

static void put32(uint8_t *p, uint32_t v)
{
    for (int i = 0; i < 4; i++)
        p[i] = (uint8_t)(v >> (8 * i));
}

static uint32_t pack_time(int64_t secs)
{
    int64_t days = secs / 86400, s = secs % 86400, y;
    unsigned mo, d;
    civil_from_days(days, &y, &mo, &d);
    return (uint32_t)(y - 2000) << 26 | mo << 22 | d << 17 | (uint32_t)(s / 3600) << 12 |
           (uint32_t)(s / 60 % 60) << 6 | (uint32_t)(s % 60);
}

/* Packed sample words of the pool: class 0 rest, 1 walk, 2 run. */
static uint32_t pool[3][POOL][CWA_BLOCK_SAMPLES_MAX];

static uint32_t pack_sample(const double g[3])
{
    double m = fmax(fabs(g[0]), fmax(fabs(g[1]), fabs(g[2])));
    int e = m < 1.99 ? 0 : m < 3.99 ? 1 : m < 7.99 ? 2 : 3;
    uint32_t w = (uint32_t)e << 30;
    for (int a = 0; a < 3; a++) {
        long v = lround(g[a] * 256.0 / (1 << e));
        if (v > 511)
            v = 511;
        if (v < -512)
            v = -512;
        w |= ((uint32_t)v & 0x3FF) << (10 * a);
    }
    return w;
}

static void make_pool(void)
{
    static const double amp[3] = {0.0, 0.35, 1.1}, fr[3] = {0, 1.9, 2.8};
    for (int c = 0; c < 3; c++)
        for (int k = 0; k < POOL; k++) {
            double o[3] = {uniform() - 0.5, uniform() - 0.5, uniform() - 0.5}, n = 0;
            for (int a = 0; a < 3; a++)
                n += o[a] * o[a];
            n = sqrt(n) + 1e-9;
            double ph = 6.28 * uniform();
            for (int i = 0; i < CWA_BLOCK_SAMPLES_MAX; i++) {
                double t = i / 100.0, g[3];
                for (int a = 0; a < 3; a++)
                    g[a] = o[a] / n + 0.01 * (uniform() - 0.5) +
                           amp[c] * (0.5 + 0.25 * a) * sin(6.283 * fr[c] * t + ph + a);
                pool[c][k][i] = pack_sample(g);
            }
        }
}

/* Writes a days-long recording; returns the number of blocks. */
static uint64_t generate(const char *path, int days)
{
    int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
    if (fd < 0) {
        perror(path);
        exit(1);
    }
    static uint8_t buf[CHUNK];
    memset(buf, 0xFF, CWA_HEADER_SIZE);
    buf[0] = 'M';
    buf[1] = 'D';
    put16(buf + 2, 1020);
    buf[4] = 0;
    put16(buf + 5, 4242);
    put32(buf + 7, 1);
    buf[36] = RATE_CODE;
    size_t fill = CWA_HEADER_SIZE;
    uint64_t blocks = (uint64_t)days * 86400 * 100 / CWA_BLOCK_SAMPLES_MAX;
    for (uint64_t k = 0; k < blocks; k++) {
        uint8_t *b = buf + fill;
        memset(b, 0, CWA_BLOCK_SIZE);
        b[0] = 'A';
        b[1] = 'X';
        put16(b + 2, 508);
        put32(b + 6, 1);
        put32(b + 10, (uint32_t)k);
        /* the first whole second at or after the block's first sample, at its sample index */
        int64_t first = (int64_t)k * CWA_BLOCK_SAMPLES_MAX;
        int64_t sec = (int64_t)ceil((double)first / ACTUAL_HZ);
        int64_t at = (int64_t)llround((double)sec * ACTUAL_HZ);
        put32(b + 14, pack_time(T0 + sec));
        put16(b + 18, 300);
        put16(b + 20, 290);
        b[23] = 180;
        b[24] = RATE_CODE;
        b[25] = 0x30;
        put16(b + 26, (unsigned)(int16_t)(at - first));
        put16(b + 28, CWA_BLOCK_SAMPLES_MAX);
        double h = fmod((double)sec / 3600.0 + 10.0, 24.0);
        double u = uniform();
        int cls = h < 7 || h >= 23 ? 0 : u < 0.6 ? 0 : u < 0.92 ? 1 : 2;
        const uint32_t *src = pool[cls][(int)(uniform() * POOL) % POOL];
        for (int i = 0; i < CWA_BLOCK_SAMPLES_MAX; i++)
            put32(b + 30 + 4 * i, src[i]);
        put16(b + 510, (uint16_t)(0x10000 - cwa_block_sum(b)));
        fill += CWA_BLOCK_SIZE;
        if (fill == CHUNK || k + 1 == blocks) {
            if (write(fd, buf, fill) != (ssize_t)fill) {
                perror("write");
                exit(1);
            }
            fill = 0;
        }
    }
    if (close(fd) < 0) {
        perror("close");
        exit(1);
    }
    return blocks;
}

/* ---- the measured passes; each returns samples and sets *secs ---- */

static uint64_t pass_read(const char *path, int decode, double *secs)
{
    static uint8_t buf[CHUNK];
    static struct cwa_block blk;
    double t0 = bench_now();
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) {
        perror(path);
        exit(1);
    }
    uint64_t samples = 0, bad = 0, total = 0;
    ssize_t n;
    while ((n = read(fd, buf, CHUNK)) > 0) {
        size_t o = total == 0 ? CWA_HEADER_SIZE : 0;
        total += (uint64_t)n;
        if (!decode) {
            samples += (uint64_t)(n - (ssize_t)o) / CWA_BLOCK_SIZE * CWA_BLOCK_SAMPLES_MAX;
            continue;
        }
        for (; o + CWA_BLOCK_SIZE <= (size_t)n; o += CWA_BLOCK_SIZE) {
            const char *why;
            if (cwa_block_decode(buf + o, &blk, &why) == 0)
                samples += (uint64_t)blk.n;
            else
                bad++;
        }
    }
    close(fd);
    *secs = bench_now() - t0;
    if (bad) {
        fprintf(stderr, "bench_cwa: %llu blocks failed to decode\n", (unsigned long long)bad);
        exit(1);
    }
    return samples;
}

static void on_epoch(const struct agc_epoch *e, void *ud)
{
    int64_t *sum = ud;
    *sum += e->counts[1];
}

static uint64_t pass_reader(const char *path, int counts, double *secs, int64_t *axis1)
{
    double t0 = bench_now();
    struct reader r;
    struct reader_opts o = {.participant = "p1"};
    int e = reader_open(&r, path, "cwa", &o);
    if (e < 0) {
        fprintf(stderr, "bench_cwa: %s: %s\n", path, r.why);
        exit(1);
    }
    *axis1 = 0;
    struct agc *c = NULL;
    if (counts) {
        int err;
        c = agc_new(100, 60, on_epoch, axis1, &err, NULL);
        if (!c) {
            fprintf(stderr, "bench_cwa: agc_new: %d\n", err);
            exit(1);
        }
    }
    struct event ev;
    uint64_t samples = 0, events = 0;
    int k;
    while ((k = r.ops->next(&r, &ev)) != READ_EOF) {
        if (k != READ_EVENT) {
            fprintf(stderr, "bench_cwa: %s:%llu: %s\n", path, (unsigned long long)r.line,
                    r.why ? r.why : strerror(-k));
            exit(1);
        }
        samples += ev.u.accel.n;
        events++;
        if (c && agc_feed(c, ev.u.accel.g, ev.u.accel.n) < 0) {
            fprintf(stderr, "bench_cwa: agc_feed failed\n");
            exit(1);
        }
    }
    if (c) {
        agc_flush(c);
        agc_free(c);
    }
    reader_close(&r);
    *secs = bench_now() - t0;
    return samples;
}

static double peak_rss_mib(void)
{
    struct rusage ru;
    getrusage(RUSAGE_SELF, &ru);
    return (double)ru.ru_maxrss / 1024.0;
}

/* --rss MODE FILE: one pass in a fresh process, for its peak RSS */
static int rss_child(const char *mode, const char *path)
{
    double s;
    int64_t a1;
    if (strcmp(mode, "counts") == 0)
        pass_reader(path, 1, &s, &a1);
    else
        pass_read(path, 0, &s);
    return 0;
}

int main(int argc, char **argv)
{
    if (argc == 4 && strcmp(argv[1], "--rss") == 0)
        return rss_child(argv[2], argv[3]);
    int days = argc > 1 ? atoi(argv[1]) : 7, rounds = argc > 2 ? atoi(argv[2]) : 3;
    if (days < 1 || days > 60 || rounds < 1) {
        fprintf(stderr, "usage: bench_cwa [DAYS 1..60] [ROUNDS]\n");
        return 2;
    }
    char dir[] = "/tmp/bench_cwa.XXXXXX";
    if (!mkdtemp(dir)) {
        perror("mkdtemp");
        return 1;
    }
    char big[64], one[64];
    snprintf(big, sizeof big, "%s/%dd.cwa", dir, days);
    snprintf(one, sizeof one, "%s/1d.cwa", dir);
    make_pool();
    double t = bench_now();
    uint64_t blocks = generate(big, days);
    generate(one, 1);
    struct stat st;
    stat(big, &st);
    printf("bench_cwa: %d days at 100 Hz (device at %.1f Hz): %llu blocks, %llu samples, "
           "%.1f MB, generated in %.1f s\n", days, ACTUAL_HZ, (unsigned long long)blocks,
           (unsigned long long)blocks * CWA_BLOCK_SAMPLES_MAX, (double)st.st_size / 1e6,
           bench_now() - t);

    double best[4] = {1e30, 1e30, 1e30, 1e30}, cpu[4] = {0};
    uint64_t n[4] = {0};
    int64_t axis1 = 0;
    for (int r = 0; r < rounds; r++) {
        for (int m = 0; m < 4; m++) {
            double s, c0 = bench_cpu();
            int64_t a1 = 0;
            uint64_t k = m < 2 ? pass_read(big, m, &s) : pass_reader(big, m == 3, &s, &a1);
            double c = bench_cpu() - c0;
            if (s < best[m]) {
                best[m] = s;
                cpu[m] = c;
            }
            n[m] = k;
            if (m == 3)
                axis1 = a1;
        }
    }
    static const char *const names[4] = {"read (baseline)", "decode", "decode + resample",
                                          "decode + resample + counts"};
    for (int m = 0; m < 4; m++)
        printf("  %-28s %12llu samples  %7.3f s  %8.1f M samples/s wall  %8.1f M per CPU s  "
               "time ratio %.2f\n", names[m], (unsigned long long)n[m], best[m],
               (double)n[m] / best[m] / 1e6, (double)n[m] / cpu[m] / 1e6, best[m] / best[0]);
    printf("  counts: axis-1 total %lld over %llu resampled samples\n", (long long)axis1,
           (unsigned long long)n[3]);

    /* peak RSS of reader + counts over 1 day and over DAYS days, each in its own process */
    char *a1[] = {"/proc/self/exe", "--rss", "counts", one, NULL};
    char *ad[] = {"/proc/self/exe", "--rss", "counts", big, NULL};
    char *ab[] = {"/proc/self/exe", "--rss", "read", big, NULL};
    struct bench_run r1 = bench_run_child(a1), rd = bench_run_child(ad), rb = bench_run_child(ab);
    if (r1.exit_code || rd.exit_code || rb.exit_code) {
        fprintf(stderr, "bench_cwa: a child failed\n");
        return 1;
    }
    printf("  peak RSS, decode + resample + counts: 1 day %.2f MiB, %d days %.2f MiB "
           "(plain read of the file: %.2f MiB); this process %.2f MiB\n", r1.maxrss_mib, days,
           rd.maxrss_mib, rb.maxrss_mib, peak_rss_mib());
    unlink(big);
    unlink(one);
    rmdir(dir);
    return 0;
}
