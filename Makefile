# gorc - Go's runtime, in C.
#
# A plain Makefile: the library is a few dozen C files in one folder per layer (docs/design.md
# lists them), the build has a few variants (release, sanitizers, cross), and make is on every
# machine gorc targets.
#
#   make              release library: build/release/libgorc.a, libgorc.so, gorc.pc
#   make demo         build and run the HTTP demo server (examples/http_demo.c) on 127.0.0.1:8080
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
BASE := -std=c11 -D_GNU_SOURCE -fPIC -pthread -Iinclude -Isrc $(WARN)
CFLAGS_release := -O2 -g
CFLAGS_debug := -O0 -g
CFLAGS_asan := -O1 -g -fno-omit-frame-pointer -fsanitize=address,undefined \
               -fno-sanitize-recover=undefined
CFLAGS_tsan := -O1 -g -fsanitize=thread
CFLAGS_arm64 := -O2 -g
CFLAGS_clang := -O2 -g
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
               src/runtime/version.c
SRC_TIME    := src/time/sleep.c
SRC_CONTEXT := src/context/context.c src/context/wait.c src/context/group.c
SRC_NET     := src/net/fd.c src/net/net.c src/net/addr.c src/net/bufio.c
SRC_SIGNAL  := src/signal/signal.c
SRC_HTTP    := src/http/parse.c src/http/common.c src/http/server.c src/http/mux.c \
               src/http/fs.c src/http/client.c
# Restarts that drop nothing (docs/restart.md): handing listeners to a new process.
SRC_RESTART := src/restart/restart.c
SRC_WS      := src/websocket/frame.c src/websocket/websocket.c
LIB_SRC := $(SRC_OS) $(SRC_RUNTIME) $(SRC_TIME) $(SRC_CONTEXT) $(SRC_NET) $(SRC_SIGNAL) $(SRC_HTTP) \
           $(SRC_RESTART) $(SRC_WS)
LIB_OBJ := $(LIB_SRC:src/%.c=$(B)/obj/%.o) $(B)/obj/arch/ctx_asm.o
PUBLIC_HDRS := include/gorc.h include/gorc_version.h include/gorc_context.h include/gorc_net.h \
               include/gorc_signal.h include/gorc_bufio.h include/gorc_http.h \
               include/gorc_websocket.h include/gorc_wsdeflate.h include/gorc_tls.h
PUBLIC_HDRS += include/gorc_restart.h

TESTS := $(patsubst tests/unit/%.c,%,$(wildcard tests/unit/test_*.c))
TEST_BIN := $(TESTS:%=$(B)/tests/%) $(B)/tests/crashers
# Dependency files of programs go to $(B)/dep, not beside the binaries the runners list.
TEST_CFLAGS = $(CFLAGS) -Itests/lib -MMD -MP -MF $(B)/dep/$(notdir $@).d

.PHONY: wsdeflate
.PHONY: all lib demo check test test-bins install uninstall bench format lint clean deps fuzz
all: lib
lib: $(B)/libgorc.a $(B)/libgorc.so $(B)/gorc.pc

$(B)/obj/%.o: src/%.c
	@mkdir -p $(dir $@)
	$(CC) $(LIB_CFLAGS) -c $< -o $@

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
wsdeflate: $(B)/libgorc_wsdeflate.a $(B)/libgorc_wsdeflate.so $(B)/gorc_wsdeflate.pc
$(B)/libgorc_wsdeflate.a: $(WSDEFLATE_OBJ)
	rm -f $@
	ar rcs $@ $^
$(B)/libgorc_wsdeflate.so: $(WSDEFLATE_OBJ) $(B)/libgorc.so
	$(CC) -shared -Wl,-soname,$(WSDEFLATE_SONAME) -Wl,-z,defs $(LDFLAGS) -o $@ $(WSDEFLATE_OBJ) \
	  -L$(B) -lgorc -lz
$(B)/gorc_wsdeflate.pc: gorc_wsdeflate.pc.in include/gorc_version.h
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

-include $(wildcard $(B)/dep/*.d)

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

demo: $(B)/examples/http_demo
	$(B)/examples/http_demo

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
	sed -e 's|@PREFIX@|$(PREFIX)|g' -e 's|@VERSION@|$(VERSION)|g' gorc_wsdeflate.pc.in \
	  > $(DESTDIR)$(LIBDIR)/pkgconfig/gorc_wsdeflate.pc
	install -m 755 $(B)/libgorc.so $(DESTDIR)$(LIBDIR)/libgorc.so.$(VERSION)
	ln -sf libgorc.so.$(VERSION) $(DESTDIR)$(LIBDIR)/$(SONAME)
	ln -sf $(SONAME) $(DESTDIR)$(LIBDIR)/libgorc.so
	# Written here, not copied from the build: PREFIX may differ from the one the build saw.
	$(call pc_file,$(PREFIX)) > $(DESTDIR)$(LIBDIR)/pkgconfig/gorc.pc
	sed -e 's|@VERSION@|$(VERSION)|g' -e 's|@SONAME@|$(SONAME)|g' cmake/gorcConfig.cmake.in \
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
	      $(DESTDIR)$(LIBDIR)/libgorc.* $(DESTDIR)$(LIBDIR)/libgorc_wsdeflate.* $(DESTDIR)$(LIBDIR)/libgorc_tls.* \
	      $(DESTDIR)$(LIBDIR)/pkgconfig/gorc.pc $(DESTDIR)$(LIBDIR)/pkgconfig/gorc_wsdeflate.pc \
	      $(DESTDIR)$(LIBDIR)/pkgconfig/gorc-tls.pc
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
