/*
 * pprof.c - Go's net/http/pprof for gorc servers: the profiles of runtime/pprof.c over HTTP.
 *
 * Each handler runs on its request's goroutine. The CPU profile handler sleeps for the
 * requested seconds with the request's context, so a client that goes away stops the profile
 * early; one CPU profile runs at a time in a process (the runtime's), so a second request
 * meanwhile gets 500, as in Go. Profiles are written with their own Content-Length: they are
 * built whole in memory by the runtime first.
 */
#include "gorc_context.h"
#include "gorc_http_debug.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define MAX_SECONDS 3600

static void send_blob(gorc_http_rw *w, const char *type, const char *file, const char *b, size_t n)
{
    gorc_http_rw_set_header(w, "Content-Type", type);
    gorc_http_rw_set_header(w, "X-Content-Type-Options", "nosniff");
    if (file) {
        char cd[128];
        snprintf(cd, sizeof cd, "attachment; filename=\"%s\"", file);
        gorc_http_rw_set_header(w, "Content-Disposition", cd);
    }
    char len[32];
    snprintf(len, sizeof len, "%zu", n);
    gorc_http_rw_set_header(w, "Content-Length", len);
    gorc_http_rw_write(w, b, n);
}

static int int_param(gorc_http_request *r, const char *key, int def, int lo, int hi, int *out)
{
    char v[32];
    int k = gorc_http_query_value(r->query, key, v, sizeof v);
    if (k == -ENOENT || (k == 0 && v[0] == 0)) {
        *out = def;
        return 0;
    }
    if (k < 0)
        return -1;
    char *end;
    long x = strtol(v, &end, 10);
    if (*end != 0 || x < lo || x > hi)
        return -1;
    *out = (int)x;
    return 0;
}

void gorc_http_pprof_profile(gorc_http_rw *w, gorc_http_request *r, void *arg)
{
    (void)arg;
    int secs;
    if (int_param(r, "seconds", 30, 1, MAX_SECONDS, &secs) != 0) {
        gorc_http_error(w, 400, "bad seconds");
        return;
    }
    int rc = gorc_cpu_profile_start(0);
    if (rc != 0) {
        char msg[128];
        snprintf(msg, sizeof msg, "Could not enable CPU profiling: %s",
                 rc == -EBUSY ? "cpu profiling already in use" : gorc_strerror(rc));
        gorc_http_error(w, 500, msg);
        return;
    }
    gorc_ctx *ctx = gorc_http_request_ctx(r);
    int slept = gorc_sleep_ctx((int64_t)secs * GORC_SECOND, ctx);
    char *b = NULL;
    size_t n = 0;
    rc = gorc_cpu_profile_stop(&b, &n);
    if (slept != 0) {
        free(b); /* the client is gone */
        return;
    }
    if (rc != 0) {
        gorc_http_error(w, 500, gorc_strerror(rc));
        return;
    }
    send_blob(w, "application/octet-stream", "profile", b, n);
    free(b);
}

void gorc_http_pprof_named(gorc_http_rw *w, gorc_http_request *r, void *arg)
{
    const char *name = arg;
    int debug;
    if (name == NULL) {
        gorc_http_error(w, 404, "Unknown profile");
        return;
    }
    if (int_param(r, "debug", 0, 0, 2, &debug) != 0) {
        gorc_http_error(w, 400, "bad debug");
        return;
    }
    char *b = NULL;
    size_t n = 0;
    int rc = gorc_profile_write(name, debug, &b, &n);
    if (rc == -ENOENT) {
        gorc_http_error(w, 404, "Unknown profile");
        return;
    }
    if (rc != 0) {
        gorc_http_error(w, 500, gorc_strerror(rc));
        return;
    }
    if (debug > 0)
        send_blob(w, "text/plain; charset=utf-8", NULL, b, n);
    else
        send_blob(w, "application/octet-stream", name, b, n);
    free(b);
}

void gorc_http_pprof_cmdline(gorc_http_rw *w, gorc_http_request *r, void *arg)
{
    (void)r;
    (void)arg;
    char buf[8192];
    size_t n = 0;
    FILE *f = fopen("/proc/self/cmdline", "re");
    if (f) {
        n = fread(buf, 1, sizeof buf, f);
        fclose(f);
    }
    send_blob(w, "text/plain; charset=utf-8", NULL, buf, n);
}

static const struct {
    const char *name, *what;
} profiles[] = {
    {"block", "Stack traces that led to blocking on synchronization primitives "
              "(gorc_set_block_profile_rate turns it on)"},
    {"goroutine", "Stack traces of all current goroutines. Use debug=2 as a query parameter to "
                  "export in the same format as an unrecovered panic."},
    {"mutex", "Stack traces of waiters for contended mutexes "
              "(gorc_set_mutex_profile_fraction turns it on)"},
    {"profile", "CPU profile. You can specify the duration in the seconds GET parameter. After "
                "you get the profile file, use the go tool pprof command to investigate the "
                "profile."},
};

void gorc_http_pprof_index(gorc_http_rw *w, gorc_http_request *r, void *arg)
{
    (void)r;
    (void)arg;
    gorc_http_rw_set_header(w, "Content-Type", "text/html; charset=utf-8");
    gorc_http_rw_write_string(w, "<html>\n<head>\n<title>/debug/pprof/</title>\n</head>\n<body>\n"
                                 "/debug/pprof/<br>\n<br>\nTypes of profiles available:\n"
                                 "<table>\n<thead><td>Count</td><td>Profile</td></thead>\n");
    for (size_t i = 0; i < sizeof profiles / sizeof profiles[0]; i++) {
        const char *link = profiles[i].name;
        long count = 0;
        if (strcmp(link, "goroutine") == 0)
            count = (long)gorc_goroutines(NULL, 0);
        gorc_http_rw_printf(w, "<tr><td>%ld</td><td><a href=\"%s%s\">%s</a></td></tr>\n", count,
                            link, strcmp(link, "profile") ? "?debug=1" : "", link);
    }
    gorc_http_rw_write_string(w, "</table>\n<a href=\"goroutine?debug=2\">full goroutine stack "
                                 "dump</a>\n<br>\n<p>\nProfile Descriptions:\n<ul>\n");
    for (size_t i = 0; i < sizeof profiles / sizeof profiles[0]; i++)
        gorc_http_rw_printf(w, "<li><div class=profile-name>%s: </div> %s</li>\n", profiles[i].name,
                            profiles[i].what);
    gorc_http_rw_write_string(w, "</ul>\n</p>\n</body>\n</html>\n");
}

int gorc_http_pprof_register(gorc_http_mux *m, const char *prefix)
{
    if (prefix == NULL)
        prefix = "/debug/pprof";
    size_t pl = strlen(prefix);
    if (m == NULL || prefix[0] != '/' || pl > 200)
        return -EINVAL;
    if (prefix[pl - 1] == '/')
        pl--;
    static const char *const named[] = {"goroutine", "block", "mutex"};
    char pat[256];
    int rc;
    snprintf(pat, sizeof pat, "GET %.*s/{$}", (int)pl, prefix);
    if ((rc = gorc_http_mux_handle(m, pat, gorc_http_pprof_index, NULL)) != 0)
        return rc;
    snprintf(pat, sizeof pat, "GET %.*s/profile", (int)pl, prefix);
    if ((rc = gorc_http_mux_handle(m, pat, gorc_http_pprof_profile, NULL)) != 0)
        return rc;
    snprintf(pat, sizeof pat, "GET %.*s/cmdline", (int)pl, prefix);
    if ((rc = gorc_http_mux_handle(m, pat, gorc_http_pprof_cmdline, NULL)) != 0)
        return rc;
    for (size_t i = 0; i < sizeof named / sizeof named[0]; i++) {
        snprintf(pat, sizeof pat, "GET %.*s/%s", (int)pl, prefix, named[i]);
        if ((rc = gorc_http_mux_handle(m, pat, gorc_http_pprof_named, (void *)named[i])) != 0)
            return rc;
    }
    return 0;
}
