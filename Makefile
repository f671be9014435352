# gorc - Go's runtime, in C.
#
# A plain Makefile: the library is a dozen C files and two assembly files, the build has a few
# variants (release, sanitizers, cross), and make is on every machine gorc targets.
#
#   make              release library: build/release/libgorc.a, libgorc.so, gorc.pc
#   make demo         build and run the HTTP demo server (examples/http_demo.c) on 127.0.0.1:8080
#   make check        install test dependencies, then run every test suite (what CI runs)
#   make test         unit tests for one variant: make test V=asan | V=tsan | V=release
#   make install      PREFIX=/usr/local by default; DESTDIR is honoured
#   make bench        side-by-side benchmarks against Go (bench/run)
#   make format lint  clang-format the tree / cppcheck it
#   make fuzz         run the libFuzzer targets for FUZZ_SECONDS (default 20)
#
# Variants (V=...): release, clang (same with clang), debug, asan (AddressSanitizer + UBSan), tsan (ThreadSanitizer),
# arm64 (cross-compiled with aarch64-linux-gnu-gcc, tests run under qemu-aarch64 with Debian's
# arm64 multiarch libc and cmocka).

V ?= release
PREFIX ?= /usr/local
B := build/$(V)

CC := cc
ifeq ($(V),arm64)
CC := aarch64-linux-gnu-gcc
endif
ifneq ($(filter $(V),fuzz clang),)
CC := clang
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
LDFLAGS := -pthread $(LDFLAGS_$(V)) $(EXTRA_LDFLAGS)
CMOCKA := $(or $(CMOCKA_$(V)),-lcmocka)

ARCH := $(shell $(CC) -dumpmachine | cut -d- -f1)
ASM_x86_64 := src/arch/ctx_amd64.S
ASM_aarch64 := src/arch/ctx_arm64.S

LIB_SRC := src/ctx.c src/stack.c src/proc.c src/cpus.c src/futex.c src/chan.c src/select.c \
           src/time.c src/sync.c src/netpoll_epoll.c src/http_parse.c src/netpoll.c src/fd.c src/net.c src/net_addr.c \
           src/http_common.c src/http_server.c src/http_mux.c src/http_fs.c src/http_client.c
LIB_OBJ := $(LIB_SRC:src/%.c=$(B)/obj/%.o) $(B)/obj/ctx_asm.o
HDRS := $(wildcard include/*.h src/*.h)

TESTS := $(patsubst tests/%.c,%,$(wildcard tests/test_*.c))
TEST_BIN := $(TESTS:%=$(B)/tests/%) $(B)/tests/crashers

.PHONY: all lib demo check test test-bins install uninstall bench format lint clean deps fuzz
all: lib
lib: $(B)/libgorc.a $(B)/libgorc.so $(B)/gorc.pc

$(B)/obj/%.o: src/%.c $(HDRS)
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) -c $< -o $@

$(B)/obj/ctx_asm.o: $(ASM_$(ARCH))
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) -c $< -o $@

$(B)/libgorc.a: $(LIB_OBJ)
	rm -f $@
	ar rcs $@ $^

$(B)/libgorc.so: $(LIB_OBJ)
	$(CC) -shared -Wl,-soname,libgorc.so.0 $(LDFLAGS) -o $@ $^

$(B)/gorc.pc: gorc.pc.in
	@mkdir -p $(B)
	sed -e 's|@PREFIX@|$(PREFIX)|g' -e 's|@VERSION@|0.1.0|g' $< > $@

# ---- tests ----

$(B)/tests/%: tests/%.c $(wildcard tests/*.h) $(B)/libgorc.a
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) -Itests $< $(B)/libgorc.a -o $@ $(LDFLAGS) $(CMOCKA)

$(B)/tests/crashers: tests/crashers.c $(B)/libgorc.a
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) $< $(B)/libgorc.a -o $@ $(LDFLAGS)

# The server driven by tests/http-e2e (curl, ab, wrk, Python, Chromium); not a cmocka test.
$(B)/tests/http_e2e_server: tests/http_e2e_server.c $(B)/libgorc.a
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) $< $(B)/libgorc.a -o $@ $(LDFLAGS)

test-bins: $(TEST_BIN)

test: test-bins
	tests/run-variant $(V)

deps:
	@scripts/install-deps

check: deps
	tests/run-all

# ---- fuzzing (clang + libFuzzer): make fuzz FUZZ_SECONDS=60 ----

FUZZ_SECONDS ?= 20
build/fuzz/fuzz_http_parse: tests/fuzz/fuzz_http_parse.c tests/http_parse_sig.h src/http_parse.c src/http_parse.h
	@mkdir -p build/fuzz/corpus-http_parse
	clang -std=c11 -D_GNU_SOURCE -g -O1 -Isrc $(WARN) -fsanitize=fuzzer,address,undefined \
	  -fno-sanitize-recover=all src/http_parse.c $< -o $@

# New inputs go to a scratch corpus first (libFuzzer writes into its first directory).
fuzz: build/fuzz/fuzz_http_parse
	build/fuzz/fuzz_http_parse -max_total_time=$(FUZZ_SECONDS) -print_final_stats=1 \
	  build/fuzz/corpus-http_parse tests/fuzz/corpus/http_parse

# ---- demo, bench ----

$(B)/examples/%: examples/%.c $(B)/libgorc.a
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) $< $(B)/libgorc.a -o $@ $(LDFLAGS)

demo: $(B)/examples/http_demo
	$(B)/examples/http_demo

bench:
	bench/run

# ---- install ----

install: lib
	install -d $(DESTDIR)$(PREFIX)/include $(DESTDIR)$(PREFIX)/lib/pkgconfig
	install -m 644 include/gorc.h include/gorc_net.h include/gorc_http.h $(DESTDIR)$(PREFIX)/include/
	install -m 644 $(B)/libgorc.a $(DESTDIR)$(PREFIX)/lib/
	install -m 755 $(B)/libgorc.so $(DESTDIR)$(PREFIX)/lib/libgorc.so.0
	ln -sf libgorc.so.0 $(DESTDIR)$(PREFIX)/lib/libgorc.so
	# Written here, not copied from the build: PREFIX may differ from the one the build saw.
	sed -e 's|@PREFIX@|$(PREFIX)|g' -e 's|@VERSION@|0.1.0|g' gorc.pc.in \
	  > $(DESTDIR)$(PREFIX)/lib/pkgconfig/gorc.pc

uninstall:
	rm -f $(DESTDIR)$(PREFIX)/include/gorc.h $(DESTDIR)$(PREFIX)/include/gorc_net.h $(DESTDIR)$(PREFIX)/include/gorc_http.h \
	      $(DESTDIR)$(PREFIX)/lib/libgorc.* \
	      $(DESTDIR)$(PREFIX)/lib/pkgconfig/gorc.pc

# ---- hygiene ----

FORMAT_FILES := $(wildcard include/*.h src/*.c src/*.h tests/*.c tests/*.h examples/*.c bench/c/*.c)

format:
	clang-format -i $(FORMAT_FILES)

lint:
	clang-format --dry-run --Werror $(FORMAT_FILES)
	cppcheck -q --error-exitcode=1 --enable=warning,style,performance,portability \
	  --inline-suppr --suppress=missingIncludeSystem -D__x86_64__ -D_GNU_SOURCE \
	  -Iinclude -Isrc src include

clean:
	rm -rf build
