/*
 * test_metrics.c - runtime metrics and their Prometheus text (cmocka; bodies run as
 * goroutines).
 *
 * The catalogue: unique names in Go's "/path:unit" form, descriptions, kinds. Consistency
 * under load: while goroutines spawn, ping-pong over channels and exit on both Ps, readers
 * keep reading (counters never go backwards; under ThreadSanitizer this is also the check
 * that reading races with no writer); afterwards the spawn and exit counts moved by exactly
 * the goroutines made, parks and wakeups by at least the ping-pong's handoffs, the scheduling
 * latency histogram gained samples and its buckets add up to its count, the gauges agree with
 * gorc_count and gorc_maxprocs. The Prometheus text of gorc_http_metrics_text: every line a
 * comment or "name[{labels}] value", a HELP and TYPE before each family, histograms
 * cumulative and ending at +Inf (promtool and a real Prometheus check it in
 * tests/e2e/obs-e2e).
 */
#include "testutil.h"

#include <gorc_debug.h>
#include <gorc_http_debug.h>

#include <math.h>
#include <stdatomic.h>
#include <string.h>

static uint64_t read1(const char *name, gorc_metric_kind kind)
{
    gorc_metric_sample s = {.name = name};
    gorc_metrics_read(&s, 1);
    CHECK_EQ(s.kind, kind);
    return s.value;
}

GO_TEST(test_catalogue)
{
    (void)arg;
    size_t n = 0;
    const gorc_metric_desc *d = gorc_metrics_all(&n);
    CHECK(d != NULL && n >= 20);
    CHECK(gorc_metrics_all(NULL) == d);
    for (size_t i = 0; i < n; i++) {
        CHECK(d[i].name[0] == '/');
        CHECK(strchr(d[i].name, ':') != NULL);
        CHECK(d[i].description != NULL && d[i].description[0] != 0);
        CHECK(d[i].kind == GORC_METRIC_COUNTER || d[i].kind == GORC_METRIC_GAUGE ||
              d[i].kind == GORC_METRIC_HISTOGRAM);
        for (size_t j = 0; j < i; j++)
            CHECK(strcmp(d[i].name, d[j].name) != 0);
    }
    gorc_metric_sample bad[2] = {{.name = "/no/such:metric"}, {.name = NULL}};
    gorc_metrics_read(bad, 2);
    CHECK_EQ(bad[0].kind, GORC_METRIC_BAD);
    CHECK_EQ(bad[1].kind, GORC_METRIC_BAD);
    gorc_metrics_read(NULL, 3); /* nothing to fill: no crash */
    CHECK_EQ(read1("/sched/gomaxprocs:threads", GORC_METRIC_GAUGE), gorc_maxprocs());
    CHECK(read1("/sched/threads:threads", GORC_METRIC_GAUGE) >= 1);
}

#define ROUNDS 2000

static void ponger(void *arg)
{
    gorc_chan **c = arg;
    int x;
    while (gorc_chan_recv(c[0], &x) == 0)
        gorc_chan_send(c[1], &x);
}

static void leaf(void *arg)
{
    gorc_waitgroup_done(arg);
}

static _Atomic int readers_stop;
static _Atomic int readers_done;

static void reader(void *arg)
{
    (void)arg;
    size_t n;
    const gorc_metric_desc *d = gorc_metrics_all(&n);
    gorc_metric_sample *s = calloc(n, sizeof *s), *prev = calloc(n, sizeof *prev);
    CHECK(s != NULL && prev != NULL);
    for (size_t i = 0; i < n; i++)
        s[i].name = prev[i].name = d[i].name;
    gorc_metrics_read(prev, n);
    while (!atomic_load(&readers_stop)) {
        gorc_metrics_read(s, n);
        for (size_t i = 0; i < n; i++)
            if (d[i].kind != GORC_METRIC_GAUGE)
                CHECK(s[i].value >= prev[i].value);
        memcpy(prev, s, n * sizeof *s);
        gorc_sleep(GORC_MILLISECOND);
    }
    free(s);
    free(prev);
    atomic_fetch_add(&readers_done, 1);
}

GO_TEST(test_consistent_under_load)
{
    (void)arg;
    uint64_t created0 = read1("/sched/goroutines-created:goroutines", GORC_METRIC_COUNTER);
    uint64_t exited0 = read1("/sched/goroutines-exited:goroutines", GORC_METRIC_COUNTER);
    uint64_t parks0 = read1("/sched/parks:events", GORC_METRIC_COUNTER);
    uint64_t wakes0 = read1("/sched/wakeups:events", GORC_METRIC_COUNTER);
    uint64_t lat0 = read1("/sched/latencies:seconds", GORC_METRIC_HISTOGRAM);

    atomic_store(&readers_stop, 0);
    atomic_store(&readers_done, 0);
    CHECK_EQ(gorc_go(reader, NULL), 0);
    CHECK_EQ(gorc_go(reader, NULL), 0);
    gorc_chan *c[2];
    CHECK_EQ(gorc_chan_new(&c[0], sizeof(int), 0), 0);
    CHECK_EQ(gorc_chan_new(&c[1], sizeof(int), 0), 0);
    CHECK_EQ(gorc_go(ponger, c), 0);
    /* At least 64 of each, whatever the scale: one readying and one spawn in 32 is timed, and
     * the latency histogram below must have grown. */
    long rounds = scaled(ROUNDS) < 64 ? 64 : scaled(ROUNDS);
    long spawns = scaled(5000) < 64 ? 64 : scaled(5000);
    for (long i = 0; i < rounds; i++) {
        int x = (int)i;
        CHECK_EQ(gorc_chan_send(c[0], &x), 0);
        CHECK_EQ(gorc_chan_recv(c[1], &x), 0);
    }
    gorc_waitgroup wg = {0};
    for (long i = 0; i < spawns; i++) {
        gorc_waitgroup_add(&wg, 1);
        CHECK_EQ(gorc_go(leaf, &wg), 0);
    }
    gorc_waitgroup_wait(&wg);
    gorc_chan_close(c[0]);
    atomic_store(&readers_stop, 1);
    while (atomic_load(&readers_done) < 2)
        gorc_sleep(GORC_MILLISECOND);
    wait_count(1);

    const long made = spawns + 3; /* leaves, two readers, the ponger */
    CHECK_EQ(read1("/sched/goroutines-created:goroutines", GORC_METRIC_COUNTER) - created0, made);
    CHECK_EQ(read1("/sched/goroutines-exited:goroutines", GORC_METRIC_COUNTER) - exited0, made);
    CHECK(read1("/sched/parks:events", GORC_METRIC_COUNTER) - parks0 >= (uint64_t)rounds);
    CHECK(read1("/sched/wakeups:events", GORC_METRIC_COUNTER) - wakes0 >= (uint64_t)rounds);
    CHECK_EQ(read1("/sched/goroutines:goroutines", GORC_METRIC_GAUGE), gorc_count());

    gorc_metric_sample h = {.name = "/sched/latencies:seconds"};
    gorc_metrics_read(&h, 1);
    CHECK_EQ(h.kind, GORC_METRIC_HISTOGRAM);
    CHECK(h.value > lat0);
    CHECK(h.nbuckets > 4 && h.nbuckets <= GORC_METRIC_MAX_BUCKETS);
    uint64_t sum = 0;
    for (size_t i = 0; i < h.nbuckets; i++) {
        sum += h.counts[i];
        CHECK(h.bounds[i] < h.bounds[i + 1]);
    }
    CHECK_EQ(sum, h.value);
    CHECK(h.bounds[0] == 0 && isinf(h.bounds[h.nbuckets]));
    CHECK(h.sum > 0);

    gorc_metric_sample g[4] = {{.name = "/sched/goroutines/running:goroutines"},
                               {.name = "/sched/goroutines/runnable:goroutines"},
                               {.name = "/sched/goroutines/waiting:goroutines"},
                               {.name = "/memory/stacks/inuse:bytes"}};
    gorc_metrics_read(g, 4);
    CHECK(g[0].value >= 1); /* this one */
    CHECK(g[0].value + g[1].value + g[2].value >= 1);
    CHECK(g[3].value >= 4096);
    gorc_chan_release(c[0]);
    gorc_chan_release(c[1]);
}

/* Every line of the exposition: "# HELP name text", "# TYPE name kind", or a sample. */
GO_TEST(test_prometheus_text)
{
    (void)arg;
    char *t;
    size_t n;
    CHECK_EQ(gorc_http_metrics_text(NULL, NULL, &n), -EINVAL);
    CHECK_EQ(gorc_http_metrics_text(NULL, &t, &n), 0);
    CHECK_EQ(strlen(t), n);
    CHECK(n > 0 && t[n - 1] == '\n');
    char family[128] = "";
    int samples = 0;
    for (char *line = t, *next; *line; line = next) {
        next = strchr(line, '\n');
        CHECK(next != NULL);
        *next++ = 0;
        char name[128], kind[32];
        if (strncmp(line, "# HELP ", 7) == 0) {
            CHECK(sscanf(line, "# HELP %127s", family) == 1);
            continue;
        }
        if (strncmp(line, "# TYPE ", 7) == 0) {
            CHECK(sscanf(line, "# TYPE %127s %31s", name, kind) == 2);
            CHECK(strcmp(name, family) == 0);
            CHECK(!strcmp(kind, "counter") || !strcmp(kind, "gauge") || !strcmp(kind, "histogram"));
            continue;
        }
        CHECK(line[0] != '#');
        size_t k = strcspn(line, "{ ");
        CHECK(k > 0 && strncmp(line, family, strlen(family)) == 0);
        CHECK(strncmp(line, "gorc_", 5) == 0);
        const char *val = strrchr(line, ' ');
        CHECK(val != NULL);
        char *end;
        strtod(val + 1, &end);
        CHECK(*end == 0);
        samples++;
    }
    CHECK(samples >= 40);
    free(t);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_catalogue),
        cmocka_unit_test(test_consistent_under_load),
        cmocka_unit_test(test_prometheus_text),
    };
    return cmocka_run_group_tests_name("metrics", tests, NULL, NULL);
}
