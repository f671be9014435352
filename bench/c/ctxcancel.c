/* ctxcancel: 1,000,000 times, a cancellable child of a request context (itself cancellable),
 * cancelled and released - what a handler does per backend call. Prints wall-clock ns per
 * child. Go counterpart: bench/go/ctxcancel (context.WithCancel + cancel()). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "gorc_context.h"

enum { N = 1000000 };

static void check(int rc, const char *what)
{
    if (rc < 0) {
        fprintf(stderr, "ctxcancel: %s: %s\n", what, gorc_strerror(rc));
        exit(1);
    }
}

static void body(void *arg)
{
    (void)arg;
    gorc_ctx *req;
    check(gorc_ctx_with_cancel(&req, gorc_ctx_background()), "with_cancel");
    int64_t start = gorc_now();
    for (int i = 0; i < N; i++) {
        gorc_ctx *c;
        check(gorc_ctx_with_cancel(&c, req), "with_cancel");
        gorc_ctx_cancel(c);
        gorc_ctx_release(c);
    }
    int64_t ns = gorc_now() - start;
    if (gorc_ctx_err(req) != 0)
        check(-EPROTO, "the parent was cancelled");
    gorc_ctx_cancel(req);
    gorc_ctx_release(req);
    printf("%.1f\n", (double)ns / N);
}

int main(void)
{
    check(gorc_main(body, NULL), "gorc_main");
    return 0;
}
