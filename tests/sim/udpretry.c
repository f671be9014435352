/*
 * udpretry.c - a planted retry loop that fails only under packet loss, for the simulation's
 * exploration driver (tests/e2e/sim-e2e).
 *
 *   sim_udpretry buggy | fixed
 *
 * A client asks a UDP server for the square of a number, waits 50 ms for the answer and asks
 * again, three times. The buggy client then uses whatever is in its buffer even when all three
 * tries timed out: on loopback nothing is ever lost, so plain runs pass; on a simulated link
 * that loses 20 % of datagrams some seed loses three in a row, the answer is wrong, and the
 * seed replays it. The fixed client checks that an answer came, for the question it asked,
 * and keeps asking.
 * Exit status: 0 when every answer was right, 1 when one was not.
 */
#include <gorc.h>
#include <gorc_net.h>
#include <gorc_sim.h>

#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define QUESTIONS 10

static bool fixed;

typedef struct msg {
    int32_t seq, x;
} msg;

static void server(void *arg)
{
    gorc_conn *s = arg;
    for (;;) {
        msg m;
        gorc_addr from;
        if (gorc_conn_read_from(s, &m, sizeof m, &from) != (ssize_t)sizeof m)
            break;
        m.x *= m.x;
        gorc_conn_write_to(s, &m, sizeof m, &from);
    }
    gorc_conn_release(s); /* the reference run took for it */
}

static void client(void *arg)
{
    const char *addr = arg;
    gorc_conn *c;
    if (gorc_udp_dial(&c, addr) != 0)
        exit(3);
    msg answer = {0};
    for (int32_t i = 1; i <= QUESTIONS; i++) {
        msg q = {.seq = i, .x = i};
        bool got = false;
        for (int tries = 0; fixed ? !got && tries < 100 : tries < 3 && !got; tries++) {
            gorc_conn_write(c, &q, sizeof q);
            gorc_conn_set_read_deadline(c, gorc_now() + 50 * GORC_MILLISECOND);
            while (!got && gorc_conn_read(c, &answer, sizeof answer) == (ssize_t)sizeof answer)
                got = answer.seq == i || !fixed; /* the fixed client drops stale answers */
        }
        /* BUG when !fixed: answer may be an old one, or nothing, after three timeouts */
        if (answer.x != i * i) {
            fprintf(stderr, "udpretry: %d squared is not %d\n", i, answer.x);
            exit(1);
        }
    }
    gorc_conn_close(c);
}

static void run(void *arg)
{
    (void)arg;
    gorc_sim_link link = {.latency = GORC_MILLISECOND, .loss = 0.2};
    gorc_sim_link_set(NULL, NULL, &link); /* -EINVAL outside a simulation: nothing is lost */
    gorc_conn *s;
    if (gorc_udp_listen(&s, "127.0.0.1:0") != 0)
        exit(3);
    char addr[64];
    gorc_conn_local_addr(s, addr, sizeof addr);
    gorc_go(server, gorc_conn_retain(s));
    client(addr);
    gorc_conn_close(s);
}

int main(int argc, char **argv)
{
    if (argc != 2 || (strcmp(argv[1], "buggy") != 0 && strcmp(argv[1], "fixed") != 0)) {
        fprintf(stderr, "usage: sim_udpretry buggy|fixed\n");
        return 64;
    }
    fixed = strcmp(argv[1], "fixed") == 0;
    return gorc_main(run, NULL) == 0 ? 0 : 1;
}
