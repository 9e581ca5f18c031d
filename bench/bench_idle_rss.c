/* Resident memory of the daemon idle with two participants: starts `engaged run` on a
 * private config (ipc endpoints and store in a temp dir), waits for READY=1 on its own
 * NOTIFY_SOCKET, lets it idle, and reads VmRSS/VmHWM from /proc. Baseline measured in the
 * same run: the same binary's `--version` (libraries mapped, nothing started).
 * usage: bench_idle_rss ENGAGED_BINARY [IDLE_SECONDS]   target: idle RSS < 8 MiB */
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <unistd.h>

/* A "Key: N kB" line of /proc/PID/FILE (status, smaps_rollup), -1 if absent. */
static long proc_kib(pid_t pid, const char *file, const char *key)
{
    char path[64], line[256];
    snprintf(path, sizeof path, "/proc/%d/%s", (int)pid, file);
    FILE *f = fopen(path, "r");
    long v = -1;
    while (f && fgets(line, sizeof line, f))
        if (strncmp(line, key, strlen(key)) == 0 && line[strlen(key)] == ':')
            v = atol(line + strlen(key) + 1);
    if (f)
        fclose(f);
    return v;
}

static long status_kib(pid_t pid, const char *key) { return proc_kib(pid, "status", key); }

int main(int argc, char **argv)
{
    if (argc < 2) {
        fprintf(stderr, "usage: bench_idle_rss ENGAGED_BINARY [IDLE_SECONDS]\n");
        return 64;
    }
    int idle = argc > 2 ? atoi(argv[2]) : 3;
    char dir[] = "/tmp/engaged-rss.XXXXXX";
    if (!mkdtemp(dir))
        return 1;
    char conf[256], sock[96];
    snprintf(conf, sizeof conf, "%s/engaged.conf", dir);
    snprintf(sock, sizeof sock, "%s/notify", dir);
    FILE *f = fopen(conf, "w");
    fprintf(f, "[store]\npath = %s/engaged.db\n[publish]\nendpoint = ipc://%s/feed\n"
               "[control]\nendpoint = ipc://%s/control\n[ingest]\nendpoint = ipc://%s/ingest\n"
               "[participant p01]\ntz = America/New_York\n[participant p02]\ntz = Europe/London\n",
            dir, dir, dir, dir);
    fclose(f);

    int ns = socket(AF_UNIX, SOCK_DGRAM, 0);
    struct sockaddr_un sa = {.sun_family = AF_UNIX};
    snprintf(sa.sun_path, sizeof sa.sun_path, "%s", sock);
    if (bind(ns, (struct sockaddr *)&sa, sizeof sa) < 0) {
        perror("bind");
        return 1;
    }
    struct timeval tv = {10, 0};
    setsockopt(ns, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);

    /* baseline: the same binary doing nothing but print its version */
    pid_t b = fork();
    if (b == 0) {
        freopen("/dev/null", "w", stdout);
        execl(argv[1], argv[1], "--version", (char *)NULL);
        _exit(127);
    }
    int st;
    struct rusage ru;
    wait4(b, &st, 0, &ru);
    long base_kib = ru.ru_maxrss;

    pid_t pid = fork();
    if (pid == 0) {
        setenv("NOTIFY_SOCKET", sock, 1);
        execl(argv[1], argv[1], "run", "-c", conf, (char *)NULL);
        _exit(127);
    }
    char msg[512];
    int ready = 0;
    for (int i = 0; i < 10 && !ready; i++) {
        ssize_t n = recv(ns, msg, sizeof msg - 1, 0);
        if (n <= 0)
            break;
        msg[n] = 0;
        ready = strstr(msg, "READY=1") != NULL;
    }
    if (!ready) {
        fprintf(stderr, "daemon did not report READY\n");
        kill(pid, SIGKILL);
        return 1;
    }
    sleep((unsigned)idle);
    long rss = status_kib(pid, "VmRSS"), hwm = status_kib(pid, "VmHWM");
    long anon = status_kib(pid, "RssAnon"), file = status_kib(pid, "RssFile");
    /* dirty pages can only go to swap; clean ones are file pages (library code, read-only
     * data) the kernel drops under memory pressure and reads again when touched */
    long dirty = proc_kib(pid, "smaps_rollup", "Private_Dirty") +
                 proc_kib(pid, "smaps_rollup", "Shared_Dirty");
    long clean = proc_kib(pid, "smaps_rollup", "Private_Clean") +
                 proc_kib(pid, "smaps_rollup", "Shared_Clean");
    kill(pid, SIGTERM);
    waitpid(pid, &st, 0);
    printf("baseline (engaged --version): peak RSS %.2f MiB\n", (double)base_kib / 1024.0);
    printf("engaged run, idle %d s, 2 participants: RSS %.2f MiB, peak %.2f MiB, ratio to baseline %.2f"
           " (target: < 8 MiB); exit %d\n",
           idle, (double)rss / 1024.0, (double)hwm / 1024.0, (double)rss / (double)base_kib,
           WIFEXITED(st) ? WEXITSTATUS(st) : -1);
    printf("  of which private anonymous memory (the daemon's own) %.2f MiB, file-backed pages"
           " (shared library code) %.2f MiB\n", (double)anon / 1024.0, (double)file / 1024.0);
    printf("  dirty %.2f MiB (only swap can take it), clean %.2f MiB (file pages the kernel may"
           " drop and read again; smaps_rollup)\n", (double)dirty / 1024.0, (double)clean / 1024.0);
    char cmd[300];
    snprintf(cmd, sizeof cmd, "rm -rf %s", dir);
    return system(cmd) == 0 ? 0 : 1;
}
