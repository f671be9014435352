/*
 * fetch.c - fetch many URLs at once: one goroutine per URL, results over a channel.
 *
 *   make build/release/examples/fetch
 *   build/release/examples/fetch http://127.0.0.1:8080/ http://127.0.0.1:8080/big ...
 *
 * The classic Go fan-out: every URL gets its own goroutine, which GETs it with a shared
 * client (following redirects, reusing kept-alive connections) and counts the body's bytes;
 * the main goroutine prints one line per URL, in the order they finish:
 *
 *   status bytes time url          e.g.   200 1048576 12.3ms http://127.0.0.1:8080/big
 *
 * A failed fetch prints "ERR -" instead of status and size, and the error on stderr. The exit
 * status is 0 when every fetch succeeded (whatever its HTTP status), 1 otherwise. Nothing blocks a
 * thread: a slow server only parks the goroutine that waits for it.
 */
#include <gorc.h>
#include <gorc_http.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

typedef struct result {
    const char *url;
    int status;    /* HTTP status, or 0 on error */
    int err;       /* negative errno, 0 on success */
    int64_t bytes; /* body bytes read */
    int64_t ns;    /* time taken */
} result;

/* Words for the errors a fetch can end with (strerror's are about files and devices). */
static const char *errtext(int err)
{
    switch (err) {
    case GORC_HTTP_ETOOMANYREDIRECTS:
        return "too many redirects";
    case GORC_HTTP_EBADMSG:
        return "malformed response";
    case GORC_ENOHOST:
        return "no such host";
    case GORC_EUNEXPECTEDEOF:
        return "connection closed mid-response";
    case -EPROTONOSUPPORT:
        return "unsupported protocol scheme (http:// only)";
    case -EINVAL:
        return "invalid URL";
    default:
        return strerror(-err);
    }
}

typedef struct job {
    const char *url;
    gorc_http_client *client;
    gorc_chan *results; /* result */
} job;

/* GET one URL and count its body, without keeping it. */
static void fetch(void *arg)
{
    job *j = arg;
    result res = {.url = j->url};
    int64_t start = gorc_now();
    gorc_http_response *r;
    res.err = gorc_http_client_get(j->client, j->url, &r);
    if (res.err == 0) {
        res.status = r->status;
        char buf[16384];
        ssize_t n;
        while ((n = gorc_http_response_read(r, buf, sizeof buf)) > 0)
            res.bytes += n;
        if (n < 0)
            res.err = (int)n;
        gorc_http_response_close(r);
    }
    res.ns = gorc_now() - start;
    gorc_chan_send(j->results, &res);
}

typedef struct args {
    int argc;
    char **argv;
    int failed;
} args;

static void run(void *arg)
{
    args *a = arg;
    int n = a->argc - 1;
    gorc_http_client *client;
    gorc_chan *results;
    job *jobs = calloc((size_t)n, sizeof *jobs);
    if (jobs == NULL || gorc_http_client_new(&client, NULL) < 0 ||
        gorc_chan_new(&results, sizeof(result), (size_t)n) < 0) {
        fprintf(stderr, "fetch: out of memory\n");
        a->failed = n;
        return;
    }
    for (int i = 0; i < n; i++) {
        jobs[i] = (job){a->argv[i + 1], client, results};
        if (gorc_go(fetch, &jobs[i]) < 0) {
            result res = {.url = jobs[i].url, .err = -ENOMEM};
            gorc_chan_send(results, &res);
        }
    }
    for (int i = 0; i < n; i++) {
        result res;
        gorc_chan_recv(results, &res);
        double ms = (double)res.ns / 1e6;
        if (res.err == 0) {
            printf("%d %lld %.1fms %s\n", res.status, (long long)res.bytes, ms, res.url);
        } else {
            printf("ERR - %.1fms %s\n", ms, res.url);
            fprintf(stderr, "fetch: %s: %s\n", res.url, errtext(res.err));
            a->failed++;
        }
        fflush(stdout);
    }
    gorc_chan_release(results);
    gorc_http_client_free(client);
    free(jobs);
}

int main(int argc, char **argv)
{
    if (argc < 2 || strcmp(argv[1], "-h") == 0 || strcmp(argv[1], "--help") == 0) {
        fprintf(stderr,
                "usage: %s URL...\n"
                "GET every URL concurrently and print \"status bytes time url\" for\n"
                "each as it finishes (http:// only).\n",
                argv[0]);
        return 2;
    }
    args a = {argc, argv, 0};
    if (gorc_main(run, &a) != 0)
        return 1;
    return a.failed ? 1 : 0;
}
