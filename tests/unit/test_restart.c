/*
 * test_restart.c - restarts (gorc_restart.h): the API and every way a restart can fail (cmocka;
 * bodies run as goroutines). The new process of each restart is this binary again, started with
 * "--child MODE ADDR RESULT" (through GORC_TEST_RUNNER under qemu), which plays the successor:
 *   ready    takes the inherited listener, accepts one connection and answers its PID on it
 *            (so the parent sees the successor serving on the very socket it handed over),
 *            reports ready
 *   slow     the same, ready after 400 ms (a second restart meanwhile gets -EBUSY)
 *   crash    abort() after receiving the listeners, before ready     -> -ECHILD
 *   exit     exit(3) without ready                                   -> -ECHILD
 *   hang     never ready                                             -> -ETIMEDOUT, killed
 *   garbage  answers something other than ready                      -> -EPROTO
 *   emfile   no descriptor free when the listeners arrive: gorc_restart_new must return
 *            -EMFILE (written to RESULT), then it exits              -> -ECHILD
 * Also: the program missing (-ENOENT), argument checks, one per process (-EBUSY), a listener
 * asked for twice (-EEXIST), the PID file, ready twice (-EALREADY), stop closes the exit
 * channel and no restart starts after it (-EALREADY), and after every failure the parent still
 * accepts on its listener. The signal is off here (-1): TSan delays signal delivery (see
 * test_signal.c); tests/e2e/restart-e2e covers SIGUSR2. Timing bounds are hang guards.
 */
#include "testutil.h"

#include <gorc_net.h>
#include <gorc_restart.h>

#include <fcntl.h>
#include <signal.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#define GUARD (20 * GORC_SECOND)

static char self[4096];   /* this binary */
static char runner[4096]; /* GORC_TEST_RUNNER's full path, or "" */

static void find_self(void)
{
    ssize_t n = readlink("/proc/self/exe", self, sizeof self - 1);
    assert_true(n > 0);
    self[n] = 0;
    const char *r = getenv("GORC_TEST_RUNNER");
    if (r == NULL || *r == 0)
        return;
    if (strchr(r, '/')) {
        snprintf(runner, sizeof runner, "%s", r);
        return;
    }
    char path[4096];
    snprintf(path, sizeof path, "%s", getenv("PATH") ? getenv("PATH") : "/usr/bin:/bin");
    for (char *d = strtok(path, ":"); d; d = strtok(NULL, ":")) {
        snprintf(runner, sizeof runner, "%s/%s", d, r);
        if (access(runner, X_OK) == 0)
            return;
    }
    runner[0] = 0;
}

/* Options that restart into "--child mode addr result". */
typedef struct child_cmd {
    char *argv[8];
    char result[64];
    gorc_restart_opts o;
} child_cmd;

static void child_opts(child_cmd *c, const char *mode, const char *addr)
{
    snprintf(c->result, sizeof c->result, "/tmp/gorc-test-restart.%d", (int)getpid());
    unlink(c->result);
    int n = 0;
    if (runner[0])
        c->argv[n++] = runner;
    c->argv[n++] = self;
    c->argv[n++] = (char *)"--child";
    c->argv[n++] = (char *)mode;
    c->argv[n++] = (char *)addr;
    c->argv[n++] = c->result;
    c->argv[n] = NULL;
    c->o = (gorc_restart_opts){.path = runner[0] ? runner : self,
                               .argv = c->argv,
                               .signal = -1,
                               .ready_timeout = 2 * GORC_SECOND};
}

/* The listener still works in this process: a connection to it is accepted here. */
static void still_accepts(gorc_listener *l)
{
    char where[GORC_ADDRSTRLEN];
    CHECK(gorc_listener_addr(l, where, sizeof where) > 0);
    gorc_conn *c, *a;
    CHECK_EQ(gorc_tcp_dial(&c, where, GUARD), 0);
    CHECK_EQ(gorc_listener_set_deadline(l, gorc_now() + GUARD), 0);
    CHECK_EQ(gorc_listener_accept(l, &a), 0);
    gorc_conn_close(a);
    gorc_conn_close(c);
}

static bool closed(gorc_chan *c)
{
    gorc_case cs[1] = {{.chan = c, .dir = GORC_RECV}};
    return gorc_select_try(cs, 1) == 0;
}

GO_TEST(api_run)
{
    gorc_restart *r, *r2;
    gorc_restart_opts bad = {.signal = SIGKILL};
    CHECK_EQ(gorc_restart_new(NULL, NULL), -EINVAL);
    CHECK_EQ(gorc_restart_new(&r, &bad), -EINVAL);
    bad = (gorc_restart_opts){.ready_timeout = -1, .signal = -1};
    CHECK_EQ(gorc_restart_new(&r, &bad), -EINVAL);
    CHECK_EQ(gorc_restart_has_parent(NULL), -EINVAL);
    CHECK_EQ(gorc_restart_ready(NULL), -EINVAL);
    CHECK_EQ(gorc_restart_upgrade(NULL), -EINVAL);
    CHECK_EQ(gorc_restart_stop(NULL), -EINVAL);
    CHECK_EQ(gorc_restart_successor(NULL), -EINVAL);
    CHECK(gorc_restart_exit(NULL) == NULL);
    gorc_restart_free(NULL);

    char pidfile[64], line[32] = {0};
    snprintf(pidfile, sizeof pidfile, "/tmp/gorc-test-restart-pid.%d", (int)getpid());
    gorc_restart_opts o = {.pid_file = pidfile, .signal = -1};
    CHECK_EQ(gorc_restart_new(&r, &o), 0);
    CHECK_EQ(gorc_restart_new(&r2, &o), -EBUSY); /* one per process */
    CHECK_EQ(gorc_restart_has_parent(r), 0);
    gorc_listener *l, *l2;
    CHECK_EQ(gorc_restart_listen(NULL, &l, "127.0.0.1:0", NULL), -EINVAL);
    CHECK_EQ(gorc_restart_listen(r, NULL, "127.0.0.1:0", NULL), -EINVAL);
    CHECK_EQ(gorc_restart_listen(r, &l, NULL, NULL), -EINVAL);
    CHECK_EQ(gorc_restart_listen(r, &l, "127.0.0.1:0", NULL), 0);
    CHECK_EQ(gorc_restart_listen(r, &l2, "127.0.0.1:0", NULL), -EEXIST);
    CHECK(l2 == NULL);
    CHECK_EQ(gorc_restart_listen(r, &l2, "no-such-host.invalid:1", NULL) < 0, 1);
    still_accepts(l);

    CHECK(!closed(gorc_restart_exit(r)));
    CHECK_EQ(gorc_restart_ready(r), 0);
    CHECK_EQ(gorc_restart_ready(r), -EALREADY);
    int fd = open(pidfile, O_RDONLY);
    CHECK(fd >= 0);
    CHECK(read(fd, line, sizeof line - 1) > 0);
    close(fd);
    CHECK_EQ(atoi(line), getpid());
    unlink(pidfile);

    CHECK_EQ(gorc_restart_successor(r), 0);
    CHECK_EQ(gorc_restart_stop(r), 0);
    CHECK(closed(gorc_restart_exit(r)));
    CHECK_EQ(gorc_restart_upgrade(r), -EALREADY); /* stopped: no restart any more */
    CHECK_EQ(gorc_restart_stop(r), 0);
    gorc_restart_free(r);
    still_accepts(l); /* the listener is the caller's */
    gorc_listener_close(l);

    o.pid_file = "/nonexistent-dir/pid";
    CHECK_EQ(gorc_restart_new(&r, &o), 0); /* free made room for another */
    CHECK_EQ(gorc_restart_ready(r), -ENOENT);
    gorc_restart_free(r);
}

/* One failing restart: the error, and the parent unchanged and still accepting. */
static void fails(const char *mode, int want)
{
    child_cmd c;
    child_opts(&c, mode, "127.0.0.1:0");
    if (strcmp(mode, "missing") == 0)
        c.o.path = "/nonexistent/gorc-restart-child";
    gorc_restart *r;
    CHECK_EQ(gorc_restart_new(&r, &c.o), 0);
    gorc_listener *l;
    CHECK_EQ(gorc_restart_listen(r, &l, "127.0.0.1:0", NULL), 0);
    int64_t t0 = gorc_now();
    int rc = gorc_restart_upgrade(r);
    if (rc != want)
        fprintf(stderr, "mode %s: %d (%s), want %d\n", mode, rc, gorc_strerror(rc), want);
    CHECK_EQ(rc, want);
    CHECK(gorc_now() - t0 < GUARD);
    CHECK(!closed(gorc_restart_exit(r)));
    CHECK_EQ(gorc_restart_successor(r), 0);
    still_accepts(l);
    if (strcmp(mode, "emfile") == 0) { /* what the child's gorc_restart_new returned */
        char buf[32] = {0};
        int fd = open(c.result, O_RDONLY);
        CHECK(fd >= 0);
        CHECK(read(fd, buf, sizeof buf - 1) > 0);
        close(fd);
        CHECK_EQ(atoi(buf), -EMFILE);
    }
    unlink(c.result);
    gorc_restart_free(r);
    gorc_listener_close(l);
}

GO_TEST(missing_run)
{
    fails("missing", -ENOENT);
}
GO_TEST(crash_run)
{
    fails("crash", -ECHILD);
}
GO_TEST(exit_run)
{
    fails("exit", -ECHILD);
}
GO_TEST(hang_run)
{
    fails("hang", -ETIMEDOUT);
}
GO_TEST(garbage_run)
{
    fails("garbage", -EPROTO);
}
GO_TEST(emfile_run)
{
    fails("emfile", -ECHILD);
}

typedef struct upg {
    gorc_restart *r;
    int rc;
    gorc_chan *done;
} upg;

static void upgrade_go(void *arg)
{
    upg *u = arg;
    u->rc = gorc_restart_upgrade(u->r);
    gorc_chan_close(u->done);
}

typedef struct reap_arg {
    pid_t pid;
    int status;
} reap_arg;

/* Wait for the successor to exit: at most 2 GUARDs (a hang guard), then report what it was
 * doing (its kernel stack and state) and kill it, so a stuck child fails the test instead of
 * hanging it. */
static void *reap(void *arg)
{
    reap_arg *a = arg;
    for (int i = 0; i < 2 * 20 * 100; i++) {
        pid_t r = waitpid(a->pid, &a->status, WNOHANG);
        if (r == a->pid || (r < 0 && errno != EINTR))
            return NULL;
        usleep(10000);
    }
    char path[64], line[256];
    snprintf(path, sizeof path, "/proc/%d/status", (int)a->pid);
    FILE *f = fopen(path, "r");
    while (f && fgets(line, sizeof line, f))
        if (strncmp(line, "State:", 6) == 0 || strncmp(line, "Threads:", 8) == 0)
            fprintf(stderr, "successor %d did not exit: %s", (int)a->pid, line);
    if (f)
        fclose(f);
    kill(a->pid, SIGKILL);
    waitpid(a->pid, &a->status, 0);
    return NULL;
}

/* A restart that works (with a second one refused while it runs): the successor serves on
 * the listener this process made, the exit channel closes, and no third restart starts. */
GO_TEST(handover_run)
{
    child_cmd c;
    child_opts(&c, "slow", "127.0.0.1:0");
    gorc_restart *r;
    CHECK_EQ(gorc_restart_new(&r, &c.o), 0);
    gorc_listener *l;
    CHECK_EQ(gorc_restart_listen(r, &l, "127.0.0.1:0", NULL), 0);
    char where[GORC_ADDRSTRLEN];
    CHECK(gorc_listener_addr(l, where, sizeof where) > 0);
    upg u = {.r = r};
    CHECK_EQ(gorc_chan_new(&u.done, 0, 0), 0);
    CHECK_EQ(gorc_go(upgrade_go, &u), 0);
    gorc_sleep(100 * GORC_MILLISECOND);
    CHECK_EQ(gorc_restart_upgrade(r), -EBUSY); /* the first is waiting for the slow child */
    gorc_case cs[1] = {{.chan = u.done, .dir = GORC_RECV}};
    CHECK_EQ(gorc_select_timeout(cs, 1, GUARD), 0);
    CHECK_EQ(u.rc, 0);
    CHECK(closed(gorc_restart_exit(r)));
    int succ = gorc_restart_successor(r);
    CHECK(succ > 0 && succ != getpid());
    CHECK_EQ(gorc_restart_upgrade(r), -EALREADY);

    /* The successor accepts on the handed-over socket (this process does not accept). */
    gorc_conn *conn;
    CHECK_EQ(gorc_tcp_dial(&conn, where, GUARD), 0);
    CHECK_EQ(gorc_conn_set_deadline(conn, gorc_now() + GUARD), 0);
    char buf[32] = {0};
    CHECK(gorc_conn_read(conn, buf, sizeof buf - 1) > 0);
    CHECK_EQ(atoi(buf), succ);
    gorc_conn_close(conn);
    reap_arg a = {.pid = succ};
    gorc_blocking(reap, &a);
    CHECK(WIFEXITED(a.status));
    CHECK_EQ(WEXITSTATUS(a.status), 0);
    gorc_chan_release(u.done);
    gorc_restart_free(r);
    gorc_listener_close(l);
}

/* ---- the successor's side ---- */

static const char *cmode, *caddr, *cresult;

static void write_result(int rc)
{
    int fd = open(cresult, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
    if (fd >= 0) {
        dprintf(fd, "%d\n", rc);
        close(fd);
    }
}

static void child_body(void *arg)
{
    (void)arg;
    /* No slot free below the limit: the kernel must drop the descriptors it is sent. The
     * result file is opened first, and the arguments given, for lack of descriptors later. */
    static char *argv[] = {(char *)"child", NULL};
    gorc_restart_opts o = {.signal = -1, .argv = argv};
    int resfd = -1;
    if (strcmp(cmode, "emfile") == 0) {
        resfd = open(cresult, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
        int lowest = fcntl(0, F_DUPFD, 0);
        close(lowest);
        struct rlimit rl;
        getrlimit(RLIMIT_NOFILE, &rl);
        rl.rlim_cur = (rlim_t)lowest;
        setrlimit(RLIMIT_NOFILE, &rl);
    }
    gorc_restart *r;
    int rc = gorc_restart_new(&r, &o);
    if (resfd >= 0) {
        dprintf(resfd, "%d\n", rc);
        close(resfd);
        exit(rc == 0 ? 4 : 5);
    }
    if (rc != 0 || gorc_restart_has_parent(r) != 1) {
        write_result(rc);
        exit(6);
    }
    if (strcmp(cmode, "crash") == 0)
        abort();
    if (strcmp(cmode, "exit") == 0)
        exit(3);
    if (strcmp(cmode, "hang") == 0)
        gorc_sleep(60 * GORC_SECOND);
    if (strcmp(cmode, "garbage") == 0) {
        /* The handover pair is descriptor 3 until ready. */
        if (send(3, "HELLO 1", 7, MSG_NOSIGNAL) != 7)
            exit(7);
        gorc_sleep(60 * GORC_SECOND);
    }
    gorc_listener *l;
    if (gorc_restart_listen(r, &l, caddr, NULL) != 0)
        exit(8);
    if (strcmp(cmode, "slow") == 0)
        gorc_sleep(400 * GORC_MILLISECOND);
    if (gorc_restart_ready(r) != 0)
        exit(9);
    gorc_conn *c;
    gorc_listener_set_deadline(l, gorc_now() + GUARD);
    if (gorc_listener_accept(l, &c) != 0)
        exit(10);
    char buf[32];
    int n = snprintf(buf, sizeof buf, "%d\n", (int)getpid());
    gorc_conn_write_all(c, buf, (size_t)n);
    gorc_conn_set_deadline(c, gorc_now() + GUARD);
    gorc_conn_read(c, buf, sizeof buf); /* until the parent closes */
    gorc_conn_close(c);
    gorc_listener_close(l);
    gorc_restart_free(r);
}

int main(int argc, char **argv)
{
    if (argc == 5 && strcmp(argv[1], "--child") == 0) {
        cmode = argv[2];
        caddr = argv[3];
        cresult = argv[4];
        return gorc_main(child_body, NULL) == 0 ? 0 : 11;
    }
    find_self();
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(api_run),    cmocka_unit_test(missing_run),  cmocka_unit_test(crash_run),
        cmocka_unit_test(exit_run),   cmocka_unit_test(hang_run),     cmocka_unit_test(garbage_run),
        cmocka_unit_test(emfile_run), cmocka_unit_test(handover_run),
    };
    return cmocka_run_group_tests_name("restart", tests, NULL, NULL);
}
