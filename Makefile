# pktpipe: one plain Makefile.
#   make                 host + every plugin whose libraries pkg-config finds
#   make PLUGINS="a b"   only those plugin folders
#   make check           every test suite, optimised and with ASan+UBSan
#   make deps            install the Debian packages build and tests need
#   make demo            the main job end to end (see README.md)
#   make install PREFIX=/usr/local DESTDIR=
.SUFFIXES:
.DELETE_ON_ERROR:

VERSION    := 0.1.0
PREFIX     ?= /usr/local
BINDIR     ?= $(PREFIX)/bin
LIBDIR     ?= $(PREFIX)/lib
PLUGINDIR  ?= $(LIBDIR)/pktpipe
INCLUDEDIR ?= $(PREFIX)/include
BUILD      ?= build
CC         ?= cc

WARN    := -Wall -Wextra -Werror
OPT     ?= -O2
ifeq ($(SAN),1)
SANFLAGS := -fsanitize=address,undefined -fno-sanitize-recover=undefined -fno-omit-frame-pointer
OPT      := -O1
endif
CFLAGS  ?=
BASE_CFLAGS := -std=c11 -D_GNU_SOURCE $(WARN) $(OPT) -g $(SANFLAGS) -Iinclude $(CFLAGS)
LDFLAGS ?=
BASE_LDFLAGS := $(SANFLAGS) $(LDFLAGS)

# ---- host ----
CORE_SRCS := $(filter-out core/main.c,$(wildcard core/*.c))
CORE_OBJS := $(CORE_SRCS:core/%.c=$(BUILD)/core/%.o)
CORE_HDRS := $(wildcard core/*.h include/pktpipe/*.h)
HOST_LIBS := -lltdl $(shell pkg-config --libs inih) -lpthread
HOST_DEFS := -DPP_VERSION='"$(VERSION)"' -DPP_PLUGINDIR='"$(PLUGINDIR)"'

# ---- plugins: plugins/NAME/NAME.c and the other .c files beside it;
# plugins/NAME/pkgs lists pkg-config names, libs other linker flags, extra
# sources shared with other plugins (from plugins/lib/, say). ----
ALL_PLUGINS := $(patsubst plugins/%/,%,$(foreach d,$(wildcard plugins/*/),$(if $(wildcard $(d)$(notdir $(d:/=)).c),$(d))))
PLUGINS     ?= $(ALL_PLUGINS)
plugin_pkgs  = $(strip $(shell cat plugins/$(1)/pkgs 2>/dev/null))
plugin_libs  = $(strip $(shell cat plugins/$(1)/libs 2>/dev/null))
plugin_extra = $(strip $(shell cat plugins/$(1)/extra 2>/dev/null))
plugin_srcs  = $(wildcard plugins/$(1)/*.c) $(call plugin_extra,$(1))
plugin_found = $(if $(call plugin_pkgs,$(1)),$(shell pkg-config --exists $(call plugin_pkgs,$(1)) && echo y),y)
BUILT_PLUGINS   := $(foreach p,$(PLUGINS),$(if $(wildcard plugins/$(p)/*.c),$(if $(call plugin_found,$(p)),$(p))))
SKIPPED_PLUGINS := $(filter-out $(BUILT_PLUGINS),$(PLUGINS))
PLUGIN_SOS      := $(BUILT_PLUGINS:%=$(BUILD)/plugins/%.so)
PLUGIN_CFLAGS   := -fPIC -fvisibility=hidden
PLUGIN_LDFLAGS  := -shared -Wl,-z,defs

.PHONY: all host plugins report check test deps demo bench soak fuzz install uninstall clean man tools docs
all: host plugins tools report

host: $(BUILD)/pktpipe
plugins: $(PLUGIN_SOS)

# Programs that ship with a plugin live in plugins/NAME/PROGRAM/*.c and are
# built with the plugin (same libraries): build/PROGRAM.
define program_rule
$(BUILD)/$(2): $(wildcard plugins/$(1)/$(2)/*.c plugins/$(1)/$(2)/*.h plugins/$(1)/*.c plugins/$(1)/*.h plugins/lib/*.h) $(call plugin_extra,$(1))
	@mkdir -p $$(@D)
	$$(CC) $$(BASE_CFLAGS) -Iplugins/lib $$(if $$(call plugin_pkgs,$(1)),$$(shell pkg-config --cflags $$(call plugin_pkgs,$(1)))) \
		-o $$@ $(wildcard plugins/$(1)/$(2)/*.c) $(filter-out %.h,$(call plugin_extra,$(1))) $$(BASE_LDFLAGS) \
		$$(if $$(call plugin_pkgs,$(1)),$$(shell pkg-config --libs $$(call plugin_pkgs,$(1)))) $$(call plugin_libs,$(1))
endef
PROGRAMS := $(foreach p,$(BUILT_PLUGINS),$(foreach d,$(wildcard plugins/$(p)/*/),$(if $(wildcard $(d)*.c),$(p)/$(notdir $(d:/=)))))
$(foreach pr,$(PROGRAMS),$(eval $(call program_rule,$(word 1,$(subst /, ,$(pr))),$(word 2,$(subst /, ,$(pr))))))
PROGRAM_BINS := $(foreach pr,$(PROGRAMS),$(BUILD)/$(word 2,$(subst /, ,$(pr))))
plugins: $(PROGRAM_BINS)

report: host plugins
	@echo "plugins built: $(or $(BUILT_PLUGINS),none)"
	@$(foreach p,$(SKIPPED_PLUGINS),echo "plugin skipped: $(p): $(if $(wildcard plugins/$(p)/*.c),pkg-config cannot find: $(call plugin_pkgs,$(p)),no such plugin folder)";)

$(BUILD)/core/%.o: core/%.c $(CORE_HDRS)
	@mkdir -p $(@D)
	$(CC) $(BASE_CFLAGS) $(HOST_DEFS) $(shell pkg-config --cflags inih) -c $< -o $@

$(BUILD)/libpktpipe-core.a: $(CORE_OBJS)
	@rm -f $@
	ar rcs $@ $^

# The original tools' names run the same binary (argv[0] dispatch).
COMPAT_TOOLS := nflog-zmq-send nflog-pcap-recv nflog-pcap-query nflog-zmq-compress nflog-zmq-decompress

$(BUILD)/pktpipe: $(BUILD)/core/main.o $(BUILD)/libpktpipe-core.a
	$(CC) $(BASE_LDFLAGS) -o $@ $^ $(HOST_LIBS)
	$(foreach t,$(COMPAT_TOOLS),ln -sf pktpipe $(BUILD)/$(t);)

define plugin_rule
$(BUILD)/plugins/$(1).so: $(call plugin_srcs,$(1)) $(wildcard plugins/$(1)/*.h plugins/lib/*.h) $(wildcard include/pktpipe/*.h) $(wildcard plugins/$(1)/pkgs plugins/$(1)/extra)
	@mkdir -p $$(@D)
	$$(CC) $$(BASE_CFLAGS) $$(PLUGIN_CFLAGS) -Iplugins/lib $$(if $$(call plugin_pkgs,$(1)),$$(shell pkg-config --cflags $$(call plugin_pkgs,$(1)))) \
		-o $$@ $(call plugin_srcs,$(1)) $$(BASE_LDFLAGS) $$(PLUGIN_LDFLAGS) \
		$$(if $$(call plugin_pkgs,$(1)),$$(shell pkg-config --libs $$(call plugin_pkgs,$(1)))) $$(call plugin_libs,$(1))
endef
$(foreach p,$(BUILT_PLUGINS),$(eval $(call plugin_rule,$(p))))

# ---- tests ----
UNIT_SRCS  := $(wildcard tests/unit/test_*.c)
UNIT_BINS  := $(UNIT_SRCS:tests/unit/%.c=$(BUILD)/tests/%)
TOOL_SRCS  := $(wildcard tests/tools/*.c)
TOOL_BINS  := $(TOOL_SRCS:tests/tools/%.c=$(BUILD)/tools/%)
FAKE_SRCS  := $(wildcard tests/plugins/*.c)
FAKE_SOS   := $(FAKE_SRCS:tests/plugins/%.c=$(BUILD)/tests/plugins/%.so)

tools: $(TOOL_BINS)

# Unit tests include plugin sources (wire.c, say): -MMD records them.
$(BUILD)/tests/%: tests/unit/%.c $(BUILD)/libpktpipe-core.a tests/unit/check.h
	@mkdir -p $(@D)
	$(CC) $(BASE_CFLAGS) -MMD -MP -MF $@.d -Icore -Itests/unit -o $@ $< $(BUILD)/libpktpipe-core.a $(BASE_LDFLAGS) $(HOST_LIBS)
-include $(UNIT_BINS:=.d)

$(BUILD)/tools/%: tests/tools/%.c
	@mkdir -p $(@D)
	$(CC) $(BASE_CFLAGS) -o $@ $< $(BASE_LDFLAGS) $(shell pkg-config --libs libpcap 2>/dev/null || echo -lpcap) $(shell pkg-config --libs libzmq 2>/dev/null)

# Fake plugins for the loader tests. needs-gone links a library that is
# deleted right after, to reproduce "a plugin whose dependency is missing".
$(BUILD)/tests/plugins/%.so: tests/plugins/%.c $(wildcard include/pktpipe/*.h)
	@mkdir -p $(@D)
	$(CC) $(BASE_CFLAGS) $(PLUGIN_CFLAGS) -o $@ $< $(BASE_LDFLAGS) $(PLUGIN_LDFLAGS)

$(BUILD)/tests/plugins/needs-gone.so: tests/plugins/needs-gone.c tests/plugins/gone/gone.c
	@mkdir -p $(@D) $(BUILD)/tests/gone
	$(CC) $(BASE_CFLAGS) -fPIC -shared -o $(BUILD)/tests/gone/libppgone.so tests/plugins/gone/gone.c $(BASE_LDFLAGS)
	$(CC) $(BASE_CFLAGS) $(PLUGIN_CFLAGS) -o $@ $< $(BASE_LDFLAGS) $(PLUGIN_LDFLAGS) \
		-L$(BUILD)/tests/gone -lppgone -Wl,-rpath,$(abspath $(BUILD))/tests/gone
	rm -f $(BUILD)/tests/gone/libppgone.so

test: all $(UNIT_BINS) $(TOOL_BINS) $(FAKE_SOS)
	tests/run.sh $(BUILD)

# The fuzzers are clang ASan builds of their own: they mutate inputs in the
# first pass; the sanitizer pass replays their seeds and regressions.
check: deps
	$(MAKE) --no-print-directory test BUILD=build
	FUZZ_SECONDS=0 $(MAKE) --no-print-directory test BUILD=build/asan SAN=1

deps:
	@contrib/deps.sh

# Speed, as ratios against baselines measured in the same run.
bench: all $(FAKE_SOS) $(TOOL_BINS)
	bash tests/bench/bench.sh $(BUILD)

# Ten minutes of steady load: RSS and fds flat, accounting balanced.
soak: all $(TOOL_BINS)
	bash tests/soak/soak.sh $(BUILD) $${SOAK_MINUTES:-10}

# Longer fuzzing than make check's brief runs (FUZZ_SECONDS per target).
fuzz: all $(FAKE_SOS)
	FUZZ_SECONDS=$${FUZZ_SECONDS:-300} bash tests/e2e/fuzz.sh $(BUILD)

# Plugin READMEs' key tables, regenerated from the option tables.
docs: all
	contrib/readme-keys.sh $(BUILD)

demo: deps all
	contrib/demo.sh $(BUILD)

# ---- install: the host, plugins, SDK header and pkg-config, man pages
# (pktpipe.ini(5) generated from the option tables), conf examples, units.
MANDIR  ?= $(PREFIX)/share/man
DOCDIR  ?= $(PREFIX)/share/doc/pktpipe
UNITDIR ?= $(PREFIX)/lib/systemd/system
HEADERS := $(wildcard include/pktpipe/*.h)

man: $(BUILD)/man/pktpipe.8 $(BUILD)/man/pktpipe.ini.5
$(BUILD)/man/pktpipe.8: contrib/man/pktpipe.8
	@mkdir -p $(@D)
	sed -e 's|@VERSION@|$(VERSION)|g' -e 's|@PLUGINDIR@|$(PLUGINDIR)|g' $< > $@
$(BUILD)/man/pktpipe.ini.5: contrib/man/pktpipe.ini.5.head contrib/man/gen-ini5.sh $(BUILD)/pktpipe $(PLUGIN_SOS)
	@mkdir -p $(@D)
	contrib/man/gen-ini5.sh $(BUILD)/pktpipe $(VERSION) $(BUILT_PLUGINS) > $@

$(BUILD)/pktpipe.pc: Makefile
	@mkdir -p $(@D)
	printf 'prefix=%s\nincludedir=%s\nplugindir=%s\n\nName: pktpipe\nDescription: %s\nVersion: %s\nCflags: -I$${includedir}\n' \
		'$(PREFIX)' '$(INCLUDEDIR)' '$(PLUGINDIR)' 'pktpipe plugin SDK (ABI header)' '$(VERSION)' > $@

install: all man $(BUILD)/pktpipe.pc
	install -d $(DESTDIR)$(BINDIR) $(DESTDIR)$(PLUGINDIR) $(DESTDIR)$(INCLUDEDIR)/pktpipe \
		$(DESTDIR)$(LIBDIR)/pkgconfig $(DESTDIR)$(MANDIR)/man8 $(DESTDIR)$(MANDIR)/man5 \
		$(DESTDIR)$(DOCDIR)/conf $(DESTDIR)$(UNITDIR)
	install -m 755 $(BUILD)/pktpipe $(PROGRAM_BINS) $(DESTDIR)$(BINDIR)/
	$(foreach t,$(COMPAT_TOOLS),ln -sf pktpipe $(DESTDIR)$(BINDIR)/$(t);)
	$(if $(PLUGIN_SOS),install -m 755 $(PLUGIN_SOS) $(DESTDIR)$(PLUGINDIR)/)
	install -m 644 $(HEADERS) $(DESTDIR)$(INCLUDEDIR)/pktpipe/
	install -m 644 $(BUILD)/pktpipe.pc $(DESTDIR)$(LIBDIR)/pkgconfig/pktpipe.pc
	install -m 644 $(BUILD)/man/pktpipe.8 $(DESTDIR)$(MANDIR)/man8/
	install -m 644 $(BUILD)/man/pktpipe.ini.5 $(DESTDIR)$(MANDIR)/man5/
	install -m 644 conf/*.ini $(DESTDIR)$(DOCDIR)/conf/
	install -m 644 README.md LICENSE $(DESTDIR)$(DOCDIR)/
	install -m 644 contrib/systemd/*.service $(DESTDIR)$(UNITDIR)/

uninstall:
	rm -f $(COMPAT_TOOLS:%=$(DESTDIR)$(BINDIR)/%)
	rm -f $(DESTDIR)$(BINDIR)/pktpipe $(PROGRAM_BINS:$(BUILD)/%=$(DESTDIR)$(BINDIR)/%) $(DESTDIR)$(LIBDIR)/pkgconfig/pktpipe.pc
	rm -f $(ALL_PLUGINS:%=$(DESTDIR)$(PLUGINDIR)/%.so)
	rm -f $(HEADERS:include/%=$(DESTDIR)$(INCLUDEDIR)/%)
	rm -f $(DESTDIR)$(MANDIR)/man8/pktpipe.8 $(DESTDIR)$(MANDIR)/man5/pktpipe.ini.5
	rm -rf $(DESTDIR)$(DOCDIR)
	rm -f $(patsubst contrib/systemd/%,$(DESTDIR)$(UNITDIR)/%,$(wildcard contrib/systemd/*.service))
	-rmdir $(DESTDIR)$(PLUGINDIR) $(DESTDIR)$(INCLUDEDIR)/pktpipe 2>/dev/null

clean:
	rm -rf build
