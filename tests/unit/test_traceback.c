/*
 * test_traceback.c - goroutine stacks without a symboliser (cmocka; bodies run as goroutines).
 *
 * A goroutine parked at the end of a known call chain (tb_top -> tb_mid -> tb_leaf -> a
 * channel receive) is unwound from its saved context: its pcs fall in those functions, in
 * that order, and its spawn site in the function that spawned it. A goroutine spinning on
 * another thread is interrupted for its stack (where the variant delivers signals to a busy
 * thread: not under ThreadSanitizer, which defers them, so that part is skipped there with a
 * message). One inside gorc_blocking is not interrupted and says so. The unwinder stops at a
 * frame chain that leaves its stack, runs backwards, loops or is misaligned. The goroutine
 * table (gorc_goroutines), the dump text, a user symboliser, and every error code.
 *
 * Addresses are attributed to the nearest known function start below them (the test binary
 * has no dynamic symbols for dladdr; test_symbolize checks names with libdw).
 */
#include "testutil.h"

#include "runtime/runtime.h"
#include <gorc_debug.h>

#include <stdatomic.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

static gorc_chan *gate;
static volatile int sink;
static _Atomic int spin_stop;

__attribute__((noinline)) void tb_leaf(void)
{
    int x;
    gorc_chan_recv(gate, &x);
    sink++;
}

__attribute__((noinline)) void tb_mid(void)
{
    tb_leaf();
    sink++;
}

__attribute__((noinline)) void tb_top(void *arg)
{
    (void)arg;
    tb_mid();
    sink++;
}

__attribute__((noinline)) void tb_spin(void *arg)
{
    (void)arg;
    while (!atomic_load_explicit(&spin_stop, memory_order_relaxed))
        sink++;
}

static void *nap(void *arg)
{
    (void)arg;
    struct timespec ts = {0, 300 * 1000 * 1000};
    nanosleep(&ts, NULL);
    return NULL;
}

__attribute__((noinline)) void tb_blocker(void *arg)
{
    (void)arg;
    gorc_blocking(nap, NULL);
    sink++;
}

__attribute__((noinline)) static uint64_t tb_spawner(gorc_fn fn)
{
    uint64_t before = gorc_leak_mark();
    CHECK_EQ(gorc_go(fn, NULL), 0);
    sink++;
    return before + 1;
}

static uintptr_t fn_addr(void (*f)(void))
{
    return (uintptr_t)f;
}

/* Which of the known functions pc falls in: the nearest start below it, within 4 KiB. */
static const char *where(uintptr_t pc)
{
    static const struct {
        const char *name;
        void (*f)(void);
    } known[] = {
        {"tb_leaf", tb_leaf},
        {"tb_mid", tb_mid},
        {"tb_top", (void (*)(void))tb_top},
        {"tb_spin", (void (*)(void))tb_spin},
        {"tb_blocker", (void (*)(void))tb_blocker},
        {"tb_spawner", (void (*)(void))tb_spawner},
    };
    const char *best = NULL;
    uintptr_t bestf = 0;
    for (size_t i = 0; i < sizeof known / sizeof known[0]; i++) {
        uintptr_t f = fn_addr(known[i].f);
        if (f < pc && pc - f < 4096 && f > bestf) {
            bestf = f;
            best = known[i].name;
        }
    }
    return best ? best : "?";
}

static gorc_goroutine_info *find_info(uint64_t id, gorc_goroutine_info *buf, size_t cap)
{
    size_t n = gorc_goroutines(buf, cap);
    for (size_t i = 0; i < n && i < cap; i++)
        if (buf[i].id == id)
            return &buf[i];
    return NULL;
}

GO_TEST(test_parked_chain)
{
    (void)arg;
    CHECK_EQ(gorc_chan_new(&gate, sizeof(int), 0), 0);
    int64_t t0 = gorc_now();
    uint64_t id = tb_spawner(tb_top);
    gorc_sleep(20 * GORC_MILLISECOND);
    uintptr_t pcs[64];
    int n = gorc_goroutine_pcs(id, pcs, 64);
    CHECK(n >= 3);
    int i = 0;
    while (i < n && strcmp(where(pcs[i]), "tb_leaf") != 0)
        i++;
    if (i + 2 >= n || strcmp(where(pcs[i + 1]), "tb_mid") != 0 ||
        strcmp(where(pcs[i + 2]), "tb_top") != 0) {
        for (int k = 0; k < n; k++)
            fprintf(stderr, "frame %d: %p %s\n", k, (void *)pcs[k], where(pcs[k]));
        CHECK(!"chain tb_leaf <- tb_mid <- tb_top not found");
    }
    /* Fewer slots: the innermost frames only. */
    CHECK_EQ(gorc_goroutine_pcs(id, pcs, 2), 2);

    gorc_goroutine_info info[64];
    gorc_goroutine_info *gi = find_info(id, info, 64);
    CHECK(gi != NULL);
    CHECK(gi->waiting);
    CHECK(strcmp(gi->state, "chan receive") == 0);
    CHECK(gi->start_fn == (uintptr_t)tb_top);
    CHECK(strcmp(where(gi->spawn_pc), "tb_spawner") == 0);
    CHECK_EQ(gi->parent, gorc_id());
    CHECK(gi->since >= t0 && gi->since <= gorc_now());
    CHECK(!gi->system);
    CHECK(gorc_goroutines(NULL, 0) >= 2);

    char text[8192];
    ssize_t len = gorc_goroutine_stack(id, text, sizeof text);
    CHECK(len > 0 && (size_t)len < sizeof text);
    CHECK_EQ(strlen(text), len);
    char head[64];
    snprintf(head, sizeof head, "goroutine %llu [chan receive]:\n", (unsigned long long)id);
    CHECK(strncmp(text, head, strlen(head)) == 0);
    CHECK(strstr(text, "created by ") != NULL);
    char small[16];
    CHECK_EQ(gorc_goroutine_stack(id, small, sizeof small), len);
    CHECK_EQ(strlen(small), sizeof small - 1);
    CHECK_EQ(gorc_goroutine_stack(id, NULL, 0), len);

    ssize_t all = gorc_stack_all(NULL, 0);
    CHECK(all > len);
    char *dump = malloc((size_t)all + 1);
    CHECK(dump != NULL);
    CHECK(gorc_stack_all(dump, (size_t)all + 1) <= all + 64);
    CHECK(strstr(dump, head) != NULL);
    CHECK(strstr(dump, "goroutine 1 [running]:\n") != NULL || gorc_id() != 1);
    free(dump);

    int one = 1;
    CHECK_EQ(gorc_chan_send(gate, &one), 0);
    wait_count(1);
    CHECK_EQ(gorc_goroutine_pcs(id, pcs, 64), -ESRCH);
    CHECK_EQ(gorc_goroutine_stack(id, text, sizeof text), -ESRCH);
    gorc_chan_release(gate);
}

/* The same chain while a park hook is on (the block profile: gorc__park's out-of-line path,
 * which once tail-called away the frame tracebacks start from), and for a goroutine parked
 * while the flag changes nothing else: the frames must be those of the plain park. */
GO_TEST(test_parked_chain_hooked)
{
    (void)arg;
    gorc_set_block_profile_rate(1);
    CHECK_EQ(gorc_chan_new(&gate, sizeof(int), 0), 0);
    uint64_t id = tb_spawner(tb_top);
    gorc_sleep(20 * GORC_MILLISECOND);
    uintptr_t pcs[64];
    int n = gorc_goroutine_pcs(id, pcs, 64);
    int i = 0;
    while (i < n && strcmp(where(pcs[i]), "tb_leaf") != 0)
        i++;
    if (i + 2 >= n || strcmp(where(pcs[i + 1]), "tb_mid") != 0 ||
        strcmp(where(pcs[i + 2]), "tb_top") != 0) {
        for (int k = 0; k < n; k++)
            fprintf(stderr, "frame %d: %p %s\n", k, (void *)pcs[k], where(pcs[k]));
        CHECK(!"chain tb_leaf <- tb_mid <- tb_top not found with the block profile on");
    }
    int one = 1;
    CHECK_EQ(gorc_chan_send(gate, &one), 0);
    gorc_set_block_profile_rate(0);
    gorc_chan_release(gate);
}

GO_TEST(test_own_stack)
{
    (void)arg;
    uintptr_t pcs[64];
    int n = gorc_goroutine_pcs(gorc_id(), pcs, 64);
    CHECK(n >= 2);
    char text[8192];
    CHECK(gorc_goroutine_stack(gorc_id(), text, sizeof text) > 0);
    CHECK(strstr(text, "[running]:\n") != NULL);
}

GO_TEST(test_running_elsewhere)
{
    (void)arg;
    if (gorc_maxprocs() < 2) {
        fprintf(stderr, "one P: no goroutine runs beside this one; skipped\n");
        return;
    }
    atomic_store(&spin_stop, 0);
    uint64_t id = tb_spawner(tb_spin);
    gorc_sleep(20 * GORC_MILLISECOND);
    uintptr_t pcs[64];
    int n = -EAGAIN;
    for (int tries = 0; tries < 20 && n < 0; tries++) {
        n = gorc_goroutine_pcs(id, pcs, 64);
        if (n < 0)
            gorc_sleep(5 * GORC_MILLISECOND);
    }
#ifdef GORC__TSAN
    if (n < 0) {
        fprintf(stderr, "ThreadSanitizer defers signals to a busy thread: interrupting a "
                        "running goroutine not checked\n");
        atomic_store(&spin_stop, 1);
        wait_count(1);
        return;
    }
#endif
    CHECK(n >= 1);
#ifdef GORC__TSAN
    if (strcmp(where(pcs[0]), "tb_spin") != 0)
        fprintf(stderr, "ThreadSanitizer delivered the signal inside its own runtime: the "
                        "interrupted pc is not checked\n");
#else
    CHECK(strcmp(where(pcs[0]), "tb_spin") == 0);
#endif
    atomic_store(&spin_stop, 1);
    wait_count(1);
}

GO_TEST(test_blocking_not_interrupted)
{
    (void)arg;
    uint64_t id = tb_spawner(tb_blocker);
    gorc_sleep(50 * GORC_MILLISECOND);
    uintptr_t pcs[8];
    CHECK_EQ(gorc_goroutine_pcs(id, pcs, 8), -EAGAIN);
    char text[1024];
    CHECK(gorc_goroutine_stack(id, text, sizeof text) > 0);
    CHECK(strstr(text, "[syscall]:") != NULL);
    CHECK(strstr(text, "stack unavailable") != NULL);
    wait_count(1);
}

/* A stack of 32 words with frame records laid out by hand. */
static void test_unwind_bounds(void **state)
{
    (void)state;
    uintptr_t st[32] = {0}, pcs[16];
    uintptr_t lo = (uintptr_t)st, hi = (uintptr_t)(st + 32);
    /* A good chain of three records ending in a zero return address. */
    st[2] = (uintptr_t)&st[6];
    st[3] = 0x1001;
    st[6] = (uintptr_t)&st[10];
    st[7] = 0x1002;
    st[10] = 0;
    st[11] = 0;
    assert_int_equal(gorc__unwind(0x1000, (uintptr_t)&st[2], lo, hi, pcs, 16), 3);
    assert_true(pcs[0] == 0x1000 && pcs[1] == 0x1001 && pcs[2] == 0x1002);
    /* Backwards: a record pointing below itself ends the walk after its return address. */
    st[6] = (uintptr_t)&st[2];
    assert_int_equal(gorc__unwind(0x1000, (uintptr_t)&st[2], lo, hi, pcs, 16), 3);
    /* A loop onto itself. */
    st[6] = (uintptr_t)&st[6];
    assert_int_equal(gorc__unwind(0x1000, (uintptr_t)&st[2], lo, hi, pcs, 16), 3);
    /* Out of the stack: never dereferenced. */
    st[6] = (uintptr_t)0x10;
    assert_int_equal(gorc__unwind(0x1000, (uintptr_t)&st[2], lo, hi, pcs, 16), 3);
    st[6] = hi; /* the record would straddle the top */
    assert_int_equal(gorc__unwind(0x1000, (uintptr_t)&st[2], lo, hi, pcs, 16), 3);
    /* Misaligned. */
    st[6] = (uintptr_t)&st[10] + 1;
    assert_int_equal(gorc__unwind(0x1000, (uintptr_t)&st[2], lo, hi, pcs, 16), 3);
    /* A start outside the bounds gives the pc alone; max bounds the count. */
    assert_int_equal(gorc__unwind(0x1000, (uintptr_t)&st[2], lo + 64, hi, pcs, 16), 1);
    st[6] = (uintptr_t)&st[10];
    assert_int_equal(gorc__unwind(0x1000, (uintptr_t)&st[2], lo, hi, pcs, 2), 2);
    assert_int_equal(gorc__unwind(0, 0, 0, 0, pcs, 16), 0);
}

static bool fake_sym(uintptr_t pc, gorc_symbol *out, void *arg)
{
    (void)pc;
    CHECK(arg == &sink);
    out->function = "fake_fn";
    out->offset = 0x10;
    out->file = "fake.c";
    out->line = 42;
    return true;
}

GO_TEST(test_symbolizer_hook)
{
    (void)arg;
    gorc_symbol s;
    CHECK(!gorc_symbolize(0, &s));
    CHECK(!gorc_symbolize((uintptr_t)tb_top, NULL));
    gorc_set_symbolizer(fake_sym, (void *)&sink);
    CHECK(gorc_symbolize((uintptr_t)tb_top, &s));
    CHECK(strcmp(s.function, "fake_fn") == 0 && s.line == 42);
    char text[8192];
    CHECK(gorc_goroutine_stack(gorc_id(), text, sizeof text) > 0);
    CHECK(strstr(text, "fake_fn(...)\n\tfake.c:42 +0x") != NULL);
    gorc_set_symbolizer(NULL, NULL);
    CHECK(gorc_goroutine_stack(gorc_id(), text, sizeof text) > 0);
    CHECK(strstr(text, "fake_fn") == NULL);
    /* dladdr alone: the module of an address in this program. */
    CHECK(gorc_symbolize((uintptr_t)tb_top, &s));
    CHECK(s.module != NULL && s.module_offset > 0);
}

GO_TEST(test_dump_has_stacks)
{
    (void)arg;
    CHECK_EQ(gorc_chan_new(&gate, sizeof(int), 0), 0);
    uint64_t id = tb_spawner(tb_top);
    gorc_sleep(10 * GORC_MILLISECOND);
    char path[] = "/tmp/gorc-dump-XXXXXX";
    int fd = mkstemp(path);
    CHECK(fd >= 0);
    unlink(path);
    fflush(stderr);
    int saved = dup(2);
    CHECK(dup2(fd, 2) == 2);
    gorc_dump();
    fflush(stderr);
    dup2(saved, 2);
    close(saved);
    char out[16384];
    ssize_t k = pread(fd, out, sizeof out - 1, 0);
    close(fd);
    CHECK(k > 0);
    out[k] = 0;
    char head[64];
    snprintf(head, sizeof head, "goroutine %llu [chan receive]:\n", (unsigned long long)id);
    CHECK(strstr(out, head) != NULL);
    CHECK(strstr(out, "created by ") != NULL);
    CHECK(strstr(out, "\t") != NULL);
    int one = 1;
    CHECK_EQ(gorc_chan_send(gate, &one), 0);
    wait_count(1);
    gorc_chan_release(gate);
}

GO_TEST(test_errors)
{
    (void)arg;
    char buf[16];
    uintptr_t pcs[4];
    CHECK_EQ(gorc_goroutine_stack(UINT64_MAX, buf, sizeof buf), -ESRCH);
    CHECK_EQ(gorc_goroutine_stack(gorc_id(), NULL, 5), -EINVAL);
    CHECK_EQ(gorc_goroutine_pcs(UINT64_MAX, pcs, 4), -ESRCH);
    CHECK_EQ(gorc_goroutine_pcs(gorc_id(), NULL, 4), -EINVAL);
    CHECK_EQ(gorc_goroutine_pcs(gorc_id(), pcs, -1), -EINVAL);
    CHECK_EQ(gorc_goroutine_pcs(gorc_id(), NULL, 0), 0);
    CHECK_EQ(gorc_stack_all(NULL, 3), -EINVAL);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_parked_chain),
        cmocka_unit_test(test_parked_chain_hooked),
        cmocka_unit_test(test_own_stack),
        cmocka_unit_test(test_running_elsewhere),
        cmocka_unit_test(test_blocking_not_interrupted),
        cmocka_unit_test(test_unwind_bounds),
        cmocka_unit_test(test_symbolizer_hook),
        cmocka_unit_test(test_dump_has_stacks),
        cmocka_unit_test(test_errors),
    };
    return cmocka_run_group_tests_name("traceback", tests, NULL, NULL);
}
