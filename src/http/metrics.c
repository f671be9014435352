/*
 * metrics.c - /metrics in Prometheus' text exposition format (0.0.4): the runtime metrics of
 * gorc_metrics_read and one server's HTTP counters.
 *
 * Runtime metric names map as Go's Prometheus collector maps runtime/metrics names:
 * "/sched/latencies:seconds" becomes gorc_sched_latencies_seconds ('/', '-' and ':' turn
 * into '_'), counters get the conventional _total suffix, histograms become cumulative
 * _bucket{le=...} series with _sum and _count. The whole answer is built in memory and sent
 * with its length: a scrape is a few kilobytes.
 */
#include "gorc_http_debug.h"
#include "http/internal.h"

#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

__attribute__((format(printf, 2, 3))) static void out(gorc__http_sbuf *b, const char *fmt, ...)
{
    char line[512];
    va_list ap;
    va_start(ap, fmt);
    int k = vsnprintf(line, sizeof line, fmt, ap);
    va_end(ap);
    if (k > 0)
        gorc__http_sbuf_put(b, line, (size_t)k < sizeof line ? (size_t)k : sizeof line - 1);
}

static void prom_name(const char *go, char *buf, size_t n)
{
    size_t k = (size_t)snprintf(buf, n, "gorc_");
    for (const char *p = go[0] == '/' ? go + 1 : go; *p && k + 1 < n; p++)
        buf[k++] = (*p == '/' || *p == '-' || *p == ':') ? '_' : *p;
    buf[k] = 0;
}

static void runtime_metrics(gorc__http_sbuf *b)
{
    size_t n;
    const gorc_metric_desc *d = gorc_metrics_all(&n);
    gorc_metric_sample *s = calloc(n, sizeof *s);
    if (s == NULL) {
        b->oom = true;
        return;
    }
    for (size_t i = 0; i < n; i++)
        s[i].name = d[i].name;
    gorc_metrics_read(s, n);
    for (size_t i = 0; i < n; i++) {
        char name[128];
        prom_name(d[i].name, name, sizeof name);
        if (s[i].kind == GORC_METRIC_COUNTER) {
            out(b, "# HELP %s_total %s\n# TYPE %s_total counter\n%s_total %llu\n", name,
                d[i].description, name, name, (unsigned long long)s[i].value);
        } else if (s[i].kind == GORC_METRIC_GAUGE) {
            out(b, "# HELP %s %s\n# TYPE %s gauge\n%s %llu\n", name, d[i].description, name, name,
                (unsigned long long)s[i].value);
        } else if (s[i].kind == GORC_METRIC_HISTOGRAM) {
            out(b, "# HELP %s %s\n# TYPE %s histogram\n", name, d[i].description, name);
            uint64_t cum = 0;
            for (size_t k = 0; k < s[i].nbuckets; k++) {
                cum += s[i].counts[k];
                double le = s[i].bounds[k + 1];
                if (isinf(le))
                    out(b, "%s_bucket{le=\"+Inf\"} %llu\n", name, (unsigned long long)cum);
                else
                    out(b, "%s_bucket{le=\"%g\"} %llu\n", name, le, (unsigned long long)cum);
            }
            if (s[i].nbuckets == 0 || !isinf(s[i].bounds[s[i].nbuckets]))
                out(b, "%s_bucket{le=\"+Inf\"} %llu\n", name, (unsigned long long)cum);
            out(b, "%s_sum %.9g\n%s_count %llu\n", name, isnan(s[i].sum) ? 0.0 : s[i].sum, name,
                (unsigned long long)cum);
        }
    }
    free(s);
}

static void server_metrics(gorc__http_sbuf *b, gorc_http_server *srv)
{
    uint64_t v[GORC__HM_N];
    gorc_http_server_stats st;
    gorc__http_server_metrics(srv, v, &st);
    static const char *const classes[GORC__HTTP_NCLASSES] = {"1xx", "2xx", "3xx",
                                                             "4xx", "5xx", "other"};
    out(b, "# HELP gorc_http_requests_total Requests handled, by method and status class.\n"
           "# TYPE gorc_http_requests_total counter\n");
    bool any = false;
    for (int m = 0; m < GORC__HTTP_NMETHODS; m++)
        for (int c = 0; c < GORC__HTTP_NCLASSES; c++) {
            uint64_t x = v[GORC__HM_REQ + m * GORC__HTTP_NCLASSES + c];
            if (x == 0 && !(m == 0 && c == 1 && !any))
                continue;
            any = true;
            out(b, "gorc_http_requests_total{method=\"%s\",code=\"%s\"} %llu\n",
                gorc__http_methods[m], classes[c], (unsigned long long)x);
        }
    out(b, "# HELP gorc_http_request_duration_seconds Time from a parsed request head to "
           "the handler's return.\n# TYPE gorc_http_request_duration_seconds histogram\n");
    uint64_t cum = 0;
    for (int i = 0; i < GORC__HTTP_NDUR; i++) {
        cum += v[GORC__HM_DUR + i];
        if (i < GORC__HTTP_NDUR - 1)
            out(b, "gorc_http_request_duration_seconds_bucket{le=\"%g\"} %llu\n",
                gorc__http_dur_bounds[i], (unsigned long long)cum);
        else
            out(b, "gorc_http_request_duration_seconds_bucket{le=\"+Inf\"} %llu\n",
                (unsigned long long)cum);
    }
    out(b,
        "gorc_http_request_duration_seconds_sum %.9g\n"
        "gorc_http_request_duration_seconds_count %llu\n",
        (double)v[GORC__HM_DURSUM] / 1e9, (unsigned long long)cum);
    out(b,
        "# HELP gorc_http_received_bytes_total Bytes read from client connections.\n"
        "# TYPE gorc_http_received_bytes_total counter\ngorc_http_received_bytes_total %llu\n",
        (unsigned long long)v[GORC__HM_IN]);
    out(b,
        "# HELP gorc_http_sent_bytes_total Bytes written to client connections.\n"
        "# TYPE gorc_http_sent_bytes_total counter\ngorc_http_sent_bytes_total %llu\n",
        (unsigned long long)v[GORC__HM_OUT]);
    out(b,
        "# HELP gorc_http_connections_open Client connections open now.\n"
        "# TYPE gorc_http_connections_open gauge\ngorc_http_connections_open %llu\n",
        (unsigned long long)st.conns_open);
    out(b,
        "# HELP gorc_http_connections_active Connections with a request in progress.\n"
        "# TYPE gorc_http_connections_active gauge\ngorc_http_connections_active %llu\n",
        (unsigned long long)st.conns_active);
    out(b,
        "# HELP gorc_http_connections_total Connections accepted.\n"
        "# TYPE gorc_http_connections_total counter\ngorc_http_connections_total %llu\n",
        (unsigned long long)st.conns_total);
    out(b, "# HELP gorc_http_rejected_requests_total Requests refused by the parser or a "
           "limit, by the status sent.\n# TYPE gorc_http_rejected_requests_total counter\n");
    for (int i = 0; i < GORC__HTTP_NREJECT; i++) {
        char code[16];
        if (i < GORC__HTTP_NREJECT - 1)
            snprintf(code, sizeof code, "%d", gorc__http_reject_codes[i]);
        else
            snprintf(code, sizeof code, "other");
        out(b, "gorc_http_rejected_requests_total{code=\"%s\"} %llu\n", code,
            (unsigned long long)v[GORC__HM_REJECT + i]);
    }
    out(b,
        "# HELP gorc_http_timeouts_total Connections cut off by a timeout.\n"
        "# TYPE gorc_http_timeouts_total counter\ngorc_http_timeouts_total %llu\n",
        (unsigned long long)st.timeouts);
}

int gorc_http_metrics_text(gorc_http_server *s, char **text, size_t *len)
{
    if (text == NULL || len == NULL)
        return -EINVAL;
    gorc__http_sbuf b = {0};
    runtime_metrics(&b);
    if (s)
        server_metrics(&b, s);
    if (b.oom || gorc__http_sbuf_room(&b, 0) == NULL) {
        free(b.p);
        return -ENOMEM;
    }
    *text = b.p;
    *len = b.n;
    return 0;
}

void gorc_http_metrics_handler(gorc_http_rw *w, gorc_http_request *r, void *server)
{
    (void)r;
    char *t;
    size_t n;
    if (gorc_http_metrics_text(server, &t, &n) != 0) {
        gorc_http_error(w, 500, "out of memory");
        return;
    }
    char cl[32];
    snprintf(cl, sizeof cl, "%zu", n);
    gorc_http_rw_set_header(w, "Content-Type", "text/plain; version=0.0.4; charset=utf-8");
    gorc_http_rw_set_header(w, "Content-Length", cl);
    gorc_http_rw_write(w, t, n);
    free(t);
}
