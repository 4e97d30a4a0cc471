# txmq: PGXS build.  `make test`, `make demo` and `make bench` are the
# user-facing entry points (see README.md); they install what they need.

# This checkout, also when make runs elsewhere (a VPATH build)
TXMQ_TOP := $(dir $(abspath $(lastword $(MAKEFILE_LIST))))

EXTENSION = txmq
MODULE_big = txmq
OBJS = src/txmq.o src/shmem.o src/attempts.o src/plans.o src/scope.o src/catalog.o \
	src/msg.o src/held.o src/xact.o src/send.o src/receive.o src/poll.o \
	src/peek.o src/half.o src/stats.o src/worker.o src/reclaim.o
# Relative to the source directory, which PGXS prefixes when it installs
# them: in a VPATH build (pg_buildext) make runs in a build directory.
DATA = $(patsubst $(TXMQ_TOP)%,%,$(wildcard $(TXMQ_TOP)sql/txmq--*.sql))
PG_CPPFLAGS = -I$(srcdir)/src
EXTRA_CLEAN = .pg_config

# The suites, declared the PGXS way as well: `make installcheck` runs them
# against a running server of one's own with txmq installed and preloaded
# (test/README.md).  `make test` runs the same files through test/run.sh,
# on throwaway clusters.
REGRESS = $(sort $(basename $(notdir $(wildcard test/regress/sql/*.sql))))
REGRESS_OPTS = --inputdir=test/regress --load-extension=txmq \
	--no-locale --encoding=UTF8
ISOLATION = $(sort $(basename $(notdir $(wildcard test/isolation/specs/*.spec))))
ISOLATION_OPTS = --inputdir=test/isolation --load-extension=txmq \
	--no-locale --encoding=UTF8
TAP_TESTS = 1
PROVE_TESTS = $(sort $(wildcard test/t/*.pl))

# The server: PG_CONFIG=/path/to/pg_config, or PG=<major> for
# /usr/lib/postgresql/<major>/bin/pg_config, or else the newest installed
# (test/pg.sh, which every script uses to choose the same way).
ifeq ($(origin PG_CONFIG),undefined)
PG_CONFIG := $(shell PG='$(PG)' bash $(TXMQ_TOP)test/pg.sh)
endif
PGXS := $(shell $(PG_CONFIG) --pgxs 2>/dev/null)

# postgresql-client-N alone already ships pgxs.mk; the server headers come
# with postgresql-server-dev-N, so look for both.
TXMQ_SERVER_H := $(shell $(PG_CONFIG) --includedir-server 2>/dev/null)/postgres.h

ifneq ($(and $(wildcard $(PGXS)),$(wildcard $(TXMQ_SERVER_H))),)
include $(PGXS)
# Set after PGXS, which sets them too: the databases test/run.sh uses (PGXS
# names them after the module) and the TAP tests' helper module.
CONTRIB_TESTDB = txmq_regress
ISOLATION_TESTDB = txmq_isolation
PROVE_FLAGS = -I test/perl
# PGXS tracks no header dependencies; every source includes src/txmq.h,
# which includes src/compat.h
$(OBJS): src/txmq.h src/compat.h
# Objects built for another server are built again: .pg_config names the
# pg_config of the last build.
$(OBJS) $(OBJS:.o=.bc): .pg_config
.pg_config: FORCE
	@echo '$(PG_CONFIG)' | cmp -s - $@ || echo '$(PG_CONFIG)' >$@
.PHONY: FORCE
# txmqctl, the operator's command (tools/txmqctl, its own PGXS Makefile:
# PGXS builds one module or one program per Makefile), is built, installed
# in $(bindir) and cleaned with the extension.
all: txmqctl
install: install-txmqctl
clean: clean-txmqctl
.PHONY: txmqctl install-txmqctl clean-txmqctl
# Its Makefile is named by path and VPATH set anew (a VPATH given on the
# command line would reach it): it builds in tools/txmqctl of the build
# directory, which is this checkout's own unless make runs elsewhere.
TXMQCTL_ARGS = -C tools/txmqctl -f $(TXMQ_TOP)tools/txmqctl/Makefile \
	VPATH=$(TXMQ_TOP)tools/txmqctl PG_CONFIG='$(PG_CONFIG)'
txmqctl: | builddirs
	$(MAKE) $(TXMQCTL_ARGS)
install-txmqctl: txmqctl
	$(MAKE) $(TXMQCTL_ARGS) install
clean-txmqctl: | builddirs
	$(MAKE) $(TXMQCTL_ARGS) clean
# A VPATH build starts in an empty directory: the compiler writes no
# directory of its own.
.PHONY: builddirs
builddirs:
	@mkdir -p src tools/txmqctl
$(OBJS) $(OBJS:.o=.bc): | builddirs
else
# PGXS or the server headers are not installed yet: install the build
# dependencies, then go on.
ifdef TXMQ_BOOTSTRAPPED
$(error PGXS or postgres.h still missing after test/bootstrap.sh)
endif
all install installcheck:
	bash test/bootstrap.sh
	$(MAKE) TXMQ_BOOTSTRAPPED=1 $@
endif

# ---- entry points (test/README.md); each installs what it needs ----
# PG=<major> or PG_CONFIG picks the server; one this machine cannot install
# runs in a Debian root filesystem that has it (test/chroot.sh).
.PHONY: test test-all demo

# Build, install, then regress + isolation + TAP suites, each on its own
# throwaway cluster; ends with "N passed, N failed".
test:
	@bash test/run.sh

# `make test` on PostgreSQL 15, 17 and 18 in turn (TXMQ_TEST_VERSIONS);
# ends with one "N passed, N failed" over all of them.
test-all:
	@bash test/all.sh

# SHARDS=N: the sharded demo, N partitions behind PL/Proxy (DEMO_SHARDS)
demo:
	@$(if $(SHARDS),DEMO_SHARDS='$(SHARDS)') bash examples/run-demo.sh

# The Debian package postgresql-N-txmq (debian/, pg_buildext) for the
# server PG=N picks, in build/deb/ (README.md, "Install from a Debian
# package").
.PHONY: deb
deb:
	@bash tools/build-deb.sh

# Benchmark: txmq vs a SKIP LOCKED table queue vs PgQ on one throwaway
# cluster; see bench/README.md (BENCH_SECONDS, BENCH_SOAK_SECONDS).
.PHONY: bench
bench:
	@bash bench/run.sh
