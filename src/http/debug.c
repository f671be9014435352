/*
 * debug.c - the live runtime page, its JSON endpoints, and the trace and flight-recorder
 * downloads (gorc_http_debug.h). Go has the pieces in net/http/pprof (an index page, the
 * execution trace at /debug/pprof/trace); the goroutine table follows tokio-console's.
 *
 * The page is one HTML document with its script and style inline, drawn on <canvas> by plain
 * JavaScript: it loads nothing from elsewhere, so it works on a machine without network and
 * under a strict CSP of its own origin. It polls runtime.json once a second and goroutines.json
 * every two; runtime.json gives cumulative counters and histograms, and the page derives rates
 * and percentiles from the difference between two polls, so any number of pages may watch
 * without the server keeping per-viewer state.
 *
 * What it reads: gorc_count and gorc_maxprocs; the goroutine records through gorc__each_g (a
 * snapshot walk, as gorc_dump's: a goroutine may change state while it is read, the records are
 * never freed); the scheduling-latency histograms of the runtime (runtime/trace.h), turned on
 * at the first mount; the request latency of every server in the process, which server.c
 * reports here after each handler while gorc__http_observing is set (the first mount sets
 * it) or the server has a flight_slow_request threshold. That is a clock read per request and
 * one atomic add on a shared histogram: the cost of watching, paid only while mounted.
 *
 * Slow requests: when a handler took longer than its server's flight_slow_request and the
 * flight recorder runs, a snapshot is kept here (at most one a second, the newest wins), for
 * {prefix}flight?saved=1: Go 1.25's pattern of calling FlightRecorder.WriteTo when something
 * is slow, built in.
 */
#include "gorc_http_debug.h"
#include "gorc_context.h"
#include "gorc_trace.h"
#include "http/internal.h"
#include "runtime/runtime.h"
#include "runtime/trace.h"

#include <dlfcn.h>
#include <inttypes.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

_Atomic bool gorc__http_observing;

static _Atomic uint64_t requests;
static _Atomic uint64_t lat[GORC__LHIST_BUCKETS];
static _Atomic int64_t started;

/* The snapshot kept at the last slow request, under saved_mu. */
static gorc_mutex saved_mu;
static struct {
    void *bin;
    size_t len;
    int64_t at;  /* gorc_now when taken */
    int64_t dur; /* the request's duration */
    char what[200];
} saved;
static _Atomic int64_t saved_last;

static void keep_slow(const gorc_http_request *r, int64_t dur, int64_t now)
{
    int64_t last = atomic_load(&saved_last);
    if (last != 0 && now - last < GORC_SECOND)
        return;
    if (!atomic_compare_exchange_strong(&saved_last, &last, now))
        return; /* another request is taking it */
    void *bin;
    size_t len;
    if (gorc_flight_recorder_snapshot(&bin, &len) != 0)
        return;
    gorc_mutex_lock(&saved_mu);
    free(saved.bin);
    saved.bin = bin;
    saved.len = len;
    saved.at = now;
    saved.dur = dur;
    snprintf(saved.what, sizeof saved.what, "%s %s", r->method, r->path);
    gorc_mutex_unlock(&saved_mu);
}

void gorc__http_observe_end(const gorc_http_server_opts *o, const gorc_http_request *r, int64_t t0)
{
    int64_t now = gorc_now();
    int64_t d = now - t0;
    if (atomic_load_explicit(&gorc__http_observing, memory_order_relaxed)) {
        atomic_fetch_add_explicit(&requests, 1, memory_order_relaxed);
        atomic_fetch_add_explicit(&lat[gorc__lhist_index(d)], 1, memory_order_relaxed);
    }
    if (o->flight_slow_request > 0 && d > o->flight_slow_request && gorc_flight_recorder_enabled())
        keep_slow(r, d, now);
}

/* ---- the page ---- */

static const char page[] =
    "<!doctype html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">\n"
    "<title>gorc runtime</title>\n<style>\n"
    "body{font:14px/1.4 system-ui,sans-serif;margin:1.2em;color:#222;background:#fafafa}\n"
    "h1{font-size:1.3em;margin:0 0 .3em}h2{font-size:1.1em;margin:1em 0 .3em}\n"
    "#status{font-size:.7em;color:#777;font-weight:normal}\n"
    ".links a{margin-right:1.2em}\n"
    ".charts{display:grid;grid-template-columns:repeat(auto-fill,minmax(460px,1fr));gap:12px}\n"
    "figure{margin:0;background:#fff;border:1px solid #ddd;border-radius:6px;padding:8px}\n"
    "figcaption{font-weight:600;margin-bottom:4px}figcaption b{font-weight:normal;color:#555}\n"
    "canvas{width:100%;height:150px}\n"
    "table{border-collapse:collapse;background:#fff;width:100%;font-size:13px}\n"
    "th,td{border-bottom:1px solid #eee;padding:3px 8px;text-align:left;white-space:nowrap}\n"
    "th{background:#f0f0f0;position:sticky;top:0}tbody tr:hover{background:#eef4ff;"
    "cursor:pointer}\n"
    "td.n{text-align:right;font-variant-numeric:tabular-nums}\n"
    ".running{color:#1a7f37}.runnable{color:#9a6700}.waiting{color:#555}\n"
    "#detail{background:#fff;border:1px solid "
    "#ddd;padding:8px;min-height:2em;white-space:pre-wrap}\n"
    "</style></head><body>\n"
    "<h1>gorc runtime <span id=\"status\">loading</span></h1>\n"
    "<p class=\"links\">Download: <a href=\"pprof/profile?seconds=10\">CPU profile (10 s)</a>"
    "<a href=\"trace?seconds=2\" download=\"trace.json\">execution trace (2 s)</a>"
    "<a href=\"flight\" download=\"flight.json\">flight-recorder snapshot</a>"
    "<a href=\"flight?saved=1\" download=\"slow.json\">snapshot of the last slow request</a>"
    "<a href=\"runtime.json\">runtime.json</a><a href=\"goroutines.json\">goroutines.json</a>"
    "<br><small>Traces open in <a href=\"https://ui.perfetto.dev\">Perfetto</a> or "
    "chrome://tracing; profiles in <code>go tool pprof</code>.</small></p>\n"
    "<div class=\"charts\">\n"
    "<figure><figcaption>requests/s <b id=\"v-rps\"></b></figcaption>"
    "<canvas id=\"c-rps\" width=\"900\" height=\"300\"></canvas></figure>\n"
    "<figure><figcaption>request latency p50 / p90 / p99, ms <b id=\"v-lat\"></b></figcaption>"
    "<canvas id=\"c-lat\" width=\"900\" height=\"300\"></canvas></figure>\n"
    "<figure><figcaption>goroutines <b id=\"v-gor\"></b></figcaption>"
    "<canvas id=\"c-gor\" width=\"900\" height=\"300\"></canvas></figure>\n"
    "<figure><figcaption>scheduling latency p50 / p99, &micro;s <b id=\"v-sched\"></b>"
    "</figcaption><canvas id=\"c-sched\" width=\"900\" height=\"300\"></canvas></figure>\n"
    "</div>\n"
    "<h2>Goroutines <span id=\"gcount\"></span></h2>\n"
    "<p><small>Click a row for its details.</small></p>\n"
    "<pre id=\"detail\"></pre>\n"
    "<table id=\"gtable\"><thead><tr><th>id</th><th>state</th><th>wait reason</th>"
    "<th>in state</th><th>function</th><th>spawned at</th><th>parent</th></tr></thead>"
    "<tbody></tbody></table>\n"
    "<script>\n"
    "'use strict';\n"
    "const N = 120, S = {rps: [], p50: [], p90: [], p99: [], gor: [], s50: [], s99: []};\n"
    "let prev = null, bounds = null;\n"
    "const $ = id => document.getElementById(id);\n"
    "function push(k, v) { S[k].push(v); if (S[k].length > N) S[k].shift(); }\n"
    "function pct(h, q) {\n"
    "  let t = 0; for (const v of h) t += v; if (t <= 0) return NaN;\n"
    "  let want = q * t, a = 0;\n"
    "  for (let i = 0; i < h.length; i++) { a += h[i]; if (a >= want) return bounds[i]; }\n"
    "  return bounds[h.length - 1];\n"
    "}\n"
    "function diff(a, b) { return b ? a.map((v, i) => v - b[i]) : a; }\n"
    "const colors = ['#0969da', '#bf8700', '#cf222e'];\n"
    "function draw(id, lines) {\n"
    "  const c = $(id), g = c.getContext('2d'), W = c.width, H = c.height, L = 70, B = 24;\n"
    "  g.clearRect(0, 0, W, H); g.font = '20px system-ui'; g.fillStyle = '#666';\n"
    "  let max = 0, pts = 0;\n"
    "  for (const l of lines) for (const v of l) if (isFinite(v) && v > max) max = v;\n"
    "  if (max <= 0) max = 1;\n"
    "  const nice = Math.pow(10, Math.floor(Math.log10(max))); max = Math.ceil(max / nice) * "
    "nice;\n"
    "  g.strokeStyle = '#ddd'; g.lineWidth = 1;\n"
    "  for (let i = 0; i <= 4; i++) { const y = B / 2 + (H - B) * i / 4;\n"
    "    g.beginPath(); g.moveTo(L, y); g.lineTo(W, y); g.stroke();\n"
    "    const v = max * (4 - i) / 4; g.fillText(v >= 100 ? v.toFixed(0) : +v.toPrecision(3), 4, "
    "y + 7); }\n"
    "  lines.forEach((l, k) => {\n"
    "    g.strokeStyle = colors[k % 3]; g.lineWidth = 2.5; g.beginPath(); let on = false;\n"
    "    l.forEach((v, i) => { if (!isFinite(v)) { on = false; return; }\n"
    "      const x = L + (W - L) * (i + N - l.length) / (N - 1), y = B / 2 + (H - B) * (1 - v / "
    "max);\n"
    "      if (on) g.lineTo(x, y); else g.moveTo(x, y); on = true; pts++; });\n"
    "    g.stroke(); });\n"
    "  c.dataset.points = pts;\n"
    "}\n"
    "const f3 = v => isFinite(v) ? (+v.toPrecision(3)).toString() : '-';\n"
    "async function tick() {\n"
    "  try {\n"
    "    const j = await (await fetch('runtime.json', {cache: 'no-store'})).json();\n"
    "    bounds = j.bounds_ns;\n"
    "    const dl = diff(j.latency, prev && prev.latency), ds = diff(j.sched, prev && "
    "prev.sched);\n"
    "    if (prev) push('rps', (j.requests - prev.requests) / ((j.now_ns - prev.now_ns) / 1e9));\n"
    "    push('p50', pct(dl, .5) / 1e6); push('p90', pct(dl, .9) / 1e6); push('p99', pct(dl, .99) "
    "/ 1e6);\n"
    "    push('gor', j.goroutines);\n"
    "    push('s50', pct(ds, .5) / 1e3); push('s99', pct(ds, .99) / 1e3);\n"
    "    draw('c-rps', [S.rps]); draw('c-lat', [S.p50, S.p90, S.p99]); draw('c-gor', [S.gor]);\n"
    "    draw('c-sched', [S.s50, S.s99]);\n"
    "    const last = k => S[k][S[k].length - 1];\n"
    "    $('v-rps').textContent = S.rps.length ? f3(last('rps')) : '';\n"
    "    $('v-lat').textContent = f3(last('p50')) + ' / ' + f3(last('p90')) + ' / ' + "
    "f3(last('p99'));\n"
    "    $('v-gor').textContent = j.goroutines + ' on ' + j.procs + ' Ps (' + j.running + ' "
    "running, ' + j.runnable + ' runnable, ' + j.waiting + ' waiting)';\n"
    "    $('v-sched').textContent = f3(last('s50')) + ' / ' + f3(last('s99'));\n"
    "    prev = j;\n"
    "    $('status').textContent = 'updated ' + new Date().toLocaleTimeString() + (j.flight ? "
    "', flight recorder on' : '');\n"
    "  } catch (e) { $('status').textContent = 'error: ' + e; }\n"
    "}\n"
    "function ms(ns) { return ns < 0 ? '-' : ns < 1e6 ? (ns / 1e3).toFixed(0) + ' \\u00b5s' : ns "
    "< 1e9 ? (ns / 1e6).toFixed(1) + ' ms' : (ns / 1e9).toFixed(1) + ' s'; }\n"
    "async function table() {\n"
    "  try {\n"
    "    const j = await (await fetch('goroutines.json', {cache: 'no-store'})).json();\n"
    "    const tb = $('gtable').tBodies[0], rows = [];\n"
    "    for (const g of j.goroutines) {\n"
    "      const tr = document.createElement('tr');\n"
    "      const cells = [g.id, g.state, g.wait, ms(g.in_state_ns), g.fn, g.spawn, g.parent];\n"
    "      cells.forEach((v, i) => { const td = document.createElement('td'); td.textContent = v;\n"
    "        if (i == 0 || i == 3 || i == 6) td.className = 'n'; if (i == 1) td.className = "
    "g.state; tr.appendChild(td); });\n"
    "      tr.onclick = async () => { $('detail').textContent = await (await fetch('goroutine?id=' "
    "+ g.id)).text(); };\n"
    "      rows.push(tr);\n"
    "    }\n"
    "    tb.replaceChildren(...rows);\n"
    "    $('gcount').textContent = '(' + j.total + (j.truncated ? ', first ' + j.goroutines.length "
    "+ ' shown' : '') + ')';\n"
    "  } catch (e) { $('gcount').textContent = 'error: ' + e; }\n"
    "}\n"
    "tick(); table(); setInterval(tick, 1000); setInterval(table, 2000);\n"
    "</script>\n</body></html>\n";

static bool get_only(gorc_http_rw *w, gorc_http_request *r)
{
    if (strcmp(r->method, "GET") == 0 || strcmp(r->method, "HEAD") == 0)
        return true;
    gorc_http_rw_set_header(w, "Allow", "GET, HEAD");
    gorc_http_error(w, 405, "method not allowed");
    return false;
}

static void watch(void)
{
    if (atomic_load(&gorc__http_observing))
        return;
    int64_t zero = 0;
    atomic_compare_exchange_strong(&started, &zero, gorc_now());
    atomic_store(&gorc__leak_on, true);
    gorc__park_hook(GORC__PH_LEAK, true);
    gorc__schedlat_enable();
    atomic_store(&gorc__http_observing, true);
}

void gorc_http_debug_page(gorc_http_rw *w, gorc_http_request *r, void *arg)
{
    (void)arg;
    if (!get_only(w, r))
        return;
    watch();
    gorc_http_rw_set_header(w, "Content-Type", "text/html; charset=utf-8");
    gorc_http_rw_set_header(w, "Cache-Control", "no-store");
    gorc_http_rw_write(w, page, sizeof page - 1);
}

/* ---- runtime.json ---- */

typedef struct census {
    int running, runnable, waiting;
} census;

static void count_one(gorc__g *g, void *arg)
{
    census *c = arg;
    if (g->foreign)
        return;
    uint32_t st = atomic_load_explicit(&g->status, memory_order_acquire);
    c->running += st == GORC__G_RUNNING;
    c->runnable += st == GORC__G_RUNNABLE;
    c->waiting += st == GORC__G_WAITING;
}

static void put_hist(gorc__http_sbuf *b, const char *name, const uint64_t *h)
{
    char num[32];
    gorc__http_sbuf_str(b, name);
    for (int i = 0; i < GORC__LHIST_BUCKETS; i++) {
        snprintf(num, sizeof num, "%s%" PRIu64, i ? "," : "[", h[i]);
        gorc__http_sbuf_str(b, num);
    }
    gorc__http_sbuf_str(b, "]");
}

static void send_sbuf(gorc_http_rw *w, gorc__http_sbuf *b, const char *type)
{
    if (b->oom) {
        free(b->p);
        gorc_http_error(w, 500, "out of memory");
        return;
    }
    gorc_http_rw_set_header(w, "Content-Type", type);
    gorc_http_rw_set_header(w, "Cache-Control", "no-store");
    gorc_http_rw_write(w, b->p, b->n);
    free(b->p);
}

void gorc_http_debug_runtime(gorc_http_rw *w, gorc_http_request *r, void *arg)
{
    (void)arg;
    if (!get_only(w, r))
        return;
    watch();
    census c = {0};
    gorc__each_g(count_one, &c);
    uint64_t lh[GORC__LHIST_BUCKETS], sh[GORC__LHIST_BUCKETS];
    for (int i = 0; i < GORC__LHIST_BUCKETS; i++)
        lh[i] = atomic_load_explicit(&lat[i], memory_order_relaxed);
    gorc__schedlat_read(sh);
    int64_t now = gorc_now();
    gorc__http_sbuf b = {0};
    char head[512];
    snprintf(head, sizeof head,
             "{\"now_ns\":%" PRId64 ",\"watching_ns\":%" PRId64 ",\"goroutines\":%" PRId64
             ",\"procs\":%d,\"running\":%d,\"runnable\":%d,\"waiting\":%d,\"requests\":%" PRIu64
             ",\"trace\":%s,\"flight\":%s,",
             now, now - atomic_load(&started), gorc_count(), gorc_maxprocs(), c.running, c.runnable,
             c.waiting, atomic_load(&requests), gorc_trace_enabled() ? "true" : "false",
             gorc_flight_recorder_enabled() ? "true" : "false");
    gorc__http_sbuf_str(&b, head);
    gorc_mutex_lock(&saved_mu);
    if (saved.bin) {
        char js[512];
        snprintf(js, sizeof js,
                 "\"saved\":{\"age_ns\":%" PRId64 ",\"request_ns\":%" PRId64 ",\"bytes\":%zu},",
                 now - saved.at, saved.dur, saved.len);
        gorc__http_sbuf_str(&b, js);
    }
    gorc_mutex_unlock(&saved_mu);
    uint64_t bounds[GORC__LHIST_BUCKETS];
    for (int i = 0; i < GORC__LHIST_BUCKETS; i++)
        bounds[i] = (uint64_t)gorc__lhist_upper(i);
    put_hist(&b, "\"bounds_ns\":", bounds);
    put_hist(&b, ",\"latency\":", lh);
    put_hist(&b, ",\"sched\":", sh);
    gorc__http_sbuf_str(&b, "}\n");
    send_sbuf(w, &b, "application/json");
}

/* ---- goroutines ---- */

#define MAX_ROWS 5000

static const char *state_str(uint32_t st)
{
    switch (st) {
    case GORC__G_RUNNABLE:
        return "runnable";
    case GORC__G_RUNNING:
        return "running";
    case GORC__G_WAITING:
        return "waiting";
    default:
        return "dead";
    }
}

/* "name+0xoff", or "module+0xoff" when the symbol is not in the dynamic table. */
static void where(char *buf, size_t n, uintptr_t pc)
{
    Dl_info di;
    if (pc && dladdr((void *)pc, &di) && di.dli_fname) {
        const char *mod = strrchr(di.dli_fname, '/');
        mod = mod ? mod + 1 : di.dli_fname;
        if (di.dli_sname && pc == (uintptr_t)di.dli_saddr)
            snprintf(buf, n, "%s", di.dli_sname);
        else if (di.dli_sname)
            snprintf(buf, n, "%s+0x%" PRIxPTR, di.dli_sname, pc - (uintptr_t)di.dli_saddr);
        else
            snprintf(buf, n, "%s+0x%" PRIxPTR, mod, pc - (uintptr_t)di.dli_fbase);
    } else {
        snprintf(buf, n, "%#" PRIxPTR, pc);
    }
}

typedef struct row {
    uint64_t id, parent;
    uint32_t st;
    int reason;
    int64_t since;
    uintptr_t fn, spawn;
    void *obj;
    bool system;
} row;

typedef struct rows {
    row *r;
    int n, total;
} rows;

static void take_row(gorc__g *g, void *arg)
{
    rows *rs = arg;
    uint32_t st = atomic_load_explicit(&g->status, memory_order_acquire);
    if (st == GORC__G_FREE || st == GORC__G_DEAD || g->foreign)
        return;
    rs->total++;
    if (rs->n >= MAX_ROWS)
        return;
    row *x = &rs->r[rs->n++];
    x->id = g->id;
    x->parent = g->parent;
    x->st = st;
    x->reason = st == GORC__G_WAITING ? g->waitreason : GORC__W_NONE;
    x->since = st == GORC__G_WAITING ? gorc__parked_since(g) : 0;
    x->fn = (uintptr_t)g->fn;
    x->spawn = g->spawnpc;
    x->obj = st == GORC__G_WAITING ? g->waiton : NULL;
    x->system = g->system;
}

static int by_id(const void *a, const void *b)
{
    const row *x = a, *y = b;
    return x->id < y->id ? -1 : x->id > y->id;
}

static bool snapshot_rows(rows *rs)
{
    rs->r = malloc(sizeof(row) * MAX_ROWS);
    if (rs->r == NULL)
        return false;
    rs->n = rs->total = 0;
    gorc__each_g(take_row, rs);
    qsort(rs->r, (size_t)rs->n, sizeof(row), by_id);
    return true;
}

void gorc_http_debug_goroutines(gorc_http_rw *w, gorc_http_request *r, void *arg)
{
    (void)arg;
    if (!get_only(w, r))
        return;
    watch();
    rows rs;
    if (!snapshot_rows(&rs)) {
        gorc_http_error(w, 500, "out of memory");
        return;
    }
    int64_t now = gorc_now();
    gorc__http_sbuf b = {0};
    char line[1024], fn[256], sp[256];
    snprintf(line, sizeof line,
             "{\"now_ns\":%" PRId64 ",\"total\":%d,\"truncated\":%s,\"goroutines\":[", now,
             rs.total, rs.total > rs.n ? "true" : "false");
    gorc__http_sbuf_str(&b, line);
    for (int i = 0; i < rs.n; i++) {
        row *x = &rs.r[i];
        where(fn, sizeof fn, x->fn);
        where(sp, sizeof sp, x->spawn);
        /* Symbol and module names: no quotes or backslashes to escape in practice; replace
         * them if they occur rather than emit broken JSON. */
        for (char *p = fn; *p; p++)
            if (*p == '"' || *p == '\\' || (unsigned char)*p < 0x20)
                *p = '?';
        for (char *p = sp; *p; p++)
            if (*p == '"' || *p == '\\' || (unsigned char)*p < 0x20)
                *p = '?';
        snprintf(line, sizeof line,
                 "%s{\"id\":%" PRIu64 ",\"state\":\"%s\",\"wait\":\"%s\",\"in_state_ns\":%" PRId64
                 ",\"fn\":\"%s\",\"spawn\":\"%s\",\"parent\":%" PRIu64 ",\"system\":%s}",
                 i ? "," : "", x->id, state_str(x->st),
                 x->st == GORC__G_WAITING ? gorc__waitreason_str(x->reason) : "",
                 x->since > 0 ? now - x->since : (int64_t)-1, fn, sp, x->parent,
                 x->system ? "true" : "false");
        gorc__http_sbuf_str(&b, line);
    }
    gorc__http_sbuf_str(&b, "]}\n");
    free(rs.r);
    send_sbuf(w, &b, "application/json");
}

void gorc_http_debug_goroutine(gorc_http_rw *w, gorc_http_request *r, void *arg)
{
    (void)arg;
    if (!get_only(w, r))
        return;
    char v[32];
    char *end;
    if (gorc_http_query_value(r->query, "id", v, sizeof v) <= 0) {
        gorc_http_error(w, 400, "want ?id=N");
        return;
    }
    unsigned long long id = strtoull(v, &end, 10);
    if (*end != 0 || id == 0) {
        gorc_http_error(w, 400, "want ?id=N");
        return;
    }
    rows rs;
    if (!snapshot_rows(&rs)) {
        gorc_http_error(w, 500, "out of memory");
        return;
    }
    row *x = NULL;
    for (int i = 0; i < rs.n && !x; i++)
        if (rs.r[i].id == id)
            x = &rs.r[i];
    if (x == NULL) {
        free(rs.r);
        gorc_http_error(w, 404, "no such goroutine (it ended, or never was)");
        return;
    }
    char fn[256], sp[256];
    where(fn, sizeof fn, x->fn);
    where(sp, sizeof sp, x->spawn);
    gorc_http_rw_set_header(w, "Content-Type", "text/plain; charset=utf-8");
    gorc_http_rw_set_header(w, "Cache-Control", "no-store");
    gorc_http_rw_printf(w, "goroutine %" PRIu64 " [%s", x->id,
                        x->st == GORC__G_WAITING ? gorc__waitreason_str(x->reason)
                                                 : state_str(x->st));
    if (x->since > 0)
        gorc_http_rw_printf(w, ", %" PRId64 " ms", (gorc_now() - x->since) / GORC_MILLISECOND);
    gorc_http_rw_printf(w, "]%s:\n\tstart function %s\n", x->system ? " (runtime)" : "", fn);
    if (x->obj)
        gorc_http_rw_printf(w, "\twaiting on %p\n", x->obj);
    gorc_http_rw_printf(w, "created by goroutine %" PRIu64 " at %s\n", x->parent, sp);
    free(rs.r);
    /* Its stack, as gorc_dump prints it (frames, then the spawn site); it may have moved on or
     * ended since the table's snapshot, and then says so. */
    char stack[16384];
    ssize_t n = gorc_goroutine_stack(id, stack, sizeof stack);
    if (n > 0)
        gorc_http_rw_printf(w, "\n%s%s", stack, (size_t)n >= sizeof stack ? "\n...\n" : "");
    else
        gorc_http_rw_printf(w, "\n(no stack: %s)\n", gorc_strerror((int)n));
}

/* ---- traces ---- */

static void send_trace(gorc_http_rw *w, const void *bin, size_t len, const char *name)
{
    char *json;
    size_t jl;
    int rc = gorc_trace_json(bin, len, &json, &jl);
    if (rc != 0) {
        gorc_http_error(w, 500, gorc_strerror(rc));
        return;
    }
    char cd[128];
    snprintf(cd, sizeof cd, "attachment; filename=\"%s\"", name);
    gorc_http_rw_set_header(w, "Content-Type", "application/json");
    gorc_http_rw_set_header(w, "Content-Disposition", cd);
    gorc_http_rw_set_header(w, "Cache-Control", "no-store");
    gorc_http_rw_write(w, json, jl);
    free(json);
}

void gorc_http_debug_trace(gorc_http_rw *w, gorc_http_request *r, void *arg)
{
    (void)arg;
    if (!get_only(w, r))
        return;
    char v[32];
    double secs = 1;
    if (gorc_http_query_value(r->query, "seconds", v, sizeof v) > 0) {
        char *end;
        secs = strtod(v, &end);
        if (*end != 0 || !(secs > 0) || secs > 60) {
            gorc_http_error(w, 400, "seconds must be a number in (0, 60]");
            return;
        }
    }
    if (gorc_flight_recorder_enabled()) {
        /* The recorder holds the tracer: wait, then send its window, which covers the last
         * `seconds` when its min_age is at least that long. */
        gorc_sleep_ctx((int64_t)(secs * (double)GORC_SECOND), gorc_http_request_ctx(r));
        void *fb;
        size_t fl;
        int frc = gorc_flight_recorder_snapshot(&fb, &fl);
        if (frc != 0) {
            gorc_http_error(w, 500, gorc_strerror(frc));
            return;
        }
        send_trace(w, fb, fl, "trace.json");
        free(fb);
        return;
    }
    int fd = memfd_create("gorc-trace", MFD_CLOEXEC);
    if (fd < 0) {
        gorc_http_error(w, 500, "no descriptor for the trace");
        return;
    }
    int rc = gorc_trace_start(fd);
    if (rc != 0) {
        close(fd);
        gorc_http_error(w, 500,
                        rc == -EBUSY ? "could not enable tracing: a trace or the flight "
                                       "recorder is already recording"
                                     : gorc_strerror(rc));
        return;
    }
    /* Stop early when the client goes away. */
    gorc_sleep_ctx((int64_t)(secs * (double)GORC_SECOND), gorc_http_request_ctx(r));
    rc = gorc_trace_stop();
    off_t n = lseek(fd, 0, SEEK_END);
    void *bin = n > 0 ? mmap(NULL, (size_t)n, PROT_READ, MAP_PRIVATE, fd, 0) : MAP_FAILED;
    close(fd);
    if (rc != 0 || bin == MAP_FAILED) {
        if (bin != MAP_FAILED)
            munmap(bin, (size_t)n);
        gorc_http_error(w, 500, gorc_strerror(rc ? rc : -ENOMEM));
        return;
    }
    send_trace(w, bin, (size_t)n, "trace.json");
    munmap(bin, (size_t)n);
}

void gorc_http_debug_flight(gorc_http_rw *w, gorc_http_request *r, void *arg)
{
    (void)arg;
    if (!get_only(w, r))
        return;
    char v[8];
    if (gorc_http_query_value(r->query, "saved", v, sizeof v) > 0 && strcmp(v, "0") != 0) {
        gorc_mutex_lock(&saved_mu);
        void *bin = NULL;
        size_t len = saved.len;
        if (saved.bin && (bin = malloc(len)) != NULL)
            memcpy(bin, saved.bin, len);
        bool had = saved.bin != NULL;
        gorc_mutex_unlock(&saved_mu);
        if (bin == NULL) {
            gorc_http_error(w, had ? 500 : 404,
                            had ? "out of memory" : "no slow request has been recorded");
            return;
        }
        send_trace(w, bin, len, "slow-request.json");
        free(bin);
        return;
    }
    void *bin;
    size_t len;
    int rc = gorc_flight_recorder_snapshot(&bin, &len);
    if (rc != 0) {
        gorc_http_error(w, rc == -EINVAL ? 404 : 500,
                        rc == -EINVAL ? "the flight recorder is not running" : gorc_strerror(rc));
        return;
    }
    send_trace(w, bin, len, "flight.json");
    free(bin);
}

/* ---- mounting ---- */

int gorc_http_debug_mount(gorc_http_mux *m, const char *prefix)
{
    if (m == NULL || prefix == NULL)
        return -EINVAL;
    size_t n = strlen(prefix);
    if (n == 0 || prefix[0] != '/' || prefix[n - 1] != '/' || n > 200 || strchr(prefix, '{'))
        return -EINVAL;
    static const struct {
        const char *suffix;
        gorc_http_handler_fn fn;
    } table[] = {
        {"{$}", gorc_http_debug_page},
        {"runtime.json", gorc_http_debug_runtime},
        {"goroutines.json", gorc_http_debug_goroutines},
        {"goroutine", gorc_http_debug_goroutine},
        {"trace", gorc_http_debug_trace},
        {"flight", gorc_http_debug_flight},
    };
    for (size_t i = 0; i < sizeof table / sizeof table[0]; i++) {
        char pat[256];
        snprintf(pat, sizeof pat, "%s%s", prefix, table[i].suffix);
        int rc = gorc_http_mux_handle(m, pat, table[i].fn, NULL);
        if (rc != 0)
            return rc;
    }
    watch();
    return 0;
}
