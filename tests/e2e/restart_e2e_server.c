/*
 * restart_e2e_server.c - the server tests/e2e/restart-e2e restarts under load.
 *
 *   restart_e2e_server ADDR DIR
 *
 * Serves HTTP on ADDR through gorc_restart_listen (so a restart hands the socket on), writes
 * its PID to DIR/pid when ready (gorc_restart_ready's PID file), restarts itself on SIGUSR2,
 * and on SIGTERM or after a successful restart shuts down gracefully and writes what it served
 * to DIR/served.PID: "l N w M" (requests to /l and to /w, the two load generators' paths).
 *
 * Failure injection for the restart's error paths: a process started by a restart reads
 * DIR/mode (if present) before doing anything else:
 *   crash   abort() after receiving the listeners, before ready (the parent must keep serving)
 *   hang    never report ready (the parent's ready timeout kills it; RESTART_READY_MS sets it)
 *   emfile  leave no descriptor free, so the kernel drops the passed listeners (EMFILE)
 *   slow    report ready after 0.7 s (a second SIGUSR2 arrives during the restart)
 * The mode applies to the next process only: the driver removes the file afterwards.
 *
 * Handlers: /l and /w answer "ok\n" and count; /pid answers the serving process's PID.
 */
#include <gorc.h>
#include <gorc_http.h>
#include <gorc_net.h>
#include <gorc_restart.h>
#include <gorc_signal.h>

#include <fcntl.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <unistd.h>

static atomic_ulong served_l, served_w;
static const char *addr, *dir;
static char **main_argv;

static void handler(gorc_http_rw *w, gorc_http_request *r, void *arg)
{
    (void)arg;
    if (strcmp(r->path, "/pid") == 0) {
        gorc_http_rw_printf(w, "%d\n", (int)getpid());
        return;
    }
    if (strcmp(r->path, "/l") == 0)
        atomic_fetch_add(&served_l, 1);
    else if (strcmp(r->path, "/w") == 0)
        atomic_fetch_add(&served_w, 1);
    gorc_http_rw_write_string(w, "ok\n");
}

static char mode[16];

static void read_mode(void)
{
    char path[4096];
    snprintf(path, sizeof path, "%s/mode", dir);
    FILE *f = fopen(path, "r");
    if (f == NULL)
        return;
    if (fgets(mode, sizeof mode, f) == NULL)
        mode[0] = 0;
    mode[strcspn(mode, "\n")] = 0;
    fclose(f);
}

/* No descriptor left: the limit becomes the lowest free descriptor number. */
static void exhaust_descriptors(void)
{
    int lowest = fcntl(0, F_DUPFD, 0);
    if (lowest < 0)
        return;
    close(lowest);
    struct rlimit rl = {.rlim_cur = (rlim_t)lowest, .rlim_max = RLIM_INFINITY};
    getrlimit(RLIMIT_NOFILE, &rl);
    rl.rlim_cur = (rlim_t)lowest;
    setrlimit(RLIMIT_NOFILE, &rl);
}

typedef struct job {
    gorc_http_server *s;
    gorc_listener *l;
} job;

static void serve_job(void *arg)
{
    job *j = arg;
    gorc_http_server_serve(j->s, j->l);
}

static void run(void *arg)
{
    (void)arg;
    bool child = getenv("GORC_RESTART_FD") != NULL;
    if (child)
        read_mode();
    if (strcmp(mode, "emfile") == 0)
        exhaust_descriptors();
    char pidfile[4096];
    snprintf(pidfile, sizeof pidfile, "%s/pid", dir);
    const char *ready_ms = getenv("RESTART_READY_MS");
    gorc_restart_opts ro = {
        .pid_file = pidfile,
        .verbose = true,
        .ready_timeout = ready_ms ? atoll(ready_ms) * GORC_MILLISECOND : 0,
        /* With no descriptor free /proc/self/cmdline cannot be read: give the arguments, so
         * that what fails is receiving the listeners. */
        .argv = strcmp(mode, "emfile") == 0 ? main_argv : NULL,
    };
    gorc_restart *r;
    int rc = gorc_restart_new(&r, &ro);
    if (rc != 0) {
        fprintf(stderr, "restart_e2e_server: gorc_restart_new: %s\n", gorc_strerror(rc));
        exit(1);
    }
    if (strcmp(mode, "crash") == 0) {
        fprintf(stderr, "restart_e2e_server: crashing before ready, as asked\n");
        abort();
    }
    gorc_listener *l;
    if ((rc = gorc_restart_listen(r, &l, addr, NULL)) != 0) {
        fprintf(stderr, "restart_e2e_server: listen %s: %s\n", addr, gorc_strerror(rc));
        exit(1);
    }
    gorc_http_server_opts o = {.handler = handler, .shutdown_idle_grace = GORC_SECOND};
    gorc_http_server *s;
    if (gorc_http_server_new(&s, &o) != 0)
        exit(1);
    job j = {s, l};
    gorc_go(serve_job, &j);

    gorc_chan *term;
    int sigterm = SIGTERM;
    gorc_chan_new(&term, sizeof(int), 1);
    gorc_signal_notify(term, &sigterm, 1);

    if (strcmp(mode, "hang") == 0) {
        fprintf(stderr, "restart_e2e_server: never ready, as asked\n");
        gorc_sleep(3600 * GORC_SECOND);
    }
    if (strcmp(mode, "slow") == 0)
        gorc_sleep(700 * GORC_MILLISECOND);
    if ((rc = gorc_restart_ready(r)) != 0)
        fprintf(stderr, "restart_e2e_server: ready: %s\n", gorc_strerror(rc));

    int sig;
    gorc_case cs[2] = {{.chan = gorc_restart_exit(r), .dir = GORC_RECV},
                       {.chan = term, .dir = GORC_RECV, .elem = &sig}};
    if (gorc_select(cs, 2) == 1)
        gorc_restart_stop(r);
    gorc_signal_stop(term);
    rc = gorc_http_server_shutdown(s, gorc_now() + 10 * GORC_SECOND);
    gorc_listener_release(l);
    char path[4096];
    snprintf(path, sizeof path, "%s/served.%d", dir, (int)getpid());
    FILE *f = fopen(path, "w");
    if (f) {
        fprintf(f, "l %lu w %lu\n", atomic_load(&served_l), atomic_load(&served_w));
        fclose(f);
    }
    fprintf(stderr, "restart_e2e_server: %d drained (shutdown %s), served l=%lu w=%lu\n",
            (int)getpid(), rc == 0 ? "clean" : gorc_strerror(rc), atomic_load(&served_l),
            atomic_load(&served_w));
    gorc_http_server_free(s);
    gorc_restart_free(r);
    gorc_chan_release(term);
}

int main(int argc, char **argv)
{
    if (argc != 3) {
        fprintf(stderr, "usage: restart_e2e_server ADDR DIR\n");
        return 1;
    }
    addr = argv[1];
    dir = argv[2];
    main_argv = argv;
    return gorc_main(run, NULL);
}
