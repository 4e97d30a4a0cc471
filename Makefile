# txmq: PGXS build.  `make test`, `make demo` and `make bench` are the
# user-facing entry points (see README.md); they install what they need.

EXTENSION = txmq
MODULE_big = txmq
OBJS = src/txmq.o src/shmem.o src/plans.o src/catalog.o src/xact.o \
	src/send.o src/receive.o src/half.o src/worker.o src/reclaim.o
DATA = $(wildcard sql/txmq--*.sql)
PG_CPPFLAGS = -I$(srcdir)/src

PG_CONFIG ?= $(firstword $(wildcard /usr/lib/postgresql/15/bin/pg_config) pg_config)
PGXS := $(shell $(PG_CONFIG) --pgxs 2>/dev/null)

# postgresql-client-15 alone already ships pgxs.mk; the server headers come
# with postgresql-server-dev-15, so look for both.
TXMQ_SERVER_H := $(shell $(PG_CONFIG) --includedir-server 2>/dev/null)/postgres.h

ifneq ($(and $(wildcard $(PGXS)),$(wildcard $(TXMQ_SERVER_H))),)
include $(PGXS)
# PGXS tracks no header dependencies; every source includes src/txmq.h,
# which includes src/compat.h
$(OBJS): src/txmq.h src/compat.h
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
.PHONY: test demo

# Build, install, then regress + isolation + TAP suites, each on its own
# throwaway cluster; ends with "N passed, N failed".
test:
	@bash test/run.sh

demo:
	bash test/install.sh
	@if [ -f examples/run-demo.sh ]; then \
		bash examples/run-demo.sh; \
	else \
		echo "make demo: examples/run-demo.sh does not exist yet; nothing to run" >&2; \
		exit 1; \
	fi

# Benchmark: txmq vs a SKIP LOCKED table queue vs PgQ on one throwaway
# cluster; see bench/README.md (BENCH_SECONDS, BENCH_SOAK_SECONDS).
.PHONY: bench
bench:
	@bash bench/run.sh
