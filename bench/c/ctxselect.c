/* ctxselect: a consumer receives 5,000,000 ints from a producer over an unbuffered channel,
 * each receive a select on the channel and on a request context (as a cancellable handler
 * reads): gorc_select_ctx, gorc's form of Go's select with a <-ctx.Done() case. Prints
 * wall-clock ns per item. Go counterpart: bench/go/ctxselect. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "gorc_context.h"

enum { N = 5000000 };

static gorc_chan *ch;

static void check(int rc, const char *what)
{
    if (rc < 0) {
        fprintf(stderr, "ctxselect: %s: %s\n", what, gorc_strerror(rc));
        exit(1);
    }
}

static void produce(void *arg)
{
    (void)arg;
    for (int64_t i = 0; i < N; i++)
        check(gorc_chan_send(ch, &i), "send");
    gorc_chan_close(ch);
}

static void body(void *arg)
{
    (void)arg;
    gorc_ctx *ctx;
    check(gorc_ctx_with_cancel(&ctx, gorc_ctx_background()), "with_cancel");
    check(gorc_chan_new(&ch, sizeof(int64_t), 0), "gorc_chan_new");
    int64_t v, sum = 0, items = 0;
    gorc_case cases[1] = {{.chan = ch, .dir = GORC_RECV, .elem = &v}};
    int64_t start = gorc_now();
    check(gorc_go(produce, NULL), "gorc_go");
    for (;;) {
        int i = gorc_select_ctx(cases, 1, ctx);
        check(i, "select");
        if (cases[0].closed)
            break;
        sum += v;
        items++;
    }
    int64_t ns = gorc_now() - start;
    if (items != N || sum != (int64_t)N * (N - 1) / 2)
        check(-EPROTO, "wrong items");
    gorc_ctx_cancel(ctx);
    gorc_ctx_release(ctx);
    gorc_chan_release(ch);
    printf("%.1f\n", (double)ns / N);
}

int main(void)
{
    check(gorc_main(body, NULL), "gorc_main");
    return 0;
}
