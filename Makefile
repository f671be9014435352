# gorc - Go's runtime, in C.
#
# A plain Makefile: the library is a few dozen C files in one folder per layer (docs/design.md
# lists them), the build has a few variants (release, sanitizers, cross), and make is on every
# machine gorc targets.
#
#   make              release library: build/release/libgorc.a, libgorc.so, gorc.pc
#   make demo         build and run the HTTP demo server (examples/http_demo.c): http://127.0.0.1:8080,
#                     https://127.0.0.1:8443 (HTTP/2; installs OpenSSL and nghttp2 first)
#   make check        install test dependencies, then run every test suite (what CI runs)
#   make test         unit tests for one variant: make test V=asan | V=tsan | V=release
#   make install      PREFIX=/usr/local by default; DESTDIR is honoured
#   make bench        side-by-side benchmarks against Go (bench/run)
#   make format lint  clang-format the tree / every static check (scripts/lint)
#   make fuzz         run the libFuzzer targets for FUZZ_SECONDS (default 20)
#
# Variants (V=...): release, clang (same with clang), debug, asan (AddressSanitizer + UBSan),
# tsan (ThreadSanitizer), arm64 (cross-compiled with aarch64-linux-gnu-gcc, tests run under
# qemu-aarch64 with Debian's arm64 multiarch libc and cmocka). CC from the environment or the
# command line is used for release and debug; the other variants name their compiler.
#
# POLLER=epoll (the default) picks src/os/netpoll_$(POLLER).c, the one file that implements the
# poller-backend contract of src/runtime/netpoll.h.

V ?= release
PREFIX ?= /usr/local
POLLER ?= epoll
B := build/$(V)

ifeq ($(origin CC),default)
CC := cc
endif
ifeq ($(V),arm64)
CC := aarch64-linux-gnu-gcc
endif
ifneq ($(filter $(V),fuzz clang),)
CC := clang
endif

# The version lives in include/gorc_version.h only; see its comment for the soname rule.
ver = $(shell sed -n 's/^\#define GORC_VERSION_$(1) \([0-9]*\)$$/\1/p' include/gorc_version.h)
VERSION := $(call ver,MAJOR).$(call ver,MINOR).$(call ver,PATCH)
ifeq ($(call ver,MAJOR),0)
SONAME := libgorc.so.0.$(call ver,MINOR)
else
SONAME := libgorc.so.$(call ver,MAJOR)
endif

WARN := -Wall -Wextra -Werror -Wshadow -Wstrict-prototypes -Wno-unused-parameter
# Frame pointers everywhere: tracebacks and profiles walk them (src/runtime/traceback.c).
# Leaf functions may go without (a sample in one then lacks its caller's frame): keeping them
# there too cost the scheduler's small leaf functions about 3 % more instructions.
FRAMEPTR := -fno-omit-frame-pointer -momit-leaf-frame-pointer
BASE := -std=c11 -D_GNU_SOURCE -fPIC -pthread -Iinclude -Isrc $(WARN) $(FRAMEPTR)
CFLAGS_release := -O2 -g
CFLAGS_debug := -O0 -g
CFLAGS_asan := -O1 -g -fno-omit-frame-pointer -fsanitize=address,undefined \
               -fno-sanitize-recover=undefined
CFLAGS_tsan := -O1 -g -fsanitize=thread
CFLAGS_arm64 := -O2 -g
# -gdwarf-aranges: clang leaves out .debug_aranges, without which Debian 12's libdw (elfutils
# 0.188) finds no compilation unit for an address, so libgorc_symbolize gave no file:line.
CFLAGS_clang := -O2 -g -gdwarf-aranges
CFLAGS_fuzz := -O1 -g -fsanitize=address,undefined
LDFLAGS_asan := -fsanitize=address,undefined
LDFLAGS_tsan := -fsanitize=thread
CMOCKA_arm64 := /usr/lib/aarch64-linux-gnu/libcmocka.so.0
LDFLAGS_fuzz := -fsanitize=address,undefined

CFLAGS := $(BASE) $(CFLAGS_$(V)) $(EXTRA_CFLAGS)
# Only the library's objects hide their symbols by default; GORC_API marks the public ones.
LIB_CFLAGS := $(CFLAGS) -fvisibility=hidden -MMD -MP
LDFLAGS := -pthread $(LDFLAGS_$(V)) $(EXTRA_LDFLAGS)
CMOCKA := $(or $(CMOCKA_$(V)),-lcmocka)

ARCH := $(shell $(CC) -dumpmachine | cut -d- -f1)
ASM_x86_64 := src/arch/ctx_amd64.S
ASM_aarch64 := src/arch/ctx_arm64.S

# One line per layer, lowest first; each layer calls only the ones above it in this list.
SRC_OS      := src/os/futex_linux.c src/os/cpus_linux.c src/os/membarrier_linux.c \
               src/os/guard_linux.c src/os/netpoll_$(POLLER).c
SRC_RUNTIME := src/runtime/support.c src/runtime/ctx.c src/runtime/stack.c src/runtime/proc.c \
               src/runtime/timer.c src/runtime/chan.c src/runtime/select.c src/runtime/sync.c \
               src/runtime/netpoll.c src/runtime/cancel.c src/runtime/leak.c src/runtime/errors.c \
               src/runtime/version.c src/runtime/traceback.c src/runtime/pprof.c \
               src/runtime/metrics.c src/runtime/trace.c src/runtime/trace_json.c
# Deterministic simulation (src/sim): part of the runtime's layer, which calls its hooks.
SRC_SIM     := src/sim/sim.c
SRC_TIME    := src/time/sleep.c
SRC_CONTEXT := src/context/context.c src/context/wait.c src/context/group.c
SRC_NET     := src/net/fd.c src/net/net.c src/net/addr.c src/net/bufio.c src/net/simnet.c
SRC_SIGNAL  := src/signal/signal.c src/signal/flight.c
SRC_HTTP    := src/http/parse.c src/http/common.c src/http/server.c src/http/mux.c \
               src/http/fs.c src/http/client.c src/http/pprof.c \
               src/http/metrics.c src/http/debug.c
# Restarts that drop nothing (docs/restart.md): handing listeners to a new process.
SRC_RESTART := src/restart/restart.c
SRC_WS      := src/websocket/frame.c src/websocket/websocket.c
LIB_SRC := $(SRC_OS) $(SRC_RUNTIME) $(SRC_SIM) $(SRC_TIME) $(SRC_CONTEXT) $(SRC_NET) $(SRC_SIGNAL) $(SRC_HTTP) \
           $(SRC_RESTART) $(SRC_WS)
LIB_OBJ := $(LIB_SRC:src/%.c=$(B)/obj/%.o) $(B)/obj/arch/ctx_asm.o
PUBLIC_HDRS := include/gorc.h include/gorc_version.h include/gorc_context.h include/gorc_net.h \
               include/gorc_signal.h include/gorc_bufio.h include/gorc_http.h \
               include/gorc_websocket.h include/gorc_wsdeflate.h include/gorc_tls.h \
               include/gorc_http2.h include/gorc_debug.h include/gorc_http_debug.h \
               include/gorc_trace.h
PUBLIC_HDRS += include/gorc_restart.h include/gorc_sim.h

TESTS := $(patsubst tests/unit/%.c,%,$(filter-out tests/unit/test_http2%,$(wildcard tests/unit/test_*.c)))
TEST_BIN := $(TESTS:%=$(B)/tests/%) $(B)/tests/crashers
# Dependency files of programs go to $(B)/dep, not beside the binaries the runners list.
TEST_CFLAGS = $(CFLAGS) -Itests/lib -MMD -MP -MF $(B)/dep/$(notdir $@).d

.PHONY: wsdeflate
.PHONY: all lib demo demo-deps check test test-bins install uninstall bench format lint clean deps fuzz
all: lib
lib: $(B)/libgorc.a $(B)/libgorc.so $(B)/gorc.pc

$(B)/obj/%.o: src/%.c
	@mkdir -p $(dir $@)
	$(CC) $(LIB_CFLAGS) -c $< -o $@

# The scheduler's core and stack cache go without frame pointers: they are on every switch and
# spawn, where frames cost about 4 % of the instructions, and none of their functions sits
# between a parked goroutine's frames (gorc__park, gorc_yield and gorc_blocking_exit keep a
# frame each, forced by __builtin_frame_address, and the walk starts there). A CPU sample
# taken inside them may lose its callers (docs/observability.md). ASan keeps its frames.
FRAMELESS := src/runtime/proc.c src/runtime/stack.c
ifneq ($(V),asan)
$(FRAMELESS:src/%.c=$(B)/obj/%.o): LIB_CFLAGS += -fomit-frame-pointer
endif

$(B)/obj/arch/ctx_asm.o: $(ASM_$(ARCH))
	@mkdir -p $(dir $@)
	$(CC) $(LIB_CFLAGS) -c $< -o $@

$(B)/libgorc.a: $(LIB_OBJ)
	rm -f $@
	ar rcs $@ $^

$(B)/libgorc.so: $(LIB_OBJ)
	$(CC) -shared -Wl,-soname,$(SONAME) -Wl,-z,defs $(LDFLAGS) -o $@ $^

# Libs carries an rpath so that a program linked with `pkg-config --libs gorc` runs wherever
# the prefix is, also outside the loader's default path (README, "Using gorc").
define pc_file
sed -e 's|@PREFIX@|$(1)|g' -e 's|@VERSION@|$(VERSION)|g' gorc.pc.in
endef
$(B)/gorc.pc: gorc.pc.in include/gorc_version.h
	@mkdir -p $(B)
	$(call pc_file,$(PREFIX)) > $@

-include $(LIB_OBJ:.o=.d)

# ---- libgorc_wsdeflate: permessage-deflate (RFC 7692) on zlib, outside the core ----
# Its own library and .pc, so only programs that compress link zlib; it uses the core's public
# extension hook (gorc_ws_extension) only.
WSDEFLATE_OBJ := $(B)/obj/wsdeflate/wsdeflate.o
WSDEFLATE_SONAME := $(subst libgorc,libgorc_wsdeflate,$(SONAME))
wsdeflate: $(B)/libgorc_wsdeflate.a $(B)/libgorc_wsdeflate.so $(B)/gorc-wsdeflate.pc
$(B)/libgorc_wsdeflate.a: $(WSDEFLATE_OBJ)
	rm -f $@
	ar rcs $@ $^
$(B)/libgorc_wsdeflate.so: $(WSDEFLATE_OBJ) $(B)/libgorc.so
	$(CC) -shared -Wl,-soname,$(WSDEFLATE_SONAME) -Wl,-z,defs $(LDFLAGS) -o $@ $(WSDEFLATE_OBJ) \
	  -L$(B) -lgorc -lz
$(B)/gorc-wsdeflate.pc: gorc-wsdeflate.pc.in include/gorc_version.h
	@mkdir -p $(B)
	sed -e 's|@PREFIX@|$(PREFIX)|g' -e 's|@VERSION@|$(VERSION)|g' $< > $@
-include $(WSDEFLATE_OBJ:.o=.d)
lib: wsdeflate
# ---- libgorc_tls: TLS on OpenSSL 3 (docs/tls.md) ----
# Its own library, .pc file and CMake target: a program that does not use TLS links neither it
# nor OpenSSL, and libgorc stays libc + pthreads. It uses only libgorc's exported API.
SRC_TLS := src/tls/config.c src/tls/conn.c
TLS_OBJ := $(SRC_TLS:src/%.c=$(B)/obj/%.o)
TLS_LIBS := -lssl -lcrypto
TLS_SONAME := $(subst libgorc,libgorc_tls,$(SONAME))
lib: $(B)/libgorc_tls.a $(B)/libgorc_tls.so $(B)/gorc-tls.pc

$(B)/libgorc_tls.a: $(TLS_OBJ)
	rm -f $@
	ar rcs $@ $^

$(B)/libgorc_tls.so: $(TLS_OBJ) $(B)/libgorc.so
	$(CC) -shared -Wl,-soname,$(TLS_SONAME) -Wl,-z,defs $(LDFLAGS) -o $@ $(TLS_OBJ) \
	  -L$(B) -l:libgorc.so $(TLS_LIBS)

$(B)/gorc-tls.pc: gorc-tls.pc.in include/gorc_version.h
	@mkdir -p $(B)
	sed -e 's|@PREFIX@|$(PREFIX)|g' -e 's|@VERSION@|$(VERSION)|g' gorc-tls.pc.in > $@

TLS_TEST_BIN := $(patsubst tests/unit/%.c,$(B)/tests/%,$(wildcard tests/unit/test_tls*.c))
$(TLS_TEST_BIN): $(B)/tests/%: tests/unit/%.c $(B)/libgorc_tls.a $(B)/libgorc.a
	@mkdir -p $(dir $@) $(B)/dep
	$(CC) $(TEST_CFLAGS) $< $(B)/libgorc_tls.a $(B)/libgorc.a -o $@ $(LDFLAGS) $(CMOCKA) $(TLS_LIBS)

# The HTTPS server driven by tests/e2e/tls-e2e and the TLS benchmarks.
$(B)/tests/tls_e2e_server: tests/e2e/tls_e2e_server.c $(B)/libgorc_tls.a $(B)/libgorc.a
	@mkdir -p $(dir $@) $(B)/dep
	$(CC) $(TEST_CFLAGS) $< $(B)/libgorc_tls.a $(B)/libgorc.a -o $@ $(LDFLAGS) $(TLS_LIBS)

-include $(TLS_OBJ:.o=.d)
# ---- libgorc_symbolize: names and file:line from elfutils' libdw (optional) ----
# Built when libdw's headers and library are there for $(CC); the core never links it
# (include/gorc_symbolize.h, docs/observability.md). The arm64 cross build has no libdw:arm64,
# so there test_symbolize is built without it and skips with a printed reason.
HAVE_LIBDW := $(shell printf '\043include <elfutils/libdwfl.h>\nint main(void){return dwfl_begin(0)!=0;}' \
                | $(CC) -x c - -o /dev/null -ldw -lelf 2>/dev/null && echo 1)
SYM_OBJ := $(B)/obj/symbolize/symbolize.o
SYM_LIBS := -ldw -lelf
ifeq ($(HAVE_LIBDW),1)
lib: $(B)/libgorc_symbolize.a $(B)/libgorc_symbolize.so $(B)/gorc-symbolize.pc
TEST_SYM_LINK = $(B)/libgorc_symbolize.a $(B)/libgorc.a $(SYM_LIBS)
TEST_SYM_DEPS = $(B)/libgorc_symbolize.a
else
TEST_SYM_LINK = $(B)/libgorc.a
TEST_SYM_DEPS =
TEST_SYM_FLAGS = -DGORC_TEST_NO_LIBDW
endif

$(B)/libgorc_symbolize.a: $(SYM_OBJ)
	rm -f $@
	ar rcs $@ $^

$(B)/libgorc_symbolize.so: $(SYM_OBJ) $(B)/libgorc.so
	$(CC) -shared -Wl,-soname,libgorc_symbolize.so.0 -Wl,-z,defs $(LDFLAGS) -o $@ $(SYM_OBJ) \
	  -L$(B) -lgorc $(SYM_LIBS)

$(B)/gorc-symbolize.pc: gorc-symbolize.pc.in include/gorc_version.h
	@mkdir -p $(B)
	sed -e 's|@PREFIX@|$(PREFIX)|g' -e 's|@VERSION@|$(VERSION)|g' $< > $@

$(B)/tests/test_symbolize: tests/unit/test_symbolize.c $(B)/libgorc.a $(TEST_SYM_DEPS)
	@mkdir -p $(dir $@) $(B)/dep
	$(CC) $(TEST_CFLAGS) $(TEST_SYM_FLAGS) $< $(TEST_SYM_LINK) -o $@ $(LDFLAGS) $(CMOCKA)

.PHONY: install-symbolize
install: install-symbolize
install-symbolize: lib
	if [ -f $(B)/libgorc_symbolize.a ]; then \
	  install -d $(DESTDIR)$(PREFIX)/include $(DESTDIR)$(LIBDIR)/pkgconfig && \
	  install -m 644 include/gorc_symbolize.h $(DESTDIR)$(PREFIX)/include/ && \
	  install -m 644 $(B)/libgorc_symbolize.a $(DESTDIR)$(LIBDIR)/ && \
	  install -m 755 $(B)/libgorc_symbolize.so $(DESTDIR)$(LIBDIR)/libgorc_symbolize.so.0 && \
	  ln -sf libgorc_symbolize.so.0 $(DESTDIR)$(LIBDIR)/libgorc_symbolize.so && \
	  sed -e 's|@PREFIX@|$(PREFIX)|g' -e 's|@VERSION@|$(VERSION)|g' gorc-symbolize.pc.in \
	    > $(DESTDIR)$(LIBDIR)/pkgconfig/gorc-symbolize.pc; fi

# ---- tests ----

$(B)/tests/%: tests/unit/%.c $(B)/libgorc.a
	@mkdir -p $(dir $@) $(B)/dep
	$(CC) $(TEST_CFLAGS) $< $(B)/libgorc.a -o $@ $(LDFLAGS) $(CMOCKA)

$(B)/tests/crashers: tests/unit/crashers.c $(B)/libgorc.a
	@mkdir -p $(dir $@) $(B)/dep
	$(CC) $(TEST_CFLAGS) $< $(B)/libgorc.a -o $@ $(LDFLAGS)

# The server driven by tests/e2e/http-e2e (curl, ab, wrk, Python, Chromium); not a cmocka test.
$(B)/tests/http_e2e_server: tests/e2e/http_e2e_server.c $(B)/libgorc.a
	@mkdir -p $(dir $@) $(B)/dep
	$(CC) $(TEST_CFLAGS) $< $(B)/libgorc.a -o $@ $(LDFLAGS)

# The server and the counting load generator tests/e2e/restart-e2e drives; not cmocka tests.
$(B)/tests/restart_e2e_server $(B)/tests/restart_e2e_load: $(B)/tests/restart_e2e_%: \
  tests/e2e/restart_e2e_%.c $(B)/libgorc.a
	@mkdir -p $(dir $@) $(B)/dep
	$(CC) $(TEST_CFLAGS) $< $(B)/libgorc.a -o $@ $(LDFLAGS)
# The gorc side of tests/e2e/ws-e2e (Python's websockets, Chromium); not a cmocka test.
$(B)/tests/ws_e2e_server: tests/e2e/ws_e2e_server.c $(B)/libgorc_wsdeflate.a $(B)/libgorc.a
	@mkdir -p $(dir $@) $(B)/dep
	$(CC) $(TEST_CFLAGS) $< $(B)/libgorc_wsdeflate.a $(B)/libgorc.a -o $@ $(LDFLAGS) -lz

# test_wsdeflate links the extension library and zlib too.
$(B)/tests/test_wsdeflate: tests/unit/test_wsdeflate.c $(B)/libgorc_wsdeflate.a $(B)/libgorc.a
	@mkdir -p $(dir $@) $(B)/dep
	$(CC) $(TEST_CFLAGS) $< $(B)/libgorc_wsdeflate.a $(B)/libgorc.a -o $@ $(LDFLAGS) $(CMOCKA) -lz
# The program tests/e2e/obs-e2e observes with go tool pprof, promtool and Prometheus.
$(B)/tests/obs_e2e_server: tests/e2e/obs_e2e_server.c $(B)/libgorc.a
	@mkdir -p $(dir $@) $(B)/dep
	$(CC) $(TEST_CFLAGS) $< $(B)/libgorc.a -o $@ $(LDFLAGS)
# The known program and debug server of tests/e2e/trace-e2e; -rdynamic so that the trace's
# goroutine names (dladdr) include the program's own functions.
$(B)/tests/trace_prog: tests/e2e/trace_prog.c $(B)/libgorc.a
	@mkdir -p $(dir $@) $(B)/dep
	$(CC) $(TEST_CFLAGS) -rdynamic $< $(B)/libgorc.a -o $@ $(LDFLAGS)

# Programs with planted bugs for the simulation's exploration driver (tests/e2e/sim-e2e); not
# cmocka tests, so named sim_*, which tests/run-variant does not run.
SIM_PROGS := $(patsubst tests/sim/%.c,$(B)/tests/sim_%,$(wildcard tests/sim/*.c))
$(B)/tests/sim_%: tests/sim/%.c $(B)/libgorc.a
	@mkdir -p $(dir $@) $(B)/dep
	$(CC) $(TEST_CFLAGS) $< $(B)/libgorc.a -o $@ $(LDFLAGS)
test-bins: $(SIM_PROGS)

-include $(wildcard $(B)/dep/*.d)

# ---- libgorc_http2: HTTP/2 on nghttp2, its own library (docs/http2.md) ----
# Only the core's exported API and nghttp2; a program that does not use HTTP/2 links neither.
# The arm64 variant links Debian's libnghttp2-dev:arm64 (multiarch, scripts/install-deps).
SRC_HTTP2 := src/http2/server.c src/http2/client.c
HTTP2_OBJ := $(SRC_HTTP2:src/%.c=$(B)/obj/%.o)
HTTP2_LIBS := -lnghttp2
HTTP2_SONAME := $(subst libgorc,libgorc_http2,$(SONAME))
HTTP2_TESTS := $(patsubst tests/unit/%.c,%,$(filter-out tests/unit/test_http2_tls%,$(wildcard tests/unit/test_http2*.c)))
TEST_BIN += $(HTTP2_TESTS:%=$(B)/tests/%) $(B)/tests/test_http2_tls
lib: $(B)/libgorc_http2.a $(B)/libgorc_http2.so $(B)/gorc-http2.pc

$(B)/libgorc_http2.a: $(HTTP2_OBJ)
	rm -f $@
	ar rcs $@ $^

$(B)/libgorc_http2.so: $(HTTP2_OBJ) $(B)/libgorc.so
	$(CC) -shared -Wl,-soname,$(HTTP2_SONAME) -Wl,-z,defs $(LDFLAGS) -o $@ $(HTTP2_OBJ) \
	  -L$(B) -lgorc $(HTTP2_LIBS)

$(B)/gorc-http2.pc: gorc-http2.pc.in include/gorc_version.h
	@mkdir -p $(B)
	sed -e 's|@PREFIX@|$(PREFIX)|g' -e 's|@VERSION@|$(VERSION)|g' $< > $@

$(HTTP2_TESTS:%=$(B)/tests/%): $(B)/tests/%: tests/unit/%.c $(B)/libgorc_http2.a $(B)/libgorc.a
	@mkdir -p $(dir $@) $(B)/dep
	$(CC) $(TEST_CFLAGS) $< $(B)/libgorc_http2.a $(B)/libgorc.a -o $@ $(LDFLAGS) $(HTTP2_LIBS) \
	  $(CMOCKA)

# h2 over TLS: a program that links both extension libraries (neither links the other).
$(B)/tests/test_http2_tls: tests/unit/test_http2_tls.c $(B)/libgorc_http2.a $(B)/libgorc_tls.a \
  $(B)/libgorc.a
	@mkdir -p $(dir $@) $(B)/dep
	$(CC) $(TEST_CFLAGS) $< $(B)/libgorc_http2.a $(B)/libgorc_tls.a $(B)/libgorc.a -o $@ \
	  $(LDFLAGS) $(HTTP2_LIBS) $(TLS_LIBS) $(CMOCKA)

# The h2 + h2c server over TLS (tests/e2e/http2-e2e's h2 part, bench/run's h2s workloads), and
# the HTTP/2 client over https.
$(B)/tests/h2s_e2e_server: tests/e2e/h2s_e2e_server.c $(B)/libgorc_http2.a $(B)/libgorc_tls.a \
  $(B)/libgorc.a
	@mkdir -p $(dir $@) $(B)/dep
	$(CC) $(TEST_CFLAGS) $< $(B)/libgorc_http2.a $(B)/libgorc_tls.a $(B)/libgorc.a -o $@ \
	  $(LDFLAGS) $(HTTP2_LIBS) $(TLS_LIBS)
$(B)/tests/h2s_get: tests/e2e/h2s_get.c tests/e2e/http2_get.c $(B)/libgorc_http2.a \
  $(B)/libgorc_tls.a $(B)/libgorc.a
	@mkdir -p $(dir $@) $(B)/dep
	$(CC) $(TEST_CFLAGS) $< $(B)/libgorc_http2.a $(B)/libgorc_tls.a $(B)/libgorc.a -o $@ \
	  $(LDFLAGS) $(HTTP2_LIBS) $(TLS_LIBS)

# The h2/h2c server driven by tests/e2e/http2-e2e and bench/run.
$(B)/tests/http2_e2e_server: tests/e2e/http2_e2e_server.c $(B)/libgorc_http2.a $(B)/libgorc.a
	@mkdir -p $(dir $@) $(B)/dep
	$(CC) $(TEST_CFLAGS) $< $(B)/libgorc_http2.a $(B)/libgorc.a -o $@ $(LDFLAGS) $(HTTP2_LIBS)

# The HTTP/2 client run against nginx and h2o by tests/e2e/http2-e2e.
$(B)/tests/http2_get: tests/e2e/http2_get.c $(B)/libgorc_http2.a $(B)/libgorc.a
	@mkdir -p $(dir $@) $(B)/dep
	$(CC) $(TEST_CFLAGS) $< $(B)/libgorc_http2.a $(B)/libgorc.a -o $@ $(LDFLAGS) $(HTTP2_LIBS)

-include $(HTTP2_OBJ:.o=.d)

test-bins: $(TEST_BIN)

test: test-bins
	tests/run-variant $(V)

deps:
	@scripts/install-deps

check: deps
	tests/run-all

# ---- fuzzing (clang + libFuzzer): make fuzz FUZZ_SECONDS=60 ----

FUZZ_SECONDS ?= 20
build/fuzz/fuzz_http_parse: tests/fuzz/fuzz_http_parse.c tests/lib/http_parse_sig.h src/http/parse.c \
                            src/http/parse.h
	@mkdir -p build/fuzz/corpus-http_parse
	clang -std=c11 -D_GNU_SOURCE -g -O1 -Isrc -Itests/lib $(WARN) -fsanitize=fuzzer,address,undefined \
	  -fno-sanitize-recover=all src/http/parse.c $< -o $@

# The WebSocket frame codec (src/websocket/frame.c has no dependency of its own).
FUZZ_WS_SECONDS ?= 10
build/fuzz/fuzz_ws_frame: tests/fuzz/fuzz_ws_frame.c src/websocket/frame.c src/websocket/frame.h
	@mkdir -p build/fuzz/corpus-ws_frame
	clang -std=c11 -D_GNU_SOURCE -g -O1 -Isrc $(WARN) -fsanitize=fuzzer,address,undefined \
	  -fno-sanitize-recover=all src/websocket/frame.c $< -o $@

# New inputs go to a scratch corpus first (libFuzzer writes into its first directory).
fuzz: build/fuzz/fuzz_http_parse build/fuzz/fuzz_ws_frame
	build/fuzz/fuzz_http_parse -max_total_time=$(FUZZ_SECONDS) -print_final_stats=1 \
	  build/fuzz/corpus-http_parse tests/fuzz/corpus/http_parse
	build/fuzz/fuzz_ws_frame -max_total_time=$(FUZZ_WS_SECONDS) -print_final_stats=1 \
	  build/fuzz/corpus-ws_frame tests/fuzz/corpus/ws_frame

# ---- demo, bench ----

$(B)/examples/%: examples/%.c $(B)/libgorc.a
	@mkdir -p $(dir $@) $(B)/dep
	$(CC) $(CFLAGS) -MMD -MP -MF $(B)/dep/$(notdir $@).d $< $(B)/libgorc.a -o $@ $(LDFLAGS)

# Load generators written with gorc (bench/run builds its own copies the same way).
$(B)/bench/%: bench/c/%.c $(B)/libgorc.a
	@mkdir -p $(dir $@) $(B)/dep
	$(CC) $(CFLAGS) -MMD -MP -MF $(B)/dep/$(notdir $@).d $< $(B)/libgorc.a -o $@ $(LDFLAGS)

# The demo serves HTTPS and HTTP/2 too, so it links the TLS and HTTP/2 libraries (and OpenSSL
# and nghttp2): `make demo` installs what they need (scripts/install-deps demo) and makes a
# self-signed certificate for localhost the first time.
$(B)/examples/http_demo: examples/http_demo.c $(B)/libgorc_http2.a $(B)/libgorc_tls.a $(B)/libgorc.a
	@mkdir -p $(dir $@) $(B)/dep
	$(CC) $(CFLAGS) -MMD -MP -MF $(B)/dep/$(notdir $@).d $< $(B)/libgorc_http2.a \
	  $(B)/libgorc_tls.a $(B)/libgorc.a -o $@ $(LDFLAGS) $(HTTP2_LIBS) $(TLS_LIBS)

DEMO_CERT := build/demo/cert.pem
DEMO_KEY := build/demo/key.pem
$(DEMO_CERT):
	@mkdir -p $(dir $@)
	openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes -days 365 \
	  -subj /CN=localhost -addext subjectAltName=DNS:localhost,IP:127.0.0.1 \
	  -keyout $(DEMO_KEY) -out $(DEMO_CERT) 2>/dev/null

demo-deps:
	scripts/install-deps demo

demo: demo-deps
	$(MAKE) -s $(B)/examples/http_demo $(DEMO_CERT)
	$(B)/examples/http_demo 8080 -tls 8443 -cert $(DEMO_CERT) -key $(DEMO_KEY)

bench:
	bench/run

# ---- install ----

LIBDIR := $(PREFIX)/lib
CMAKEDIR := $(LIBDIR)/cmake/gorc

install: lib
	install -d $(DESTDIR)$(PREFIX)/include $(DESTDIR)$(LIBDIR)/pkgconfig $(DESTDIR)$(CMAKEDIR)
	install -m 644 $(PUBLIC_HDRS) $(DESTDIR)$(PREFIX)/include/
	install -m 644 $(B)/libgorc.a $(B)/libgorc_wsdeflate.a $(DESTDIR)$(LIBDIR)/
	install -m 755 $(B)/libgorc_wsdeflate.so $(DESTDIR)$(LIBDIR)/libgorc_wsdeflate.so.$(VERSION)
	ln -sf libgorc_wsdeflate.so.$(VERSION) $(DESTDIR)$(LIBDIR)/$(WSDEFLATE_SONAME)
	ln -sf $(WSDEFLATE_SONAME) $(DESTDIR)$(LIBDIR)/libgorc_wsdeflate.so
	sed -e 's|@PREFIX@|$(PREFIX)|g' -e 's|@VERSION@|$(VERSION)|g' gorc-wsdeflate.pc.in \
	  > $(DESTDIR)$(LIBDIR)/pkgconfig/gorc-wsdeflate.pc
	install -m 644 $(B)/libgorc_http2.a $(DESTDIR)$(LIBDIR)/
	install -m 755 $(B)/libgorc_http2.so $(DESTDIR)$(LIBDIR)/libgorc_http2.so.$(VERSION)
	ln -sf libgorc_http2.so.$(VERSION) $(DESTDIR)$(LIBDIR)/$(HTTP2_SONAME)
	ln -sf $(HTTP2_SONAME) $(DESTDIR)$(LIBDIR)/libgorc_http2.so
	sed -e 's|@PREFIX@|$(PREFIX)|g' -e 's|@VERSION@|$(VERSION)|g' gorc-http2.pc.in \
	  > $(DESTDIR)$(LIBDIR)/pkgconfig/gorc-http2.pc
	install -m 755 $(B)/libgorc.so $(DESTDIR)$(LIBDIR)/libgorc.so.$(VERSION)
	ln -sf libgorc.so.$(VERSION) $(DESTDIR)$(LIBDIR)/$(SONAME)
	ln -sf $(SONAME) $(DESTDIR)$(LIBDIR)/libgorc.so
	# Written here, not copied from the build: PREFIX may differ from the one the build saw.
	$(call pc_file,$(PREFIX)) > $(DESTDIR)$(LIBDIR)/pkgconfig/gorc.pc
	sed -e 's|@VERSION@|$(VERSION)|g' -e 's|@SONAME@|$(SONAME)|g' \
	  -e 's|@HTTP2_SONAME@|$(HTTP2_SONAME)|g' -e 's|@TLS_SONAME@|$(TLS_SONAME)|g' \
	  -e 's|@WSDEFLATE_SONAME@|$(WSDEFLATE_SONAME)|g' cmake/gorcConfig.cmake.in \
	  > $(DESTDIR)$(CMAKEDIR)/gorcConfig.cmake
	sed -e 's|@VERSION@|$(VERSION)|g' cmake/gorcConfigVersion.cmake.in \
	  > $(DESTDIR)$(CMAKEDIR)/gorcConfigVersion.cmake
	# libgorc_tls (docs/tls.md)
	install -m 644 $(B)/libgorc_tls.a $(DESTDIR)$(LIBDIR)/
	install -m 755 $(B)/libgorc_tls.so $(DESTDIR)$(LIBDIR)/libgorc_tls.so.$(VERSION)
	ln -sf libgorc_tls.so.$(VERSION) $(DESTDIR)$(LIBDIR)/$(TLS_SONAME)
	ln -sf $(TLS_SONAME) $(DESTDIR)$(LIBDIR)/libgorc_tls.so
	sed -e 's|@PREFIX@|$(PREFIX)|g' -e 's|@VERSION@|$(VERSION)|g' gorc-tls.pc.in \
	  > $(DESTDIR)$(LIBDIR)/pkgconfig/gorc-tls.pc

uninstall:
	rm -f $(PUBLIC_HDRS:include/%=$(DESTDIR)$(PREFIX)/include/%) \
	      $(DESTDIR)$(LIBDIR)/libgorc.* $(DESTDIR)$(LIBDIR)/libgorc_wsdeflate.* \
	      $(DESTDIR)$(LIBDIR)/libgorc_tls.* $(DESTDIR)$(LIBDIR)/libgorc_http2.* \
	      $(DESTDIR)$(LIBDIR)/libgorc_symbolize.* \
	      $(DESTDIR)$(LIBDIR)/pkgconfig/gorc.pc $(DESTDIR)$(LIBDIR)/pkgconfig/gorc-wsdeflate.pc \
	      $(DESTDIR)$(LIBDIR)/pkgconfig/gorc-tls.pc $(DESTDIR)$(LIBDIR)/pkgconfig/gorc-http2.pc \
	      $(DESTDIR)$(PREFIX)/include/gorc_symbolize.h $(DESTDIR)$(LIBDIR)/pkgconfig/gorc-symbolize.pc
	rm -rf $(DESTDIR)$(CMAKEDIR)

# ---- hygiene ----

FORMAT_FILES := $(wildcard include/*.h src/*/*.c src/*/*.h tests/*/*.c tests/*/*.h examples/*.c \
                  bench/c/*.c)

format:
	clang-format -i $(FORMAT_FILES)

# scripts/lint runs clang-format, cppcheck, the exported-symbol check, the C and C++ header
# compiles and the API-reference check; each can be run alone (scripts/lint --help).
lint:
	scripts/lint

clean:
	rm -rf build
