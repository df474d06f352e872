# mailgun-spool: `make` builds build/mailgun-spool; `make check` installs what is missing,
# builds and runs every test; `make demo` runs the responder end to end behind nginx.

PREFIX ?= /usr/local
DESTDIR ?=
# Where make install puts each thing; systemd looks for units in PREFIX/lib/systemd/system
# for PREFIX /usr/local and /usr.
INSTALL_LIBDIR ?= $(PREFIX)/lib/mailgun-spool
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
	$(MAKE) all $(BUILD)/unit-tests $(BUILD)/fault-inject.so
	$(BUILD)/unit-tests
	python3 tests/run_integration.py

demo: deps
	$(MAKE) all
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
	install -m 0755 $(BUILD)/mailgun-spool $(DESTDIR)$(INSTALL_LIBDIR)/mailgun-spool
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
	rm -f $(DESTDIR)$(INSTALL_LIBDIR)/mailgun-spool
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

clean:
	rm -rf $(BUILD)

-include $(LIB_OBJECTS:.o=.d) $(TEST_OBJECTS:.o=.d) $(BUILD)/obj/main.d
