/*
 * gorc_symbolize.h - full symbols in tracebacks and profiles: libgorc_symbolize.
 *
 * The core library names only what dladdr(3) can see (exported symbols of shared objects).
 * This optional library reads the program's own symbol tables and DWARF line tables through
 * elfutils' libdw, so dumps, gorc_goroutine_stack and profiles show every function (static
 * ones included) with its file:line. Link with `pkg-config --libs gorc-symbolize` (it pulls
 * in libdw and libelf) and call gorc_symbolize_install() once at start-up.
 */
#ifndef GORC_SYMBOLIZE_H
#define GORC_SYMBOLIZE_H

#include "gorc_debug.h"

#ifdef __cplusplus
extern "C" {
#endif

/* Load the modules of this process (executable and shared objects, /proc/self/maps) and
 * install the libdw symboliser with gorc_set_symbolizer. Modules loaded later are reported
 * the first time an address in one is looked up. Returns 0, -ENOMEM, or -ENOENT (libdw
 * could not read this process's modules), -EAGAIN (no thread for libdw to run on). Go: the
 * runtime's own symbol table. */
GORC_API int gorc_symbolize_install(void);

#ifdef __cplusplus
}
#endif

#endif /* GORC_SYMBOLIZE_H */
