/*
 * danmaku.c - a live-comment (danmaku) push server over WebSocket: rooms of viewers, and
 * every comment posted in a room is pushed to everyone in it.
 *
 *   make build/release/examples/danmaku && build/release/examples/danmaku 127.0.0.1:8090
 *   then open http://127.0.0.1:8090/ in two browser windows, pick a room, and post
 *
 * Endpoints: "/" the page; "/ws?room=R&name=N" the WebSocket (text frames in are comments,
 * text frames out are JSON: {"type":"welcome","room":R,"seq":S} first, then
 * {"seq":S,"name":N,"text":T} per comment, S counting the room's comments from 1);
 * "/stats" counters as JSON. bench/c/danmaku_load.c drives it; docs/websocket.md explains it.
 *
 * Design, per room:
 *   - one hub goroutine owns the room's viewer list and its sequence number; joins, leaves
 *     and comments reach it over one channel, so they are ordered and nothing else needs the
 *     list. A comment is formatted once into a reference-counted buffer and queued to each
 *     viewer, never copied per viewer;
 *   - each viewer has a bounded queue (QUEUE messages). A viewer whose queue is full reads
 *     slower than the room talks: it is dropped, with close code 1008 and a reason, instead
 *     of stalling the room or growing memory without bound;
 *   - FLUSHERS writer goroutines per room take viewers with queued messages off a ready list
 *     and send everything queued in one gathered write (gorc_ws_write_messages), so a burst
 *     costs one system call per viewer, not one per message. A flusher stuck on a viewer
 *     whose socket is full is freed when that viewer is dropped (its connection closes) or
 *     by the write deadline;
 *   - each viewer's own goroutine (the HTTP handler's, after the upgrade) only reads its
 *     comments. While it waits it holds no buffer (gorc_websocket.h), so an idle viewer
 *     costs a goroutine stack and two small records, and the room costs 1 + FLUSHERS
 *     goroutines whatever its size.
 * Rooms are made on first use and live until the server exits.
 *
 * Restarts (gorc_restart.h, docs/restart.md): SIGUSR2 starts a new copy of the server on the
 * same listening socket. Once it serves, this process stops accepting (new viewers reach the
 * new one) but keeps its viewers: they are owed the comments of the rooms they are in, and
 * only this process has those rooms. It exits when the last viewer has left, or at the drain
 * deadline (-drain, 60 s by default), when each hub closes its remaining viewers with 1001
 * (going away) and the clients reconnect to the new process.
 */
#include <gorc.h>
#include <gorc_http.h>
#include <gorc_restart.h>
#include <gorc_websocket.h>

#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <unistd.h>

#define QUEUE         256 /* messages queued for one viewer before it is dropped */
#define FLUSHERS      2   /* writer goroutines per room */
#define BATCH         64  /* messages per gathered write */
#define MAX_TEXT      512 /* bytes of one comment */
#define ROOMS_MAX     4096
#define WRITE_TIMEOUT (10 * GORC_SECOND)

typedef struct msg {
    atomic_int refs;
    size_t len;
    char data[];
} msg;

static void msg_unref(msg *m)
{
    if (atomic_fetch_sub(&m->refs, 1) == 1)
        free(m);
}

typedef struct room room;

typedef struct viewer {
    atomic_int refs; /* the handler's, the room's (until it leaves), a flusher's */
    gorc_ws *ws;
    room *r;
    /* Under r->mu: a ring of cap entries, grown by doubling up to QUEUE. */
    msg **q;
    unsigned head, n, cap;
    bool ready, flushing, gone;
    struct viewer *next_ready;
    /* The hub's: */
    struct viewer *prev, *next, *next_slow;
    char name[64];
} viewer;

enum { EV_JOIN, EV_LEAVE, EV_POST, EV_DRAIN };
typedef struct event {
    int kind;
    viewer *v;
    char *body; /* EV_POST: the JSON after the seq, malloc'd */
    size_t len;
} event;

struct room {
    char name[64];
    gorc_chan *events;
    gorc_mutex mu;
    gorc_cond cv;
    viewer *ready_head, *ready_tail; /* under mu */
    viewer *viewers;                 /* the hub's */
    uint64_t seq;                    /* the hub's */
    room *next;
};

static gorc_mutex rooms_mu;
static room *rooms;
static int nrooms;
static atomic_ullong st_viewers, st_posts, st_deliveries, st_dropped, st_joins;

static void viewer_unref(viewer *v)
{
    if (atomic_fetch_sub(&v->refs, 1) != 1)
        return;
    for (unsigned i = 0; i < v->n; i++)
        msg_unref(v->q[(v->head + i) % v->cap]);
    free(v->q);
    gorc_ws_release(v->ws);
    free(v);
}

/* ---- flushers ---- */

/* Put v at the end of the room's ready list, for a flusher to write (under r->mu). */
static void mark_ready(room *r, viewer *v)
{
    v->ready = true;
    v->next_ready = NULL;
    if (r->ready_tail)
        r->ready_tail->next_ready = v;
    else
        r->ready_head = v;
    r->ready_tail = v;
}

static void flusher(void *arg)
{
    room *r = arg;
    msg *batch[BATCH];
    struct iovec iov[BATCH];
    gorc_mutex_lock(&r->mu);
    for (;;) {
        while (r->ready_head == NULL)
            gorc_cond_wait(&r->cv);
        viewer *v = r->ready_head;
        r->ready_head = v->next_ready;
        if (r->ready_head == NULL)
            r->ready_tail = NULL;
        v->ready = false;
        if (v->gone)
            continue;
        int k = 0;
        while (v->n > 0 && k < BATCH) {
            batch[k] = v->q[v->head];
            iov[k].iov_base = batch[k]->data;
            iov[k].iov_len = batch[k]->len;
            v->head = (v->head + 1) % v->cap;
            v->n--;
            k++;
        }
        v->flushing = true;
        atomic_fetch_add(&v->refs, 1);
        gorc_mutex_unlock(&r->mu);
        gorc_ws_set_write_deadline(v->ws, gorc_now() + WRITE_TIMEOUT);
        int rc = gorc_ws_write_messages(v->ws, GORC_WS_TEXT, iov, k, NULL);
        for (int i = 0; i < k; i++)
            msg_unref(batch[i]);
        if (rc == 0)
            atomic_fetch_add(&st_deliveries, (unsigned long long)k);
        gorc_mutex_lock(&r->mu);
        v->flushing = false;
        if (rc < 0)
            v->gone = true; /* its reader sees the connection fail and leaves */
        if (!v->gone && v->n > 0 && !v->ready) {
            mark_ready(r, v);
        }
        gorc_mutex_unlock(&r->mu);
        viewer_unref(v);
        gorc_mutex_lock(&r->mu);
    }
}

/* ---- the hub ---- */

static void drop_slow(void *arg)
{
    viewer *v = arg;
    /* Closing wakes the viewer's reader (and a flusher stuck on it) with an error. */
    gorc_ws_close(gorc_ws_retain(v->ws), GORC_WS_CLOSE_POLICY, "too slow: dropped");
    viewer_unref(v);
}

static void go_away(void *arg)
{
    viewer *v = arg;
    gorc_ws_close(gorc_ws_retain(v->ws), GORC_WS_CLOSE_GOING_AWAY, "server restarting");
    viewer_unref(v);
}

/* Queue m to v (under r->mu). False: the queue is full. */
static bool enqueue(room *r, viewer *v, msg *m)
{
    if (v->gone)
        return true;
    if (v->n == v->cap) {
        if (v->cap == QUEUE)
            return false;
        unsigned ncap = v->cap ? v->cap * 2 : 4;
        msg **nq = malloc(ncap * sizeof *nq);
        if (nq == NULL)
            return false;
        for (unsigned i = 0; i < v->n; i++)
            nq[i] = v->q[(v->head + i) % v->cap];
        free(v->q);
        v->q = nq;
        v->cap = ncap;
        v->head = 0;
    }
    atomic_fetch_add(&m->refs, 1);
    v->q[(v->head + v->n) % v->cap] = m;
    v->n++;
    if (!v->ready && !v->flushing) {
        mark_ready(r, v);
    }
    return true;
}

static msg *msg_new(const char *fmt_head, uint64_t seq, const char *body, size_t blen)
{
    char head[96];
    int hn = snprintf(head, sizeof head, fmt_head, (unsigned long long)seq);
    msg *m = malloc(sizeof *m + (size_t)hn + blen);
    if (m == NULL)
        return NULL;
    atomic_init(&m->refs, 1);
    memcpy(m->data, head, (size_t)hn);
    memcpy(m->data + hn, body, blen);
    m->len = (size_t)hn + blen;
    return m;
}

static void unlink_viewer(room *r, viewer *v)
{
    if (v->prev)
        v->prev->next = v->next;
    else
        r->viewers = v->next;
    if (v->next)
        v->next->prev = v->prev;
    v->prev = v->next = NULL;
}

static void hub(void *arg)
{
    room *r = arg;
    event e;
    while (gorc_chan_recv(r->events, &e) == 0) {
        if (e.kind == EV_JOIN) {
            viewer *v = e.v;
            v->next = r->viewers;
            if (r->viewers)
                r->viewers->prev = v;
            r->viewers = v;
            char body[160];
            int n = snprintf(body, sizeof body, ",\"room\":\"%s\"}", r->name);
            msg *m = msg_new("{\"type\":\"welcome\",\"seq\":%llu", r->seq, body, (size_t)n);
            gorc_mutex_lock(&r->mu);
            if (m)
                enqueue(r, v, m);
            gorc_mutex_unlock(&r->mu);
            gorc_cond_signal(&r->cv);
            if (m)
                msg_unref(m);
            atomic_fetch_add(&st_viewers, 1);
            atomic_fetch_add(&st_joins, 1);
        } else if (e.kind == EV_DRAIN) {
            /* The drain deadline of a restart: every viewer still here goes, with 1001. Their
             * readers see the close and leave as usual. */
            for (viewer *v = r->viewers; v; v = v->next) {
                atomic_fetch_add(&v->refs, 1);
                if (gorc_go(go_away, v) < 0)
                    viewer_unref(v);
            }
        } else if (e.kind == EV_LEAVE) {
            viewer *v = e.v;
            unlink_viewer(r, v);
            gorc_mutex_lock(&r->mu);
            v->gone = true;
            if (v->ready) { /* off the ready list before the room's reference goes */
                viewer **pp = &r->ready_head, *prev = NULL;
                while (*pp != v) {
                    prev = *pp;
                    pp = &(*pp)->next_ready;
                }
                *pp = v->next_ready;
                if (r->ready_tail == v)
                    r->ready_tail = prev;
                v->ready = false;
            }
            gorc_mutex_unlock(&r->mu);
            atomic_fetch_sub(&st_viewers, 1);
            viewer_unref(v); /* the room's reference */
        } else {
            r->seq++;
            atomic_fetch_add(&st_posts, 1);
            msg *m = msg_new("{\"seq\":%llu", r->seq, e.body, e.len);
            free(e.body);
            if (m == NULL)
                continue;
            gorc_mutex_lock(&r->mu);
            viewer *slow = NULL;
            for (viewer *v = r->viewers; v; v = v->next) {
                if (!enqueue(r, v, m)) {
                    v->gone = true;
                    atomic_fetch_add(&v->refs, 1);
                    v->next_slow = slow;
                    slow = v;
                }
            }
            gorc_mutex_unlock(&r->mu);
            gorc_cond_broadcast(&r->cv);
            msg_unref(m);
            while (slow) {
                viewer *v = slow;
                slow = v->next_slow;
                atomic_fetch_add(&st_dropped, 1);
                if (gorc_go(drop_slow, v) < 0)
                    viewer_unref(v);
            }
        }
    }
}

static room *room_get(const char *name)
{
    gorc_mutex_lock(&rooms_mu);
    room *r;
    for (r = rooms; r; r = r->next)
        if (strcmp(r->name, name) == 0)
            break;
    if (r == NULL && nrooms < ROOMS_MAX && (r = calloc(1, sizeof *r)) != NULL) {
        snprintf(r->name, sizeof r->name, "%s", name);
        r->cv.l = &r->mu;
        bool ok = gorc_chan_new(&r->events, sizeof(event), 1024) == 0 && gorc_go(hub, r) == 0;
        for (int i = 0; ok && i < FLUSHERS; i++)
            ok = gorc_go(flusher, r) == 0;
        if (ok) { /* (a half-started room is never freed: its goroutines may run) */
            r->next = rooms;
            rooms = r;
            nrooms++;
        } else {
            r = NULL;
        }
    }
    gorc_mutex_unlock(&rooms_mu);
    return r;
}

/* ---- handlers ---- */

/* Append s[0..n) as JSON string content to out (room for 6n bytes); returns the length. */
static size_t json_escape(char *out, const char *s, size_t n)
{
    size_t o = 0;
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)s[i];
        if (c == '"' || c == '\\') {
            out[o++] = '\\';
            out[o++] = (char)c;
        } else if (c < 0x20) {
            o += (size_t)sprintf(out + o, "\\u%04x", c);
        } else {
            out[o++] = (char)c;
        }
    }
    return o;
}

static bool name_ok(const char *s)
{
    if (*s == 0 || strlen(s) >= 64)
        return false;
    for (; *s; s++)
        if (!((*s >= 'a' && *s <= 'z') || (*s >= 'A' && *s <= 'Z') || (*s >= '0' && *s <= '9') ||
              *s == '-' || *s == '_' || *s == '.'))
            return false;
    return true;
}

static void viewer_read(void *arg)
{
    viewer *v = arg;
    room *r = v->r;
    event e = {.kind = EV_JOIN, .v = v};
    gorc_chan_send(r->events, &e);
    char nm[6 * 64];
    size_t nn = json_escape(nm, v->name, strlen(v->name));
    for (;;) {
        int type;
        char *text;
        ssize_t n = gorc_ws_read_message(v->ws, &type, &text, NULL);
        if (n < 0)
            break;
        if (type == GORC_WS_TEXT && n > 0) {
            /* ,"name":"N","text":"T"} */
            char *body = malloc(32 + nn + 6 * (size_t)n);
            if (body) {
                size_t b = (size_t)sprintf(body, ",\"name\":\"%.*s\",\"text\":\"", (int)nn, nm);
                b += json_escape(body + b, text, (size_t)n);
                memcpy(body + b, "\"}", 2);
                event p = {.kind = EV_POST, .body = body, .len = b + 2};
                gorc_chan_send(r->events, &p);
            }
        }
        free(text);
    }
    event l = {.kind = EV_LEAVE, .v = v};
    gorc_chan_send(r->events, &l);
    gorc_ws_close(gorc_ws_retain(v->ws), 0, NULL); /* the viewer record keeps its own */
    viewer_unref(v);
}

static void serve_ws(gorc_http_rw *w, gorc_http_request *req)
{
    char rname[64], name[64];
    if (gorc_http_query_value(req->query, "room", rname, sizeof rname) < 0 || !name_ok(rname)) {
        gorc_http_error(w, 400, "room: letters, digits, - _ . (at most 63)");
        return;
    }
    if (gorc_http_query_value(req->query, "name", name, sizeof name) < 0 || !name_ok(name))
        snprintf(name, sizeof name, "anonymous");
    room *r = room_get(rname);
    if (r == NULL) {
        gorc_http_error(w, 503, "too many rooms");
        return;
    }
    viewer *v = calloc(1, sizeof *v);
    if (v == NULL) {
        gorc_http_error(w, 503, "out of memory");
        return;
    }
    gorc_ws_opts o = {.max_message = MAX_TEXT, .ping_interval = 30 * GORC_SECOND};
    if (gorc_ws_upgrade(&v->ws, w, req, &o) < 0) { /* answered already */
        free(v);
        return;
    }
    v->r = r;
    atomic_init(&v->refs, 2); /* the reader's and the room's */
    snprintf(v->name, sizeof v->name, "%s", name);
    /* The reader gets a goroutine of its own, and this handler returns: the HTTP server's
     * connection record goes, and the stack the reader parks on is a fresh, shallow one. */
    if (gorc_go(viewer_read, v) < 0) {
        gorc_ws_close(v->ws, GORC_WS_CLOSE_INTERNAL, "out of memory");
        free(v);
    }
}

static const char page[] =
    "<!DOCTYPE html>\n"
    "<html><head><meta charset=\"utf-8\"><title>gorc danmaku</title>\n"
    "<style>\n"
    "body { font-family: sans-serif; margin: 0; background: #111; color: #eee; }\n"
    "header { padding: 8px; background: #222; }\n"
    "#screen { position: relative; height: 60vh; overflow: hidden; border-bottom: 1px solid #333; "
    "}\n"
    ".c { position: absolute; white-space: nowrap; font-size: 22px; left: 100%;\n"
    "     animation: fly 8s linear forwards; text-shadow: 1px 1px 2px #000; }\n"
    "@keyframes fly { to { transform: translateX(calc(-100vw - 100%)); } }\n"
    "#log { height: 25vh; overflow-y: auto; font-size: 13px; padding: 4px 8px; color: #aaa; }\n"
    "input { background: #333; color: #eee; border: 1px solid #555; padding: 4px; }\n"
    "</style></head><body>\n"
    "<header>\n"
    "room <input id=\"room\" value=\"lobby\" size=\"10\"> name <input id=\"name\" value=\"guest\" "
    "size=\"10\">\n"
    "<button id=\"join\">join</button> <span id=\"state\">not connected</span>\n"
    "&nbsp; <input id=\"text\" size=\"40\" placeholder=\"say something\" disabled>\n"
    "<button id=\"send\" disabled>post</button>\n"
    "</header>\n"
    "<div id=\"screen\"></div><div id=\"log\"></div>\n"
    "<script>\n"
    "let ws = null, lane = 0;\n"
    "const $ = (id) => document.getElementById(id);\n"
    "function log(s) { const d = document.createElement('div'); d.textContent = s;\n"
    "  $('log').prepend(d); while ($('log').childNodes.length > 200) $('log').lastChild.remove(); "
    "}\n"
    "function fly(s) { const d = document.createElement('div'); d.className = 'c'; d.textContent = "
    "s;\n"
    "  d.style.top = (lane++ % 10) * 10 + '%'; d.style.color = 'hsl(' + (lane * 47 % 360) + "
    "',80%,75%)';\n"
    "  $('screen').appendChild(d); d.addEventListener('animationend', () => d.remove()); }\n"
    "$('join').onclick = () => {\n"
    "  if (ws) ws.close(1000, 'leaving');\n"
    "  const q = 'room=' + encodeURIComponent($('room').value) + '&name=' + "
    "encodeURIComponent($('name').value);\n"
    "  ws = new WebSocket((location.protocol === 'https:' ? 'wss://' : 'ws://') + location.host + "
    "'/ws?' + q);\n"
    "  ws.onopen = () => { $('state').textContent = 'connected'; $('text').disabled = "
    "$('send').disabled = false; };\n"
    "  ws.onmessage = (e) => { const m = JSON.parse(e.data);\n"
    "    if (m.type === 'welcome') { log('joined ' + m.room + ' after comment #' + m.seq); return; "
    "}\n"
    "    fly(m.name + ': ' + m.text); log('#' + m.seq + ' ' + m.name + ': ' + m.text); };\n"
    "  ws.onclose = (e) => { $('state').textContent = 'closed (' + e.code + (e.reason ? ' ' + "
    "e.reason : '') + ')';\n"
    "    $('text').disabled = $('send').disabled = true; };\n"
    "};\n"
    "function post() { const t = $('text').value; if (ws && t) { ws.send(t); $('text').value = ''; "
    "} }\n"
    "$('send').onclick = post;\n"
    "$('text').addEventListener('keydown', (e) => { if (e.key === 'Enter') post(); });\n"
    "</script></body></html>\n";

static void handler(gorc_http_rw *w, gorc_http_request *req, void *arg)
{
    (void)arg;
    if (strcmp(req->path, "/ws") == 0) {
        serve_ws(w, req);
    } else if (strcmp(req->path, "/") == 0) {
        gorc_http_rw_set_header(w, "Content-Type", "text/html; charset=utf-8");
        gorc_http_rw_write(w, page, sizeof page - 1);
    } else if (strcmp(req->path, "/stats") == 0) {
        gorc_http_rw_set_header(w, "Content-Type", "application/json");
        gorc_http_rw_printf(w,
                            "{\"pid\":%d,\"rooms\":%d,\"viewers\":%llu,\"joins\":%llu,"
                            "\"posts\":%llu,\"deliveries\":%llu,\"dropped\":%llu,"
                            "\"goroutines\":%lld}\n",
                            (int)getpid(), nrooms, st_viewers, st_joins, st_posts, st_deliveries,
                            st_dropped, (long long)gorc_count());
    } else {
        gorc_http_error(w, 404, NULL);
    }
}

static const char *listen_addr = "127.0.0.1:8090";
static int64_t drain_timeout = 60 * GORC_SECOND;
static gorc_restart *restart;
static gorc_http_server *server;
static gorc_chan *drained; /* closed when a restart's drain is over */

/* Tell every room's hub to close its viewers (the drain deadline). */
static void drain_rooms(void)
{
    gorc_mutex_lock(&rooms_mu);
    for (room *r = rooms; r; r = r->next) {
        event e = {.kind = EV_DRAIN};
        gorc_chan_send(r->events, &e);
    }
    gorc_mutex_unlock(&rooms_mu);
}

/* A successor serves: stop accepting, keep the viewers until they leave or the deadline. */
static void watch_restart(void *arg)
{
    (void)arg;
    gorc_chan_recv(gorc_restart_exit(restart), NULL);
    if (gorc_restart_successor(restart) <= 0)
        return; /* gorc_restart_stop: no restart */
    printf("danmaku: process %d serves now; draining %llu viewers\n",
           gorc_restart_successor(restart), (unsigned long long)atomic_load(&st_viewers));
    fflush(stdout);
    int64_t deadline = gorc_now() + drain_timeout;
    gorc_http_server_shutdown(server, deadline); /* upgraded viewers are not waited for */
    while (atomic_load(&st_viewers) > 0 && gorc_now() < deadline)
        gorc_sleep(50 * GORC_MILLISECOND);
    if (atomic_load(&st_viewers) > 0) {
        drain_rooms();
        int64_t last = gorc_now() + 5 * GORC_SECOND; /* for the closing handshakes */
        while (atomic_load(&st_viewers) > 0 && gorc_now() < last)
            gorc_sleep(50 * GORC_MILLISECOND);
    }
    printf("danmaku: drained (%llu viewers left); bye\n",
           (unsigned long long)atomic_load(&st_viewers));
    fflush(stdout);
    gorc_chan_close(drained);
}

static void run(void *arg)
{
    (void)arg;
    gorc_restart_opts ro = {.verbose = true}; /* SIGUSR2 restarts */
    int rc = gorc_restart_new(&restart, &ro);
    if (rc < 0) {
        fprintf(stderr, "danmaku: restart set-up: %s\n", gorc_strerror(rc));
        exit(1);
    }
    /* The listener inherited from the process that restarted into this one, or a new one. */
    gorc_listener *l;
    gorc_listen_opts lo = {.backlog = 4096};
    rc = gorc_restart_listen(restart, &l, listen_addr, &lo);
    if (rc < 0) {
        fprintf(stderr, "danmaku: listen %s: %s\n", listen_addr, gorc_strerror(rc));
        exit(1);
    }
    char a[GORC_ADDRSTRLEN];
    gorc_listener_addr(l, a, sizeof a);
    printf("danmaku on http://%s/ (WebSocket at ws://%s/ws?room=R&name=N), process %d; "
           "kill -USR2 %d restarts it\n",
           a, a, (int)getpid(), (int)getpid());
    fflush(stdout);
    gorc_http_server_opts o = {.handler = handler};
    if (gorc_http_server_new(&server, &o) < 0 || gorc_chan_new(&drained, 0, 0) < 0 ||
        gorc_go(watch_restart, NULL) < 0)
        exit(1);
    gorc_restart_ready(restart);
    rc = gorc_http_server_serve(server, l);
    if (rc != GORC_HTTP_ESERVERCLOSED) {
        fprintf(stderr, "danmaku: serve: %s\n", gorc_strerror(rc));
        exit(1);
    }
    gorc_chan_recv(drained, NULL);
    exit(0); /* the rooms' goroutines are left to the exit */
}

int main(int argc, char **argv)
{
    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "-drain") == 0 && i + 1 < argc)
            drain_timeout = (int64_t)(atof(argv[++i]) * 1e9);
        else
            listen_addr = argv[i];
    }
    /* One descriptor per viewer: take all the process may have. */
    struct rlimit rl;
    if (getrlimit(RLIMIT_NOFILE, &rl) == 0) {
        rl.rlim_cur = rl.rlim_max;
        setrlimit(RLIMIT_NOFILE, &rl);
    }
    return gorc_main(run, NULL) == 0 ? 0 : 1;
}
