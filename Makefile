# Convenience wrapper around CMake and ctest; the real build is CMakeLists.txt.
# `make help` lists the targets and the variables that can be overridden (make check JOBS=4).

BUILD        ?= build
ASAN_BUILD   ?= build-asan
FUZZ_BUILD   ?= build-fuzz
PREFIX       ?= /usr/local
JOBS         ?= $(shell nproc 2>/dev/null || echo 2)
CTEST_JOBS   ?= 2
FUZZ_SECONDS ?= 600
FUZZ_TARGETS ?= $(sort $(patsubst fuzz/%.c,%,$(wildcard fuzz/fuzz_*.c)))
CORPUS       ?= ../shared/corpus/dev
CMAKE_ARGS   ?=
DEPS         ?= scripts/install-deps.sh

MAKEFLAGS += --no-print-directory
SHELL := /bin/bash
.SHELLFLAGS := -eu -o pipefail -c
.DEFAULT_GOAL := build

ASAN_ENV := ASAN_OPTIONS=detect_leaks=1:abort_on_error=1 UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1

# $(call banner,TEXT): a line that stands out in a long log (TEXT may use shell variables).
banner = printf '\n======== %s ========\n\n' "$(1)"

# $(call configure_and_build,DIR,ENV,CMAKE-OPTIONS)
define configure_and_build
	$(2) cmake -S . -B $(1) $(3) $(CMAKE_ARGS)
	cmake --build $(1) -j $(JOBS)
endef

BUILD_OPTIONS := -DCMAKE_BUILD_TYPE=RelWithDebInfo -DMV_WERROR=ON -DMV_CORPUS=$(abspath $(CORPUS))
ASAN_OPTIONS_CMAKE := -DCMAKE_BUILD_TYPE=Debug -DMV_SANITIZE=ON -DMV_WERROR=ON -DMV_CORPUS=$(abspath $(CORPUS))

.PHONY: help deps build check demo bench fuzz install gen clean

help:
	@echo 'medveil: make targets'
	@echo '  build    install missing build packages, then configure and build $(BUILD)/ (the default)'
	@echo '  check    install every missing package; build with -Werror and run ctest in $(BUILD)/;'
	@echo '           then build with clang + ASan + UBSan and run ctest in $(ASAN_BUILD)/ (what CI runs)'
	@echo '  demo     build, then run examples/demo.sh'
	@echo '  bench    install benchmark tools, build, then run every bench/*.sh (codec, deid, pixel, vault, audit)'
	@echo '  fuzz     build the libFuzzer targets in $(FUZZ_BUILD)/ and run them FUZZ_SECONDS in total'
	@echo '  install  install $(BUILD)/ into PREFIX (run make build first)'
	@echo '  deps     install every missing Debian package (scripts/install-deps.sh all)'
	@echo '  gen      regenerate src/dicom/dict_table.c from ../shared/standard (by hand only)'
	@echo '  clean    remove $(BUILD)/ $(ASAN_BUILD)/ $(FUZZ_BUILD)/ (fuzz corpora included)'
	@echo 'variables (current value):'
	@echo '  BUILD=$(BUILD) ASAN_BUILD=$(ASAN_BUILD) FUZZ_BUILD=$(FUZZ_BUILD) PREFIX=$(PREFIX)'
	@echo '  JOBS=$(JOBS) CTEST_JOBS=$(CTEST_JOBS) CORPUS=$(CORPUS) (tests: $$MV_CORPUS; fuzz seeds)'
	@echo '  FUZZ_SECONDS=$(FUZZ_SECONDS) (total, split evenly between FUZZ_TARGETS)'
	@echo '  FUZZ_TARGETS=$(FUZZ_TARGETS)'
	@echo '  CMAKE_ARGS=$(CMAKE_ARGS) (extra options for every cmake configure)'
	@echo '  DEPS=$(DEPS) (DEPS=true skips the package check, e.g. off Debian)'

deps:
	$(DEPS) all

build:
	$(DEPS) build
	$(call configure_and_build,$(BUILD),,$(BUILD_OPTIONS))

# Both phases run even when the first one's tests fail; check fails if either failed.
check:
	@$(call banner,check: dependencies)
	$(DEPS) all
	@$(call banner,check 1/2: build $(BUILD)/ (RelWithDebInfo$(comma) -Werror))
	$(call configure_and_build,$(BUILD),,$(BUILD_OPTIONS))
	@$(call banner,check 1/2: ctest in $(BUILD)/)
	@rc1=0; ctest --test-dir $(BUILD) --output-on-failure -j $(CTEST_JOBS) || rc1=$$?; \
	echo $$rc1 > $(BUILD)/.check-status
	@$(call banner,check 2/2: build $(ASAN_BUILD)/ (clang$(comma) Debug$(comma) ASan+UBSan$(comma) -Werror))
	$(call configure_and_build,$(ASAN_BUILD),CC=clang,$(ASAN_OPTIONS_CMAKE))
	@$(call banner,check 2/2: ctest in $(ASAN_BUILD)/ under ASan+UBSan)
	@rc2=0; $(ASAN_ENV) ctest --test-dir $(ASAN_BUILD) --output-on-failure -j $(CTEST_JOBS) || rc2=$$?; \
	rc1=$$(cat $(BUILD)/.check-status); rm -f $(BUILD)/.check-status; \
	$(call banner,check: summary); \
	if [ "$$rc1" -eq 0 ]; then r1=passed; else r1=FAILED; fi; \
	if [ "$$rc2" -eq 0 ]; then r2=passed; else r2=FAILED; fi; \
	echo "  tests in $(BUILD)/:      $$r1"; \
	echo "  tests in $(ASAN_BUILD)/: $$r2 (ASan+UBSan)"; \
	[ "$$rc1" -eq 0 ] && [ "$$rc2" -eq 0 ]

demo: build
	bash examples/demo.sh $(BUILD)

bench:
	$(DEPS) build bench
	$(call configure_and_build,$(BUILD),,$(BUILD_OPTIONS))
	bash bench/run.sh $(BUILD)
	bash bench/deid.sh $(BUILD)
	bash bench/pixel.sh $(BUILD)
	bash bench/pixel-ocr.sh $(BUILD)
	bash bench/reversible.sh $(BUILD)
	bash bench/vault.sh $(BUILD)
	bash bench/audit.sh $(BUILD)

# Each target fuzzes FUZZ_SECONDS / (number of targets) seconds. New inputs go to
# $(FUZZ_BUILD)/corpus-<name>; CORPUS, tests/regress/ and fuzz/<name>/ (if present) are
# read-only seeds, fuzz/<name>.dict a dictionary. Findings go to $(FUZZ_BUILD)/artifacts/.
fuzz:
	$(DEPS) build fuzz
	$(call configure_and_build,$(FUZZ_BUILD),CC=clang,-DCMAKE_BUILD_TYPE=RelWithDebInfo "-DCMAKE_C_FLAGS_RELWITHDEBINFO=-O2 -g" -DMV_FUZZ=ON)
	@targets="$(FUZZ_TARGETS)"; \
	if [ -z "$$targets" ]; then echo "fuzz: no fuzz targets (fuzz/fuzz_*.c)"; exit 0; fi; \
	set -- $$targets; per=$$(( $(FUZZ_SECONDS) / $$# )); [ "$$per" -ge 1 ] || per=1; \
	mkdir -p $(FUZZ_BUILD)/artifacts; stamp=$(FUZZ_BUILD)/artifacts/.stamp; touch "$$stamp"; \
	failed=""; \
	for t in $$targets; do \
	  $(call banner,fuzz: $$t for $$per s); \
	  mkdir -p $(FUZZ_BUILD)/corpus-$$t; \
	  seeds=""; \
	  for d in "$(CORPUS)" tests/regress fuzz/$$t; do [ -d "$$d" ] && seeds="$$seeds $$d"; done; \
	  dict=""; [ -f fuzz/$$t.dict ] && dict="-dict=fuzz/$$t.dict"; \
	  rc=0; $(FUZZ_BUILD)/$$t -max_total_time=$$per -max_len=1048576 -rss_limit_mb=2048 -timeout=10 \
	    -print_final_stats=1 -artifact_prefix=$(FUZZ_BUILD)/artifacts/$$t- $$dict \
	    $(FUZZ_BUILD)/corpus-$$t $$seeds || rc=$$?; \
	  [ "$$rc" -eq 0 ] || failed="$$failed $$t"; \
	done; \
	found=$$(find $(FUZZ_BUILD)/artifacts -type f -newer "$$stamp" ! -name '.stamp' | sort); \
	if [ -z "$$failed" ] && [ -z "$$found" ]; then \
	  $(call banner,fuzz: no crash in $$targets); exit 0; fi; \
	$(call banner,fuzz: FAILED:$$failed); \
	for f in $$found; do \
	  t=$$(basename "$$f"); for k in crash leak timeout oom slow-unit; do t=$${t%%-$$k-*}; done; \
	  echo "  finding:    $$f"; \
	  echo "  reproduce:  $(FUZZ_BUILD)/$$t $$f"; \
	  echo "  keep it:    cp $$f tests/regress/$$t-<what-it-breaks>"; \
	  echo; \
	done; \
	echo "Fix the bug, keep the input under tests/regress/ (make check replays every file there),"; \
	echo "and run make check and make fuzz again."; \
	exit 1

install:
	@[ -f $(BUILD)/CMakeCache.txt ] || { echo "install: $(BUILD)/ is not configured; run make build first" >&2; exit 2; }
	cmake --install $(BUILD) --prefix $(PREFIX)

gen:
	@[ -f $(BUILD)/CMakeCache.txt ] || cmake -S . -B $(BUILD) $(BUILD_OPTIONS) $(CMAKE_ARGS)
	cmake --build $(BUILD) --target gen

clean:
	rm -rf $(BUILD) $(ASAN_BUILD) $(FUZZ_BUILD)

comma := ,
