# mailgun-spool: `make` builds build/mailgun-spool; `make check` installs what is missing,
# builds and runs every test; `make demo` runs the responder end to end behind nginx.

PREFIX ?= /usr/local
DESTDIR ?=
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

$(BUILD)/unit-tests: $(TEST_OBJECTS) $(BUILD)/libmailgun-spool.a
	$(CXX) $(LDFLAGS) -o $@ $^ $(LIBS)

unit-tests: $(BUILD)/unit-tests
	$(BUILD)/unit-tests

integration-tests: $(BUILD)/mailgun-spool
	python3 tests/run_integration.py

check: deps
	$(MAKE) all $(BUILD)/unit-tests
	$(BUILD)/unit-tests
	python3 tests/run_integration.py

demo: deps
	$(MAKE) all
	tests/demo/run-demo

install: $(BUILD)/mailgun-spool
	install -d $(DESTDIR)$(PREFIX)/lib/mailgun-spool
	install -m 0755 $(BUILD)/mailgun-spool $(DESTDIR)$(PREFIX)/lib/mailgun-spool/mailgun-spool

uninstall:
	rm -f $(DESTDIR)$(PREFIX)/lib/mailgun-spool/mailgun-spool
	-rmdir $(DESTDIR)$(PREFIX)/lib/mailgun-spool

clean:
	rm -rf $(BUILD)

-include $(LIB_OBJECTS:.o=.d) $(TEST_OBJECTS:.o=.d) $(BUILD)/obj/main.d
