/*
 * test_crash.c - fatal errors, checked from outside (cmocka; no goroutines here).
 *
 * Runs each case of tests/unit/crashers.c in a child process (posix_spawn) and checks its stderr
 * and exit status: deadlock reports (Go's "fatal error: all goroutines are asleep - deadlock!"
 * with every goroutine's wait reason: chan receive, chan send, select, the nil-channel and
 * no-case variants), detection coming back once foreign threads have exited (also one that
 * used a channel before the runtime started), sleeping is not
 * a deadlock, stack overflow on a guard page and in canary mode (GORC_STACK_GUARD=none),
 * releasing a channel with blocked goroutines. Exit status 2 throughout, as Go's runtime.
 *
 * The crashers binary is looked up in $GORC_TEST_BIN_DIR, else next to this binary, else in
 * build/release/tests. Each child is killed after 30 s (a hang is a failure).
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include "testutil.h"

#include <errno.h>
#include <limits.h>
#include <poll.h>
#include <signal.h>
#include <spawn.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#if defined(__SANITIZE_ADDRESS__)
#define UNDER_ASAN 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
#define UNDER_ASAN 1
#endif
#endif

extern char **environ;

static char crashers[PATH_MAX + 16];

static bool find_crashers(void)
{
    const char *dir = getenv("GORC_TEST_BIN_DIR");
    if (dir && *dir) {
        snprintf(crashers, sizeof crashers, "%s/crashers", dir);
        if (access(crashers, X_OK) == 0)
            return true;
    }
    char self[PATH_MAX - 16];
    ssize_t n = readlink("/proc/self/exe", self, sizeof self - 1);
    if (n > 0) {
        self[n] = 0;
        char *slash = strrchr(self, '/');
        if (slash) {
            *slash = 0;
            snprintf(crashers, sizeof crashers, "%s/crashers", self);
            if (access(crashers, X_OK) == 0)
                return true;
        }
    }
    snprintf(crashers, sizeof crashers, "build/release/tests/crashers");
    return access(crashers, X_OK) == 0;
}

typedef struct result {
    int status; /* wait status */
    char out[65536];
    size_t len;
} result;

static int64_t now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* Run `crashers name` with extra "K=V" environment entries (NULL-terminated list); stdout and
 * stderr both go to r->out. A child still running after timeout_ms is killed and the test
 * fails. */
static void run_case_within(const char *name, const char *const *extra_env, result *r,
                            int timeout_ms)
{
    if (crashers[0] == 0 && !find_crashers())
        fail_msg("crashers binary not found (build it: make build/<variant>/tests/crashers)");
    size_t n = 0, m = 0;
    while (environ[n])
        n++;
    while (extra_env && extra_env[m])
        m++;
    char **env = calloc(n + m + 1, sizeof *env);
    assert_non_null(env);
    size_t k = 0;
    for (size_t i = 0; i < n; i++) {
        bool overridden = false;
        for (size_t j = 0; j < m; j++) {
            size_t keylen = strcspn(extra_env[j], "=");
            if (strncmp(environ[i], extra_env[j], keylen + 1) == 0)
                overridden = true;
        }
        if (!overridden)
            env[k++] = environ[i];
    }
    for (size_t j = 0; j < m; j++)
        env[k++] = (char *)extra_env[j];
    env[k] = NULL;

    int fds[2];
    assert_int_equal(pipe(fds), 0);
    posix_spawn_file_actions_t fa;
    posix_spawn_file_actions_init(&fa);
    posix_spawn_file_actions_adddup2(&fa, fds[1], 1);
    posix_spawn_file_actions_adddup2(&fa, fds[1], 2);
    posix_spawn_file_actions_addclose(&fa, fds[0]);
    posix_spawn_file_actions_addclose(&fa, fds[1]);
    char *argv[] = {crashers, (char *)name, NULL};
    pid_t pid;
    int rc = test_spawn(&pid, crashers, &fa, argv, env);
    posix_spawn_file_actions_destroy(&fa);
    free(env);
    close(fds[1]);
    if (rc != 0) {
        close(fds[0]);
        if (rc == ENOEXEC) {
            /* A cross build run under qemu-user without binfmt_misc: the child cannot run. */
            fprintf(stderr, "cannot execute %s here; skipped\n", crashers);
            skip();
        }
        fail_msg("posix_spawn %s: %s", crashers, strerror(rc));
    }
    r->len = 0;
    int64_t deadline = now_ms() + timeout_ms;
    bool killed = false;
    for (;;) {
        struct pollfd p = {.fd = fds[0], .events = POLLIN};
        int left = (int)(deadline - now_ms());
        if (left <= 0) {
            kill(pid, SIGKILL);
            killed = true;
            break;
        }
        int pr = poll(&p, 1, left);
        if (pr < 0 && errno == EINTR)
            continue;
        if (pr <= 0)
            continue;
        ssize_t got = read(fds[0], r->out + r->len, sizeof r->out - 1 - r->len);
        if (got <= 0)
            break; /* EOF: the child (and anything it spawned) closed the pipe */
        r->len += (size_t)got;
        if (r->len == sizeof r->out - 1)
            break;
    }
    close(fds[0]);
    r->out[r->len] = 0;
    assert_int_equal(waitpid(pid, &r->status, 0), pid);
    if (killed)
        fail_msg("crashers %s hung; output so far:\n%s", name, r->out);
}

static void run_case(const char *name, const char *const *extra_env, result *r)
{
    run_case_within(name, extra_env, r, 30000);
}

static void show(const char *name, const result *r)
{
    fprintf(stderr, "---- crashers %s: %s %d, output:\n%s----\n", name,
            WIFEXITED(r->status) ? "exit status" : "signal",
            WIFEXITED(r->status) ? WEXITSTATUS(r->status) : WTERMSIG(r->status), r->out);
}

static void expect_exit(const char *name, const result *r, int code)
{
    if (!WIFEXITED(r->status) || WEXITSTATUS(r->status) != code) {
        show(name, r);
        fail_msg("crashers %s: expected exit status %d", name, code);
    }
}

static void expect_text(const char *name, const result *r, const char *text)
{
    if (strstr(r->out, text) == NULL) {
        show(name, r);
        fail_msg("crashers %s: output lacks \"%s\"", name, text);
    }
}

static void expect_no_text(const char *name, const result *r, const char *text)
{
    if (strstr(r->out, text) != NULL) {
        show(name, r);
        fail_msg("crashers %s: output has \"%s\"", name, text);
    }
}

static result res;

static const char *const DEADLOCK = "fatal error: all goroutines are asleep - deadlock!";

static void test_deadlock(void **state)
{
    (void)state;
    run_case("deadlock", NULL, &res);
    expect_exit("deadlock", &res, 2);
    expect_text("deadlock", &res, DEADLOCK);
    expect_text("deadlock", &res, "goroutine 1 [chan receive]");
    expect_text("deadlock", &res, "[select]");
    expect_text("deadlock", &res, "[chan send]");
    expect_text("deadlock", &res, "created by ");
    expect_no_text("deadlock", &res, "crashers:");
}

static void test_nil_channel_deadlocks(void **state)
{
    (void)state;
    run_case("nilsend", NULL, &res);
    expect_exit("nilsend", &res, 2);
    expect_text("nilsend", &res, DEADLOCK);
    expect_text("nilsend", &res, "goroutine 1 [chan send (nil chan)]");

    run_case("nilrecv", NULL, &res);
    expect_exit("nilrecv", &res, 2);
    expect_text("nilrecv", &res, DEADLOCK);
    expect_text("nilrecv", &res, "goroutine 1 [chan receive (nil chan)]");
}

static void test_select_no_cases(void **state)
{
    (void)state;
    run_case("selectnone", NULL, &res);
    expect_exit("selectnone", &res, 2);
    expect_text("selectnone", &res, DEADLOCK);
    expect_text("selectnone", &res, "goroutine 1 [select (no cases)]");
}

static void test_sleep_is_not_deadlock(void **state)
{
    (void)state;
    run_case("sleepok", NULL, &res);
    expect_exit("sleepok", &res, 0);
    expect_no_text("sleepok", &res, "fatal error");
}

/* Under simulation a deadlock is the run's: the same first line, then the seed, the replay
 * command and the run's goroutines. */
static void test_sim_deadlock(void **state)
{
    (void)state;
    const char *const env[] = {"GORC_SIM_SEED=7", NULL};
    run_case("deadlock", env, &res);
    expect_exit("deadlock", &res, 2);
    expect_text("deadlock", &res, DEADLOCK);
    expect_text("deadlock", &res, "simulation seed 7 (0x7)");
    expect_text("deadlock", &res, "replay: GORC_SIM_SEED=7 '");
    expect_text("deadlock", &res, "[chan receive]");
    expect_text("deadlock", &res, "[select]");
    expect_text("deadlock", &res, "[chan send]");
    expect_no_text("deadlock", &res, "crashers:");
    run_case("sim-leftover", NULL, &res);
    expect_exit("sim-leftover", &res, 2);
    expect_text("sim-leftover", &res,
                "the run's main goroutine returned; blocked goroutines remain");
    expect_text("sim-leftover", &res, "simulation seed 12345");
    expect_text("sim-leftover", &res, "[chan receive]");
    expect_no_text("sim-leftover", &res, "crashers:");
    /* On the simulated network: waits on it are durable, so this is a deadlock too. */
    const char *const env9[] = {"GORC_SIM_SEED=9", NULL};
    run_case("sim-netdeadlock", env9, &res);
    expect_exit("sim-netdeadlock", &res, 2);
    expect_text("sim-netdeadlock", &res, DEADLOCK);
    expect_text("sim-netdeadlock", &res, "simulation seed 9 (0x9)");
    expect_text("sim-netdeadlock", &res, "replay: GORC_SIM_SEED=9 '");
    expect_text("sim-netdeadlock", &res, "[IO wait]");
    expect_no_text("sim-netdeadlock", &res, "crashers:");
}

static void test_sim_env(void **state)
{
    (void)state;
    const char *const ok[] = {"GORC_SIM_SEED=0x10", "GORC_SIM_PERTURB=0.5", NULL};
    run_case("sleepok", ok, &res);
    expect_exit("sleepok", &res, 0);
    expect_no_text("sleepok", &res, "fatal error");
    const char *const bad[] = {"GORC_SIM_SEED=12x", NULL};
    run_case("sleepok", bad, &res);
    expect_exit("sleepok", &res, 13);
    expect_text("sleepok", &res, "gorc: simulation (GORC_SIM_SEED=12x): Invalid argument");
    const char *const badfault[] = {"GORC_SIM_SEED=1", "GORC_SIM_FAULTS=spawn,nosuch", NULL};
    run_case("sleepok", badfault, &res);
    expect_exit("sleepok", &res, 13);
}

static void test_spawn_enomem(void **state)
{
    (void)state;
    /* Sanitizers and emulators reserve address space of their own: RLIMIT_AS means nothing. */
    if (test_div() > 1)
        skip();
    run_case("spawn-enomem", NULL, &res);
    expect_exit("spawn-enomem", &res, 0);
    expect_text("spawn-enomem", &res, "gorc_go failed with -12");
    expect_text("spawn-enomem", &res, "goroutines finished");
    expect_no_text("spawn-enomem", &res, "fatal error");
}

static void test_deadlock_after_foreign_exit(void **state)
{
    (void)state;
    run_case("foreign-exit-deadlock", NULL, &res);
    expect_exit("foreign-exit-deadlock", &res, 2);
    expect_text("foreign-exit-deadlock", &res, DEADLOCK);
    expect_text("foreign-exit-deadlock", &res, "goroutine 1 [chan receive]");
}

/* A thread whose first gorc call (a channel) came before the runtime started, and which has
 * exited since, must not keep deadlock detection off: the deadlock is reported, promptly. */
static void test_deadlock_after_early_foreign_exit(void **state)
{
    (void)state;
    run_case_within("foreign-before-main", NULL, &res, 10000);
    expect_exit("foreign-before-main", &res, 2);
    expect_text("foreign-before-main", &res, DEADLOCK);
    expect_text("foreign-before-main", &res, "goroutine 1 [chan receive]");
    expect_no_text("foreign-before-main", &res, "crashers:");
}

static void test_release_while_blocked(void **state)
{
    (void)state;
    run_case("releaseblocked", NULL, &res);
    expect_exit("releaseblocked", &res, 2);
    expect_text("releaseblocked", &res, "fatal error: ");
    expect_text("releaseblocked", &res, "blocked");
}

/* Lines of the form "goroutine N [...]:" in the output. */
static int count_goroutines(const result *r)
{
    int n = 0;
    for (const char *p = r->out; (p = strstr(p, "goroutine ")) != NULL; p++)
        if ((p == r->out || p[-1] == '\n') && strchr(p, '[') && strchr(p, '[') < strchr(p, '\n'))
            n++;
    return n;
}

/* SIGQUIT dumps every goroutine with its stack and exits 2, as Go does. */
static void test_sigquit_dump(void **state)
{
    (void)state;
    run_case("sigquit", NULL, &res);
    expect_exit("sigquit", &res, 2);
    expect_text("sigquit", &res, "SIGQUIT: quit");
    expect_text("sigquit", &res, "goroutine 1 [sleep]:");
    expect_text("sigquit", &res, "[chan receive]:");
    expect_text("sigquit", &res, "[running]:");
    expect_text("sigquit", &res, "created by ");
    expect_no_text("sigquit", &res, "crashers:");
    if (count_goroutines(&res) < 3) {
        show("sigquit", &res);
        fail_msg("sigquit: fewer than 3 goroutines dumped");
    }
    /* Frames follow each header: a function line, then a tab and its place. */
    const char *p = strstr(res.out, "[chan receive]:\n");
    assert_non_null(p);
    p = strchr(p, '\n') + 1;
    const char *nl = strchr(p, '\n');
    assert_non_null(nl);
    if (nl[1] != '\t') {
        show("sigquit", &res);
        fail_msg("sigquit: no frame under the parked goroutine");
    }
}

static void test_traceback_none(void **state)
{
    (void)state;
    const char *env[] = {"GORC_TRACEBACK=none", NULL};
    run_case("sigquit", env, &res);
    expect_exit("sigquit", &res, 2);
    expect_text("sigquit", &res, "SIGQUIT: quit");
    expect_no_text("sigquit", &res, "goroutine ");
    run_case("fatal-trace", env, &res);
    expect_exit("fatal-trace", &res, 2);
    expect_text("fatal-trace", &res, "fatal error: ");
    expect_no_text("fatal-trace", &res, "goroutine ");
}

/* Default (single): the failing goroutine's stack only; all: everyone's. */
static void test_traceback_single_all(void **state)
{
    (void)state;
    run_case("fatal-trace", NULL, &res);
    expect_exit("fatal-trace", &res, 2);
    expect_text("fatal-trace", &res, "goroutine 1 [running]:");
    expect_no_text("fatal-trace", &res, "[chan receive]");
    const char *all[] = {"GORC_TRACEBACK=all", NULL};
    run_case("fatal-trace", all, &res);
    expect_exit("fatal-trace", &res, 2);
    expect_text("fatal-trace", &res, "goroutine 1 [running]:");
    expect_text("fatal-trace", &res, "[chan receive]:");
    expect_text("fatal-trace", &res, "created by ");
}

/* crash: as all, then abort() for a core dump. */
static void test_traceback_crash(void **state)
{
    (void)state;
    const char *env[] = {"GORC_TRACEBACK=crash", NULL};
    run_case("fatal-trace", env, &res);
    if (!WIFSIGNALED(res.status) || WTERMSIG(res.status) != SIGABRT) {
        show("fatal-trace", &res);
        fail_msg("GORC_TRACEBACK=crash: expected SIGABRT");
    }
    expect_text("fatal-trace", &res, "[chan receive]:");
    run_case("sigquit", env, &res);
    if (!WIFSIGNALED(res.status) || WTERMSIG(res.status) != SIGABRT) {
        show("sigquit", &res);
        fail_msg("GORC_TRACEBACK=crash on SIGQUIT: expected SIGABRT");
    }
}

/* The id the crasher printed, as "goroutine <id>", which the report must contain. */
static void expect_overflow_report(const char *name, const result *r, bool asan_may_report)
{
    const char *p = strstr(r->out, "crashers: overflowing id=");
    if (p == NULL) {
        show(name, r);
        fail_msg("crashers %s: no id line", name);
    }
    unsigned long long id = strtoull(p + strlen("crashers: overflowing id="), NULL, 10);
    assert_true(id > 1);
    if (asan_may_report && strstr(r->out, "AddressSanitizer") != NULL) {
        /* ASan's own report (its handler, or its redzone check tripping over the runtime's
         * canary read); the process must still die. */
        expect_text(name, r, "stack");
        if (WIFEXITED(r->status) && WEXITSTATUS(r->status) == 0) {
            show(name, r);
            fail_msg("crashers %s: exited 0", name);
        }
        return;
    }
    char want[64];
    snprintf(want, sizeof want, "goroutine %llu ", id);
    expect_exit(name, r, 2);
    expect_text(name, r, "fatal error: stack overflow");
    expect_text(name, r, want);
    expect_no_text(name, r, "overflow not detected");
}

static void test_stack_overflow_guard(void **state)
{
    (void)state;
#ifdef UNDER_ASAN
    bool asan = true;
#else
    bool asan = false;
#endif
    run_case("overflow", NULL, &res);
    expect_overflow_report("overflow", &res, asan);
    static const char *const mprotect_env[] = {"GORC_STACK_GUARD=mprotect", NULL};
    run_case("overflow", mprotect_env, &res);
    expect_overflow_report("overflow", &res, asan);
}

static void test_stack_overflow_canary(void **state)
{
    (void)state;
#ifdef UNDER_ASAN
    bool asan = true;
#else
    bool asan = false;
#endif
    static const char *const env[] = {"GORC_STACK_GUARD=none", NULL};
    run_case("overflow-noguard", env, &res);
    expect_overflow_report("overflow-noguard", &res, asan);
    if (!asan)
        expect_text("overflow-noguard", &res, "canary");
}

static void test_poller_init_failure(void **state)
{
    (void)state;
    /* An emulator keeps descriptors of its own: the limit would not mean the same there. */
    const char *runner = getenv("GORC_TEST_RUNNER");
    if (runner && *runner)
        skip();
    run_case("init-emfile", NULL, &res);
    expect_exit("init-emfile", &res, 0);
    expect_text("init-emfile", &res, "gorc_main failed with -11, then -11");
}

static void test_leakcheck_env(void **state)
{
    (void)state;
    const char *const env[] = {"GORC_LEAKCHECK=1", "GORC_LEAKCHECK_MS=300", NULL};
    run_case("leakmain", env, &res);
    expect_exit("leakmain", &res, 2);
    expect_text("leakmain", &res, "gorc: 1 goroutine started after the mark still running");
    expect_text("leakmain", &res, "[chan receive, ");
    expect_text("leakmain", &res, "created by goroutine 1 at");
    expect_text("leakmain", &res, "gorc: goroutines leaked (GORC_LEAKCHECK=1)");
    /* Without the variable, the same program just ends. */
    run_case("leakmain", NULL, &res);
    expect_exit("leakmain", &res, 0);
    expect_no_text("leakmain", &res, "leaked");
    /* A goroutine that finishes within the bound is no leak. */
    run_case("leakmain-ok", env, &res);
    expect_exit("leakmain-ok", &res, 0);
    expect_no_text("leakmain-ok", &res, "leaked");
}

static void test_usage(void **state)
{
    (void)state;
    run_case("no-such-case", NULL, &res);
    expect_exit("no-such-case", &res, 64);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_deadlock),
        cmocka_unit_test(test_nil_channel_deadlocks),
        cmocka_unit_test(test_select_no_cases),
        cmocka_unit_test(test_sleep_is_not_deadlock),
        cmocka_unit_test(test_deadlock_after_foreign_exit),
        cmocka_unit_test(test_deadlock_after_early_foreign_exit),
        cmocka_unit_test(test_spawn_enomem),
        cmocka_unit_test(test_release_while_blocked),
        cmocka_unit_test(test_stack_overflow_guard),
        cmocka_unit_test(test_stack_overflow_canary),
        cmocka_unit_test(test_poller_init_failure),
        cmocka_unit_test(test_leakcheck_env),
        cmocka_unit_test(test_usage),
        cmocka_unit_test(test_sim_deadlock),
        cmocka_unit_test(test_sim_env),
        cmocka_unit_test(test_sigquit_dump),
        cmocka_unit_test(test_traceback_none),
        cmocka_unit_test(test_traceback_single_all),
        cmocka_unit_test(test_traceback_crash),
    };
    return cmocka_run_group_tests_name("crash", tests, NULL, NULL);
}
