/* tcpidle: resident memory per idle TCP connection, server plus client, 10,000 connections
 * over loopback (TCPIDLE_CONNS overrides). The server is this process: one goroutine per
 * connection, parked in a read. The client is this program re-executed ("client" mode, a
 * separate process: each side needs 10,000 descriptors): it dials every connection and holds
 * it without a goroutine. Prints (server VmRSS growth + client VmRSS growth) / connections,
 * in bytes; kernel socket memory is not counted on either side. Go counterpart:
 * bench/go/tcpidle. */
#define _GNU_SOURCE
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <fcntl.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <unistd.h>

#include "gorc.h"
#include "gorc_net.h"

static long nconns = 10000;
static char **g_argv;

static void check(long rc, const char *what)
{
    if (rc < 0) {
        fprintf(stderr, "tcpidle: %s: %s\n", what, strerror((int)-rc));
        exit(1);
    }
}

static long long vm_rss(void)
{
    FILE *f = fopen("/proc/self/status", "r");
    char line[256];
    long long kb = -1;
    while (f && fgets(line, sizeof line, f))
        if (sscanf(line, "VmRSS: %lld kB", &kb) == 1)
            break;
    if (f)
        fclose(f);
    if (kb < 0) {
        fprintf(stderr, "tcpidle: no VmRSS in /proc/self/status\n");
        exit(1);
    }
    return kb * 1024;
}

static void raise_nofile(void)
{
    struct rlimit rl;
    getrlimit(RLIMIT_NOFILE, &rl);
    rl.rlim_cur = rl.rlim_max;
    setrlimit(RLIMIT_NOFILE, &rl);
    if ((long)rl.rlim_cur < nconns + 64) {
        fprintf(stderr, "tcpidle: RLIMIT_NOFILE %ld is too low for %ld connections\n",
                (long)rl.rlim_cur, nconns);
        exit(1);
    }
}

/* ---- client: dial and hold ---- */

static void client(void *arg)
{
    const char *addr = arg;
    gorc_conn **cs = calloc((size_t)nconns, sizeof *cs);
    long long before = vm_rss();
    for (long i = 0; i < nconns; i++)
        check(gorc_tcp_dial(&cs[i], addr, 10 * GORC_SECOND), "dial");
    gorc_sleep(100 * GORC_MILLISECOND);
    long long after = vm_rss();
    printf("%lld\n", after - before);
    fflush(stdout);
    char b;
    while (read(0, &b, 1) > 0) /* hold until the server is done measuring */
        ;
    for (long i = 0; i < nconns; i++)
        gorc_conn_close(cs[i]);
    free(cs);
}

/* ---- server: a goroutine per connection, parked in read ---- */

static atomic_long waiting;

static void handle(void *arg)
{
    gorc_conn *c = arg;
    char buf[512];
    atomic_fetch_add(&waiting, 1);
    for (;;) {
        ssize_t n = gorc_conn_read(c, buf, sizeof buf);
        if (n <= 0 || gorc_conn_write_all(c, buf, (size_t)n) < 0)
            break;
    }
    gorc_conn_close(c);
}

static void server(void *arg)
{
    (void)arg;
    gorc_listener *ln;
    char addr[GORC_ADDRSTRLEN];
    check(gorc_tcp_listen(&ln, "127.0.0.1:0", NULL), "listen");
    check(gorc_listener_addr(ln, addr, sizeof addr), "listener addr");
    int up[2], down[2];
    if (pipe2(up, O_CLOEXEC) != 0 || pipe2(down, O_CLOEXEC) != 0) {
        perror("tcpidle: pipe");
        exit(1);
    }
    long long before = vm_rss();
    pid_t pid = fork();
    if (pid == 0) {
        dup2(down[0], 0);
        dup2(up[1], 1);
        char n[32];
        snprintf(n, sizeof n, "%ld", nconns);
        execl("/proc/self/exe", g_argv[0], "client", addr, n, (char *)NULL);
        _exit(127);
    }
    close(up[1]);
    close(down[0]);
    for (long i = 0; i < nconns; i++) {
        gorc_conn *c;
        check(gorc_listener_accept(ln, &c), "accept");
        check(gorc_go(handle, c), "gorc_go");
    }
    while (atomic_load(&waiting) < nconns)
        gorc_sleep(GORC_MILLISECOND);
    gorc_sleep(5 * GORC_SECOND); /* idle for a while, as bench/go/tcpidle */
    long long after = vm_rss();
    char line[64] = "";
    FILE *f = fdopen(up[0], "r");
    if (f == NULL || fgets(line, sizeof line, f) == NULL) {
        fprintf(stderr, "tcpidle: no report from the client\n");
        exit(1);
    }
    long long client_growth = atoll(line);
    close(down[1]);
    int st;
    waitpid(pid, &st, 0);
    fprintf(stderr, "tcpidle: %ld connections: server +%lld bytes, client +%lld bytes\n", nconns,
            after - before, client_growth);
    printf("%.1f\n", (double)(after - before + client_growth) / (double)nconns);
}

int main(int argc, char **argv)
{
    g_argv = argv;
    const char *s = getenv("TCPIDLE_CONNS");
    if (s)
        nconns = atol(s);
    raise_nofile();
    if (argc == 4 && strcmp(argv[1], "client") == 0) {
        nconns = atol(argv[3]);
        check(gorc_main(client, argv[2]), "gorc_main");
        return 0;
    }
    check(gorc_main(server, NULL), "gorc_main");
    return 0;
}
