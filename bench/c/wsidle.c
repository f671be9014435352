/*
 * wsidle.c - bench/run's wsidle server (gorc side): a WebSocket echo server on ADDR whose
 * connections sit idle, measured from outside by bench/wsidle.py (resident bytes per idle
 * connection). The handler upgrades and hands the connection to a goroutine of its own,
 * which waits in gorc_ws_read_message: no read buffer is held while it waits.
 */
#include <gorc.h>
#include <gorc_http.h>
#include <gorc_websocket.h>

#include <stdio.h>
#include <stdlib.h>
#include <sys/resource.h>

static void reader(void *arg)
{
    gorc_ws *ws = arg;
    for (;;) {
        int type;
        char *m;
        ssize_t n = gorc_ws_read_message(ws, &type, &m, NULL);
        if (n < 0)
            break;
        gorc_ws_write_message(ws, type, m, (size_t)n, NULL);
        free(m);
    }
    gorc_ws_close(ws, 0, NULL);
}

static void handler(gorc_http_rw *w, gorc_http_request *r, void *arg)
{
    (void)arg;
    gorc_ws *ws;
    if (gorc_ws_upgrade(&ws, w, r, NULL) == 0 && gorc_go(reader, ws) < 0)
        gorc_ws_close(ws, GORC_WS_CLOSE_INTERNAL, NULL);
}

static const char *addr = "127.0.0.1:8092";

static void run(void *unused)
{
    (void)unused;
    int rc = gorc_http_listen_and_serve(addr, handler, NULL);
    fprintf(stderr, "wsidle: %s\n", gorc_strerror(rc));
    exit(1);
}

int main(int argc, char **argv)
{
    if (argc > 1)
        addr = argv[1];
    struct rlimit rl;
    if (getrlimit(RLIMIT_NOFILE, &rl) == 0) {
        rl.rlim_cur = rl.rlim_max;
        setrlimit(RLIMIT_NOFILE, &rl);
    }
    return gorc_main(run, NULL);
}
