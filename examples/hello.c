/* hello.c - the smallest gorc web server, exactly as the README prints it. The handler is
 * plain blocking code; gorc_http_listen_and_serve gives every connection its own goroutine.
 * Kept in the compact form of the README, hence no clang-format. */
/* clang-format off */
#include <gorc_http.h>

static void hello(gorc_http_rw *w, gorc_http_request *r, void *arg)
{
    gorc_http_rw_write_string(w, "Hello, World!\n");
}

static void serve(void *arg) { gorc_http_listen_and_serve("127.0.0.1:8080", hello, NULL); }

int main(void) { return gorc_main(serve, NULL); }
