# mailgun-spool: `make` builds build/mailgun-spool; `make check` installs what is missing,
# builds and runs every test; `make demo` runs the responder end to end behind nginx.

PREFIX ?= /usr/local
DESTDIR ?=
# Where make install puts each thing; systemd looks for units in PREFIX/lib/systemd/system
# for PREFIX /usr/local and /usr.
INSTALL_LIBDIR ?= $(PREFIX)/lib/mailgun-spool
# The installed binary is stripped of its debug symbols; INSTALL_STRIP= keeps them.
INSTALL_STRIP ?= -s
MANDIR ?= $(PREFIX)/share/man
EXAMPLEDIR ?= $(PREFIX)/share/doc/mailgun-spool/examples
SYSTEMD_UNIT_DIR ?= $(PREFIX)/lib/systemd/system
# The folders make install created, so that make uninstall removes those and no others.
INSTALL_MANIFEST = $(INSTALL_LIBDIR)/installed-folders
EXAMPLE_FILES = $(sort $(wildcard apache/*.conf nginx/*.conf nginx/*.sh systemd/*.socket systemd/*.service))
SYSTEMD_UNITS = $(sort $(wildcard systemd/*.socket systemd/*.service))
INSTALL_DIRS = $(INSTALL_LIBDIR) $(MANDIR)/man8 $(SYSTEMD_UNIT_DIR) \
               $(addprefix $(EXAMPLEDIR)/,apache nginx systemd)
BUILD := build

CXX ?= g++
# make check and make demo build on every core.
JOBS ?= $(shell nproc 2>/dev/null || echo 1)
PACKAGES := gmime-3.0 fcgi openssl libytnef
PKG_CFLAGS = $(shell pkg-config --cflags $(PACKAGES) 2>/dev/null)
PKG_LIBS = $(shell pkg-config --libs $(PACKAGES) 2>/dev/null)

CXXFLAGS ?= -O2 -g
CXXFLAGS += -std=c++20 -Wall -Wextra -Wno-missing-field-initializers -MMD -MP \
            -D_FILE_OFFSET_BITS=64 -fstack-protector-strong -D_FORTIFY_SOURCE=2
LDFLAGS ?=
# Debian's fcgi.pc has no -lfcgi in some releases, so it is named here as well.
LIBS = $(PKG_LIBS) -lfcgi

LIB_SOURCES := $(filter-out src/main.cpp,$(wildcard src/*.cpp))
LIB_OBJECTS := $(LIB_SOURCES:src/%.cpp=$(BUILD)/obj/%.o)
TEST_SOURCES := $(wildcard tests/unit/*.cpp)
TEST_OBJECTS := $(TEST_SOURCES:tests/unit/%.cpp=$(BUILD)/test-obj/%.o)

.PHONY: all check unit-tests integration-tests demo install uninstall clean deps

all: $(BUILD)/mailgun-spool

deps:
	@tests/tools/install-deps

$(BUILD)/obj/%.o: src/%.cpp
	@mkdir -p $(dir $@)
	$(CXX) $(CXXFLAGS) $(PKG_CFLAGS) -c $< -o $@

$(BUILD)/test-obj/%.o: tests/unit/%.cpp
	@mkdir -p $(dir $@)
	$(CXX) $(CXXFLAGS) $(PKG_CFLAGS) -Isrc -c $< -o $@

$(BUILD)/libmailgun-spool.a: $(LIB_OBJECTS)
	@rm -f $@
	ar rcs $@ $^

$(BUILD)/mailgun-spool: $(BUILD)/obj/main.o $(BUILD)/libmailgun-spool.a
	$(CXX) $(LDFLAGS) -o $@ $^ $(LIBS)

# The durability tests preload this library to make fsync, close, write or rename fail.
$(BUILD)/fault-inject.so: tests/fault/fault_inject.c
	@mkdir -p $(dir $@)
	$(CC) -O2 -Wall -Wextra -shared -fPIC -o $@ $< -ldl

$(BUILD)/unit-tests: $(TEST_OBJECTS) $(BUILD)/libmailgun-spool.a
	$(CXX) $(LDFLAGS) -o $@ $^ $(LIBS)

unit-tests: $(BUILD)/unit-tests
	$(BUILD)/unit-tests

integration-tests: $(BUILD)/mailgun-spool $(BUILD)/fault-inject.so
	python3 tests/run_integration.py

check: deps
	$(MAKE) -j$(JOBS) all $(BUILD)/unit-tests $(BUILD)/fault-inject.so
	$(BUILD)/unit-tests
	$(MAKE) -j$(JOBS) fuzz-regressions
	python3 tests/run_integration.py

demo: deps
	$(MAKE) -j$(JOBS) all
	tests/demo/run-demo

# Benchmarks (docs/benchmarks.md): peak memory per message size, then requests per second
# behind nginx and as CGI. Both start the responder on 127.0.0.1 and fail when a request is
# not stored; run as root, so that the responder runs as nobody and nginx as www-data.
.PHONY: bench
bench: $(BUILD)/mailgun-spool
	bench/memory
	bench/throughput

install: $(BUILD)/mailgun-spool
	@set -e; manifest='$(DESTDIR)$(INSTALL_MANIFEST)'; \
	created=$$(for dir in $(INSTALL_DIRS); do \
	  path='$(DESTDIR)'"$$dir"; \
	  while [ ! -d "$$path" ] && [ "$$path" != '$(DESTDIR)' ] && [ "$$path" != / ]; do \
	    echo "$${path#'$(DESTDIR)'}"; path=$$(dirname "$$path"); \
	  done; \
	done); \
	for dir in $(INSTALL_DIRS); do install -d -m 0755 '$(DESTDIR)'"$$dir"; done; \
	{ if [ -f "$$manifest" ]; then cat "$$manifest"; fi; printf '%s\n' $$created; } \
	  | sed '/^$$/d' | sort -u > "$$manifest.new"; \
	chmod 0644 "$$manifest.new"; mv "$$manifest.new" "$$manifest"
	install -m 0755 $(INSTALL_STRIP) $(BUILD)/mailgun-spool $(DESTDIR)$(INSTALL_LIBDIR)/mailgun-spool
	sed 's|@PREFIX@|$(PREFIX)|g' nginx/spawn-fcgi.sh > $(DESTDIR)$(INSTALL_LIBDIR)/spawn-fcgi.sh
	chmod 0755 $(DESTDIR)$(INSTALL_LIBDIR)/spawn-fcgi.sh
	install -m 0644 docs/mailgun-spool.8 $(DESTDIR)$(MANDIR)/man8/mailgun-spool.8
	@set -e; for file in $(EXAMPLE_FILES); do \
	  echo "install $$file -> $(DESTDIR)$(EXAMPLEDIR)/$$file"; \
	  sed 's|@PREFIX@|$(PREFIX)|g' "$$file" > '$(DESTDIR)$(EXAMPLEDIR)'/"$$file"; \
	  chmod --reference="$$file" '$(DESTDIR)$(EXAMPLEDIR)'/"$$file"; \
	  chmod go-w '$(DESTDIR)$(EXAMPLEDIR)'/"$$file"; \
	done
	@set -e; for file in $(SYSTEMD_UNITS); do \
	  echo "install $$file -> $(DESTDIR)$(SYSTEMD_UNIT_DIR)/$$(basename $$file)"; \
	  sed 's|@PREFIX@|$(PREFIX)|g' "$$file" > '$(DESTDIR)$(SYSTEMD_UNIT_DIR)'/"$$(basename $$file)"; \
	  chmod 0644 '$(DESTDIR)$(SYSTEMD_UNIT_DIR)'/"$$(basename $$file)"; \
	done

# Removes the files install copied, then each folder that install created and that is now
# empty, as listed in the manifest install wrote; folders that existed before stay.
uninstall:
	rm -f $(DESTDIR)$(INSTALL_LIBDIR)/mailgun-spool $(DESTDIR)$(INSTALL_LIBDIR)/spawn-fcgi.sh
	rm -f $(DESTDIR)$(MANDIR)/man8/mailgun-spool.8
	rm -f $(addprefix $(DESTDIR)$(EXAMPLEDIR)/,$(EXAMPLE_FILES))
	rm -f $(addprefix $(DESTDIR)$(SYSTEMD_UNIT_DIR)/,$(notdir $(SYSTEMD_UNITS)))
	@set -e; manifest='$(DESTDIR)$(INSTALL_MANIFEST)'; \
	if [ -f "$$manifest" ]; then \
	  dirs=$$(sort -r "$$manifest"); rm -f "$$manifest"; \
	  for dir in $$dirs; do rmdir '$(DESTDIR)'"$$dir" 2>/dev/null || true; done; \
	else \
	  echo "uninstall: $$manifest is missing; the folders install created are left in place"; \
	fi

# Fuzz targets (clang and libFuzzer, from Debian's clang and libclang-rt-14-dev; make check
# replays the seeds and regressions through them). make fuzz builds one binary per fuzz/*_fuzzer.cpp with the
# library compiled again under AddressSanitizer and UBSan; make fuzz-run runs each for
# FUZZ_SECONDS, and -j2 runs two at a time. New inputs go to build/fuzz/corpus/TARGET,
# crashes to build/fuzz/artifacts/TARGET. make fuzz-regressions replays the saved
# reproducers and seeds once each.
.PHONY: fuzz fuzz-run fuzz-regressions

FUZZ_CXX ?= clang++
FUZZ_BUILD := $(BUILD)/fuzz
FUZZ_SECONDS ?= 60
# Inputs above this are cut: the shared corpus has messages of several MB, and short
# inputs let the fuzzer run more of them.
FUZZ_MAX_LEN ?= 65536
FUZZ_SANITIZE := -fsanitize=address,undefined -fno-sanitize-recover=all
FUZZ_CXXFLAGS ?= -O1 -g -fno-omit-frame-pointer
FUZZ_ALL_CXXFLAGS = $(FUZZ_CXXFLAGS) -std=c++20 -Wall -Wextra -Wno-missing-field-initializers -MMD -MP \
                    -D_FILE_OFFSET_BITS=64 $(FUZZ_SANITIZE)
FUZZ_TARGETS := $(patsubst fuzz/%_fuzzer.cpp,%,$(wildcard fuzz/*_fuzzer.cpp))
FUZZ_BINARIES := $(FUZZ_TARGETS:%=$(FUZZ_BUILD)/%_fuzzer)
FUZZ_LIB_OBJECTS := $(LIB_SOURCES:src/%.cpp=$(FUZZ_BUILD)/obj/%.o)
# Read-only extra seeds, used when the shared folder beside the repository exists.
SHARED_DIR := ../shared
FUZZ_SHARED_SEEDS_mime_decoder := $(SHARED_DIR)/corpus $(SHARED_DIR)/cases
FUZZ_SHARED_SEEDS_event_webhook := $(SHARED_DIR)/cases

fuzz: $(FUZZ_BINARIES)

# Keeps the targets' objects, which make would delete as intermediate files.
.PRECIOUS: $(FUZZ_BUILD)/%_fuzzer.o

$(FUZZ_BUILD)/obj/%.o: src/%.cpp
	@mkdir -p $(dir $@)
	$(FUZZ_CXX) $(FUZZ_ALL_CXXFLAGS) -fsanitize=fuzzer-no-link $(PKG_CFLAGS) -c $< -o $@

$(FUZZ_BUILD)/libmailgun-spool.a: $(FUZZ_LIB_OBJECTS)
	@rm -f $@
	ar rcs $@ $^

$(FUZZ_BUILD)/%_fuzzer.o: fuzz/%_fuzzer.cpp
	@mkdir -p $(dir $@)
	$(FUZZ_CXX) $(FUZZ_ALL_CXXFLAGS) -fsanitize=fuzzer-no-link $(PKG_CFLAGS) -Isrc -c $< -o $@

$(FUZZ_BUILD)/%_fuzzer: $(FUZZ_BUILD)/%_fuzzer.o $(FUZZ_BUILD)/libmailgun-spool.a
	$(FUZZ_CXX) $(FUZZ_SANITIZE) -fsanitize=fuzzer -o $@ $^ $(LIBS)

fuzz-run: $(FUZZ_TARGETS:%=fuzz-run-%)

fuzz-run-%: $(FUZZ_BUILD)/%_fuzzer
	@mkdir -p $(FUZZ_BUILD)/corpus/$* $(FUZZ_BUILD)/artifacts/$*
	$< -max_total_time=$(FUZZ_SECONDS) -max_len=$(FUZZ_MAX_LEN) -timeout=30 -print_final_stats=1 \
	  -artifact_prefix=$(FUZZ_BUILD)/artifacts/$*/ $(FUZZ_BUILD)/corpus/$* \
	  $(wildcard fuzz/seeds/$*) $(wildcard $(FUZZ_SHARED_SEEDS_$*))

# Runs each target once on every file of fuzz/regressions/TARGET and fuzz/seeds/TARGET; a
# crash, leak, broken invariant or input slower than 10 seconds fails the run.
fuzz-regressions: $(FUZZ_BINARIES)
	@set -e; for target in $(FUZZ_TARGETS); do \
	  files=$$(find fuzz/regressions/$$target fuzz/seeds/$$target -type f 2>/dev/null | sort); \
	  if [ -n "$$files" ]; then \
	    echo "fuzz-regressions: $$target: $$(echo "$$files" | wc -l) inputs"; \
	    $(FUZZ_BUILD)/$${target}_fuzzer -timeout=10 $$files > $(FUZZ_BUILD)/$$target-regressions.log 2>&1 \
	      || { cat $(FUZZ_BUILD)/$$target-regressions.log; exit 1; }; \
	  fi; \
	done

clean:
	rm -rf $(BUILD)

-include $(LIB_OBJECTS:.o=.d) $(TEST_OBJECTS:.o=.d) $(BUILD)/obj/main.d
-include $(FUZZ_LIB_OBJECTS:.o=.d) $(FUZZ_BINARIES:=.d)
