#!/usr/bin/env bash
# test/run.sh: the whole txmq test suite (`make test`).  See test/README.md.
#
#  1. installs missing build/test packages, builds txmq, `make install`s it
#     (test/install.sh);
#  2. copies the tree to a fresh directory that the `postgres` OS user owns
#     (initdb refuses root);
#  3. runs, each on its own throwaway cluster with txmq preloaded
#     (test/txmq_test.conf):
#       regress    pg_regress over test/regress/sql/*.sql
#       isolation  pg_isolation_regress over test/isolation/specs/*.spec
#       tap        prove, one run per test/t/*.pl
#     and, as root, the demo (examples/run-demo.sh) and the Debian package
#     in a clean root (deb: tools/build-deb.sh, test/deb-check.sh);
#  4. prints the failures' diffs and logs (bounded), stops every cluster it
#     started (also on failure, timeout or interrupt), and ends with exactly
#     one line `N passed, N failed`.  Exit status 0 only if nothing failed.
#
# Environment:
#   TXMQ_TEST_SUITES   suites to run (default "regress isolation tap demo deb")
#   TXMQ_TEST_FILTER   extended regex; only tests whose name matches run
#   TXMQ_TEST_TIMEOUT  seconds allowed per suite / per TAP file (default 900)
#   TXMQ_TEST_KEEP=1   keep the work directory even when everything passed
#   PG_CONFIG, PG=N    the server (test/pg.sh; default: the newest
#                      installed).  One this machine cannot install runs
#                      in a Debian root filesystem that has it
#                      (test/chroot.sh).
set -uo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$ROOT"
. test/pg.sh
if ! pg_native; then
	# The run inside prints the totals, unless the root could not be made.
	log=$(mktemp)
	bash test/chroot.sh "$PG" bash test/run.sh 2>&1 | tee "$log"
	rc=${PIPESTATUS[0]}
	if ! tail -n 1 "$log" | grep -Eq '^[0-9]+ passed, [0-9]+ failed$'; then
		echo "failed: chroot"
		echo "0 passed, 1 failed"
		rc=1
	fi
	rm -f "$log"
	exit "$rc"
fi
echo "run: PostgreSQL $PG ($PG_CONFIG)"

SUITES=${TXMQ_TEST_SUITES:-regress isolation tap demo deb}
FILTER=${TXMQ_TEST_FILTER:-}
TIMEOUT=${TXMQ_TEST_TIMEOUT:-900}
DIFF_LIMIT=20000        # bytes of regression.diffs shown per suite
LOG_LIMIT=6000          # bytes shown of each log of a failed test

PASSED=0
FAILED=0
FAILED_NAMES=()
SKIPPED_NAMES=()
WORK=
CHILD=

# ---------------------------------------------------------------- build
if ! bash test/install.sh; then
	echo "run: build or install failed"
	echo "failed: build"
	echo "0 passed, 1 failed"
	exit 1
fi

BINDIR=$("$PG_CONFIG" --bindir)
PGXSDIR=$(cd "$(dirname "$("$PG_CONFIG" --pgxs)")/.." && pwd)   # .../pgxs/src
PG_REGRESS=$PGXSDIR/test/regress/pg_regress
PG_ISOLATION_REGRESS=$PGXSDIR/test/isolation/pg_isolation_regress
PGPERL=$PGXSDIR/test/perl

# ------------------------------------------------------------ work tree
if [ "$(id -u)" -eq 0 ]; then
	PGUSER_OS=postgres
	if ! id "$PGUSER_OS" >/dev/null 2>&1; then
		echo "run: no '$PGUSER_OS' OS user (is postgresql-$PG installed?)"
		echo "0 passed, 1 failed"
		exit 1
	fi
else
	PGUSER_OS=$(id -un)
fi

WORK=$(mktemp -d "${TMPDIR:-/tmp}/txmq-test.XXXXXX")
SRC=$WORK/src
CONF=$SRC/test/txmq_test.conf
mkdir -p "$SRC" "$WORK/out"
tar -C "$ROOT" -cf - --exclude=./.git --exclude=./tmp_check \
	--exclude=./results --exclude=./output_iso --exclude='*.o' \
	--exclude='*.bc' --exclude='*.so' . | tar -C "$SRC" -xf -
PORTDIR=${TMPDIR:-/tmp}/txmq-test-portlock-$PGUSER_OS
mkdir -p "$PORTDIR"
if [ "$(id -u)" -eq 0 ]; then
	chown -R "$PGUSER_OS:" "$WORK" "$PORTDIR"
fi

# The prefix that runs a command as the server's OS user, with a clean and
# explicit environment.
PGRUN=(env -i
	PATH="$BINDIR:/usr/local/bin:/usr/bin:/bin"
	HOME="$WORK" LANG=C.UTF-8 LC_ALL=C.UTF-8 TZ=UTC
	PG_TEST_PORT_DIR="$PORTDIR"
	PG_TEST_TIMEOUT_DEFAULT="${PG_TEST_TIMEOUT_DEFAULT:-180}"
	TXMQ_MODEL_SEED="${TXMQ_MODEL_SEED:-}"
	TXMQ_MODEL_SECONDS="${TXMQ_MODEL_SECONDS:-}"
	TXMQ_MODEL_CRASHES="${TXMQ_MODEL_CRASHES:-}"
	TXMQ_MODEL_INJECT="${TXMQ_MODEL_INJECT:-}"
	TXMQ_SLOTS_MAX="${TXMQ_SLOTS_MAX:-}"
	TXMQ_SLOTS_KEEP="${TXMQ_SLOTS_KEEP:-}"
	TXMQ_SLOTS_CHURN="${TXMQ_SLOTS_CHURN:-}"
	TXMQ_SLOTS_WAITS="${TXMQ_SLOTS_WAITS:-}"
	PG_REGRESS="$PG_REGRESS"
	TXMQ_TEST_CONF="$CONF"
	TEMP_CONFIG="$CONF"
	PERL5LIB="$PGPERL:$SRC/test/perl")
if [ "$(id -u)" -eq 0 ]; then
	PGRUN=(runuser -u "$PGUSER_OS" -- "${PGRUN[@]}")
fi

# pg_run LOG SHOW CMD...: run CMD as the server's user, with a time limit,
# in a session of its own (so that the interrupt trap can end all of it),
# output to LOG and, if SHOW is 1, also to the terminal as it comes.
pg_run() {
	local log=$1 show=$2 rc tailpid=
	shift 2
	: >"$log"
	setsid "${PGRUN[@]}" timeout -k 30 "$TIMEOUT" "$@" \
		>"$log" 2>&1 </dev/null &
	CHILD=$!
	if [ "$show" = 1 ]; then
		tail -n +1 -f --pid="$CHILD" "$log" | grep --line-buffered -v '^ALTER DATABASE$' &
		tailpid=$!
	fi
	wait "$CHILD"
	rc=$?
	CHILD=
	[ -n "$tailpid" ] && wait "$tailpid"
	[ "$rc" -eq 124 ] && echo "run: TIMED OUT after ${TIMEOUT}s: $*" >>"$log"
	return "$rc"
}

# Print at most LIMIT bytes of the end of FILE, with a header; skip empty.
show_tail() {
	local f=$1 limit=$2 size
	[ -s "$f" ] || return 0
	size=$(stat -c %s "$f")
	echo "----- $f ($size bytes$([ "$size" -gt "$limit" ] && echo ", last $limit"))"
	tail -c "$limit" "$f"
	echo "----- end of $f"
}

# Stop every cluster under $WORK that is still running: pg_regress temp
# instances and TAP nodes leave a postmaster.pid in their data directory.
stop_clusters() {
	[ -n "$WORK" ] && [ -d "$WORK" ] || return 0
	local pidfile dir pid
	while IFS= read -r pidfile; do
		dir=$(dirname "$pidfile")
		pid=$(head -n 1 "$pidfile" 2>/dev/null)
		echo "run: stopping cluster $dir (pid $pid)"
		"${PGRUN[@]}" timeout 60 pg_ctl stop -D "$dir" -m immediate -w \
			>/dev/null 2>&1
		if [ -n "$pid" ] && kill -0 "$pid" 2>/dev/null; then
			kill -9 "$pid" 2>/dev/null
		fi
	done < <(find "$WORK" -name postmaster.pid -type f 2>/dev/null)
}

summary() {
	if [ "${#SKIPPED_NAMES[@]}" -gt 0 ]; then
		echo "skipped: ${SKIPPED_NAMES[*]}"
	fi
	if [ "${#FAILED_NAMES[@]}" -gt 0 ]; then
		echo "failed: ${FAILED_NAMES[*]}"
	fi
	echo "$PASSED passed, $FAILED failed"
}

# Always the last thing that runs: end what still runs, stop the clusters,
# tidy up, print the totals (the last line) and set the exit status.
finish() {
	local rc=$?
	trap - EXIT INT TERM HUP
	if [ -n "$CHILD" ]; then
		kill -TERM -- "-$CHILD" 2>/dev/null
		sleep 1
		kill -KILL -- "-$CHILD" 2>/dev/null
	fi
	stop_clusters
	if [ "$rc" -ne 0 ] && [ "$FAILED" -eq 0 ]; then
		FAILED=1
		FAILED_NAMES+=(run.sh)
	fi
	if [ "$FAILED" -eq 0 ] && [ "${TXMQ_TEST_KEEP:-}" != 1 ]; then
		rm -rf "$WORK"
	else
		echo "run: outputs kept in $WORK/out (results/, logs)"
	fi
	summary
	[ "$FAILED" -eq 0 ] && exit 0
	exit 1
}
trap finish EXIT
trap 'echo "run: interrupted"; FAILED_NAMES+=(interrupted); FAILED=$((FAILED + 1)); exit 130' INT TERM HUP

# Names of the tests in DIR/*.EXT, sorted, filtered by $FILTER.
list_tests() {
	local f n
	for f in "$1"/*."$2"; do
		[ -e "$f" ] || continue
		n=$(basename "$f" ."$2")
		if [ -z "$FILTER" ] || [[ $n =~ $FILTER ]]; then
			echo "$n"
		fi
	done | LC_ALL=C sort
}

# count_regress SUITE OUTDIR RC TEST...: add the results of a pg_regress
# run with --outputdir=OUTDIR to the totals.  They are read from its files,
# not from its progress lines (whose format changed in 16): a test passed
# if it left results/TEST.out and regression.diffs has no diff of it; a
# test that did not run (pg_regress stopped early) failed.  Returns 1 if
# anything failed.
count_regress() {
	local suite=$1 out=$2 rc=$3 t ok=0 bad=0
	shift 3
	for t in "$@"; do
		if [ -f "$out/results/$t.out" ] &&
			! grep -Eqs "^(diff|\+\+\+) .*/results/$t\.out([[:space:]]|$)" \
				"$out/regression.diffs"; then
			ok=$((ok + 1))
		else
			bad=$((bad + 1))
			FAILED_NAMES+=("$suite/$t")
		fi
	done
	if [ "$rc" -ne 0 ] && [ "$bad" -eq 0 ]; then
		# pg_regress failed although every test passed (shutdown ...)
		bad=1
		FAILED_NAMES+=("$suite")
	fi
	PASSED=$((PASSED + ok))
	FAILED=$((FAILED + bad))
	[ "$bad" -eq 0 ]
}

# run_pg_regress_suite SUITE DRIVER INPUTDIR SUBDIR EXT DBNAME: one
# pg_regress / pg_isolation_regress run over INPUTDIR/SUBDIR/*.EXT with
# expected output in INPUTDIR/expected, on its own temporary instance.
run_pg_regress_suite() {
	local suite=$1 driver=$2 indir=$3 sub=$4 ext=$5 db=$6
	local tests=() new=() t out rc
	for t in $(list_tests "$indir/$sub" "$ext"); do
		if [ -f "$indir/expected/$t.out" ]; then
			tests+=("$t")
		else
			new+=("$t")
		fi
	done
	# pg_regress stops at the first test without expected output: run
	# those last, so that the others still run.
	tests+=("${new[@]}")
	if [ "${#tests[@]}" -eq 0 ]; then
		echo "== $suite: no tests"
		return 0
	fi
	out=$WORK/out/$suite
	"${PGRUN[@]}" mkdir -p "$out"
	echo "== $suite: ${#tests[@]} test(s)"
	pg_run "$WORK/out/$suite.log" 1 "$driver" \
		--temp-instance="$out/tmp_check" \
		--temp-config="$CONF" \
		--inputdir="$indir" --outputdir="$out" \
		--bindir="$BINDIR" \
		--no-locale --encoding=UTF8 \
		--dbname="$db" --load-extension=txmq \
		"${tests[@]}"
	rc=$?
	if ! count_regress "$suite" "$out" "$rc" "${tests[@]}"; then
		[ "$rc" -eq 124 ] && echo "== $suite: TIMED OUT after ${TIMEOUT}s"
		show_tail "$out/regression.diffs" "$DIFF_LIMIT"
		for t in "${new[@]}"; do
			echo "== $suite: $t has no expected/$t.out: review" \
				"$out/results/$t.out (if it was produced) and copy it to" \
				"test/$suite/expected/$t.out"
		done
		if [ ! -s "$out/regression.diffs" ] && [ "${#new[@]}" -eq 0 ]; then
			show_tail "$out/log/initdb.log" "$LOG_LIMIT"
			show_tail "$out/log/postmaster.log" "$LOG_LIMIT"
		fi
	fi
}

# One prove run per test/t/*.pl, each with its own TESTDIR (tmp_check/).
run_tap_suite() {
	local tests t out rc log f
	mapfile -t tests < <(list_tests "$SRC/test/t" pl)
	if [ "${#tests[@]}" -eq 0 ]; then
		echo "== tap: no tests"
		return 0
	fi
	echo "== tap: ${#tests[@]} test file(s)"
	for t in "${tests[@]}"; do
		out=$WORK/out/tap/$t
		log=$WORK/out/tap/$t.prove.log
		"${PGRUN[@]}" mkdir -p "$out"
		# TESTDIR locates tmp_check/ up to 15, TESTDATADIR and
		# TESTLOGDIR since 16
		pg_run "$log" 0 env TESTDIR="$out" TESTDATADIR="$out/tmp_check" \
			TESTLOGDIR="$out/tmp_check/log" prove -I "$PGPERL" -I "$SRC/test/perl" "test/t/$t.pl"
		rc=$?
		if [ "$rc" -eq 0 ]; then
			# a skip says why; figures a test measured (its `diag`
			# lines "measured: ...") are shown
			printf 'tap %-36s ... ok%s\n' "$t" \
				"$(sed -n 's/^test\/t\/[^ ]* \.* skipped: \(.*\)/ (skipped: \1)/p' "$log" | head -n 1)"
			sed -n 's/^\(\[[^]]*\]([^)]*) \)\{0,1\}# measured: /    /p' "$log"
			PASSED=$((PASSED + 1))
			continue
		fi
		printf 'tap %-36s ... FAILED%s\n' "$t" \
			"$([ "$rc" -eq 124 ] && echo " (timed out after ${TIMEOUT}s)")"
		FAILED=$((FAILED + 1))
		FAILED_NAMES+=("tap/$t")
		show_tail "$log" "$LOG_LIMIT"
		for f in "$out"/tmp_check/log/*; do
			show_tail "$f" "$LOG_LIMIT"
		done
	done
}

# The order/cart demo (examples/), small: its consistency report must say
# "inconsistencies: 0".  It starts its own cluster; it runs as root like
# `make demo`.  Twice: as it is, and sharded over 4 partitions behind
# PL/Proxy (skipped, saying so, where the server has no PL/Proxy package).
run_demo_suite() {
	local name shards log
	if [ -n "$FILTER" ] && ! [[ demo =~ $FILTER ]]; then
		return 0
	fi
	for name in order-cart sharded; do
		shards=0
		[ $name = sharded ] && shards=4
		log=$WORK/out/demo-$name.log
		if [ $shards -gt 0 ] &&
			[ ! -e "$("$PG_CONFIG" --sharedir)/extension/plproxy.control" ]; then
			printf 'demo %-35s ... SKIPPED (no postgresql-%s-plproxy here)\n' "$name" "$PG"
			SKIPPED_NAMES+=("demo/$name")
			continue
		fi
		echo "== demo $name: DEMO_ORDERS=${TXMQ_TEST_DEMO_ORDERS:-20} DEMO_SHARDS=$shards"
		mkdir -p "$WORK/out"
		if DEMO_ORDERS=${TXMQ_TEST_DEMO_ORDERS:-20} DEMO_SHARDS=$shards timeout "$TIMEOUT" \
			bash "$SRC/examples/run-demo.sh" >"$log" 2>&1 </dev/null &&
			grep -q '^inconsistencies: 0$' "$log"; then
			printf 'demo %-35s ... ok\n' "$name"
			PASSED=$((PASSED + 1))
			continue
		fi
		printf 'demo %-35s ... FAILED\n' "$name"
		FAILED=$((FAILED + 1))
		FAILED_NAMES+=("demo/$name")
		show_tail "$log" "$LOG_LIMIT"
	done
}

# The Debian package: `make deb` in the copy, then test/deb-check.sh in a
# root filesystem of its own with postgresql-$PG and no txmq (test/chroot.sh,
# cached beside the chroot roots), which installs the package, starts a
# cluster with it preloaded and runs a message through it and txmqctl.
# As root, like the demo.
run_deb_suite() {
	local log=$WORK/out/deb.log
	local clean=${TXMQ_CHROOT_CACHE:-/var/cache/txmq-test/roots}/clean
	if [ -n "$FILTER" ] && ! [[ deb =~ $FILTER ]]; then
		return 0
	fi
	echo "== deb: postgresql-$PG-txmq in a clean root ($clean)"
	mkdir -p "$WORK/out"
	if timeout "$TIMEOUT" bash tools/build-deb.sh >"$log" 2>&1 </dev/null &&
		TXMQ_CHROOT_CACHE=$clean TXMQ_CHROOT_PACKAGES=postgresql-$PG \
			timeout "$TIMEOUT" bash test/chroot.sh "$PG" \
			bash test/deb-check.sh >>"$log" 2>&1 </dev/null; then
		printf 'deb %-36s ... ok\n' "postgresql-$PG-txmq"
		PASSED=$((PASSED + 1))
		return 0
	fi
	printf 'deb %-36s ... FAILED\n' "postgresql-$PG-txmq"
	FAILED=$((FAILED + 1))
	FAILED_NAMES+=("deb/postgresql-$PG-txmq")
	show_tail "$log" "$LOG_LIMIT"
}

# Everything from here runs in the copy (prove is given relative paths).
cd "$SRC"
for suite in $SUITES; do
	case $suite in
	regress)
		run_pg_regress_suite regress "$PG_REGRESS" "$SRC/test/regress" \
			sql sql txmq_regress ;;
	isolation)
		run_pg_regress_suite isolation "$PG_ISOLATION_REGRESS" \
			"$SRC/test/isolation" specs spec txmq_isolation ;;
	tap)
		run_tap_suite ;;
	demo)
		run_demo_suite ;;
	deb)
		run_deb_suite ;;
	*)
		echo "run: unknown suite '$suite' (known: regress isolation tap demo deb)"
		FAILED=$((FAILED + 1))
		FAILED_NAMES+=("$suite") ;;
	esac
done
exit 0    # finish() prints the totals and sets the exit status
