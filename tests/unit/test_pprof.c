/*
 * test_pprof.c - profiles (cmocka; bodies run as goroutines).
 *
 * The profile.proto bytes are read back with a protobuf reader written here, apart from the
 * encoder: every field must parse, the sample types and string table must say what the
 * profile is, every location a sample names must exist. The CPU profile of a goroutine
 * burning CPU in pp_burn has samples whose first location lies in pp_burn and carries the
 * goroutine's id as a label (where the variant delivers the timer's signals to a busy thread:
 * ThreadSanitizer defers them, so there only the profile's well-formedness is checked, with
 * a message). The goroutine profile counts every goroutine (proto and debug=1 text, debug=2
 * dump); block and mutex profiles record a known wait and its length and nothing while off;
 * every error code.
 */
#include "testutil.h"

#include <gorc_debug.h>

#include <stdatomic.h>
#include <string.h>

/* ---- an independent profile.proto reader ---- */

typedef struct rd {
    const unsigned char *p, *end;
    bool bad;
} rd;

static uint64_t varint(rd *r)
{
    uint64_t v = 0;
    for (int shift = 0; shift < 64; shift += 7) {
        if (r->p >= r->end) {
            r->bad = true;
            return 0;
        }
        unsigned char b = *r->p++;
        v |= (uint64_t)(b & 0x7f) << shift;
        if (!(b & 0x80))
            return v;
    }
    r->bad = true;
    return 0;
}

/* Next field: its number, wire type, and for wire type 2 the sub-reader. */
static bool field(rd *r, int *num, int *wt, uint64_t *val, rd *sub)
{
    if (r->p >= r->end || r->bad)
        return false;
    uint64_t key = varint(r);
    *num = (int)(key >> 3);
    *wt = (int)(key & 7);
    if (*wt == 0) {
        *val = varint(r);
    } else if (*wt == 2) {
        uint64_t n = varint(r);
        if (n > (uint64_t)(r->end - r->p)) {
            r->bad = true;
            return false;
        }
        sub->p = r->p;
        sub->end = r->p + n;
        sub->bad = false;
        r->p += n;
    } else {
        r->bad = true;
        return false;
    }
    return !r->bad;
}

#define MAXS 4096
typedef struct parsed {
    char *strs[MAXS];
    int nstr;
    uint64_t sample_type[4][2];
    int ntypes;
    uint64_t nsamples;
    uint64_t value_sum[2];
    uint64_t loc_ids[MAXS], loc_addr[MAXS];
    int nloc;
    uint64_t first_loc[MAXS]; /* first location of each sample */
    uint64_t label_key[MAXS], label_num[MAXS];
    uint64_t max_loc_ref;
    int nmappings;
} parsed;

static void parse(const char *buf, size_t len, parsed *pr)
{
    memset(pr, 0, sizeof *pr);
    rd r = {(const unsigned char *)buf, (const unsigned char *)buf + len, false};
    int num, wt;
    uint64_t v;
    rd sub;
    while (field(&r, &num, &wt, &v, &sub)) {
        int n2, w2;
        uint64_t v2;
        rd s2;
        if (num == 1 && wt == 2) { /* ValueType */
            while (field(&sub, &n2, &w2, &v2, &s2))
                if (n2 == 1 || n2 == 2)
                    pr->sample_type[pr->ntypes][n2 - 1] = v2;
            CHECK(!sub.bad);
            pr->ntypes++;
        } else if (num == 2 && wt == 2) { /* Sample */
            int vi = 0;
            bool first = true;
            while (field(&sub, &n2, &w2, &v2, &s2)) {
                if (n2 == 1 && w2 == 2) {
                    while (s2.p < s2.end) {
                        uint64_t id = varint(&s2);
                        if (first && pr->nsamples < MAXS)
                            pr->first_loc[pr->nsamples] = id;
                        first = false;
                        if (id > pr->max_loc_ref)
                            pr->max_loc_ref = id;
                    }
                } else if (n2 == 2 && w2 == 2) {
                    while (s2.p < s2.end) {
                        uint64_t x = varint(&s2);
                        if (vi < 2)
                            pr->value_sum[vi] += x;
                        vi++;
                    }
                } else if (n2 == 3 && w2 == 2) {
                    int n3, w3;
                    uint64_t v3;
                    rd s3;
                    while (field(&s2, &n3, &w3, &v3, &s3)) {
                        if (n3 == 1 && pr->nsamples < MAXS)
                            pr->label_key[pr->nsamples] = v3;
                        if (n3 == 3 && pr->nsamples < MAXS)
                            pr->label_num[pr->nsamples] = v3;
                    }
                }
                CHECK(!s2.bad);
            }
            CHECK(!sub.bad);
            pr->nsamples++;
        } else if (num == 3 && wt == 2) {
            pr->nmappings++;
        } else if (num == 4 && wt == 2) { /* Location */
            uint64_t id = 0, addr = 0;
            while (field(&sub, &n2, &w2, &v2, &s2)) {
                if (n2 == 1)
                    id = v2;
                if (n2 == 3)
                    addr = v2;
            }
            CHECK(!sub.bad);
            if (pr->nloc < MAXS) {
                pr->loc_ids[pr->nloc] = id;
                pr->loc_addr[pr->nloc++] = addr;
            }
        } else if (num == 6 && wt == 2) {
            if (pr->nstr < MAXS) {
                size_t n = (size_t)(sub.end - sub.p);
                char *s = malloc(n + 1);
                CHECK(s != NULL);
                memcpy(s, sub.p, n);
                s[n] = 0;
                pr->strs[pr->nstr++] = s;
            }
        }
    }
    CHECK(!r.bad);
    CHECK(r.p == r.end);
    CHECK(pr->nstr > 0 && pr->strs[0][0] == 0); /* string 0 is "" */
    CHECK(pr->max_loc_ref <= (uint64_t)pr->nloc);
}

static const char *str(const parsed *pr, uint64_t i)
{
    CHECK(i < (uint64_t)pr->nstr);
    return pr->strs[i];
}

static uint64_t loc_addr(const parsed *pr, uint64_t id)
{
    for (int i = 0; i < pr->nloc; i++)
        if (pr->loc_ids[i] == id)
            return pr->loc_addr[i];
    CHECK(!"location not found");
    return 0;
}

static void parsed_free(parsed *pr)
{
    for (int i = 0; i < pr->nstr; i++)
        free(pr->strs[i]);
}

/* ---- CPU ---- */

static _Atomic int burn_stop;
static volatile uint64_t sink;
static _Atomic uint64_t burner_id;

__attribute__((noinline)) void pp_burn(void *arg)
{
    (void)arg;
    atomic_store(&burner_id, gorc_id());
    while (!atomic_load_explicit(&burn_stop, memory_order_relaxed))
        for (int i = 0; i < 100000; i++)
            sink += (uint64_t)i * sink + 1;
}

GO_TEST(test_cpu_profile)
{
    (void)arg;
    CHECK_EQ(gorc_cpu_profile_start(-1), -EINVAL);
    CHECK_EQ(gorc_cpu_profile_start(1001), -EINVAL);
    char *b = NULL;
    size_t n = 0;
    CHECK_EQ(gorc_cpu_profile_stop(&b, &n), -ESRCH);
    CHECK_EQ(gorc_cpu_profile_stop(NULL, &n), -EINVAL);
    atomic_store(&burn_stop, 0);
    CHECK_EQ(gorc_cpu_profile_start(0), 0);
    CHECK_EQ(gorc_cpu_profile_start(0), -EBUSY);
    CHECK_EQ(gorc_go(pp_burn, NULL), 0);
    gorc_sleep(400 * GORC_MILLISECOND);
    atomic_store(&burn_stop, 1);
    CHECK_EQ(gorc_cpu_profile_stop(&b, &n), 0);
    CHECK(b != NULL && n > 0);
    parsed *pr = calloc(1, sizeof *pr);
    CHECK(pr != NULL);
    parse(b, n, pr);
    CHECK_EQ(pr->ntypes, 2); /* samples/count and cpu/nanoseconds */
    CHECK(strcmp(str(pr, pr->sample_type[0][0]), "samples") == 0);
    CHECK(strcmp(str(pr, pr->sample_type[1][0]), "cpu") == 0);
    CHECK(strcmp(str(pr, pr->sample_type[1][1]), "nanoseconds") == 0);
    CHECK(pr->nmappings > 0);
    int in_burn = 0;
    for (uint64_t i = 0; i < pr->nsamples && i < MAXS; i++) {
        uintptr_t a = (uintptr_t)loc_addr(pr, pr->first_loc[i]);
        uintptr_t f = (uintptr_t)pp_burn;
        if (a >= f && a < f + 512) {
            in_burn++;
            CHECK(strcmp(str(pr, pr->label_key[i]), "goroutine") == 0);
            CHECK_EQ(pr->label_num[i], atomic_load(&burner_id));
        }
    }
    CHECK_EQ(pr->value_sum[0], pr->nsamples);
    CHECK_EQ(pr->value_sum[1], pr->nsamples * 10000000ULL); /* 100 Hz: 10 ms a sample */
#ifdef __SANITIZE_THREAD__
    if (in_burn == 0)
        fprintf(stderr,
                "ThreadSanitizer defers SIGPROF for a busy thread: no samples in "
                "pp_burn (%llu samples); attribution not checked\n",
                (unsigned long long)pr->nsamples);
#else
    if (in_burn < 5) {
        fprintf(stderr, "%d of %llu samples in pp_burn\n", in_burn,
                (unsigned long long)pr->nsamples);
        CHECK(!"too few samples in the burning function");
    }
#endif
    parsed_free(pr);
    free(pr);
    free(b);
    wait_count(1);
    /* Profiling again works (rings are reused). */
    CHECK_EQ(gorc_cpu_profile_start(500), 0);
    gorc_sleep(10 * GORC_MILLISECOND);
    CHECK_EQ(gorc_cpu_profile_stop(&b, &n), 0);
    free(b);
}

/* ---- goroutine ---- */

static gorc_chan *gate;

__attribute__((noinline)) void pp_parked(void *arg)
{
    (void)arg;
    int x;
    gorc_chan_recv(gate, &x);
}

GO_TEST(test_goroutine_profile)
{
    (void)arg;
    CHECK_EQ(gorc_chan_new(&gate, sizeof(int), 0), 0);
    for (int i = 0; i < 5; i++)
        CHECK_EQ(gorc_go(pp_parked, NULL), 0);
    /* Until all five have parked (a sleep was not always enough under TSan on a busy machine:
     * one had not started yet); the wait is bounded as a hang guard, not timed. */
    for (int tries = 0; tries < 1000; tries++) {
        gorc_goroutine_info gi[64];
        size_t ng = gorc_goroutines(gi, 64), parked = 0;
        for (size_t i = 0; i < ng && i < 64; i++)
            parked += gi[i].waiting && gi[i].start_fn == (uintptr_t)pp_parked;
        if (parked == 5)
            break;
        gorc_sleep(10 * GORC_MILLISECOND);
    }
    int64_t live = gorc_count();
    char *b;
    size_t n;
    CHECK_EQ(gorc_profile_write("goroutine", 0, &b, &n), 0);
    parsed *pr = calloc(1, sizeof *pr);
    CHECK(pr != NULL);
    parse(b, n, pr);
    CHECK(strcmp(str(pr, pr->sample_type[0][0]), "goroutine") == 0);
    CHECK(strcmp(str(pr, pr->sample_type[0][1]), "count") == 0);
    CHECK_EQ(pr->value_sum[0], live);
    /* The five parked goroutines share one stack: one sample of value 5. */
    CHECK(pr->nsamples < (uint64_t)live);
    parsed_free(pr);
    free(pr);
    free(b);

    CHECK_EQ(gorc_profile_write("goroutine", 1, &b, &n), 0);
    char want[64];
    snprintf(want, sizeof want, "goroutine profile: total %lld\n", (long long)live);
    CHECK(strncmp(b, want, strlen(want)) == 0);
    if (strstr(b, "\n5 @ 0x") == NULL)
        fprintf(stderr, "%s", b);
    CHECK(strstr(b, "\n5 @ 0x") != NULL);
    CHECK(strstr(b, "\n#\t0x") != NULL);
    CHECK_EQ(strlen(b), n);
    free(b);

    CHECK_EQ(gorc_profile_write("goroutine", 2, &b, &n), 0);
    CHECK(strstr(b, "[chan receive]:\n") != NULL);
    CHECK_EQ(strlen(b), n);
    free(b);

    for (int i = 0; i < 5; i++) {
        int one = 1;
        CHECK_EQ(gorc_chan_send(gate, &one), 0);
    }
    wait_count(1);
    gorc_chan_release(gate);

    CHECK_EQ(gorc_profile_write("heap", 0, &b, &n), -ENOENT);
    CHECK_EQ(gorc_profile_write(NULL, 0, &b, &n), -EINVAL);
    CHECK_EQ(gorc_profile_write("goroutine", -1, &b, &n), -EINVAL);
    CHECK_EQ(gorc_profile_write("goroutine", 0, NULL, &n), -EINVAL);
}

/* ---- block and mutex ---- */

static gorc_mutex mu;

__attribute__((noinline)) void pp_sender(void *arg)
{
    (void)arg;
    gorc_sleep(30 * GORC_MILLISECOND);
    int one = 1;
    gorc_chan_send(gate, &one);
}

__attribute__((noinline)) void pp_locker(void *arg)
{
    (void)arg;
    int one = 1;
    gorc_chan_send(gate, &one); /* about to wait: the holder's 20 ms start now, not later */
    gorc_mutex_lock(&mu);
    gorc_mutex_unlock(&mu);
}

/* Total delay and count of the debug=1 text's entries. */
static void contention_totals(const char *name, long long *delay, long long *count)
{
    char *b;
    size_t n;
    CHECK_EQ(gorc_profile_write(name, 1, &b, &n), 0);
    *delay = *count = 0;
    for (char *p = b; (p = strchr(p, '\n')) != NULL;) {
        p++;
        long long d, c;
        if (sscanf(p, "%lld %lld @", &d, &c) == 2) {
            *delay += d;
            *count += c;
        }
    }
    free(b);
    CHECK_EQ(gorc_profile_write(name, 0, &b, &n), 0);
    parsed *pr = calloc(1, sizeof *pr);
    CHECK(pr != NULL);
    parse(b, n, pr);
    CHECK(strcmp(str(pr, pr->sample_type[0][0]), "contentions") == 0);
    CHECK(strcmp(str(pr, pr->sample_type[1][0]), "delay") == 0);
    CHECK_EQ(pr->value_sum[0], *count);
    CHECK_EQ(pr->value_sum[1], *delay);
    parsed_free(pr);
    free(pr);
    free(b);
}

GO_TEST(test_block_and_mutex_profiles)
{
    (void)arg;
    CHECK_EQ(gorc_chan_new(&gate, sizeof(int), 0), 0);
    long long d0, c0, d1, c1;
    /* Off (the default): a wait leaves no trace. */
    contention_totals("block", &d0, &c0);
    CHECK_EQ(gorc_go(pp_sender, NULL), 0);
    int x;
    CHECK_EQ(gorc_chan_recv(gate, &x), 0);
    contention_totals("block", &d1, &c1);
    CHECK_EQ(c1, c0);
    /* On: the 30 ms wait is recorded with its length. */
    gorc_set_block_profile_rate(1);
    CHECK_EQ(gorc_go(pp_sender, NULL), 0);
    CHECK_EQ(gorc_chan_recv(gate, &x), 0);
    gorc_set_block_profile_rate(0);
    contention_totals("block", &d1, &c1);
    CHECK(c1 >= c0 + 1);
    CHECK(d1 - d0 >= 25 * GORC_MILLISECOND);

    CHECK_EQ(gorc_set_mutex_profile_fraction(-1), 0);
    CHECK_EQ(gorc_set_mutex_profile_fraction(1), 0);
    CHECK_EQ(gorc_set_mutex_profile_fraction(-1), 1);
    contention_totals("mutex", &d0, &c0);
    gorc_mutex_lock(&mu);
    CHECK_EQ(gorc_go(pp_locker, NULL), 0);
    CHECK_EQ(gorc_chan_recv(gate, &x), 0);
    gorc_sleep(20 * GORC_MILLISECOND);
    gorc_mutex_unlock(&mu);
    wait_count(1);
    CHECK_EQ(gorc_set_mutex_profile_fraction(0), 1);
    contention_totals("mutex", &d1, &c1);
    CHECK(c1 >= c0 + 1);
    CHECK(d1 - d0 >= 15 * GORC_MILLISECOND);
    gorc_chan_release(gate);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_cpu_profile),
        cmocka_unit_test(test_goroutine_profile),
        cmocka_unit_test(test_block_and_mutex_profiles),
    };
    return cmocka_run_group_tests_name("pprof", tests, NULL, NULL);
}
