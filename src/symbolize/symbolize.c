/*
 * symbolize.c - libgorc_symbolize: function names, offsets and file:line from elfutils'
 * libdw, plugged into the core through gorc_set_symbolizer.
 *
 * One Dwfl session describes the process (dwfl_linux_proc_report over /proc/self/maps). A
 * lookup finds the module of an address, its symbol (dwfl_module_addrinfo reads .symtab when
 * the file has one, so static functions are found too) and its line (DWARF .debug_line,
 * where present). An address in no known module re-reads the maps, for objects dlopen()ed
 * after start-up.
 *
 * libdw needs far more stack than a goroutine's 64 KiB (reading a module's tables recurses
 * through large frames), and its Dwfl is not thread-safe. So one worker thread, with an
 * ordinary thread stack, owns the session and does every lookup; a caller posts its address
 * under `mu` and waits for the answer on a condition variable. The names libdw returns live
 * as long as the session, which is never ended, as the symboliser contract asks. A caller
 * waits at most a second (a process dying with the worker stuck still prints addresses).
 * `mu` guards state, init_rc and the request slot.
 */
#include "gorc_symbolize.h"

#include <elfutils/libdwfl.h>
#include <errno.h>
#include <pthread.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#define WAIT_NS 1000000000L /* a lookup gives up after a second (a wedged or dying process) */

static pthread_mutex_t mu = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t cv_req = PTHREAD_COND_INITIALIZER, cv_done = PTHREAD_COND_INITIALIZER;
static Dwfl *dwfl;
static int state;       /* 0 idle, 1 a request is posted, 2 answered; guarded by mu */
static int init_rc = 1; /* 1 while the worker starts, then its result; guarded by mu */
static uintptr_t req_pc;
static gorc_symbol *req_out;
static bool req_found;

static const Dwfl_Callbacks callbacks = {
    .find_elf = dwfl_linux_proc_find_elf,
    .find_debuginfo = dwfl_standard_find_debuginfo,
};

/* (Re)read the process's modules. Worker only. */
static int report(void)
{
    dwfl_report_begin(dwfl);
    int rc = dwfl_linux_proc_report(dwfl, getpid());
    if (dwfl_report_end(dwfl, NULL, NULL) != 0 || rc != 0)
        return -ENOENT;
    return 0;
}

/* The lookup itself, on the worker's stack. */
static bool resolve(uintptr_t pc, gorc_symbol *out)
{
    Dwarf_Addr a = (Dwarf_Addr)pc;
    Dwfl_Module *mod = dwfl_addrmodule(dwfl, a);
    if (mod == NULL && report() == 0)
        mod = dwfl_addrmodule(dwfl, a);
    if (mod == NULL)
        return false;
    bool found = false;
    GElf_Off off = 0;
    GElf_Sym sym;
    const char *name = dwfl_module_addrinfo(mod, a, &off, &sym, NULL, NULL, NULL);
    if (name) {
        out->function = name;
        out->offset = (uintptr_t)off;
        found = true;
    }
    Dwfl_Line *line = dwfl_module_getsrc(mod, a);
    int lineno = 0;
    const char *file = line ? dwfl_lineinfo(line, NULL, &lineno, NULL, NULL, NULL) : NULL;
    if (file) {
        out->file = file;
        out->line = lineno;
        found = true;
    }
    if (out->module == NULL) {
        Dwarf_Addr start;
        const char *mname = dwfl_module_info(mod, NULL, &start, NULL, NULL, NULL, NULL, NULL);
        if (mname) {
            out->module = mname;
            out->module_offset = pc - (uintptr_t)start;
        }
    }
    return found;
}

/* libdw needs more stack than a goroutine has: every lookup runs on this thread. */
static void *worker(void *arg)
{
    (void)arg;
    pthread_mutex_lock(&mu);
    dwfl = dwfl_begin(&callbacks);
    init_rc = dwfl == NULL ? -ENOMEM : report();
    pthread_cond_broadcast(&cv_done);
    if (init_rc != 0) {
        pthread_mutex_unlock(&mu);
        return NULL;
    }
    for (;;) {
        while (state != 1)
            pthread_cond_wait(&cv_req, &mu);
        req_found = resolve(req_pc, req_out);
        state = 2;
        pthread_cond_broadcast(&cv_done);
    }
    return NULL;
}

static void deadline(struct timespec *ts)
{
    clock_gettime(CLOCK_REALTIME, ts);
    ts->tv_nsec += WAIT_NS % 1000000000L;
    ts->tv_sec += WAIT_NS / 1000000000L + ts->tv_nsec / 1000000000L;
    ts->tv_nsec %= 1000000000L;
}

static bool lookup(uintptr_t pc, gorc_symbol *out, void *arg)
{
    (void)arg;
    struct timespec ts;
    deadline(&ts);
    if (pthread_mutex_timedlock(&mu, &ts) != 0)
        return false;
    while (state != 0)
        if (pthread_cond_timedwait(&cv_done, &mu, &ts) != 0 && state != 0) {
            pthread_mutex_unlock(&mu);
            return false;
        }
    gorc_symbol tmp = *out;
    req_pc = pc;
    req_out = &tmp;
    state = 1;
    pthread_cond_signal(&cv_req);
    while (state != 2)
        if (pthread_cond_timedwait(&cv_done, &mu, &ts) != 0 && state != 2)
            break;
    bool found = state == 2 && req_found;
    if (state == 2) {
        state = 0;
        pthread_cond_broadcast(&cv_done);
    }
    pthread_mutex_unlock(&mu);
    if (found)
        *out = tmp;
    return found;
}

int gorc_symbolize_install(void)
{
    pthread_mutex_lock(&mu);
    if (init_rc == 1 && dwfl == NULL && state == 0) {
        pthread_t t;
        pthread_attr_t attr;
        pthread_attr_init(&attr);
        pthread_attr_setdetachstate(&attr, PTHREAD_CREATE_DETACHED);
        int e = pthread_create(&t, &attr, worker, NULL);
        pthread_attr_destroy(&attr);
        if (e != 0) {
            pthread_mutex_unlock(&mu);
            return -EAGAIN;
        }
        state = 3; /* starting: no second worker */
    }
    while (init_rc == 1)
        pthread_cond_wait(&cv_done, &mu);
    if (state == 3)
        state = 0;
    int rc = init_rc;
    pthread_mutex_unlock(&mu);
    if (rc == 0)
        gorc_set_symbolizer(lookup, NULL);
    return rc;
}
