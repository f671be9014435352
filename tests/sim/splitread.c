/*
 * splitread.c - a planted bug that shows only when a request arrives in two segments with a
 * delay between them, for the simulation's exploration driver (tests/e2e/sim-e2e).
 *
 *   sim_splitread buggy | fixed
 *
 * A line protocol: the client sends "GET key\n" and the server answers the value. The client
 * writes the command and the key with two writes. The buggy server takes what one read
 * returns as the whole line; when the two segments arrive together (as on loopback, nearly
 * always) it works, but when the second arrives later the server answers for a truncated key.
 * Under simulation the network's jitter (set by this program: 0 to 2 ms per segment) spaces
 * the segments out, and some seed delays the second past the server's read: the answer is
 * wrong and the seed replays it. The fixed server reads up to the newline.
 * Exit status: 0 when every answer was right, 1 when one was not.
 */
#include <gorc.h>
#include <gorc_net.h>
#include <gorc_sim.h>

#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define ROUNDS 10

static bool fixed;

static void serve_conn(void *arg)
{
    gorc_conn *c = arg;
    char line[64];
    size_t n = 0;
    for (;;) {
        ssize_t r = gorc_conn_read(c, line + n, sizeof line - 1 - n);
        if (r <= 0)
            break;
        n += (size_t)r;
        line[n] = 0;
        if (!fixed || strchr(line, '\n')) { /* BUG when !fixed: one read is not one line */
            char key[32] = "";
            sscanf(line, "GET %31[^\n]", key);
            char out[80];
            int k = snprintf(out, sizeof out, "value-of-%s\n", key);
            gorc_conn_write_all(c, out, (size_t)k);
            n = 0;
        }
        if (n >= sizeof line - 1)
            break;
    }
    gorc_conn_close(c);
}

static void serve(void *arg)
{
    gorc_listener *l = arg;
    gorc_conn *c;
    while (gorc_listener_accept(l, &c) == 0)
        gorc_go(serve_conn, c);
    gorc_listener_release(l);
}

static void run(void *arg)
{
    (void)arg;
    gorc_sim_link link = {.latency = GORC_MILLISECOND, .jitter = 2 * GORC_MILLISECOND};
    gorc_sim_link_set(NULL, NULL, &link); /* -EINVAL outside a simulation: loopback as it is */
    gorc_listener *l;
    if (gorc_tcp_listen(&l, "127.0.0.1:0", NULL) != 0)
        exit(3);
    char addr[64];
    gorc_listener_addr(l, addr, sizeof addr);
    gorc_go(serve, gorc_listener_retain(l));
    gorc_conn *c;
    if (gorc_tcp_dial(&c, addr, GORC_SECOND) != 0)
        exit(3);
    for (int i = 0; i < ROUNDS; i++) {
        char key[16], want[48], got[48] = "";
        snprintf(key, sizeof key, "k%02d\n", i);
        gorc_conn_write_all(c, "GET ", 4); /* two writes: two segments */
        gorc_conn_write_all(c, key, strlen(key));
        snprintf(want, sizeof want, "value-of-k%02d\n", i);
        size_t n = 0;
        while (n < sizeof got - 1 && !strchr(got, '\n')) {
            ssize_t r = gorc_conn_read(c, got + n, sizeof got - 1 - n);
            if (r <= 0)
                break;
            n += (size_t)r;
            got[n] = 0;
        }
        if (strcmp(got, want) != 0) {
            fprintf(stderr, "splitread: asked for k%02d, got \"%.*s\"\n", i,
                    (int)strcspn(got, "\n"), got);
            exit(1);
        }
    }
    gorc_conn_close(c);
    gorc_listener_close(l);
}

int main(int argc, char **argv)
{
    if (argc != 2 || (strcmp(argv[1], "buggy") != 0 && strcmp(argv[1], "fixed") != 0)) {
        fprintf(stderr, "usage: sim_splitread buggy|fixed\n");
        return 64;
    }
    fixed = strcmp(argv[1], "fixed") == 0;
    return gorc_main(run, NULL) == 0 ? 0 : 1;
}
