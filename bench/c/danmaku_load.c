/*
 * danmaku_load.c - load generator and delivery checker for the live-comment servers
 * (examples/danmaku.c and bench/go/danmaku), written with gorc.
 *
 *   danmaku_load -a HOST:PORT [-v VIEWERS] [-r ROOMS] [-m MSGS_PER_S_PER_ROOM] [-d SECONDS]
 *                [-c CHURN] [-p SERVER_PID]
 *
 * Connects VIEWERS WebSocket viewers spread evenly over ROOMS fresh rooms (names unique to
 * this run), waits until every one has its welcome, then the first viewer of each room posts
 * MSGS comments a second for SECONDS, each carrying its send time (gorc_now(): the monotonic
 * clock, the same in both processes). Meanwhile CHURN extra viewers keep joining a random
 * room, reading for a while and leaving. Afterwards it waits until every viewer has
 * everything and checks exact delivery: each live viewer got every comment of its room
 * posted after its welcome, in order, once (the comments' room sequence numbers must run on
 * without a gap or repeat, and end at the number of comments posted); churning viewers got
 * an unbroken run. Fan-out latency is receive time minus send time, for every delivery.
 * With -p it reads the server's CPU time (/proc/PID/stat, over the posting period) and
 * resident set (/proc/PID/status, at the end with everyone connected).
 *
 * Prints "key value" lines; the last is "result ok" (exit 0) or "result FAIL ..." (exit 1).
 */
#include <gorc.h>
#include <gorc_websocket.h>

#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <unistd.h>

/* Latency histogram: 10 us buckets up to 100 ms, then 1 ms buckets up to 60 s. */
#define FINE     10000 /* buckets of 10 us */
#define HBUCKETS (FINE + 59900)

static const char *addr;
static int nviewers = 1000, nrooms = 10, rate = 20, seconds = 10, churn = 0, server_pid = 0;
static char prefix[32];

typedef struct viewer {
    int room;
    gorc_ws *ws;
    uint64_t welcome; /* the room's sequence number at the join */
    uint64_t next;    /* the next sequence number expected */
    uint64_t got;
    bool welcomed, bad;
    int err;
} viewer;

static viewer *views;
static _Atomic uint64_t *posted; /* per room */
static _Atomic long welcomed, errors, disorder, delivered, churn_joins, churn_bad;
static _Atomic bool posting_done;
static _Atomic uint64_t hist[HBUCKETS + 1];

static void record_latency(const char *msg)
{
    const char *t = strstr(msg, "\"text\":\"t=");
    if (t == NULL)
        return;
    int64_t sent = strtoll(t + 10, NULL, 10);
    int64_t d = gorc_now() - sent;
    if (d < 0)
        d = 0;
    size_t b = d < 100 * GORC_MILLISECOND ? (size_t)(d / 10000)
                                          : FINE + (size_t)((d - 100 * GORC_MILLISECOND) / 1000000);
    atomic_fetch_add_explicit(&hist[b > HBUCKETS ? HBUCKETS : b], 1, memory_order_relaxed);
}

static bool parse_seq(const char *m, uint64_t *seq)
{
    const char *s = strstr(m, "\"seq\":");
    if (s == NULL)
        return false;
    *seq = strtoull(s + 6, NULL, 10);
    return true;
}

static char *room_url(int room, int who)
{
    char *u = malloc(256);
    snprintf(u, 256, "ws://%s/ws?room=%s-%d&name=v%d", addr, prefix, room, who);
    return u;
}

/* One message into v's checks. */
static void take(viewer *v, const char *m)
{
    uint64_t seq;
    if (!parse_seq(m, &seq)) {
        v->bad = true;
        return;
    }
    if (!v->welcomed) {
        if (strstr(m, "\"type\":\"welcome\"") == NULL) {
            v->bad = true;
            return;
        }
        v->welcomed = true;
        v->welcome = seq;
        v->next = seq + 1;
        atomic_fetch_add(&welcomed, 1);
        return;
    }
    if (seq != v->next) {
        if (!v->bad)
            fprintf(stderr, "viewer in room %d: seq %llu, expected %llu\n", v->room,
                    (unsigned long long)seq, (unsigned long long)v->next);
        v->bad = true;
        atomic_fetch_add(&disorder, 1);
    }
    v->next = seq + 1;
    v->got++;
    atomic_fetch_add_explicit(&delivered, 1, memory_order_relaxed);
    record_latency(m);
}

static void viewer_run(void *arg)
{
    viewer *v = arg;
    for (;;) {
        int type;
        char *m;
        ssize_t n = gorc_ws_read_message(v->ws, &type, &m, NULL);
        if (n < 0) {
            v->err = (int)n;
            if (!atomic_load(&posting_done) || n != GORC_ENETCLOSED)
                atomic_fetch_add(&errors, 1);
            return;
        }
        take(v, m);
        free(m);
    }
}

static gorc_sema dial_slots;
static gorc_waitgroup dial_wg;

static void dial_one(void *arg)
{
    viewer *v = arg;
    int who = (int)(v - views);
    char *u = room_url(v->room, who);
    gorc_ws_opts o = {.handshake_timeout = 60 * GORC_SECOND};
    int rc = gorc_ws_dial(&v->ws, u, &o, NULL);
    free(u);
    gorc_sema_release(&dial_slots, 1);
    if (rc < 0) {
        fprintf(stderr, "viewer %d: dial: %s\n", who, gorc_strerror(rc));
        atomic_fetch_add(&errors, 1);
        v->ws = NULL;
    } else {
        gorc_go(viewer_run, v);
    }
    gorc_waitgroup_done(&dial_wg);
}

static gorc_waitgroup post_wg;

static void poster(void *arg)
{
    int room = (int)(intptr_t)arg;
    viewer *v = &views[room]; /* viewer i is in room i % nrooms: the first of each room */
    int64_t period = GORC_SECOND / rate, start = gorc_now(), end = start + seconds * GORC_SECOND;
    /* Spread the rooms' posts over the period so the load is even. */
    int64_t next = start + period * room / nrooms;
    while (next < end) {
        int64_t now = gorc_now();
        if (next > now)
            gorc_sleep(next - now);
        char text[64];
        int n = snprintf(text, sizeof text, "t=%lld", (long long)gorc_now());
        if (gorc_ws_write_message(v->ws, GORC_WS_TEXT, text, (size_t)n, NULL) < 0) {
            atomic_fetch_add(&errors, 1);
            break;
        }
        atomic_fetch_add(&posted[room], 1);
        next += period;
    }
    gorc_waitgroup_done(&post_wg);
}

/* Churning viewers: join a room, check what arrives for a while, leave; until posting ends. */
static void churner(void *arg)
{
    uint64_t seed = (uint64_t)(intptr_t)arg * 0x9e3779b97f4a7c15ull + 1;
    while (!atomic_load(&posting_done)) {
        seed ^= seed << 13;
        seed ^= seed >> 7;
        seed ^= seed << 17;
        viewer v = {.room = (int)(seed % (uint64_t)nrooms)};
        char *u = room_url(v.room, 1000000 + (int)(seed % 1000));
        int rc = gorc_ws_dial(&v.ws, u, NULL, NULL);
        free(u);
        if (rc < 0) {
            atomic_fetch_add(&churn_bad, 1);
            gorc_sleep(100 * GORC_MILLISECOND);
            continue;
        }
        atomic_fetch_add(&churn_joins, 1);
        int64_t stay = (int64_t)(seed % 500 + 50) * GORC_MILLISECOND;
        gorc_ws_set_read_deadline(v.ws, gorc_now() + 10 * GORC_SECOND); /* until welcomed */
        for (;;) {
            int type;
            char *m;
            ssize_t n = gorc_ws_read_message(v.ws, &type, &m, NULL);
            if (n < 0)
                break;
            uint64_t seq = 0;
            if (!parse_seq(m, &seq) || (v.welcomed && seq != v.next))
                v.bad = true;
            if (!v.welcomed && strstr(m, "\"type\":\"welcome\"") != NULL) {
                v.welcomed = true;
                gorc_ws_set_read_deadline(v.ws, gorc_now() + stay); /* then leave */
            }
            v.next = seq + 1;
            free(m);
        }
        if (v.bad || !v.welcomed)
            atomic_fetch_add(&churn_bad, 1);
        gorc_ws_close(v.ws, 0, NULL);
    }
}

static bool proc_cpu(double *cpu_s)
{
    char p[64], buf[1024];
    snprintf(p, sizeof p, "/proc/%d/stat", server_pid);
    FILE *f = fopen(p, "r");
    if (f == NULL)
        return false;
    size_t n = fread(buf, 1, sizeof buf - 1, f);
    fclose(f);
    buf[n] = 0;
    char *s = strrchr(buf, ')');
    unsigned long ut = 0, st = 0;
    if (s == NULL ||
        sscanf(s + 2, "%*c %*d %*d %*d %*d %*d %*u %*u %*u %*u %*u %lu %lu", &ut, &st) != 2)
        return false;
    *cpu_s = (double)(ut + st) / (double)sysconf(_SC_CLK_TCK);
    return true;
}

static long proc_rss_kb(void)
{
    char p[64], line[256];
    snprintf(p, sizeof p, "/proc/%d/status", server_pid);
    FILE *f = fopen(p, "r");
    long kb = -1;
    while (f && fgets(line, sizeof line, f))
        if (sscanf(line, "VmRSS: %ld", &kb) == 1)
            break;
    if (f)
        fclose(f);
    return kb;
}

static int64_t percentile(double q, uint64_t total)
{
    uint64_t want = (uint64_t)(q * (double)total), acc = 0;
    for (size_t b = 0; b <= HBUCKETS; b++) {
        acc += atomic_load(&hist[b]);
        if (acc > want || (acc == total && acc > 0))
            /* The bucket's upper edge, in us. */
            return b < FINE ? (int64_t)(b + 1) * 10 : 100000 + (int64_t)(b - FINE + 1) * 1000;
    }
    return -1;
}

static int rc = 1;

static void run(void *unused)
{
    (void)unused;
    views = calloc((size_t)nviewers, sizeof *views);
    posted = calloc((size_t)nrooms, sizeof *posted);
    snprintf(prefix, sizeof prefix, "r%d", (int)getpid());
    printf("viewers %d rooms %d rate %d seconds %d churn %d\n", nviewers, nrooms, rate, seconds,
           churn);
    int64_t t0 = gorc_now();
    gorc_sema_release(&dial_slots, 200); /* handshakes in flight at once */
    for (int i = 0; i < nviewers; i++) {
        views[i].room = i % nrooms;
        gorc_sema_acquire(&dial_slots, 1);
        gorc_waitgroup_add(&dial_wg, 1);
        gorc_go(dial_one, &views[i]);
    }
    gorc_waitgroup_wait(&dial_wg);
    int64_t deadline = gorc_now() + 30 * GORC_SECOND;
    while (atomic_load(&welcomed) < nviewers && atomic_load(&errors) == 0 && gorc_now() < deadline)
        gorc_sleep(10 * GORC_MILLISECOND);
    printf("connected %ld in %.2f s\n", (long)atomic_load(&welcomed),
           (double)(gorc_now() - t0) / 1e9);
    if (atomic_load(&welcomed) < nviewers) {
        printf("result FAIL only %ld of %d viewers welcomed (%ld errors)\n",
               (long)atomic_load(&welcomed), nviewers, (long)atomic_load(&errors));
        fflush(stdout);
        _exit(1);
    }
    double cpu0 = 0, cpu1 = 0;
    bool have_cpu = server_pid > 0 && proc_cpu(&cpu0);
    long d0 = atomic_load(&delivered);
    int64_t p0 = gorc_now();
    for (int i = 0; i < churn; i++)
        gorc_go(churner, (void *)(intptr_t)(i + 1));
    for (int r = 0; r < nrooms; r++) {
        gorc_waitgroup_add(&post_wg, 1);
        gorc_go(poster, (void *)(intptr_t)r);
    }
    gorc_waitgroup_wait(&post_wg);
    /* Wait for the fan-out to finish: every viewer has its room's last comment. */
    deadline = gorc_now() + 20 * GORC_SECOND;
    for (;;) {
        bool all = true;
        for (int i = 0; i < nviewers && all; i++)
            all = views[i].bad || views[i].next - 1 >= atomic_load(&posted[views[i].room]);
        if (all || gorc_now() > deadline)
            break;
        gorc_sleep(10 * GORC_MILLISECOND);
    }
    int64_t p1 = gorc_now();
    if (have_cpu)
        have_cpu = proc_cpu(&cpu1);
    long rss = server_pid > 0 ? proc_rss_kb() : -1;
    atomic_store(&posting_done, true);
    long d1 = atomic_load(&delivered);
    /* Exact delivery. */
    uint64_t want = 0, posts = 0;
    long lost = 0, short_viewers = 0, bad = 0;
    for (int r = 0; r < nrooms; r++)
        posts += atomic_load(&posted[r]);
    for (int i = 0; i < nviewers; i++) {
        viewer *v = &views[i];
        uint64_t p = atomic_load(&posted[v->room]);
        uint64_t owed = p > v->welcome ? p - v->welcome : 0;
        want += owed;
        if (v->bad)
            bad++;
        if (v->got < owed) {
            lost += (long)(owed - v->got);
            short_viewers++;
        }
        if (v->next - 1 != p)
            bad += v->bad ? 0 : 1;
    }
    uint64_t total = (uint64_t)(d1 - d0);
    printf("posted %llu delivered %ld owed %llu lost %ld viewers_short %ld viewers_bad %ld "
           "disorder %ld errors %ld\n",
           (unsigned long long)posts, d1, (unsigned long long)want, lost, short_viewers, bad,
           (long)atomic_load(&disorder), (long)atomic_load(&errors));
    printf("churn joins %ld bad %ld\n", (long)atomic_load(&churn_joins),
           (long)atomic_load(&churn_bad));
    printf("delivered_per_s %.0f\n", (double)total / ((double)(p1 - p0) / 1e9));
    printf("latency_us p50 %lld p99 %lld max %lld\n", (long long)percentile(0.50, total),
           (long long)percentile(0.99, total), (long long)percentile(0.999999, total));
    if (have_cpu)
        printf("server_cpu_s %.2f deliveries_per_cpu_s %.0f\n", cpu1 - cpu0,
               (double)total / (cpu1 - cpu0 > 0.01 ? cpu1 - cpu0 : 0.01));
    if (rss >= 0)
        printf("server_rss_kb %ld\n", rss);
    bool ok = (uint64_t)d1 == want && lost == 0 && bad == 0 && atomic_load(&disorder) == 0 &&
              atomic_load(&errors) == 0 && atomic_load(&churn_bad) == 0 && posts > 0;
    if (ok)
        printf("result ok\n");
    else
        printf("result FAIL exact delivery\n");
    fflush(stdout);
    rc = ok ? 0 : 1;
    _exit(rc); /* the connections go with the process */
}

int main(int argc, char **argv)
{
    int o;
    while ((o = getopt(argc, argv, "a:v:r:m:d:c:p:")) != -1) {
        switch (o) {
        case 'a':
            addr = optarg;
            break;
        case 'v':
            nviewers = atoi(optarg);
            break;
        case 'r':
            nrooms = atoi(optarg);
            break;
        case 'm':
            rate = atoi(optarg);
            break;
        case 'd':
            seconds = atoi(optarg);
            break;
        case 'c':
            churn = atoi(optarg);
            break;
        case 'p':
            server_pid = atoi(optarg);
            break;
        default:
            addr = NULL;
        }
    }
    if (addr == NULL || nviewers < 1 || nrooms < 1 || nrooms > nviewers || rate < 1 ||
        seconds < 1) {
        fprintf(stderr, "usage: danmaku_load -a HOST:PORT [-v VIEWERS] [-r ROOMS] [-m RATE] "
                        "[-d SECONDS] [-c CHURN] [-p PID]\n");
        return 2;
    }
    struct rlimit rl;
    getrlimit(RLIMIT_NOFILE, &rl);
    rl.rlim_cur = rl.rlim_max;
    setrlimit(RLIMIT_NOFILE, &rl);
    gorc_main(run, NULL);
    return rc;
}
