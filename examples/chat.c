/*
 * chat.c - a TCP chat / broadcast server: every line a client sends goes to all the others.
 *
 *   make build/release/examples/chat && build/release/examples/chat 127.0.0.1:7001
 *   nc 127.0.0.1 7001        (in two or more terminals, then type)
 *
 * This is the long-connection push pattern behind chat rooms and live comments, written the
 * Go way: no locks, three kinds of goroutines talking over channels.
 *   - one hub goroutine owns the set of clients; joins, leaves and messages reach it over
 *     channels, so nothing else ever touches the set;
 *   - per client, a reader goroutine splits the input into lines and hands them to the hub,
 *   - and a writer goroutine drains the client's own queue of outgoing lines.
 * A message is broadcast as one reference-counted buffer, not copied per client. A client
 * whose queue is full - it reads slower than the room talks - is disconnected rather than
 * allowed to hold everyone else up (or to grow memory without bound).
 */
#include <gorc.h>
#include <gorc_net.h>

#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define QUEUE   256  /* lines waiting for one slow client before it is dropped */
#define LINEMAX 1024 /* longer lines are split */

typedef struct msg {
    atomic_int refs;
    size_t len;
    char text[];
} msg;

typedef struct client {
    gorc_conn *conn;
    gorc_chan *out; /* msg *, to the writer */
    char name[32];
    struct client *next;
} client;

typedef struct post {
    client *from; /* NULL: from the server */
    msg *m;
} post;

static gorc_chan *joins, *leaves, *posts; /* client *, client *, post */

static msg *msg_new(const char *fmt, ...)
{
    char buf[LINEMAX + 64];
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(buf, sizeof buf, fmt, ap);
    va_end(ap);
    if (n < 0)
        return NULL;
    size_t len = (size_t)n < sizeof buf ? (size_t)n : sizeof buf - 1;
    msg *m = malloc(sizeof *m + len);
    if (m == NULL)
        return NULL;
    atomic_init(&m->refs, 1);
    m->len = len;
    memcpy(m->text, buf, len);
    return m;
}

static void msg_release(msg *m)
{
    if (atomic_fetch_sub(&m->refs, 1) == 1)
        free(m);
}

/* ---- the hub ---- */

static void broadcast(client *all, client *from, msg *m)
{
    if (m == NULL)
        return; /* out of memory: the line is lost, the room goes on */
    for (client *c = all; c; c = c->next) {
        if (c == from)
            continue;
        atomic_fetch_add(&m->refs, 1);
        if (gorc_chan_trysend(c->out, &m) != 0) {
            msg_release(m);
            /* Too slow (or already leaving): cut it off; its reader will report the leave. */
            gorc_conn_shutdown(c->conn, SHUT_RDWR);
        }
    }
    msg_release(m);
}

static client *unlink_client(client *all, client *gone)
{
    client **pp = &all;
    while (*pp && *pp != gone)
        pp = &(*pp)->next;
    if (*pp)
        *pp = gone->next;
    return all;
}

static void hub(void *arg)
{
    (void)arg;
    client *all = NULL, *c;
    post p;
    int nclients = 0;
    for (;;) {
        gorc_case cases[] = {
            {.chan = joins, .dir = GORC_RECV, .elem = &c},
            {.chan = leaves, .dir = GORC_RECV, .elem = &c},
            {.chan = posts, .dir = GORC_RECV, .elem = &p},
        };
        switch (gorc_select(cases, 3)) {
        case 0:
            c->next = all;
            all = c;
            nclients++;
            broadcast(all, c, msg_new("* %s joined (%d here)\n", c->name, nclients));
            break;
        case 1:
            all = unlink_client(all, c);
            nclients--;
            gorc_chan_close(c->out); /* the writer drains it and exits */
            gorc_chan_release(c->out);
            gorc_conn_release(c->conn);
            broadcast(all, NULL, msg_new("* %s left (%d here)\n", c->name, nclients));
            free(c);
            break;
        case 2:
            if (p.m)
                broadcast(all, p.from, p.m);
            break;
        }
    }
}

/* ---- per client ---- */

typedef struct writer_args {
    gorc_conn *conn;
    gorc_chan *out;
} writer_args;

/* Holds its own references: the client record belongs to the hub and may be gone already. */
static void writer(void *arg)
{
    writer_args *w = arg;
    gorc_conn *conn = w->conn;
    gorc_chan *out = w->out;
    free(w);
    msg *m;
    bool ok = true;
    while (gorc_chan_recv(out, &m) == 0) {
        if (ok && gorc_conn_write_all(conn, m->text, m->len) < 0) {
            ok = false; /* keep draining so every message is released */
            gorc_conn_shutdown(conn, SHUT_RDWR);
        }
        msg_release(m);
    }
    gorc_chan_release(out);
    gorc_conn_release(conn);
}

static void reader(void *arg)
{
    client *c = arg;
    gorc_conn *conn = c->conn;
    char line[LINEMAX], name[sizeof c->name];
    memcpy(name, c->name, sizeof name);
    size_t have = 0;
    msg *hello = msg_new("welcome, %s! lines you type go to everyone here.\n", name);
    if (hello)
        gorc_chan_send(c->out, &hello);
    gorc_chan_send(joins, &c);
    for (;;) {
        ssize_t n = gorc_conn_read(conn, line + have, sizeof line - have);
        if (n <= 0)
            break;
        have += (size_t)n;
        char *start = line, *nl;
        while ((nl = memchr(start, '\n', have - (size_t)(start - line))) != NULL) {
            post p = {c, msg_new("%s: %.*s\n", name, (int)(nl - start), start)};
            gorc_chan_send(posts, &p);
            start = nl + 1;
        }
        have -= (size_t)(start - line);
        memmove(line, start, have);
        if (have == sizeof line) { /* an overlong line goes out in pieces */
            post p = {c, msg_new("%s: %.*s\n", name, (int)have, line)};
            gorc_chan_send(posts, &p);
            have = 0;
        }
    }
    gorc_chan_send(leaves, &c); /* the hub frees c */
    gorc_conn_close(conn);      /* wakes the writer if it is stuck in a write */
    fprintf(stderr, "chat: %s disconnected\n", name);
}

static void run(void *arg)
{
    const char *addr = arg;
    gorc_chan_new(&joins, sizeof(client *), 0);
    gorc_chan_new(&leaves, sizeof(client *), 0);
    gorc_chan_new(&posts, sizeof(post), 64);
    gorc_go(hub, NULL);
    gorc_listener *ln;
    int rc = gorc_tcp_listen(&ln, addr, NULL);
    if (rc < 0) {
        fprintf(stderr, "chat: listen %s: %s\n", addr, strerror(-rc));
        exit(1);
    }
    char where[GORC_ADDRSTRLEN];
    gorc_listener_addr(ln, where, sizeof where);
    fprintf(stderr, "chat: listening on %s\n", where);
    for (unsigned long id = 1;; id++) {
        gorc_conn *conn;
        if (gorc_listener_accept(ln, &conn) != 0)
            continue; /* a failed accept concerns one connection; keep serving */
        client *c = calloc(1, sizeof *c);
        writer_args *w = malloc(sizeof *w);
        if (c == NULL || w == NULL || gorc_chan_new(&c->out, sizeof(msg *), QUEUE) != 0) {
            free(c);
            free(w);
            gorc_conn_close(conn);
            continue;
        }
        c->conn = conn;
        snprintf(c->name, sizeof c->name, "guest-%lu", id);
        char peer[GORC_ADDRSTRLEN] = "?";
        gorc_conn_remote_addr(conn, peer, sizeof peer);
        fprintf(stderr, "chat: %s is %s\n", peer, c->name);
        /* Three holders of the connection: the reader (from accept), the hub (released on
         * leave) and the writer. */
        gorc_conn_retain(conn);
        *w = (writer_args){gorc_conn_retain(conn), gorc_chan_retain(c->out)};
        gorc_go(writer, w);
        gorc_go(reader, c);
    }
}

int main(int argc, char **argv)
{
    return gorc_main(run, argc > 1 ? argv[1] : "127.0.0.1:7001") == 0 ? 0 : 1;
}
