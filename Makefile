# pilot-agent in C. GNU make; every library through pkg-config.
#
#   make                  build/pilot-agent, build/envoy-emu, build/xds-server
#   make test             the whole suite; its last line is "N passed, N failed"
#   make test SANITIZE=1  the same, built with ASan and UBSan into build/san/
#   make bench            the figures of each issue
#   make fuzz             libFuzzer harnesses (clang), run briefly by the suite
#   make fresh-check      make test in a fresh Debian root (as root)
#   make install / uninstall   PREFIX=/usr/local DESTDIR=
#   make install STATIC=1      a fully static agent (the container image's)

CC	?= cc
PREFIX	?= /usr/local
BINDIR	 = $(PREFIX)/bin
MANDIR	 = $(PREFIX)/share/man

PKGS	 = libevent libevent_pthreads libevent_openssl openssl jansson libprotobuf-c grpc yaml-0.1
# pkg-config's complaint is kept and shown when something is compiled (see
# pkg-check); "make test" and "make deps" install the packages first, so
# the top-level make must not fail for their absence.
PKG_ERR		:= $(shell pkg-config --print-errors --exists $(PKGS) 2>&1)
PKG_CFLAGS	:= $(shell pkg-config --cflags $(PKGS) 2>/dev/null)
PKG_LIBS	:= $(shell pkg-config --libs $(PKGS) 2>/dev/null)

WARN	 = -Wall -Wextra -Wshadow -Wformat=2 -Wmissing-prototypes
ifeq ($(WERROR),1)
WARN	+= -Werror
endif

BUILD	?= build
ifeq ($(SANITIZE),1)
B	 = $(BUILD)/san
SAN	 = -fsanitize=address,undefined -fno-omit-frame-pointer \
	   -fno-sanitize-recover=undefined
OPT	 = -O1
else
B	 = $(BUILD)
SAN	 =
OPT	 = -O2
endif

CFLAGS	?=
CPPFLAGS += -D_GNU_SOURCE -Iagent -Ibootstrap -Istatus -I$(B)/gen
# Header dependencies come from the compiler: each object has its .d file.
DEPFLAGS = -MMD -MP
ALL_CFLAGS = -std=c11 $(OPT) -g $(WARN) $(SAN) $(PKG_CFLAGS) $(CFLAGS)
LDLIBS	 = $(PKG_LIBS) -lpthread -lm
# The agent itself links its libraries statically; glibc and libstdc++ stay
# shared. Loading gRPC's sixty shared libraries costs about 13 ms at every
# start, which is more than the agent's whole start-up budget.
SYS_LIBS = -lrt -lpthread -lm -ldl -latomic
STATIC_LIBS := $(filter-out $(SYS_LIBS) -Wl%,$(shell pkg-config --static --libs $(PKGS) 2>/dev/null))
AGENT_LDLIBS = -Wl,-Bstatic $(STATIC_LIBS) -Wl,-Bdynamic -lstdc++ $(SYS_LIBS)
ALL_LDFLAGS = -Wl,--as-needed $(SAN) $(LDFLAGS)

# Generated protobuf-c code for the messages the agent reads: each
# subsystem keeps its .proto subset in its own proto/ folder, with the
# import paths of the upstream APIs below it.
PROTO_DIRS = $(sort $(wildcard agent/*/proto))
PROTOS	 = $(sort $(shell find $(PROTO_DIRS) -name '*.proto' 2>/dev/null))
GEN_C	 = $(foreach d,$(PROTO_DIRS),$(patsubst $(d)/%.proto,$(B)/gen/%.pb-c.c,$(filter $(d)/%,$(PROTOS))))
GEN_H	 = $(GEN_C:.c=.h)
GEN_O	 = $(GEN_C:.c=.o)
vpath %.proto $(PROTO_DIRS)

AGENT_SRCS = $(sort $(wildcard agent/*.c agent/*/*.c bootstrap/*.c status/*.c))
AGENT_OBJS = $(patsubst %.c,$(B)/obj/%.o,$(AGENT_SRCS))
# Everything but main: what unit tests, fuzzers and benches link against.
LIB_OBJS   = $(filter-out $(B)/obj/agent/main.o,$(AGENT_OBJS)) $(GEN_O)

EMU_SRCS   = $(sort $(wildcard tests/envoy-emu/*.c))
EMU_OBJS   = $(patsubst %.c,$(B)/obj/%.o,$(EMU_SRCS))
XDS_SRCS   = $(sort $(wildcard tests/xds-server/*.c))
XDS_OBJS   = $(patsubst %.c,$(B)/obj/%.o,$(XDS_SRCS))
TOOL_SRCS  = $(sort $(wildcard tests/tools/*.c))
TOOLS	   = $(patsubst tests/tools/%.c,$(B)/tools/%,$(TOOL_SRCS))
UNIT_SRCS  = $(sort $(wildcard tests/unit/test_*.c))
UNITS	   = $(patsubst tests/unit/%.c,$(B)/unit/%,$(UNIT_SRCS))
FUZZ_SRCS  = $(sort $(wildcard tests/fuzz/fuzz_*.c))
FUZZ_DIR   = $(BUILD)/fuzz
FUZZERS	   = $(patsubst tests/fuzz/%.c,$(FUZZ_DIR)/%,$(FUZZ_SRCS))

PROGS	 = $(B)/pilot-agent
ifneq ($(EMU_SRCS),)
PROGS	+= $(B)/envoy-emu
endif
ifneq ($(XDS_SRCS),)
PROGS	+= $(B)/xds-server
endif

.PHONY: all deps pkg-check test test-run local unit bench fuzz fresh-check install uninstall clean
.SECONDARY:

all: $(PROGS) $(TOOLS)

deps:
	@tests/deps.sh

# Compiling needs the libraries: say which are missing, as pkg-config does.
pkg-check:
	$(if $(PKG_ERR),$(error pkg-config: $(PKG_ERR); "make deps" installs them))

$(B)/gen/%.pb-c.c $(B)/gen/%.pb-c.h: %.proto | pkg-check
	@mkdir -p $(B)/gen
	protoc-c $(addprefix --proto_path=,$(PROTO_DIRS)) --c_out=$(B)/gen $<

# The generated headers are made before anything is compiled; from then on
# the .d files say which object needs which header.
$(B)/obj/%.o: %.c | $(GEN_H) pkg-check
	@mkdir -p $(dir $@)
	$(CC) $(CPPFLAGS) $(ALL_CFLAGS) $(DEPFLAGS) -c -o $@ $<

# Generated code is not held to our warnings.
$(B)/gen/%.pb-c.o: $(B)/gen/%.pb-c.c | $(GEN_H)
	$(CC) $(CPPFLAGS) -std=c11 $(OPT) -g $(SAN) $(PKG_CFLAGS) $(DEPFLAGS) -c -o $@ $<

$(B)/pilot-agent: $(AGENT_OBJS) $(GEN_O)
	$(CC) $(ALL_LDFLAGS) -o $@ $^ $(AGENT_LDLIBS)

# The container image's agent is static, glibc and libstdc++ included: its
# base is an Envoy release image, whose glibc may be older than the one it
# was built against. Only the "files" and "dns" name services are used in a
# container, and since glibc 2.34 both are inside libc.a, so the linker's
# warnings about getpwnam and getaddrinfo do not apply. Same objects as the
# dynamic agent; not with SANITIZE=1.
$(B)/static/pilot-agent: $(AGENT_OBJS) $(GEN_O)
	@mkdir -p $(dir $@)
	$(CC) $(ALL_LDFLAGS) -static -o $@ $^ $(STATIC_LIBS) -lstdc++ $(SYS_LIBS)

# Programs other than the agent take what they use from an archive.
$(B)/libagent.a: $(LIB_OBJS)
	rm -f $@
	ar rcs $@ $^

$(B)/envoy-emu: $(EMU_OBJS) $(B)/libagent.a
	$(CC) $(ALL_LDFLAGS) -o $@ $^ $(LDLIBS)

$(B)/xds-server: $(XDS_OBJS) $(B)/libagent.a
	$(CC) $(ALL_LDFLAGS) -o $@ $^ $(LDLIBS)

$(B)/tools/%: tests/tools/%.c $(B)/libagent.a
	@mkdir -p $(dir $@)
	$(CC) $(CPPFLAGS) $(ALL_CFLAGS) $(DEPFLAGS) -MF $@.d $(ALL_LDFLAGS) -o $@ $^ $(LDLIBS)

# The benchmark's exec stamp is static and unsanitized: the moment it records
# must be as close to the exec as possible.
$(B)/tools/stamp: tests/tools/stamp.c
	@mkdir -p $(dir $@)
	$(CC) -std=c11 -D_GNU_SOURCE -O2 $(WARN) -static -o $@ $<

$(B)/unit/%: tests/unit/%.c $(B)/libagent.a
	@mkdir -p $(dir $@)
	$(CC) $(CPPFLAGS) -Itests/unit $(ALL_CFLAGS) $(DEPFLAGS) -MF $@.d $(ALL_LDFLAGS) -o $@ $^ $(LDLIBS)

unit: $(UNITS)

# libFuzzer needs clang; the harnesses link the agent's objects rebuilt with
# clang and the fuzzer's instrumentation into $(BUILD)/fuzz/.
FUZZ_CC	 = clang
FUZZ_FLAGS = -fsanitize=fuzzer,address,undefined -g -O1
FUZZ_OBJS  = $(patsubst $(B)/obj/%,$(FUZZ_DIR)/obj/%,$(filter $(B)/obj/%,$(LIB_OBJS)))
$(FUZZ_DIR)/obj/%.o: %.c | $(GEN_H) pkg-check
	@mkdir -p $(dir $@)
	$(FUZZ_CC) $(CPPFLAGS) -std=c11 $(FUZZ_FLAGS) -fsanitize=fuzzer-no-link $(PKG_CFLAGS) $(DEPFLAGS) -c -o $@ $<
$(FUZZ_DIR)/fuzz_%: tests/fuzz/fuzz_%.c $(FUZZ_OBJS) $(GEN_C)
	@mkdir -p $(dir $@)
	$(FUZZ_CC) $(CPPFLAGS) -std=c11 $(FUZZ_FLAGS) $(PKG_CFLAGS) $(DEPFLAGS) -MF $@.d -o $@ $(filter %.c %.o,$^) $(LDLIBS)

fuzz: $(FUZZERS)

# The README's commands install what is missing first, then build in a
# second make, whose pkg-config flags see the installed libraries.
test: deps
	@$(MAKE) --no-print-directory test-run

test-run: all $(UNITS)
	@B=$(B) BUILD=$(BUILD) SANITIZE=$(SANITIZE) tests/run.sh $(T)

local: deps
	@$(MAKE) --no-print-directory all
	@B=$(B) tests/local.sh

bench: deps
	@$(MAKE) --no-print-directory all
	@B=$(B) tests/bench/run.sh

# The README's test command on the committed tree, in a fresh Debian root.
fresh-check:
	@tests/fresh-check.sh

# The binary is installed stripped (INSTALL_STRIP= keeps its symbols), with
# istio-iptables as a relative link to it, so the tree can be moved whole
# (DESTDIR, a container image's COPY).
ifeq ($(STATIC),1)
ifeq ($(SANITIZE),1)
$(error STATIC=1 and SANITIZE=1 do not go together: the sanitizers need shared libraries)
endif
INSTALL_AGENT = $(B)/static/pilot-agent
else
INSTALL_AGENT = $(B)/pilot-agent
endif
INSTALL_STRIP ?= -s

install: $(INSTALL_AGENT)
	install -d $(DESTDIR)$(BINDIR) $(DESTDIR)$(MANDIR)/man8
	install -m 0755 $(INSTALL_STRIP) $(INSTALL_AGENT) $(DESTDIR)$(BINDIR)/pilot-agent
	ln -sfn pilot-agent $(DESTDIR)$(BINDIR)/istio-iptables
	install -m 0644 man/pilot-agent.8 $(DESTDIR)$(MANDIR)/man8/pilot-agent.8

uninstall:
	rm -f $(DESTDIR)$(BINDIR)/pilot-agent $(DESTDIR)$(BINDIR)/istio-iptables \
	    $(DESTDIR)$(MANDIR)/man8/pilot-agent.8

clean:
	rm -rf $(BUILD)

# The compiler's header dependencies, for whatever was built before.
-include $(patsubst %.o,%.d,$(AGENT_OBJS) $(GEN_O) $(EMU_OBJS) $(XDS_OBJS) $(FUZZ_OBJS)) \
	$(addsuffix .d,$(TOOLS) $(UNITS) $(FUZZERS))
