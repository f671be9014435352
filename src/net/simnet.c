/*
 * simnet.c - the simulated network of a simulation run: TCP, UDP and Unix sockets between
 * named hosts, in memory, on virtual time, every random choice from the run's seed.
 *
 * Where the seam is. A simulated socket replaces the kernel's socket under fd.c: fd.c calls
 * gorc__simnet_read where it would call read(2), and so on (simnet.h), and everything above
 * the system calls - the descriptor's locks, its poll descriptor, deadlines and relative
 * timeouts, cancellation by contexts, close waking every waiter - is the code real sockets
 * run. So the HTTP server and client and WebSocket, which only see gorc_conn and
 * gorc_listener, run unchanged; UDP (which layered connections do not carry) too; and TLS,
 * whose BIO reads and writes a simulated socket through gorc_conn_raw_recv / _send
 * (gorc__simnet_raw_read / _raw_write here). Each socket has an eventfd as its descriptor
 * number, so that numbers stay unique and gorc_conn_fd has something to return; its poll descriptor
 * is virtual (gorc__pd_open_virtual): neither the poller nor the run's poll(2) look at it, and only
 * this file readies it.
 *
 * The model. Hosts have a name and an IPv4 address; host 0, "main" (10.0.0.1), is where the
 * run's goroutines live unless started with gorc_sim_go_on, and goroutines inherit their
 * spawner's host. 127.0.0.1 and ::1 are each host's own loopback; "localhost" resolves to it.
 * A link (per pair of hosts, both directions, or the default) has a latency, a jitter (a
 * uniform extra delay drawn from the seed), a bandwidth, and for UDP a loss and a reordering
 * probability. A TCP connection: connect sends a SYN that reaches the listener after the
 * link's latency (no listener: a reset comes back, -ECONNREFUSED; a full backlog: the SYN is
 * dropped and retried a second later, as the kernel does); the SYN-ACK takes the latency back.
 * Each write is a segment that leaves when the link is free (bandwidth) and arrives a latency
 * and a jitter later, never before the one sent before it (TCP is in order). The sender may
 * have at most WINDOW bytes that the receiver has not read: beyond that writes wait, and
 * reads open the window again. Close sends a FIN after the data, or a reset if unread data
 * was left (as Linux does); data that reaches a closed socket is answered with a reset.
 * A partition between two hosts holds TCP segments back (retransmission: they arrive once it
 * heals, in order) and drops UDP datagrams; gorc_sim_reset resets every connection between
 * two hosts. UDP datagrams arrive after latency and jitter each, so they reorder by
 * themselves; a reordered one is held back one more latency; each may be lost.
 *
 * Time. The network's events (segments arriving, SYNs, retries) are kept in one heap ordered
 * by virtual time and then by the order they were made, behind one runtime timer on the run's
 * P: the run's loop fires it when every goroutine is blocked and the clock reaches it, so the
 * order of everything is a function of the seed and the program.
 *
 * Faults (gorc_sim_opts.faults): dial (-EMFILE from gorc_tcp_dial and the other dials),
 * accept (-EMFILE from gorc_listener_accept, see net.c), reset (a read or write returns
 * -ECONNRESET and the peer is reset), short (a write takes only part of its buffer), slow
 * (a read or write first waits up to 100 ms; not the raw calls of a layered connection's
 * callbacks, which must not park).
 *
 * Shared fields: none. Every simulated socket belongs to the run, and the run is one thread;
 * the state lives as long as the run, and the end hook frees it. A socket still open when the
 * run ends is orphaned: its calls fail with -ECONNRESET and its close frees it.
 */
#include "net/simnet.h"

#include "net/internal.h"
#include "sim/sim.h"

#include <arpa/inet.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <unistd.h>

#define MAXHOSTS        64
#define WINDOW          (256 * 1024) /* bytes a sender may have that the receiver has not read */
#define DGRAM_QUEUE     256          /* datagrams waiting at a UDP socket; more are dropped */
#define SYN_RETRY       GORC_SECOND
#define RTO             (200 * GORC_MILLISECOND) /* a partitioned direction tries again after */
#define EPHEMERAL       49152
#define DEFAULT_LATENCY (50 * GORC_MICROSECOND)

enum { S_NEW, S_BOUND, S_LISTEN, S_CONNECTING, S_CONNECTED, S_CLOSED };
enum { EV_SYN, EV_SYNACK, EV_SEG, EV_RETRY, EV_DGRAM };
enum { F_DATA, F_FIN, F_RST };

typedef struct seg {
    struct seg *next;
    int flag; /* F_* (TCP) */
    int src;  /* UDP: the sending host (whose loopback the destination may be) */
    size_t n, off;
    gorc_addr from, to; /* UDP */
    char data[];
} seg;

typedef struct host {
    char name[64];
    struct in_addr ip;
    uint16_t nextport;
} host;

struct gorc__sep {
    gorc__sep *next; /* every socket of the run */
    uint64_t id;
    int type, family, host, state;
    bool orphan;  /* the run ended while it was open */
    gorc__pd *pd; /* NULL once closed */
    gorc_addr local, remote;
    bool bound, loop; /* loop: bound to or connected over loopback */
    gorc__sep *peer;
    int err;     /* a pending error: ECONNREFUSED, ECONNRESET... */
    int soerr;   /* connect's outcome: EINPROGRESS until it is known */
    bool rd_eof; /* the peer's FIN arrived */
    bool rd_shut, wr_shut, fin_sent;
    seg *rxh, *rxt; /* data arrived and not yet read (UDP: datagrams) */
    size_t rxbytes;
    int nrx;
    size_t unread;      /* bytes this side sent that the peer has not read */
    int64_t busy, last; /* the link is free from busy on; the last segment arrives at last */
    seg *heldh, *heldt; /* segments held back by a partition, in order */
    bool retrying;
    gorc__sep **acq; /* a listener's accepted connections, not yet taken */
    int nacq, capacq, backlog;
};

typedef struct event {
    int64_t at;
    uint64_t seq;
    int kind;
    gorc__sep *e;
    seg *s;
} event;

static struct {
    gorc__sim *run; /* the run this state is for */
    gorc__sep *all;
    uint64_t nextid, seq;
    host hosts[MAXHOSTS];
    int nhosts;
    gorc_sim_link def;
    gorc_sim_link link[MAXHOSTS][MAXHOSTS];
    bool haslink[MAXHOSTS][MAXHOSTS];
    bool cut[MAXHOSTS][MAXHOSTS];
    event *heap;
    int nheap, capheap;
    gorc__timer t;
    int64_t armed; /* when t is due, 0 if not in the heap */
} net;

static gorc__sim *run_of_caller(void)
{
    gorc__m *m = gorc__getm();
    return m && m->sim && m->curg != &m->g0 ? m->sim : NULL;
}

bool gorc__simnet_on(void)
{
    return gorc__sim_on() && run_of_caller() != NULL;
}

static int64_t now(void)
{
    int64_t t = 0;
    gorc__sim_clock(&t);
    return t;
}

static double rand01(void)
{
    return (double)(gorc__rand() >> 11) * 0x1.0p-53;
}

static void end_run(void);

/* The network of the caller's run, set up on first use. */
static bool ensure(void)
{
    gorc__m *m = gorc__getm();
    if (m == NULL || m->sim == NULL)
        return false;
    if (net.run == m->sim)
        return true;
    end_run();
    memset(&net, 0, sizeof net);
    net.run = m->sim;
    net.def.latency = DEFAULT_LATENCY;
    snprintf(net.hosts[0].name, sizeof net.hosts[0].name, "main");
    inet_pton(AF_INET, "10.0.0.1", &net.hosts[0].ip);
    net.hosts[0].nextport = EPHEMERAL;
    net.nhosts = 1;
    gorc__sim_on_end(end_run);
    return true;
}

static int cur_host(void)
{
    gorc__g *g = gorc__getg();
    return g ? g->simhost : 0;
}

/* ---- events ---- */

static bool ev_less(const event *a, const event *b)
{
    return a->at < b->at || (a->at == b->at && a->seq < b->seq);
}

static void fire(gorc__timer *t, int64_t tnow);

static void arm(void)
{
    if (net.nheap == 0)
        return;
    int64_t at = net.heap[0].at;
    if (net.armed == at)
        return;
    if (net.armed)
        gorc__timer_del(&net.t);
    net.t.f = fire;
    net.t.arg = NULL;
    net.armed = at;
    gorc__timer_add(&net.t, at);
}

static void schedule(int64_t at, int kind, gorc__sep *e, seg *s)
{
    if (net.nheap == net.capheap) {
        int nc = net.capheap ? net.capheap * 2 : 64;
        event *h = realloc(net.heap, (size_t)nc * sizeof *h);
        if (h == NULL)
            gorc__fatal("out of memory in the simulated network");
        net.heap = h;
        net.capheap = nc;
    }
    event ev = {.at = at, .seq = net.seq++, .kind = kind, .e = e, .s = s};
    int i = net.nheap++;
    while (i > 0 && ev_less(&ev, &net.heap[(i - 1) / 2])) {
        net.heap[i] = net.heap[(i - 1) / 2];
        i = (i - 1) / 2;
    }
    net.heap[i] = ev;
    arm();
}

static event pop(void)
{
    event top = net.heap[0];
    event last = net.heap[--net.nheap];
    int i = 0;
    for (;;) {
        int c = 2 * i + 1;
        if (c >= net.nheap)
            break;
        if (c + 1 < net.nheap && ev_less(&net.heap[c + 1], &net.heap[c]))
            c++;
        if (!ev_less(&net.heap[c], &last))
            break;
        net.heap[i] = net.heap[c];
        i = c;
    }
    if (net.nheap > 0)
        net.heap[i] = last;
    return top;
}

/* ---- readiness ---- */

static void ready(gorc__sep *e, int mode)
{
    if (e->pd == NULL)
        return;
    gorc__glist l = {0};
    gorc__netpoll_ready(e->pd, mode, &l);
    for (gorc__g *g = l.head, *next; g; g = next) {
        next = g->schedlink;
        gorc__ready(g);
    }
}

/* ---- hosts and links ---- */

static int host_by_ip(struct in_addr ip)
{
    for (int i = 0; i < net.nhosts; i++)
        if (net.hosts[i].ip.s_addr == ip.s_addr)
            return i;
    return -1;
}

static int host_by_name(const char *name)
{
    for (int i = 0; i < net.nhosts; i++)
        if (strcmp(net.hosts[i].name, name) == 0)
            return i;
    struct in_addr ip;
    if (inet_pton(AF_INET, name, &ip) == 1)
        return host_by_ip(ip);
    return -1;
}

static const gorc_sim_link *link_of(int a, int b)
{
    return net.haslink[a][b] ? &net.link[a][b] : &net.def;
}

static int64_t delay(int a, int b)
{
    const gorc_sim_link *l = link_of(a, b);
    int64_t d = l->latency;
    if (l->jitter > 0)
        d += (int64_t)(rand01() * (double)l->jitter);
    return d;
}

/* Where an address leads from host `from`: the host, and whether over loopback; -1 if no host
 * has it. */
static int dest_host(const gorc_addr *a, int from, bool *loop)
{
    *loop = false;
    if (a->u.sa.sa_family == AF_UNIX) {
        *loop = true;
        return from;
    }
    if (a->u.sa.sa_family == AF_INET6) {
        const struct in6_addr *v6 = &a->u.in6.sin6_addr;
        if (IN6_IS_ADDR_LOOPBACK(v6) || IN6_IS_ADDR_UNSPECIFIED(v6)) {
            *loop = true;
            return from;
        }
        if (IN6_IS_ADDR_V4MAPPED(v6)) {
            struct in_addr ip;
            memcpy(&ip, &v6->s6_addr[12], 4);
            return host_by_ip(ip);
        }
        return -1;
    }
    struct in_addr ip = a->u.in4.sin_addr;
    if ((ntohl(ip.s_addr) >> 24) == 127 || ip.s_addr == htonl(INADDR_ANY)) {
        *loop = true;
        return from;
    }
    return host_by_ip(ip);
}

static uint16_t addr_port(const gorc_addr *a)
{
    if (a->u.sa.sa_family == AF_INET)
        return ntohs(a->u.in4.sin_port);
    if (a->u.sa.sa_family == AF_INET6)
        return ntohs(a->u.in6.sin6_port);
    return 0;
}

static void set_port(gorc_addr *a, uint16_t p)
{
    if (a->u.sa.sa_family == AF_INET)
        a->u.in4.sin_port = htons(p);
    else if (a->u.sa.sa_family == AF_INET6)
        a->u.in6.sin6_port = htons(p);
}

static bool wildcard(const gorc_addr *a)
{
    if (a->u.sa.sa_family == AF_INET)
        return a->u.in4.sin_addr.s_addr == htonl(INADDR_ANY);
    if (a->u.sa.sa_family == AF_INET6)
        return IN6_IS_ADDR_UNSPECIFIED(&a->u.in6.sin6_addr);
    return false;
}

/* An address of host h (loopback or its own), of family fam, with port p. */
static gorc_addr host_addr(int h, bool loop, int fam, uint16_t p)
{
    gorc_addr a;
    memset(&a, 0, sizeof a);
    if (fam == AF_INET6) {
        a.u.in6.sin6_family = AF_INET6;
        a.u.in6.sin6_port = htons(p);
        if (loop) {
            a.u.in6.sin6_addr = in6addr_loopback;
        } else {
            a.u.in6.sin6_addr.s6_addr[10] = 0xff;
            a.u.in6.sin6_addr.s6_addr[11] = 0xff;
            memcpy(&a.u.in6.sin6_addr.s6_addr[12], &net.hosts[h].ip, 4);
        }
        a.len = sizeof a.u.in6;
    } else {
        a.u.in4.sin_family = AF_INET;
        a.u.in4.sin_port = htons(p);
        a.u.in4.sin_addr.s_addr = loop ? htonl(INADDR_LOOPBACK) : net.hosts[h].ip.s_addr;
        a.len = sizeof a.u.in4;
    }
    return a;
}

/* Whether socket b, bound, takes what is addressed to a (on host h, over loopback or not). */
static bool matches(const gorc__sep *b, int type, int h, bool loop, const gorc_addr *a)
{
    if (b->type != type || !b->bound || b->host != h || b->state == S_CLOSED)
        return false;
    if (a->u.sa.sa_family == AF_UNIX || b->family == AF_UNIX)
        return a->u.sa.sa_family == AF_UNIX && b->family == AF_UNIX &&
               strcmp(a->u.un.sun_path + (a->u.un.sun_path[0] == 0),
                      b->local.u.un.sun_path + (b->local.u.un.sun_path[0] == 0)) == 0 &&
               a->u.un.sun_path[0] == b->local.u.un.sun_path[0];
    if (addr_port(&b->local) != addr_port(a))
        return false;
    /* As the kernel: an IPv6 wildcard takes IPv4 too, an IPv4 socket only IPv4, ::1 only
     * IPv6 (IPv4-mapped addresses count as IPv4). */
    bool a4 = a->u.sa.sa_family == AF_INET ||
              (a->u.sa.sa_family == AF_INET6 && IN6_IS_ADDR_V4MAPPED(&a->u.in6.sin6_addr));
    bool b6 = b->local.u.sa.sa_family == AF_INET6;
    if (wildcard(&b->local))
        return b6 || a4;
    return b->loop == loop && (!loop || a4 != b6);
}

static gorc__sep *find_bound(int type, int h, bool loop, const gorc_addr *a, bool listening)
{
    for (gorc__sep *b = net.all; b; b = b->next)
        if (matches(b, type, h, loop, a) && (!listening || b->state == S_LISTEN))
            return b;
    return NULL;
}

/* Whether a socket of this type on host h is bound to port p (any of its addresses). */
static bool port_used(int type, int h, uint16_t p)
{
    for (gorc__sep *b = net.all; b; b = b->next)
        if (b->type == type && b->bound && b->host == h && b->state != S_CLOSED &&
            b->family != AF_UNIX && addr_port(&b->local) == p)
            return true;
    return false;
}

static uint16_t ephemeral(int h, int type)
{
    for (int tries = 0; tries < 16384; tries++) {
        uint16_t p = net.hosts[h].nextport++;
        if (net.hosts[h].nextport < EPHEMERAL)
            net.hosts[h].nextport = EPHEMERAL;
        if (!port_used(type, h, p))
            return p;
    }
    return 0;
}

/* ---- sockets ---- */

int gorc__simnet_socket(gorc__sep **out, int family, int type)
{
    if (!ensure())
        return -EINVAL;
    int fd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
    if (fd < 0)
        return -errno;
    gorc__sep *e = calloc(1, sizeof *e);
    if (e == NULL) {
        close(fd);
        return -ENOMEM;
    }
    e->id = ++net.nextid;
    e->type = type;
    e->family = family;
    e->host = cur_host();
    e->state = S_NEW;
    e->soerr = EINPROGRESS;
    e->next = net.all;
    net.all = e;
    *out = e;
    return fd;
}

void gorc__simnet_attach(gorc__sep *e, gorc__pd *pd)
{
    e->pd = pd;
}

int gorc__simnet_bind(gorc__sep *e, const gorc_addr *a)
{
    if (e->orphan)
        return -ECONNRESET;
    bool loop;
    int h = dest_host(a, e->host, &loop);
    if (h != e->host)
        return -EADDRNOTAVAIL;
    gorc_addr b = *a;
    if (b.u.sa.sa_family == AF_UNIX) {
        if (find_bound(e->type, e->host, true, &b, false))
            return -EADDRINUSE;
    } else {
        uint16_t p = addr_port(&b);
        if (p == 0) {
            p = ephemeral(e->host, e->type);
            set_port(&b, p);
        } else if (wildcard(&b) ? port_used(e->type, e->host, p)
                                : find_bound(e->type, e->host, loop, &b, false) != NULL) {
            return -EADDRINUSE;
        }
    }
    e->local = b;
    e->loop = loop && !wildcard(&b);
    e->bound = true;
    e->state = S_BOUND;
    return 0;
}

int gorc__simnet_listen(gorc__sep *e, int backlog)
{
    if (e->orphan)
        return -ECONNRESET;
    if (!e->bound || e->type != SOCK_STREAM)
        return -EINVAL;
    e->state = S_LISTEN;
    e->backlog = backlog > 0 && backlog < 4096 ? backlog : 4096;
    return 0;
}

/* Bind to an ephemeral port of the caller's host for a dial to a (over loopback or not). */
static void autobind(gorc__sep *e, const gorc_addr *a, bool loop)
{
    if (e->bound)
        return;
    if (a->u.sa.sa_family == AF_UNIX) {
        memset(&e->local, 0, sizeof e->local);
        e->local.u.un.sun_family = AF_UNIX;
        e->local.len = sizeof(sa_family_t);
    } else {
        e->local = host_addr(e->host, loop, a->u.sa.sa_family, ephemeral(e->host, e->type));
    }
    e->loop = loop;
    e->bound = true;
}

static seg *seg_new(size_t n)
{
    seg *s = calloc(1, sizeof *s + n);
    if (s == NULL)
        gorc__fatal("out of memory in the simulated network");
    s->n = n;
    return s;
}

int gorc__simnet_connect(gorc__sep *e, const gorc_addr *a)
{
    if (e->orphan)
        return -ECONNRESET;
    bool loop;
    int h = dest_host(a, e->host, &loop);
    if (h < 0)
        return e->type == SOCK_STREAM ? -EHOSTUNREACH : -ENETUNREACH;
    autobind(e, a, loop);
    e->remote = *a;
    if (e->type == SOCK_DGRAM) {
        e->state = S_CONNECTED;
        e->soerr = 0;
        return 0;
    }
    e->state = S_CONNECTING;
    e->soerr = EINPROGRESS;
    schedule(now() + delay(e->host, h), EV_SYN, e, NULL);
    return -EINPROGRESS;
}

int gorc__simnet_soerror(gorc__sep *e)
{
    return e->orphan ? ECONNRESET : e->soerr;
}

/* ---- TCP segments ---- */

/* Send a segment from e to its peer: it leaves when the link is free and arrives a latency
 * (and a jitter) later, after everything e sent before. */
static void send_seg(gorc__sep *e, seg *s)
{
    gorc__sep *p = e->peer;
    if (p == NULL) {
        free(s);
        return;
    }
    int64_t t = now();
    const gorc_sim_link *l = link_of(e->host, p->host);
    int64_t start = e->busy > t ? e->busy : t;
    if (l->bandwidth > 0 && s->n > 0)
        start += (int64_t)((double)s->n * 1e9 / (double)l->bandwidth);
    e->busy = start;
    int64_t at = start + delay(e->host, p->host);
    if (at < e->last)
        at = e->last;
    e->last = at;
    schedule(at, EV_SEG, e, s);
}

static void send_flag(gorc__sep *e, int flag)
{
    seg *s = seg_new(0);
    s->flag = flag;
    send_seg(e, s);
}

/* The receive queue: arrived segments (UDP: datagrams), oldest first. */
static void rx_push(gorc__sep *e, seg *s)
{
    s->next = NULL;
    if (e->rxt)
        e->rxt->next = s;
    else
        e->rxh = s;
    e->rxt = s;
}

static seg *rx_pop(gorc__sep *e)
{
    seg *s = e->rxh;
    e->rxh = s->next;
    if (e->rxh == NULL)
        e->rxt = NULL;
    return s;
}

static void free_rx(gorc__sep *e)
{
    for (seg *s = e->rxh, *n; s; s = n) {
        n = s->next;
        free(s);
    }
    e->rxh = e->rxt = NULL;
    e->rxbytes = 0;
    e->nrx = 0;
}

/* e is reset. As in Linux (tcp_reset), what arrived before stays readable; after it reads
 * fail with -ECONNRESET, unless the peer's FIN came first: then reads end the stream and
 * writes fail with -EPIPE (the connection was in CLOSE_WAIT). */
static void reset(gorc__sep *e)
{
    if (e->err == 0)
        e->err = e->rd_eof ? EPIPE : ECONNRESET;
    e->unread = 0;
    if (e->state == S_CONNECTING)
        e->soerr = ECONNRESET;
    ready(e, 'r' + 'w');
}

/* Segment s from e arrives at e's peer. */
static void deliver(gorc__sep *e, seg *s)
{
    gorc__sep *p = e->peer;
    if (p == NULL || p->state == S_CLOSED) {
        /* A closed socket answers data with a reset, as the kernel does. */
        if (p && s->flag == F_DATA && s->n > 0 && e->state != S_CLOSED && e->err == 0)
            send_flag(p, F_RST);
        free(s);
        return;
    }
    if (p->err) { /* reset already: nothing more is taken */
        free(s);
        return;
    }
    if (s->flag == F_RST) {
        free(s);
        reset(p);
        return;
    }
    if (s->flag == F_FIN) {
        free(s);
        p->rd_eof = true;
        ready(p, 'r');
        return;
    }
    if (p->rd_shut) { /* Linux drops data for a side shut for reading */
        if (e->unread >= s->n)
            e->unread -= s->n;
        free(s);
        return;
    }
    rx_push(p, s);
    p->rxbytes += s->n;
    ready(p, 'r');
}

static bool cut(int a, int b)
{
    return net.cut[a][b];
}

static void seg_arrives(gorc__sep *e, seg *s)
{
    gorc__sep *p = e->peer;
    if (p && (cut(e->host, p->host) || e->heldh)) {
        /* Partitioned: held back, in order, until the partition heals. */
        s->next = NULL;
        if (e->heldt)
            e->heldt->next = s;
        else
            e->heldh = s;
        e->heldt = s;
        if (!e->retrying) {
            e->retrying = true;
            schedule(now() + RTO, EV_RETRY, e, NULL);
        }
        return;
    }
    deliver(e, s);
}

static void retry(gorc__sep *e)
{
    e->retrying = false;
    gorc__sep *p = e->peer;
    if (p && cut(e->host, p->host)) {
        e->retrying = true;
        schedule(now() + RTO, EV_RETRY, e, NULL);
        return;
    }
    seg *s = e->heldh;
    e->heldh = e->heldt = NULL;
    while (s) {
        seg *n = s->next;
        deliver(e, s);
        s = n;
    }
}

/* The SYN of connecting socket c reaches its destination. */
static void syn(gorc__sep *c)
{
    if (c->state != S_CONNECTING)
        return;
    bool loop;
    int h = dest_host(&c->remote, c->host, &loop);
    if (h < 0 || cut(c->host, h)) {
        schedule(now() + SYN_RETRY, EV_SYN, c, NULL);
        return;
    }
    gorc__sep *l = find_bound(SOCK_STREAM, h, loop, &c->remote, true);
    if (l == NULL) {
        c->soerr = ECONNREFUSED;
        schedule(now() + delay(h, c->host), EV_SYNACK, c, NULL);
        return;
    }
    if (l->nacq >= l->backlog) { /* the kernel drops it: the client sends it again */
        schedule(now() + SYN_RETRY, EV_SYN, c, NULL);
        return;
    }
    if (l->nacq == l->capacq) {
        int nc = l->capacq ? l->capacq * 2 : 16;
        gorc__sep **q = realloc(l->acq, (size_t)nc * sizeof *q);
        if (q == NULL)
            gorc__fatal("out of memory in the simulated network");
        l->acq = q;
        l->capacq = nc;
    }
    gorc__sep *s = calloc(1, sizeof *s);
    if (s == NULL)
        gorc__fatal("out of memory in the simulated network");
    s->id = ++net.nextid;
    s->type = SOCK_STREAM;
    s->family = l->family;
    s->host = h;
    s->state = S_CONNECTED;
    s->soerr = 0;
    s->local = c->remote;
    s->loop = loop;
    s->remote = c->local;
    if (!loop && c->local.u.sa.sa_family != AF_UNIX)
        s->remote = host_addr(c->host, false, c->remote.u.sa.sa_family, addr_port(&c->local));
    if (l->family == AF_UNIX) {
        s->local = l->local;
        s->remote = c->local;
    }
    s->bound = false; /* an accepted socket shares the listener's port */
    s->peer = c;
    c->peer = s;
    s->next = net.all;
    net.all = s;
    l->acq[l->nacq++] = s;
    ready(l, 'r');
    schedule(now() + delay(h, c->host), EV_SYNACK, c, NULL);
}

static void synack(gorc__sep *c)
{
    if (c->state != S_CONNECTING)
        return;
    if (c->soerr == ECONNREFUSED) {
        c->err = ECONNREFUSED;
    } else {
        c->state = S_CONNECTED;
        c->soerr = 0;
    }
    ready(c, 'w');
}

/* ---- UDP ---- */

static bool same_addr(const gorc_addr *a, const gorc_addr *b)
{
    char x[GORC_ADDRSTRLEN], y[GORC_ADDRSTRLEN];
    return gorc_addr_string(a, x, sizeof x) > 0 && gorc_addr_string(b, y, sizeof y) > 0 &&
           strcmp(x, y) == 0;
}

static void dgram_arrives(seg *s)
{
    bool loop;
    int h = dest_host(&s->to, s->src, &loop);
    gorc__sep *d = h < 0 ? NULL : find_bound(SOCK_DGRAM, h, loop, &s->to, false);
    /* Nobody bound there, a full queue, or a connected socket that takes only its peer's. */
    if (d == NULL || d->nrx >= DGRAM_QUEUE ||
        (d->state == S_CONNECTED && !same_addr(&d->remote, &s->from))) {
        free(s);
        return;
    }
    rx_push(d, s);
    d->nrx++;
    ready(d, 'r');
}

/* ---- the event loop's timer ---- */

static void fire(gorc__timer *t, int64_t tnow)
{
    (void)t;
    net.armed = 0;
    while (net.nheap > 0 && net.heap[0].at <= tnow) {
        event ev = pop();
        switch (ev.kind) {
        case EV_SYN:
            syn(ev.e);
            break;
        case EV_SYNACK:
            synack(ev.e);
            break;
        case EV_SEG:
            seg_arrives(ev.e, ev.s);
            break;
        case EV_RETRY:
            retry(ev.e);
            break;
        case EV_DGRAM:
            dgram_arrives(ev.s);
            break;
        }
    }
    arm();
}

/* ---- the system calls ---- */

static ssize_t fail(int e)
{
    errno = e;
    return -1;
}

/* A connection fault: reset it here and at the peer. */
static ssize_t fault_reset(gorc__sep *e)
{
    if (e->peer && e->state == S_CONNECTED)
        send_flag(e, F_RST);
    reset(e);
    return fail(ECONNRESET);
}

/* The slow fault parks the caller, which raw I/O must not do (see gorc__simnet_raw_read). */
static void maybe_slow(bool may_park)
{
    if (may_park && gorc__sim_fault(GORC_SIM_FAULT_SLOW))
        gorc_sleep((int64_t)(rand01() * (double)(100 * GORC_MILLISECOND)));
}

static ssize_t sim_read(gorc__sep *e, void *buf, size_t n, bool may_park)
{
    if (e->orphan)
        return fail(ECONNRESET);
    if (e->type == SOCK_DGRAM)
        return gorc__simnet_recvfrom(e, buf, n, NULL, NULL);
    if (e->rd_shut)
        return 0;
    if (e->rxbytes == 0) {
        if (e->rd_eof)
            return 0;
        if (e->err)
            return fail(e->err);
        if (e->state != S_CONNECTED)
            return fail(e->state == S_CONNECTING ? EAGAIN : ENOTCONN);
        return fail(EAGAIN);
    }
    if (gorc__sim_fault(GORC_SIM_FAULT_RESET))
        return fault_reset(e);
    maybe_slow(may_park);
    size_t got = 0;
    while (got < n && e->rxh) {
        seg *s = e->rxh;
        size_t k = s->n - s->off;
        if (k > n - got)
            k = n - got;
        memcpy((char *)buf + got, s->data + s->off, k);
        s->off += k;
        got += k;
        if (s->off == s->n)
            free(rx_pop(e));
    }
    e->rxbytes -= got;
    gorc__sep *p = e->peer;
    if (p) { /* the window opens again */
        p->unread = p->unread > got ? p->unread - got : 0;
        ready(p, 'w');
    }
    return (ssize_t)got;
}

ssize_t gorc__simnet_read(gorc__sep *e, void *buf, size_t n)
{
    return sim_read(e, buf, n, true);
}

ssize_t gorc__simnet_raw_read(gorc__sep *e, void *buf, size_t n)
{
    return sim_read(e, buf, n, false);
}

static ssize_t sim_write(gorc__sep *e, const void *buf, size_t n, bool may_park)
{
    if (e->orphan)
        return fail(ECONNRESET);
    if (e->type == SOCK_DGRAM) {
        if (e->state != S_CONNECTED)
            return fail(EDESTADDRREQ);
        return gorc__simnet_sendto(e, buf, n, NULL, 0);
    }
    if (e->err)
        return fail(e->err);
    if (e->state == S_CONNECTING)
        return fail(EAGAIN);
    if (e->state != S_CONNECTED)
        return fail(ENOTCONN);
    if (e->wr_shut)
        return fail(EPIPE);
    if (e->peer == NULL)
        return fail(EPIPE);
    if (n == 0)
        return 0;
    if (e->unread >= WINDOW)
        return fail(EAGAIN);
    if (gorc__sim_fault(GORC_SIM_FAULT_RESET))
        return fault_reset(e);
    maybe_slow(may_park);
    if (e->err)
        return fail(e->err);
    size_t k = n;
    if (k > WINDOW - e->unread)
        k = WINDOW - e->unread;
    if (k > 1 && gorc__sim_fault(GORC_SIM_FAULT_SHORT))
        k = 1 + (size_t)(rand01() * (double)(k - 1));
    seg *s = seg_new(k);
    memcpy(s->data, buf, k);
    s->flag = F_DATA;
    e->unread += k;
    send_seg(e, s);
    return (ssize_t)k;
}

ssize_t gorc__simnet_write(gorc__sep *e, const void *buf, size_t n)
{
    return sim_write(e, buf, n, true);
}

ssize_t gorc__simnet_raw_write(gorc__sep *e, const void *buf, size_t n)
{
    return sim_write(e, buf, n, false);
}

ssize_t gorc__simnet_recvfrom(gorc__sep *e, void *buf, size_t n, struct sockaddr *sa,
                              socklen_t *salen)
{
    if (e->orphan)
        return fail(ECONNRESET);
    if (e->type == SOCK_STREAM) {
        if (salen)
            *salen = 0;
        return gorc__simnet_read(e, buf, n);
    }
    if (e->rxh == NULL)
        return fail(EAGAIN);
    seg *s = rx_pop(e);
    e->nrx--;
    size_t k = s->n < n ? s->n : n;
    memcpy(buf, s->data, k);
    if (sa && salen) {
        socklen_t l = *salen < s->from.len ? *salen : s->from.len;
        memcpy(sa, &s->from.u, l);
        *salen = s->from.len;
    }
    free(s);
    return (ssize_t)k;
}

ssize_t gorc__simnet_sendto(gorc__sep *e, const void *buf, size_t n, const struct sockaddr *sa,
                            socklen_t salen)
{
    if (e->orphan)
        return fail(ECONNRESET);
    if (e->type == SOCK_STREAM)
        return gorc__simnet_write(e, buf, n);
    gorc_addr to;
    if (sa) {
        memset(&to, 0, sizeof to);
        memcpy(&to.u, sa, salen < sizeof to.u ? salen : sizeof to.u);
        to.len = salen;
    } else {
        to = e->remote;
    }
    if (n > 65507)
        return fail(EMSGSIZE);
    bool loop;
    int h = dest_host(&to, e->host, &loop);
    autobind(e, &to, loop);
    if (h < 0)
        return (ssize_t)n; /* nobody has that address: it goes nowhere */
    const gorc_sim_link *l = link_of(e->host, h);
    if (cut(e->host, h) || (l->loss > 0 && rand01() < l->loss))
        return (ssize_t)n; /* lost */
    seg *s = seg_new(n);
    memcpy(s->data, buf, n);
    s->to = to;
    s->from = host_addr(e->host, loop, to.u.sa.sa_family, addr_port(&e->local));
    s->src = e->host;
    int64_t at = now() + delay(e->host, h);
    if (l->reorder > 0 && rand01() < l->reorder)
        at += l->latency > 0 ? l->latency : DEFAULT_LATENCY;
    schedule(at, EV_DGRAM, NULL, s);
    return (ssize_t)n;
}

int gorc__simnet_accept(gorc__sep *e, gorc__sep **out)
{
    if (e->orphan)
        return (int)fail(ECONNRESET);
    if (e->state != S_LISTEN)
        return (int)fail(EINVAL);
    if (e->nacq == 0)
        return (int)fail(EAGAIN);
    int fd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
    if (fd < 0)
        return -1;
    gorc__sep *s = e->acq[0];
    memmove(&e->acq[0], &e->acq[1], (size_t)(e->nacq - 1) * sizeof e->acq[0]);
    e->nacq--;
    *out = s;
    return fd;
}

int gorc__simnet_peek(gorc__sep *e)
{
    if (e->orphan)
        return (int)fail(ECONNRESET);
    if (e->rxbytes > 0 || e->rxh)
        return 1;
    if (e->rd_eof || e->rd_shut)
        return 0;
    if (e->err)
        return (int)fail(e->err);
    return (int)fail(EAGAIN);
}

bool gorc__simnet_readable(gorc__sep *e)
{
    return e->orphan || e->err || e->rxh || e->rd_eof || e->rd_shut || e->nacq > 0;
}

int gorc__simnet_shutdown(gorc__sep *e, int how)
{
    if (e->orphan)
        return -ECONNRESET;
    if (e->type == SOCK_STREAM && e->state != S_CONNECTED)
        return -ENOTCONN;
    if (how == SHUT_RD || how == SHUT_RDWR) {
        e->rd_shut = true;
        ready(e, 'r');
    }
    if ((how == SHUT_WR || how == SHUT_RDWR) && !e->wr_shut) {
        e->wr_shut = true;
        if (e->type == SOCK_STREAM && e->err == 0) {
            e->fin_sent = true;
            send_flag(e, F_FIN);
        }
        ready(e, 'w');
    }
    return 0;
}

int gorc__simnet_addr(gorc__sep *e, bool peer, gorc_addr *a)
{
    if (e->orphan)
        return -ECONNRESET;
    if (peer) {
        if (e->state != S_CONNECTED)
            return -ENOTCONN;
        *a = e->remote;
        return 0;
    }
    if (!e->bound && e->state != S_CONNECTED) {
        *a = host_addr(e->host, false, e->family == AF_INET6 ? AF_INET6 : AF_INET, 0);
        if (e->family == AF_UNIX) {
            memset(a, 0, sizeof *a);
            a->u.un.sun_family = AF_UNIX;
            a->len = sizeof(sa_family_t);
        }
        return 0;
    }
    *a = e->local;
    return 0;
}

void gorc__simnet_close(gorc__sep *e)
{
    if (e->orphan) {
        free_rx(e);
        free(e->acq);
        free(e);
        return;
    }
    e->pd = NULL;
    if (e->type == SOCK_STREAM && e->state == S_CONNECTED && e->err == 0 && e->peer) {
        if (e->rxbytes > 0) {
            send_flag(e, F_RST); /* unread data: Linux resets instead of closing */
        } else if (!e->fin_sent) {
            e->fin_sent = true;
            send_flag(e, F_FIN);
        }
    }
    if (e->state == S_LISTEN) {
        for (int i = 0; i < e->nacq; i++) {
            gorc__sep *s = e->acq[i];
            send_flag(s, F_RST);
            s->state = S_CLOSED;
        }
        e->nacq = 0;
    }
    free_rx(e);
    e->state = S_CLOSED;
}

/* ---- name resolution ---- */

int gorc__simnet_resolve(gorc_addr *out, int max, const char *name, int port, int family)
{
    if (!ensure())
        return GORC_ENOHOST;
    if (max <= 0 || port < 0)
        return -EINVAL;
    if (strcmp(name, "localhost") == 0) {
        out[0] = host_addr(0, true, family == AF_INET6 ? AF_INET6 : AF_INET, (uint16_t)port);
        return 1;
    }
    int h = -1;
    for (int i = 0; i < net.nhosts && h < 0; i++)
        if (strcmp(net.hosts[i].name, name) == 0)
            h = i;
    if (h < 0)
        return GORC_ENOHOST;
    out[0] = host_addr(h, false, family == AF_INET6 ? AF_INET6 : AF_INET, (uint16_t)port);
    return 1;
}

/* ---- the run ends ---- */

static void end_run(void)
{
    if (net.run == NULL)
        return;
    for (int i = 0; i < net.nheap; i++)
        free(net.heap[i].s);
    free(net.heap);
    net.heap = NULL;
    net.nheap = net.capheap = 0;
    if (net.armed)
        gorc__timer_del(&net.t);
    net.armed = 0;
    for (gorc__sep *e = net.all, *n; e; e = n) {
        n = e->next;
        for (seg *s = e->heldh, *sn; s; s = sn) {
            sn = s->next;
            free(s);
        }
        e->heldh = e->heldt = NULL;
        if (e->pd != NULL) { /* still open: freed by its close */
            e->orphan = true;
            e->peer = NULL;
            continue;
        }
        free_rx(e);
        free(e->acq);
        free(e);
    }
    net.all = NULL;
    net.run = NULL;
}

/* ---- the public calls ---- */

int gorc_sim_host(const char *name, const char *ip)
{
    struct in_addr a;
    if (name == NULL || ip == NULL || !*name || strlen(name) >= sizeof net.hosts[0].name ||
        inet_pton(AF_INET, ip, &a) != 1 || (ntohl(a.s_addr) >> 24) == 127 ||
        a.s_addr == htonl(INADDR_ANY) || run_of_caller() == NULL || !ensure())
        return -EINVAL;
    for (int i = 0; i < net.nhosts; i++)
        if (strcmp(net.hosts[i].name, name) == 0 || net.hosts[i].ip.s_addr == a.s_addr)
            return -EEXIST;
    if (net.nhosts == MAXHOSTS)
        return -ENOSPC;
    host *h = &net.hosts[net.nhosts];
    snprintf(h->name, sizeof h->name, "%s", name);
    h->ip = a;
    h->nextport = EPHEMERAL;
    return net.nhosts++;
}

int gorc_sim_go_on(const char *hostname, gorc_fn fn, void *arg)
{
    if (hostname == NULL || fn == NULL || run_of_caller() == NULL || !ensure())
        return -EINVAL;
    int h = host_by_name(hostname);
    if (h < 0)
        return GORC_ENOHOST;
    gorc__g *g = gorc__getg();
    uint16_t old = g->simhost;
    g->simhost = (uint16_t)h;
    int rc = gorc_go(fn, arg);
    g->simhost = old;
    return rc;
}

/* The hosts a and b name (NULL: every host), into [lo, hi) ranges. */
static int hosts_of(const char *a, int *lo, int *hi)
{
    if (a == NULL) {
        *lo = 0;
        *hi = MAXHOSTS;
        return 0;
    }
    int h = host_by_name(a);
    if (h < 0)
        return GORC_ENOHOST;
    *lo = h;
    *hi = h + 1;
    return 0;
}

int gorc_sim_link_set(const char *a, const char *b, const gorc_sim_link *l)
{
    if (l == NULL || l->latency < 0 || l->jitter < 0 || l->bandwidth < 0 ||
        !(l->loss >= 0 && l->loss <= 1) || !(l->reorder >= 0 && l->reorder <= 1) ||
        run_of_caller() == NULL || !ensure())
        return -EINVAL;
    if (a == NULL && b == NULL) {
        net.def = *l;
        return 0;
    }
    int alo, ahi, blo, bhi;
    int rc = hosts_of(a, &alo, &ahi);
    if (rc == 0)
        rc = hosts_of(b, &blo, &bhi);
    if (rc != 0)
        return rc;
    for (int i = alo; i < ahi; i++)
        for (int j = blo; j < bhi; j++) {
            net.link[i][j] = net.link[j][i] = *l;
            net.haslink[i][j] = net.haslink[j][i] = true;
        }
    return 0;
}

int gorc_sim_partition(const char *a, const char *b, bool on)
{
    if (run_of_caller() == NULL || !ensure())
        return -EINVAL;
    int alo, ahi, blo, bhi;
    int rc = hosts_of(a, &alo, &ahi);
    if (rc == 0)
        rc = hosts_of(b, &blo, &bhi);
    if (rc != 0)
        return rc;
    for (int i = alo; i < ahi; i++)
        for (int j = blo; j < bhi; j++)
            if (i != j)
                net.cut[i][j] = net.cut[j][i] = on;
    return 0;
}

int gorc_sim_reset(const char *a, const char *b)
{
    if (run_of_caller() == NULL || !ensure())
        return -EINVAL;
    int alo, ahi, blo, bhi;
    int rc = hosts_of(a, &alo, &ahi);
    if (rc == 0)
        rc = hosts_of(b, &blo, &bhi);
    if (rc != 0)
        return rc;
    int n = 0;
    for (gorc__sep *e = net.all; e; e = e->next) {
        if (e->type != SOCK_STREAM || e->state != S_CONNECTED || e->peer == NULL || e->err)
            continue;
        int h = e->host, ph = e->peer->host;
        bool ab = h >= alo && h < ahi && ph >= blo && ph < bhi;
        bool ba = h >= blo && h < bhi && ph >= alo && ph < ahi;
        if (ab || ba) {
            reset(e);
            n++;
        }
    }
    return n;
}
