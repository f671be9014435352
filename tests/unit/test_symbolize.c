/*
 * test_symbolize.c - libgorc_symbolize: names, static functions and file:line (cmocka).
 *
 * With the libdw symboliser installed, a parked goroutine's dump names its whole known call
 * chain, the static function included, each with this file and a line; its spawn site names
 * the spawning function; a CPU profile's locations carry the burning function's name, and
 * the goroutine profile's debug=1 text the chain. Where libdw is not available for the
 * target (the arm64 cross build), the test says so and skips.
 */
#include "testutil.h"

#include <gorc_debug.h>

#ifdef GORC_TEST_NO_LIBDW
static void test_no_libdw(void **state)
{
    (void)state;
    fprintf(stderr, "libdw is not available for this target: libgorc_symbolize not built, "
                    "test skipped\n");
    skip();
}

int main(void)
{
    const struct CMUnitTest tests[] = {cmocka_unit_test(test_no_libdw)};
    return cmocka_run_group_tests_name("symbolize", tests, NULL, NULL);
}
#else
#include <gorc_symbolize.h>

#include <stdatomic.h>
#include <string.h>

static gorc_chan *gate;
static volatile int sink;

__attribute__((noinline)) static void sy_static_leaf(void)
{
    int x;
    gorc_chan_recv(gate, &x);
    sink++;
}

__attribute__((noinline)) void sy_middle(void)
{
    sy_static_leaf();
    sink++;
}

__attribute__((noinline)) void sy_top(void *arg)
{
    (void)arg;
    sy_middle();
    sink++;
}

__attribute__((noinline)) void sy_spawner(void)
{
    CHECK_EQ(gorc_go(sy_top, NULL), 0);
    sink++;
}

static void expect(const char *text, const char *what)
{
    if (strstr(text, what) == NULL) {
        fprintf(stderr, "missing \"%s\" in:\n%s\n", what, text);
        abort();
    }
}

GO_TEST(test_dump_names)
{
    (void)arg;
    CHECK_EQ(gorc_symbolize_install(), 0);
    CHECK_EQ(gorc_symbolize_install(), 0); /* twice is fine */
    CHECK_EQ(gorc_chan_new(&gate, sizeof(int), 0), 0);
    uint64_t id = gorc_leak_mark() + 1;
    sy_spawner();
    gorc_sleep(10 * GORC_MILLISECOND);
    char text[16384];
    CHECK(gorc_goroutine_stack(id, text, sizeof text) > 0);
    expect(text, "sy_static_leaf(...)\n\t");
    expect(text, "sy_middle(...)\n\t");
    expect(text, "sy_top(...)\n\t");
    expect(text, "test_symbolize.c:");
    expect(text, "created by sy_spawner in goroutine ");
    expect(text, "chan_recv(...)\n\t");
    expect(text, "chan.c:");
    gorc_symbol s;
    CHECK(gorc_symbolize((uintptr_t)sy_static_leaf, &s));
    CHECK(s.function && strcmp(s.function, "sy_static_leaf") == 0);
    CHECK_EQ(s.offset, 0);
    CHECK(s.file && strstr(s.file, "test_symbolize.c") != NULL && s.line > 0);

    char *b;
    size_t n;
    CHECK_EQ(gorc_profile_write("goroutine", 1, &b, &n), 0);
    expect(b, "\tsy_static_leaf+0x");
    expect(b, "test_symbolize.c:");
    free(b);
    int one = 1;
    CHECK_EQ(gorc_chan_send(gate, &one), 0);
    wait_count(1);
    gorc_chan_release(gate);
}

static _Atomic int stop;

__attribute__((noinline)) static void sy_burn(void *arg)
{
    (void)arg;
    while (!atomic_load_explicit(&stop, memory_order_relaxed))
        sink++;
}

GO_TEST(test_profile_names)
{
    (void)arg;
    CHECK_EQ(gorc_symbolize_install(), 0);
    atomic_store(&stop, 0);
    CHECK_EQ(gorc_cpu_profile_start(0), 0);
    CHECK_EQ(gorc_go(sy_burn, NULL), 0);
    gorc_sleep(300 * GORC_MILLISECOND);
    atomic_store(&stop, 1);
    char *b;
    size_t n;
    CHECK_EQ(gorc_cpu_profile_stop(&b, &n), 0);
    /* The name is in the string table of the profile when any sample was taken there. */
    bool found = memmem(b, n, "sy_burn", 7) != NULL;
#ifdef __SANITIZE_THREAD__
    if (!found)
        fprintf(stderr, "ThreadSanitizer defers SIGPROF for a busy thread: no sample of "
                        "sy_burn; not checked\n");
#else
    CHECK(found);
#endif
    free(b);
    wait_count(1);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_dump_names),
        cmocka_unit_test(test_profile_names),
    };
    return cmocka_run_group_tests_name("symbolize", tests, NULL, NULL);
}
#endif
