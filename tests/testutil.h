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
