/*
 * test_errors.c - gorc_strerror and the version functions (cmocka; plain calls, no goroutines).
 *
 * Covers: every error code to which gorc gives a meaning of its own gets gorc's message, not
 * the C library's (which would say "Broken pipe" for a closed channel or "No data available"
 * for an unexpected EOF); the sign of the argument does not matter; 0 is "success"; ordinary
 * errno values get the C library's text; unknown and extreme values get "unknown error" and
 * never NULL. gorc_version and gorc_version_string report the header's version.
 */
#include "testutil.h"

#include <gorc_http.h>
#include <gorc_net.h>

#include <gorc_websocket.h>
#include <limits.h>
#include <string.h>

static void test_own_meanings(void **state)
{
    (void)state;
    struct {
        int code;
        const char *words; /* a part of the message that names gorc's meaning */
    } own[] = {
        {GORC_ECLOSED, "channel closed"},
        {GORC_ETIMEDOUT, "i/o timeout"},
        {GORC_ETIMEDOUT, "context deadline exceeded"},
        {-ECANCELED, "context canceled"},
        {GORC_EAGAIN, "would block"},
        {GORC_ENETCLOSED, "use of closed network connection"},
        {GORC_EUNEXPECTEDEOF, "unexpected EOF"},
        {GORC_ENOHOST, "no such host"},
        {GORC_HTTP_ESERVERCLOSED, "http: Server closed"},
        {GORC_HTTP_EBODYNOTALLOWED, "does not allow body"},
        {GORC_HTTP_ETOOMANYREDIRECTS, "redirects"},
        {GORC_HTTP_EBADMSG, "malformed HTTP"},
        {GORC_HTTP_ETOOLARGE, "body too large"},
        {GORC_WS_ECLOSED, "websocket: close"},
        {GORC_WS_EPROTO, "1002"},
        {GORC_WS_EBADDATA, "1007"},
        {GORC_WS_ETOOBIG, "1009"},
        {GORC_WS_EHANDSHAKE, "bad handshake"},
    };
    for (size_t i = 0; i < sizeof own / sizeof own[0]; i++) {
        const char *m = gorc_strerror(own[i].code);
        assert_non_null(m);
        if (strstr(m, own[i].words) == NULL)
            fail_msg("gorc_strerror(%d) = \"%s\", want it to say \"%s\"", own[i].code, m,
                     own[i].words);
        /* The positive errno value means the same. */
        assert_string_equal(gorc_strerror(-own[i].code), m);
        /* And it is not what the C library alone would say. */
        assert_string_not_equal(m, strerror(-own[i].code));
    }
}

static void test_plain_errno(void **state)
{
    (void)state;
    assert_string_equal(gorc_strerror(0), "success");
    assert_string_equal(gorc_strerror(-ENOENT), strerror(ENOENT));
    assert_string_equal(gorc_strerror(-EINVAL), strerror(EINVAL));
    assert_string_equal(gorc_strerror(ENOMEM), strerror(ENOMEM));
    assert_string_equal(gorc_strerror(-EMFILE), strerror(EMFILE));
}

static void test_unknown(void **state)
{
    (void)state;
    assert_string_equal(gorc_strerror(-99999), "unknown error");
    assert_string_equal(gorc_strerror(99999), "unknown error");
    assert_string_equal(gorc_strerror(INT_MIN), "unknown error");
    assert_string_equal(gorc_strerror(INT_MAX), "unknown error");
}

static void test_version(void **state)
{
    (void)state;
    assert_int_equal(gorc_version(), GORC_VERSION_NUMBER);
    char want[32];
    snprintf(want, sizeof want, "%d.%d.%d", GORC_VERSION_MAJOR, GORC_VERSION_MINOR,
             GORC_VERSION_PATCH);
    assert_string_equal(gorc_version_string(), want);
    assert_int_equal(GORC_VERSION_NUMBER >> 16, GORC_VERSION_MAJOR);
    assert_int_equal((GORC_VERSION_NUMBER >> 8) & 0xff, GORC_VERSION_MINOR);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_own_meanings),
        cmocka_unit_test(test_plain_errno),
        cmocka_unit_test(test_unknown),
        cmocka_unit_test(test_version),
    };
    return cmocka_run_group_tests_name("errors", tests, NULL, NULL);
}
