/*
 * crashers.c - programs that must die the way Go's runtime dies (or, for a few, must not).
 *
 * `crashers <case>` runs one scenario as a whole gorc_main program; tests/unit/test_crash.c runs
 * each in a child process and checks its stderr and exit status. Cases:
 *   deadlock               main receives on a channel nobody sends to; one goroutine waits in
 *                          a select, another in a send -> "all goroutines are asleep", exit 2
 *   nilsend / nilrecv      main sends / receives on a NULL channel -> deadlock report naming
 *                          "chan send (nil chan)" / "chan receive (nil chan)"
 *   selectnone             main selects with no cases -> deadlock, "select (no cases)"
 *   overflow               unbounded recursion with a local array in a goroutine -> "stack
 *                          overflow" naming the goroutine, exit 2 (caught on the guard page)
 *   overflow-noguard       run with GORC_STACK_GUARD=none (canary mode): the recursion goes a
 *                          little past the stack's low end, into the gap below it, then parks;
 *                          the check at that switch must report the overflow
 *   sleepok                everything asleep but main is sleeping (a timer is pending): not a
 *                          deadlock, exits 0
 *   foreign-exit-deadlock  a foreign thread attaches, then exits; afterwards deadlock
 *                          detection is back on and main's eternal receive is reported
 *   foreign-before-main    before gorc_main (so before the runtime starts) a thread uses a
 *                          channel and exits; main then deadlocks, which must be reported
 *   releaseblocked         the last reference to a channel is released while a goroutine is
 *                          blocked on it -> fatal error, exit 2
 *   sim-leftover           a simulation run (gorc_sim_run) whose function returns while a
 *                          goroutine it started is blocked for good -> the run's deadlock
 *                          report (main returned, blocked goroutines remain), exit 2
 *   sim-netdeadlock        under GORC_SIM_SEED: a simulated TCP connection whose two ends
 *                          both wait to read -> the run's deadlock report ([IO wait]), exit 2
 *   (deadlock and sleepok also run with GORC_SIM_SEED set: the simulation's report, with the
 *   seed and the replay command; sleepok's sleep then takes no real time)
 *   sigquit                goroutines parked in a receive and a sleep and one spinning, then
 *                          the program raises SIGQUIT -> "SIGQUIT: quit", every goroutine's
 *                          stack, exit 2 (GORC_TRACEBACK=none: no stacks; crash: SIGABRT)
 *   fatal-trace            a goroutine parked in a receive, then a fatal error in main (the
 *                          release of a channel a goroutine waits on) -> the stacks
 *                          GORC_TRACEBACK asks for: main's by default, everyone's with "all"
 * Before crashing, the overflow cases print "crashers: overflowing id=<goroutine id>" to
 * stderr so the test can check that the report names that goroutine.
 */
#include <gorc.h>
#include <gorc_net.h>
#include <gorc_sim.h>

#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <unistd.h>

#define MS GORC_MILLISECOND

static gorc_chan *mkchan(size_t elem, size_t cap)
{
    gorc_chan *c = NULL;
    if (gorc_chan_new(&c, elem, cap) != 0) {
        fprintf(stderr, "crashers: gorc_chan_new failed\n");
        exit(10);
    }
    return c;
}

/* ---- deadlocks ---- */

static gorc_chan *ca, *cb, *cc;

static void in_select(void *arg)
{
    (void)arg;
    int x;
    gorc_case cs[2] = {{.chan = ca, .dir = GORC_RECV, .elem = &x},
                       {.chan = cb, .dir = GORC_RECV, .elem = &x}};
    gorc_select(cs, 2);
    fprintf(stderr, "crashers: select returned\n");
    exit(11);
}

static void in_send(void *arg)
{
    (void)arg;
    int v = 1;
    gorc_chan_send(cc, &v);
    fprintf(stderr, "crashers: send returned\n");
    exit(11);
}

static void deadlock(void *arg)
{
    (void)arg;
    ca = mkchan(sizeof(int), 0);
    cb = mkchan(sizeof(int), 1);
    cc = mkchan(sizeof(int), 0);
    gorc_go(in_select, NULL);
    gorc_go(in_send, NULL);
    gorc_sleep(5 * MS); /* let them block first (not required, but the dump is then stable) */
    int v;
    gorc_chan_recv(ca, &v);
    fprintf(stderr, "crashers: receive returned\n");
    exit(11);
}

static void nilsend(void *arg)
{
    (void)arg;
    int v = 1;
    gorc_chan_send(NULL, &v);
    exit(11);
}

static void nilrecv(void *arg)
{
    (void)arg;
    int v;
    gorc_chan_recv(NULL, &v);
    exit(11);
}

static void selectnone(void *arg)
{
    (void)arg;
    gorc_select(NULL, 0);
    exit(11);
}

static void blocked_forever(void *arg)
{
    gorc_chan_recv(arg, NULL);
    exit(11);
}

static void sleepok(void *arg)
{
    (void)arg;
    gorc_chan *c = mkchan(0, 0);
    gorc_go(blocked_forever, c); /* blocked for good, but main will still wake up */
    gorc_sleep(50 * MS);
}

static void sim_leftover_run(void *arg)
{
    gorc_go(blocked_forever, arg);
}

static void sim_leftover(void *arg)
{
    (void)arg;
    gorc_chan *c = mkchan(0, 0);
    int rc = gorc_sim_run(12345, sim_leftover_run, c, NULL);
    fprintf(stderr, "crashers: gorc_sim_run returned %d\n", rc);
    exit(12);
}

/* Both ends of a simulated connection read, neither writes: every goroutine of the run waits
 * on the simulated network, which will never deliver anything. */
static void netdeadlock_accept(void *arg)
{
    gorc_conn *c;
    if (gorc_listener_accept(arg, &c) == 0) {
        char b;
        gorc_conn_read(c, &b, 1);
    }
}

static void sim_netdeadlock(void *arg)
{
    (void)arg;
    gorc_listener *l;
    if (gorc_tcp_listen(&l, "127.0.0.1:5000", NULL) != 0)
        exit(12);
    gorc_go(netdeadlock_accept, l);
    gorc_conn *c;
    if (gorc_tcp_dial(&c, "127.0.0.1:5000", GORC_SECOND) != 0)
        exit(12);
    char b;
    gorc_conn_read(c, &b, 1);
    fprintf(stderr, "crashers: read returned\n");
}

static void *attach_and_leave(void *arg)
{
    (void)arg;
    gorc_foreign_attach();
    return NULL;
}

static void *join_thread(void *arg)
{
    return (void *)(intptr_t)pthread_join(*(pthread_t *)arg, NULL);
}

static void foreign_exit_deadlock(void *arg)
{
    (void)arg;
    pthread_t th;
    if (pthread_create(&th, NULL, attach_and_leave, NULL) != 0)
        exit(10);
    gorc_blocking(join_thread, &th);
    gorc_chan *c = mkchan(0, 0);
    gorc_chan_recv(c, NULL);
    exit(11);
}

/* Channel calls on a thread of its own before the runtime has started; they count the thread
 * as a foreign one, which must stop counting when it exits. */
static void *chan_user(void *arg)
{
    (void)arg;
    gorc_chan *c = mkchan(sizeof(int), 2);
    int v = 7;
    if (gorc_chan_trysend(c, &v) != 0 || gorc_chan_send(c, &v) != 0 ||
        gorc_chan_trysend(c, &v) != GORC_EAGAIN || gorc_chan_recv(c, &v) != 0 ||
        gorc_chan_tryrecv(c, &v) != 0 || gorc_chan_tryrecv(c, &v) != GORC_EAGAIN ||
        gorc_chan_close(c) != 0) {
        fprintf(stderr, "crashers: channel calls before gorc_main failed\n");
        exit(10);
    }
    gorc_case cs[1] = {{.chan = c, .dir = GORC_RECV, .elem = &v}};
    if (gorc_select_try(cs, 1) != 0 || !cs[0].closed)
        exit(10);
    gorc_chan_release(c);
    return NULL;
}

static void before_foreign_before_main(void)
{
    pthread_t th;
    if (pthread_create(&th, NULL, chan_user, NULL) != 0 || pthread_join(th, NULL) != 0)
        exit(10);
}

static void foreign_before_main(void *arg)
{
    (void)arg;
    gorc_chan *c = mkchan(0, 0);
    gorc_chan_recv(c, NULL);
    exit(11);
}

static void releaseblocked(void *arg)
{
    (void)arg;
    gorc_chan *c = mkchan(0, 0);
    gorc_go(blocked_forever, c);
    gorc_sleep(10 * MS);
    gorc_chan_release(c); /* the goroutine still waits on it */
    gorc_sleep(50 * MS);
    exit(11);
}

/* ---- tracebacks ---- */

static volatile int spin_stop;

__attribute__((noinline)) void quit_spinner(void *arg)
{
    (void)arg;
    while (!spin_stop)
        __asm__ volatile("" ::: "memory");
}

__attribute__((noinline)) void quit_parked(void *arg)
{
    int x;
    gorc_chan_recv(arg, &x);
}

static void sigquit(void *arg)
{
    (void)arg;
    gorc_chan *c = mkchan(sizeof(int), 0);
    gorc_go(quit_parked, c);
    gorc_go(quit_spinner, NULL);
    gorc_sleep(20 * MS);
    raise(SIGQUIT);
    gorc_sleep(5000 * MS);
    fprintf(stderr, "crashers: SIGQUIT did not end the program\n");
    exit(11);
}

static void fatal_trace(void *arg)
{
    (void)arg;
    gorc_chan *c = mkchan(0, 0);
    gorc_go(blocked_forever, c);
    gorc_sleep(10 * MS);
    gorc_chan_release(c);
    exit(11);
}

/* ---- stack overflow ---- */

static gorc_chan *overflow_done;

static volatile int stop_recursing; /* never set: keeps the compiler from calling it endless */

__attribute__((noinline)) static int recurse(int n)
{
    volatile char buf[512];
    if (stop_recursing)
        return 0;
    buf[0] = (char)n;
    buf[sizeof buf - 1] = (char)n;
    return recurse(n + 1) + buf[0] + buf[sizeof buf - 1];
}

static void overflower(void *arg)
{
    (void)arg;
    fprintf(stderr, "crashers: overflowing id=%llu\n", (unsigned long long)gorc_id());
    recurse(0);
    exit(11);
}

static void overflow(void *arg)
{
    (void)arg;
    gorc_go(overflower, NULL);
    overflow_done = mkchan(0, 0);
    gorc_chan_recv(overflow_done, NULL);
    exit(11);
}

/* Canary mode: go down to a little (about 1.5 KiB) past the stack's low end, which lies in
 * the unused page below it, then park. */
static char *stack_top;
static size_t dig_target;

__attribute__((noinline)) static void dig(void)
{
    volatile char buf[256];
    memset((char *)buf, 0xab, sizeof buf);
    if ((size_t)(stack_top - (char *)buf) < dig_target)
        dig();
    else
        gorc_sleep(MS); /* a switch: the canary is checked here */
    buf[0]++;
}

static void overflower_noguard(void *arg)
{
    size_t size = (size_t)arg;
    char here;
    stack_top = &here;
    dig_target = size + 1536;
    fprintf(stderr, "crashers: overflowing id=%llu\n", (unsigned long long)gorc_id());
    dig();
    fprintf(stderr, "crashers: overflow not detected\n");
    exit(11);
}

static void overflow_noguard(void *arg)
{
    (void)arg;
    const char *g = getenv("GORC_STACK_GUARD");
    if (g == NULL || strcmp(g, "none") != 0) {
        fprintf(stderr, "crashers: run overflow-noguard with GORC_STACK_GUARD=none\n");
        exit(12);
    }
    size_t size = 64 * 1024;
    gorc_go_opts attr = {.stack_size = size};
    gorc_go_ex(overflower_noguard, (void *)size, &attr);
    gorc_sleep(5 * GORC_SECOND); /* a timer keeps deadlock detection quiet meanwhile */
    fprintf(stderr, "crashers: overflow not detected\n");
    exit(11);
}

/* Out of address space: gorc_go must say so (-ENOMEM) rather than crash, and the goroutines
 * already started must still run. RLIMIT_AS caps the address space a little above what the
 * process uses once the runtime is up; each goroutine parks, keeping its stack reserved. */
static gorc_chan *enomem_gate;

static void enomem_parked(void *arg)
{
    (void)arg;
    gorc_chan_recv(enomem_gate, NULL);
}

static long vm_size_kib(void)
{
    FILE *f = fopen("/proc/self/status", "r");
    char line[256];
    long kib = -1;
    while (f && fgets(line, sizeof line, f))
        if (strncmp(line, "VmSize:", 7) == 0)
            kib = atol(line + 7);
    if (f)
        fclose(f);
    return kib;
}

static void spawn_enomem(void *arg)
{
    (void)arg;
    gorc_chan_new(&enomem_gate, 0, 0);
    gorc_sleep(GORC_MILLISECOND); /* let every worker thread start first */
    struct rlimit rl;
    getrlimit(RLIMIT_AS, &rl);
    rl.rlim_cur = (rlim_t)(vm_size_kib() + 64 * 1024) * 1024;
    if (setrlimit(RLIMIT_AS, &rl) != 0) {
        perror("setrlimit");
        exit(3);
    }
    long n = 0;
    int rc = 0;
    while (n < 10000000 && (rc = gorc_go(enomem_parked, NULL)) == 0) {
        n++;
        if (n % 256 == 0)
            gorc_yield(); /* let them run and park */
    }
    fprintf(stderr, "crashers: gorc_go failed with %d after %ld goroutines\n", rc, n);
    gorc_chan_close(enomem_gate);
    while (gorc_count() > 1)
        gorc_sleep(GORC_MILLISECOND);
    fprintf(stderr, "crashers: all %ld goroutines finished\n", n);
}

/* GORC_LEAKCHECK=1: main returns while one goroutine waits forever on a channel nobody will
 * send on (the "channel never closed" leak) and another finished in time. */
static gorc_chan *leak_ch;

static void leak_forever(void *arg)
{
    (void)arg;
    gorc_chan_recv(leak_ch, NULL);
}

static void leak_briefly(void *arg)
{
    (void)arg;
    gorc_sleep(20 * GORC_MILLISECOND);
}

static void leakmain(void *arg)
{
    (void)arg;
    gorc_chan_new(&leak_ch, 0, 0);
    gorc_go(leak_forever, NULL);
    gorc_go(leak_briefly, NULL);
}

/* The same without the leak: the check waits for the brief one and passes. */
static void leakmain_ok(void *arg)
{
    (void)arg;
    gorc_go(leak_briefly, NULL);
}

/* The poller backend cannot start (no descriptor left for its eventfd): gorc_main fails with
 * -EAGAIN, and the epoll descriptor it had opened is closed again. Runs instead of a gorc_main
 * program, so it exits itself. */
static int count_fds(void)
{
    int n = 0;
    char path[64];
    for (int fd = 0; fd < 1024; fd++) {
        snprintf(path, sizeof path, "/proc/self/fd/%d", fd);
        n += access(path, F_OK) == 0;
    }
    return n;
}

static void noop(void *arg)
{
    (void)arg;
}

static void before_init_emfile(void)
{
    /* Exactly one free descriptor: fill every free slot under a low limit, then free one.
     * epoll_create1 gets it, eventfd does not. */
    struct rlimit rl;
    getrlimit(RLIMIT_NOFILE, &rl);
    rl.rlim_cur = 64;
    if (setrlimit(RLIMIT_NOFILE, &rl) != 0) {
        perror("setrlimit");
        exit(3);
    }
    int last = -1;
    for (int fd; (fd = dup(2)) >= 0;)
        last = fd;
    if (last < 0) {
        perror("dup");
        exit(3);
    }
    close(last);
    int before = count_fds();
    int rc = gorc_main(noop, NULL);
    int again = gorc_main(noop, NULL); /* a failed start is permanent */
    int after = count_fds();
    fprintf(stderr,
            "crashers: gorc_main failed with %d, then %d; descriptors %d before, %d after\n", rc,
            again, before, after);
    exit(rc == -EAGAIN && again == -EAGAIN && before == after ? 0 : 1);
}

int main(int argc, char **argv)
{
    static const struct {
        const char *name;
        gorc_fn fn;
        void (*before)(void); /* run before gorc_main, if set */
    } cases[] = {
        {"deadlock", deadlock, NULL},
        {"nilsend", nilsend, NULL},
        {"nilrecv", nilrecv, NULL},
        {"selectnone", selectnone, NULL},
        {"overflow", overflow, NULL},
        {"overflow-noguard", overflow_noguard, NULL},
        {"sleepok", sleepok, NULL},
        {"foreign-exit-deadlock", foreign_exit_deadlock, NULL},
        {"foreign-before-main", foreign_before_main, before_foreign_before_main},
        {"releaseblocked", releaseblocked, NULL},
        {"spawn-enomem", spawn_enomem, NULL},
        {"leakmain", leakmain, NULL},
        {"init-emfile", noop, before_init_emfile},
        {"leakmain-ok", leakmain_ok, NULL},
        {"sim-leftover", sim_leftover, NULL},
        {"sim-netdeadlock", sim_netdeadlock, NULL},
        {"sigquit", sigquit, NULL},
        {"fatal-trace", fatal_trace, NULL},
    };
    if (argc != 2) {
        fprintf(stderr, "usage: crashers <case>\ncases:");
        for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++)
            fprintf(stderr, " %s", cases[i].name);
        fprintf(stderr, "\n");
        return 64;
    }
    alarm(30); /* hang guard: SIGALRM kills us */
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        if (strcmp(argv[1], cases[i].name) != 0)
            continue;
        if (cases[i].before)
            cases[i].before();
        return gorc_main(cases[i].fn, NULL) == 0 ? 0 : 13;
    }
    fprintf(stderr, "crashers: unknown case %s\n", argv[1]);
    return 64;
}
