/*
 * testutil.h - what every gorc test file shares.
 *
 * Tests use cmocka. cmocka's assertions longjmp back to the test function on failure, which
 * must not happen from a goroutine (another stack, often another thread), so:
 *   - test bodies run as goroutines via GO_TEST, and check conditions with CHECK / CHECK_EQ,
 *     which print the failing expression and abort the test binary (the runner reports it);
 *   - plain cmocka assert_* may be used in the test function itself, outside goroutines.
 *
 * Scale: tests that create very many goroutines or run long loops multiply their counts by
 * test_scale(): 1 normally, smaller under sanitizers, Valgrind and qemu (GORC_TEST_SCALE
 * holds a divisor, set by tests/run-variant).
 */
#ifndef GORC_TESTUTIL_H
#define GORC_TESTUTIL_H

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <gorc.h>
#include <stdio.h>
#include <stdlib.h>

#define CHECK(cond)                                                                                \
    do {                                                                                           \
        if (!(cond)) {                                                                             \
            fprintf(stderr, "%s:%d: CHECK failed: %s\n", __FILE__, __LINE__, #cond);               \
            abort();                                                                               \
        }                                                                                          \
    } while (0)

#define CHECK_EQ(a, b)                                                                             \
    do {                                                                                           \
        long long va_ = (long long)(a), vb_ = (long long)(b);                                      \
        if (va_ != vb_) {                                                                          \
            fprintf(stderr, "%s:%d: CHECK_EQ failed: %s == %s (%lld != %lld)\n", __FILE__,         \
                    __LINE__, #a, #b, va_, vb_);                                                   \
            abort();                                                                               \
        }                                                                                          \
    } while (0)

/* Divide large counts by this (>= 1). */
static inline long test_div(void)
{
    const char *s = getenv("GORC_TEST_SCALE");
    long d = s ? atol(s) : 1;
    return d > 0 ? d : 1;
}

static inline long scaled(long n)
{
    long r = n / test_div();
    return r > 0 ? r : 1;
}

/* posix_spawn for tests that run a child process. Under an emulator (the arm64 variant runs
 * under qemu-user, which cannot follow execve of a foreign binary by itself) the child is
 * started through the program named by GORC_TEST_RUNNER. argv[0] must be the path of exe. */
#include <spawn.h>
#include <string.h>
static inline int test_spawn(pid_t *pid, const char *exe, const posix_spawn_file_actions_t *fa,
                             char *const argv[], char *const envp[])
{
    const char *runner = getenv("GORC_TEST_RUNNER");
    if (runner == NULL || *runner == 0)
        return posix_spawn(pid, exe, fa, NULL, argv, envp);
    char *av[64];
    int n = 0;
    av[n++] = (char *)runner;
    for (int i = 0; argv[i] != NULL && n < 63; i++)
        av[n++] = i == 0 ? (char *)exe : argv[i];
    av[n] = NULL;
    return posix_spawnp(pid, runner, fa, NULL, av, envp);
}

/* Wait (parking, so never a deadlock) until gorc_count() is back to n; hang guard 60 s. */
static inline void wait_count(int64_t n)
{
    int64_t deadline = gorc_now() + 60 * GORC_SECOND;
    while (gorc_count() > n) {
        CHECK(gorc_now() < deadline);
        gorc_sleep(GORC_MILLISECOND / 2);
    }
    CHECK_EQ(gorc_count(), n);
}

/* The goroutine count with only the calling (main) goroutine left. The previous test's main
 * goroutine may still be on its way out when gorc_main has returned, hence the wait. */
static inline int64_t base_count(void)
{
    wait_count(1);
    return 1;
}

/* GO_TEST(name) { ... } defines a cmocka test whose body runs as the main goroutine. */
#define GO_TEST(name)                                                                              \
    static void name##_body(void *arg);                                                            \
    static void name(void **state)                                                                 \
    {                                                                                              \
        (void)state;                                                                               \
        assert_int_equal(gorc_main(name##_body, NULL), 0);                                         \
    }                                                                                              \
    static void name##_body(void *arg)

#endif
