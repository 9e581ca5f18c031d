/* Helpers shared by the benchmark programs (header-only: every bench_*.c is its own program). */
#ifndef ENGAGED_BENCHLIB_H
#define ENGAGED_BENCHLIB_H

#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

static inline double bench_clock(clockid_t id)
{
    struct timespec t;
    clock_gettime(id, &t);
    return (double)t.tv_sec + (double)t.tv_nsec / 1e9;
}

/* Wall time, and the CPU time of this (single-threaded) process, in seconds. */
static inline double bench_now(void) { return bench_clock(CLOCK_MONOTONIC); }
static inline double bench_cpu(void) { return bench_clock(CLOCK_PROCESS_CPUTIME_ID); }

/* The baseline of the replay benchmarks: read a JSON Lines file and parse every line with
 * jansson, nothing else. Returns seconds; *lines = lines parsed. */
static inline double bench_jansson_pass(const char *path, long *lines)
{
    FILE *f = fopen(path, "r");
    if (!f) {
        perror(path);
        exit(1);
    }
    char *line = NULL;
    size_t cap = 0;
    ssize_t len;
    long n = 0;
    double t0 = bench_now();
    while ((len = getline(&line, &cap, f)) > 0) {
        json_t *j = json_loadb(line, (size_t)len, 0, NULL);
        if (j)
            n++;
        json_decref(j);
    }
    double t = bench_now() - t0;
    free(line);
    fclose(f);
    *lines = n;
    return t;
}

struct bench_run {
    int exit_code;   /* -1 if killed */
    double wall_s, cpu_s;
    double maxrss_mib;
};

/* Runs argv (argv[0] is the program path) with stdout to /dev/null unless keep_stdout, and
 * measures it from fork to exit. */
static inline struct bench_run bench_run_child(char *const argv[])
{
    struct bench_run r = {-1, 0, 0, 0};
    double t0 = bench_now();
    pid_t pid = fork();
    if (pid == 0) {
        execv(argv[0], argv);
        _exit(127);
    }
    int st;
    struct rusage ru;
    if (pid < 0 || wait4(pid, &st, 0, &ru) < 0) {
        perror("fork/wait");
        exit(1);
    }
    r.wall_s = bench_now() - t0;
    r.cpu_s = (double)ru.ru_utime.tv_sec + (double)ru.ru_utime.tv_usec / 1e6 +
              (double)ru.ru_stime.tv_sec + (double)ru.ru_stime.tv_usec / 1e6;
    r.maxrss_mib = (double)ru.ru_maxrss / 1024.0;
    r.exit_code = WIFEXITED(st) ? WEXITSTATUS(st) : -1;
    return r;
}

#endif
