#!/usr/bin/env bash
# bench/run.sh -- txmq benchmark: txmq vs a hand-rolled SKIP LOCKED queue
# (baseline) vs PgQ, on one throwaway PostgreSQL cluster of the server
# test/pg.sh picks (PG=N or PG_CONFIG; default the newest installed), which
# must be installed here or installable.  See README.md.
#
# Environment:
#   BENCH_SECONDS=20        length of each timed phase (W1, W2, W5)
#   BENCH_SOAK_SECONDS=300  length of the W7 soak phase, and of W8's held snapshot
#   BENCH_SYSTEMS="baseline txmq pgq"   BENCH_WORKLOADS="W1 W2 W3 W4 W5 W6 W7 W8 W9"
#                           (also W1D: W1 with a dedup key, txmq only)
#   BENCH_DRAIN_MAX_SECONDS=300  safety bound for each drain
#   BENCH_KEEP=1            keep the temp dir (cluster, logs) after the run
#   BENCH_SKIP_INSTALL=1    do not apt-get / make install
set -euo pipefail

BENCH_SECONDS=${BENCH_SECONDS:-20}
BENCH_SOAK_SECONDS=${BENCH_SOAK_SECONDS:-300}
BENCH_SYSTEMS=${BENCH_SYSTEMS:-"baseline txmq pgq"}
BENCH_WORKLOADS=${BENCH_WORKLOADS:-"W1 W2 W3 W4 W5 W6 W7 W8 W9"}
BENCH_DRAIN_MAX_SECONDS=${BENCH_DRAIN_MAX_SECONDS:-300}
W3_N=${BENCH_W3_MESSAGES:-200000}
W4_N=${BENCH_W4_MESSAGES:-100000}
W6_N=${BENCH_W6_MESSAGES:-100000}

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
ROOT=$(dirname "$HERE")
. "$ROOT/test/pg.sh"
PORT=5432

log() { printf '[bench %s] %s\n' "$(date +%H:%M:%S)" "$*" >&2; }
die() { log "ERROR: $*"; exit 1; }

# ---------------------------------------------------------------- packages
need_pkgs=()
ensure_packages() {
	local p
	for p in "postgresql-$PG" "postgresql-server-dev-$PG" libpq-dev \
	         "postgresql-$PG-pgq3" pgqd gcc make jq; do
		dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" \
			|| need_pkgs+=("$p")
	done
	if ((${#need_pkgs[@]})); then
		log "installing: ${need_pkgs[*]}"
		export DEBIAN_FRONTEND=noninteractive
		apt-get update -qq
		apt-get install -y -qq "${need_pkgs[@]}" >/dev/null
	fi
}
[[ $(id -u) -eq 0 ]] || die "run as root (installs packages, runs the cluster as user postgres)"
pg_native || die "PostgreSQL $PG cannot be installed on this machine"
if [[ -z ${BENCH_SKIP_INSTALL:-} ]]; then ensure_packages; fi
command -v jq >/dev/null || die "jq missing"
PGBIN=$("$PG_CONFIG" --bindir)
[[ -x $PGBIN/pgbench ]] || die "$PGBIN/pgbench missing"
PGBENCH=$PGBIN/pgbench
PSQL=$PGBIN/psql

# ---------------------------------------------------------------- build
WORK=$(mktemp -d /tmp/txmq-bench.XXXXXX)
chmod 755 "$WORK"
chown postgres: "$WORK"
PGDATA=$WORK/data
SOCK=$WORK
PGQD_PID=

cleanup() {
	set +e
	if [[ -n $PGQD_PID ]]; then kill "$PGQD_PID" 2>/dev/null; wait "$PGQD_PID" 2>/dev/null; fi
	if [[ -f $PGDATA/postmaster.pid ]]; then
		runuser -u postgres -- "$PGBIN/pg_ctl" -D "$PGDATA" -m fast -w -t 60 stop >/dev/null 2>&1 \
			|| runuser -u postgres -- "$PGBIN/pg_ctl" -D "$PGDATA" -m immediate stop >/dev/null 2>&1
	fi
	if [[ -n ${BENCH_KEEP:-} ]]; then log "kept $WORK"; else rm -rf "$WORK"; fi
}
trap cleanup EXIT
trap 'exit 130' INT TERM

TXMQ_SKIP=
if [[ " $BENCH_SYSTEMS " == *" txmq "* ]]; then
	if [[ -z ${BENCH_SKIP_INSTALL:-} ]]; then
		log "building and installing txmq (make install)"
		if ! (cd "$ROOT" && make -s PG_CONFIG="$PG_CONFIG" >"$WORK/make.log" 2>&1 &&
			make -s install PG_CONFIG="$PG_CONFIG" >>"$WORK/make.log" 2>&1); then
			TXMQ_SKIP="txmq did not build/install (make install failed): $(tail -3 "$WORK/make.log" | tr '\n' ' ')"
		fi
	fi
	if [[ -z $TXMQ_SKIP && ! -f $("$PG_CONFIG" --pkglibdir)/txmq.so ]]; then
		TXMQ_SKIP="txmq.so is not installed"
	fi
fi

log "building driver"
gcc -O2 -Wall -o "$WORK/driver" "$HERE/driver.c" -I"$("$PG_CONFIG" --includedir)" \
	-L"$("$PG_CONFIG" --libdir)" -lpq -lpthread
DRIVER=$WORK/driver

# ---------------------------------------------------------------- cluster
log "initdb in $PGDATA"
runuser -u postgres -- "$PGBIN/initdb" -D "$PGDATA" -A trust -E UTF8 --no-instructions >"$WORK/initdb.log" 2>&1 \
	|| { cat "$WORK/initdb.log"; die "initdb failed"; }
write_conf() {
	cat >>"$PGDATA/postgresql.conf" <<EOF

# ---- txmq bench (identical for every system) ----
listen_addresses = ''
port = $PORT
unix_socket_directories = '$SOCK'
shared_buffers = 1GB
synchronous_commit = on
$1
EOF
}
start_pg() {
	runuser -u postgres -- "$PGBIN/pg_ctl" -D "$PGDATA" -l "$WORK/postgres.log" -w -t 60 start >/dev/null 2>&1
}
PRELOAD="shared_preload_libraries = 'txmq'"
if [[ -n $TXMQ_SKIP ]]; then PRELOAD="# $PRELOAD  (txmq not installed)"; fi
cp "$PGDATA/postgresql.conf" "$WORK/postgresql.conf.orig"
write_conf "$PRELOAD"
if ! start_pg; then
	[[ -z $TXMQ_SKIP ]] || { tail -20 "$WORK/postgres.log"; die "postgres did not start"; }
	TXMQ_SKIP="postgres would not start with shared_preload_libraries = 'txmq': $(tail -2 "$WORK/postgres.log" | tr '\n' ' ')"
	log "$TXMQ_SKIP; retrying without it"
	cp "$WORK/postgresql.conf.orig" "$PGDATA/postgresql.conf"
	write_conf "# $PRELOAD  (server failed to start with it)"
	start_pg || { tail -20 "$WORK/postgres.log"; die "postgres did not start"; }
fi
log "postgres up (socket $SOCK, port $PORT)"

CONN_BASE="host=$SOCK port=$PORT user=postgres"
psql_db() { local db=$1; shift; "$PSQL" -X -q -v ON_ERROR_STOP=1 -h "$SOCK" -p "$PORT" -U postgres -d "$db" "$@"; }
val() { psql_db "$1" -At -c "$2"; }

# ---------------------------------------------------------------- results
RES=$WORK/results.tsv
: >"$RES"
NOTES=$WORK/notes.txt
: >"$NOTES"
emit() { # workload system metric value unit
	printf '%s\t%s\t%s\t%s\t%s\n' "$1" "$2" "$3" "$4" "$5" >>"$RES"
	log "  $1 $2 $3 = $4 $5"
}
note() { printf '%s\n' "$*" >>"$NOTES"; log "NOTE: $*"; }
kv() { sed -n "s/^$1=//p" "$2" | head -1; }

# ---------------------------------------------------------------- systems
SYSTEMS=()
for s in $BENCH_SYSTEMS; do
	db=bench_$s
	psql_db postgres -c "CREATE DATABASE $db" >/dev/null
	psql_db "$db" -f "$HERE/sql/common.sql" >/dev/null
	case $s in
	txmq)
		if [[ -n $TXMQ_SKIP ]]; then
			note "txmq SKIPPED: $TXMQ_SKIP"
			continue
		fi
		if ! psql_db "$db" -f "$HERE/sql/setup_txmq.sql" >"$WORK/txmq_setup.log" 2>&1; then
			TXMQ_SKIP="CREATE EXTENSION txmq failed: $(tr '\n' ' ' <"$WORK/txmq_setup.log")"
			note "txmq SKIPPED: $TXMQ_SKIP"
			continue
		fi
		if ! psql_db "$db" -f "$HERE/sql/reset_txmq.sql" >"$WORK/txmq_setup.log" 2>&1; then
			TXMQ_SKIP="txmq.create_queue failed: $(tr '\n' ' ' <"$WORK/txmq_setup.log")"
			note "txmq SKIPPED: $TXMQ_SKIP"
			continue
		fi
		sleep 1
		note "txmq: non-core background processes after CREATE EXTENSION: $(val "$db" "SELECT coalesce(string_agg(DISTINCT backend_type, ', '), 'none') FROM pg_stat_activity WHERE backend_type NOT IN ('client backend', 'autovacuum launcher', 'logical replication launcher', 'background writer', 'checkpointer', 'walwriter', 'autovacuum worker')")" ;;
	pgq) psql_db "$db" -f "$HERE/sql/setup_pgq.sql" >/dev/null ;;
	baseline) ;;
	*) die "unknown system $s" ;;
	esac
	SYSTEMS+=("$s")
done

# pgqd: the PgQ ticker/maintenance daemon, ticker every 50 ms.
start_pgqd() {
	[[ " ${SYSTEMS[*]} " == *" pgq "* ]] || return 0
	[[ -z $PGQD_PID ]] || return 0
	cat >"$WORK/pgqd.ini" <<EOF
[pgqd]
logfile = $WORK/pgqd.log
pidfile = $WORK/pgqd.pid
base_connstr = $CONN_BASE
initial_database = postgres
database_list = bench_pgq
ticker_period = 0.05
check_period = 5
EOF
	chown postgres: "$WORK/pgqd.ini"
	runuser -u postgres -- pgqd "$WORK/pgqd.ini" >>"$WORK/pgqd.out" 2>&1 &
	PGQD_PID=$!
	sleep 0.5
	kill -0 "$PGQD_PID" 2>/dev/null || { cat "$WORK/pgqd.out" "$WORK/pgqd.log" 2>/dev/null; die "pgqd did not start"; }
}
stop_pgqd() {
	[[ -n $PGQD_PID ]] || return 0
	kill "$PGQD_PID" 2>/dev/null || true
	wait "$PGQD_PID" 2>/dev/null || true
	PGQD_PID=
	rm -f "$WORK/pgqd.pid"
}
start_pgqd

reset_queue() { # system [lease]
	local s=$1 db=bench_$1
	psql_db "$db" -f "$HERE/sql/reset_$s.sql" >/dev/null
	if [[ $s == baseline && ${2:-} == lease ]]; then
		# lease mode needs a visibility timeout: PGMQ-style vt column
		psql_db "$db" -c "ALTER TABLE bench_q ADD COLUMN vt timestamptz NOT NULL DEFAULT '-infinity'" >/dev/null
	fi
	psql_db "$db" -c "VACUUM ANALYZE" -c "CHECKPOINT" >/dev/null 2>&1 || true
}

prefill() { # system n chunk
	local s=$1 n=$2 chunk=$3 db=bench_$1
	case $s in
	baseline) psql_db "$db" -c "SET synchronous_commit = off" \
		-c "INSERT INTO bench_q (payload) SELECT bench_payload(g)::jsonb FROM generate_series(1, $n) g" >/dev/null ;;
	txmq) psql_db "$db" -c "SET synchronous_commit = off" -c "CALL bench_txmq_prefill($n)" >/dev/null ;;
	pgq)
		# ticks placed by hand: one tick after every $chunk events
		stop_pgqd
		psql_db "$db" -c "SET synchronous_commit = off" -c "CALL bench_pgq_prefill($n, $chunk)" >/dev/null
		start_pgqd ;;
	esac
	psql_db "$db" -c "VACUUM ANALYZE" -c "CHECKPOINT" >/dev/null 2>&1 || true
}

remaining() { # system
	case $1 in
	baseline) val bench_baseline "SELECT count(*) FROM bench_q" ;;
	txmq) val bench_txmq "SELECT count(*) FROM txmq.msg" ;;
	pgq) val bench_pgq "SELECT coalesce(sum(pending_events), 0) + coalesce(sum(CASE WHEN current_batch IS NOT NULL THEN 1 ELSE 0 END), 0) FROM pgq.get_consumer_info('bench', 'bench')" 2>/dev/null || echo "?" ;;
	esac
}

size_sql() { # system -> SQL returning 'bytes/dead_tuples'
	local nsp rel
	case $1 in
	txmq) nsp="n.nspname = 'txmq'" ;;
	pgq) nsp="n.nspname = 'pgq'" ;;
	baseline) nsp="n.nspname = 'public' AND c.relname = 'bench_q'" ;;
	esac
	rel=${nsp//n.nspname/schemaname}
	rel=${rel//c.relname/relname}
	echo "SELECT (SELECT coalesce(sum(pg_total_relation_size(c.oid)), 0) FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace WHERE $nsp AND c.relkind = 'r') || '/' || (SELECT coalesce(sum(n_dead_tup), 0) FROM pg_stat_all_tables WHERE $rel)"
}

declare -A W1_RATE=()
run_pgbench() { # workload system clients msgs_per_tx [keep: the queue as it is]
	local w=$1 s=$2 c=$3 per=$4 out=$WORK/$1_$2.pgbench
	local script=$HERE/pgbench/$(echo "$w" | tr 'A-Z' 'a-z')_$s.sql
	[[ -n ${5:-} ]] || reset_queue "$s"
	log "$w $s: pgbench -c $c -T $BENCH_SECONDS -f $(basename "$script")"
	if ! "$PGBENCH" -n -h "$SOCK" -p "$PORT" -U postgres -c "$c" -j "$c" -T "$BENCH_SECONDS" \
		-f "$script" "bench_$s" >"$out" 2>&1; then
		note "$w $s: pgbench failed: $(grep -m3 -i error "$out" | tr '\n' ' ')"
		return 0
	fi
	local tps failed
	tps=$(sed -n 's/^tps = \([0-9.]*\) (without initial connection time)/\1/p' "$out")
	failed=$(sed -n 's/^number of failed transactions: \([0-9]*\).*/\1/p' "$out")
	[[ -n $tps ]] || { note "$w $s: no tps in pgbench output"; return 0; }
	[[ ${failed:-0} == 0 ]] || note "$w $s: $failed failed transactions"
	emit "$w" "$s" msgs_per_s "$(awk -v t="$tps" -v p="$per" 'BEGIN{printf "%.1f", t*p}')" msg/s
	if [[ $w == W1 ]]; then W1_RATE[$s]=$(awk -v t="$tps" -v p="$per" 'BEGIN{printf "%.1f", t*p}'); fi
}

run_drain() { # workload system n consumers batch mode(drain|lease)
	local w=$1 s=$2 n=$3 c=$4 b=$5 mode=$6 out=$WORK/$1_$2.driver
	local lease=
	[[ $mode == lease ]] && lease=lease
	if [[ $s == pgq ]]; then c=1; fi   # PgQ: one consumer per subscription
	reset_queue "$s" $lease
	log "$w $s: prefill $n messages"
	prefill "$s" "$n" "$b"
	log "$w $s: $mode, $c consumer(s), batch $b"
	if ! "$DRIVER" "$mode" "$s" --conninfo "$CONN_BASE dbname=bench_$s" --consumers "$c" \
		--batch "$b" --expect "$n" --max-seconds "$BENCH_DRAIN_MAX_SECONDS" >"$out" 2>"$out.err"; then
		note "$w $s: driver failed: $(head -3 "$out.err" | tr '\n' ' ')"
		return 0
	fi
	local got rem err
	got=$(kv consumed "$out"); err=$(kv errors "$out"); rem=$(remaining "$s")
	[[ $got == "$n" ]] || note "$w $s: consumed $got of $n (remaining in queue: $rem)"
	[[ $err == 0 ]] || note "$w $s: $err errors: $(head -2 "$out.err" | tr '\n' ' ')"
	emit "$w" "$s" msgs_per_s "$(kv msgs_per_s "$out")" msg/s
	emit "$w" "$s" avg_receive_batch "$(kv avg_batch "$out")" msgs
}

declare -A W5_RATE=()
run_e2e() { # workload system seconds rate interval [hold]
	local w=$1 s=$2 secs=$3 rate=$4 iv=$5 hold=${6:-} out=$WORK/$1_$2.driver
	local c=2
	if [[ $s == pgq ]]; then c=1; fi
	reset_queue "$s"
	log "$w $s: 2 producers${rate:+ at $rate msg/s}, $c consumer(s), ${secs}s"
	local extra=()
	[[ -z $rate ]] || extra+=(--rate "$rate")
	[[ -z $iv ]] || extra+=(--interval "$iv" --size-sql "$(size_sql "$s")")
	[[ -z $hold ]] || extra+=(--hold "$hold")
	[[ $s != txmq ]] || extra+=(--long-poll "${BENCH_TXMQ_LONG_POLL:-wait}")
	if ! "$DRIVER" e2e "$s" --conninfo "$CONN_BASE dbname=bench_$s" --producers 2 --consumers "$c" \
		--batch 100 --seconds "$secs" "${extra[@]}" >"$out" 2>"$out.err"; then
		note "$w $s: driver failed: $(head -3 "$out.err" | tr '\n' ' ')"
		return 0
	fi
	local err backlog
	err=$(kv errors "$out")
	[[ $err == 0 ]] || note "$w $s: $err errors: $(head -2 "$out.err" | tr '\n' ' ')"
	backlog=$(remaining "$s")
	emit "$w" "$s" msgs_per_s "$(kv msgs_per_s "$out")" msg/s
	emit "$w" "$s" p50_ms "$(kv p50_ms "$out")" ms
	emit "$w" "$s" p99_ms "$(kv p99_ms "$out")" ms
	emit "$w" "$s" sent_per_s "$(awk -v p="$(kv produced "$out")" -v t="$secs" 'BEGIN{printf "%.1f", p/t}')" msg/s
	emit "$w" "$s" backlog_at_end "$backlog" msgs
	emit "$w" "$s" avg_receive_batch "$(kv avg_batch "$out")" msgs
	if [[ $w == W5 ]]; then W5_RATE[$s]=$(kv msgs_per_s "$out"); fi
	if [[ -n $iv ]]; then
		local first last k=0 line
		first=; last=
		while read -r line; do
			k=$((k + 1))
			# interval_K=consumed/s produced/s bytes/dead p99_ms
			set -- ${line#*=}
			emit "$w" "$s" "msgs_per_s_interval_$k" "$1" msg/s
			emit "$w" "$s" "bytes_interval_$k" "${3%%/*}" bytes
			emit "$w" "$s" "dead_tuples_interval_$k" "${3##*/}" tuples
			emit "$w" "$s" "p99_ms_interval_$k" "$4" ms
			[[ -n $first ]] || first=$1
			last=$1
		done < <(grep '^interval_' "$out")
		if [[ -n $hold ]]; then
			held_figures "$w" "$s" "$out" "$(( hold / iv ))"
		elif [[ -n $first ]]; then
			emit "$w" "$s" msgs_per_s_first "$first" msg/s
			emit "$w" "$s" msgs_per_s_last "$last" msg/s
			emit "$w" "$s" last_over_first "$(awk -v a="$last" -v b="$first" 'BEGIN{ if (b>0) printf "%.3f", a/b; else print 0 }')" ratio
		fi
		sleep 1.5   # let backends flush their table statistics
		local sz
		sz=$(val "bench_$s" "$(size_sql "$s")")
		emit "$w" "$s" total_relation_bytes "${sz%%/*}" bytes
		emit "$w" "$s" dead_tuples "${sz##*/}" tuples
		local mid
		mid=$(grep '^interval_' "$out" | awk -v n="$k" 'NR == int((n + 1) / 2) { split($3, a, "/"); print a[1] }')
		if [[ -n $mid ]]; then
			emit "$w" "$s" bytes_growth_second_half "$(( ${sz%%/*} - mid ))" bytes
		fi
	fi
}

# W8: the first and the last interval of the held snapshot, and storage
# before it, when it ended and an interval (the recovery) later.
held_figures() { # workload system driver-output held-intervals
	local w=$1 s=$2 out=$3 h=$4 first last before released after
	first=$(kv interval_1 "$out"); last=$(kv "interval_$h" "$out")
	set -- $first; first=($1 $4)
	set -- $last; last=($1 $4 "${3%%/*}")
	before=$(kv size_start "$out"); before=${before%%/*}
	after=$(grep '^interval_' "$out" | tail -1 | awk '{ split($3, a, "/"); print a[1] }')
	released=$(kv hold_released_interval "$out")
	[[ $released == "$h" ]] || note "$w $s: the snapshot was released in interval ${released:-?}, not $h"
	emit "$w" "$s" msgs_per_s_first "${first[0]}" msg/s
	emit "$w" "$s" msgs_per_s_last "${last[0]}" msg/s
	emit "$w" "$s" last_over_first "$(awk -v a="${last[0]}" -v b="${first[0]}" 'BEGIN{ if (b>0) printf "%.3f", a/b; else print 0 }')" ratio
	emit "$w" "$s" p99_ms_first "${first[1]}" ms
	emit "$w" "$s" p99_ms_last "${last[1]}" ms
	emit "$w" "$s" p99_last_over_first "$(awk -v a="${last[1]}" -v b="${first[1]}" 'BEGIN{ if (b>0) printf "%.3f", a/b; else print 0 }')" ratio
	emit "$w" "$s" bytes_before "$before" bytes
	emit "$w" "$s" bytes_at_release "${last[2]}" bytes
	emit "$w" "$s" bytes_after_recovery "$after" bytes
	emit "$w" "$s" recovered_over_before "$(awk -v a="$after" -v b="$before" 'BEGIN{ if (b>0) printf "%.3f", a/b; else print 0 }')" ratio
}

# W9: a send to a topic read by 10 consumer groups; storage per message
run_fanout() { # system
	local s=$1 db=bench_$1 before after n
	reset_queue "$s"
	psql_db "$db" -f "$HERE/sql/fanout_$s.sql" >/dev/null
	before=$(val "$db" "$(size_sql "$s")")
	run_pgbench W9 "$s" 4 1 keep
	sleep 1.5
	after=$(val "$db" "$(size_sql "$s")")
	n=$(sed -n 's/^number of transactions actually processed: \([0-9]*\).*/\1/p' "$WORK/W9_$s.pgbench")
	[[ -n $n && $n -gt 0 ]] || return 0
	emit W9 "$s" bytes_per_msg "$(( (${after%%/*} - ${before%%/*}) / n ))" bytes
	if [[ -n ${W1_RATE[$s]:-} ]]; then
		emit W9 "$s" rate_over_w1 "$(awk -v a="$(awk -F'\t' -v s="$s" '$1 == "W9" && $2 == s && $3 == "msgs_per_s" { print $4 }' "$RES")" -v b="${W1_RATE[$s]}" 'BEGIN{ if (b>0) printf "%.3f", a/b; else print 0 }')" ratio
	fi
}

# ---------------------------------------------------------------- workloads
note "load average at start: $(cut -d' ' -f1-3 /proc/loadavg) ($(nproc) cores; other processes on the machine skew every figure)"
log "systems: ${SYSTEMS[*]:-none}; workloads: $BENCH_WORKLOADS; BENCH_SECONDS=$BENCH_SECONDS BENCH_SOAK_SECONDS=$BENCH_SOAK_SECONDS"
for w in $BENCH_WORKLOADS; do
	for s in "${SYSTEMS[@]}"; do
		# host load when the workload starts: other processes skew the figures
		emit "$w" "$s" load_1m "$(cut -d' ' -f1 /proc/loadavg)" load
		case $w in
		W1) run_pgbench W1 "$s" 4 1 ;;
		W1D) if [[ $s == txmq ]]; then run_pgbench W1D "$s" 4 1; fi ;;
		W2) run_pgbench W2 "$s" 2 100 ;;
		W3) run_drain W3 "$s" "$W3_N" 2 100 drain ;;
		W4) run_drain W4 "$s" "$W4_N" 2 1 drain ;;
		W5) run_e2e W5 "$s" "$BENCH_SECONDS" "" "" ;;
		W6) run_drain W6 "$s" "$W6_N" 2 10 lease ;;
		W7 | W8)
			if [[ -z ${W5_RATE[$s]:-} ]]; then
				note "$w $s: skipped, needs W5's rate (run W5 in the same run)"
				continue
			fi
			iv=60
			if ((BENCH_SOAK_SECONDS < 120)); then iv=$(( BENCH_SOAK_SECONDS / 4 > 0 ? BENCH_SOAK_SECONDS / 4 : 1 )); fi
			hold=$(( BENCH_SOAK_SECONDS / iv * iv ))
			rate=$(awk -v r="${W5_RATE[$s]}" 'BEGIN{printf "%.0f", r*0.8}')
			emit "$w" "$s" target_rate "$rate" msg/s
			if [[ $w == W7 ]]; then
				run_e2e W7 "$s" "$BENCH_SOAK_SECONDS" "$rate" "$iv"
			else
				# the snapshot held for the soak, then one minute (in
				# whole intervals) to recover
				run_e2e W8 "$s" "$(( hold + (60 + iv - 1) / iv * iv ))" "$rate" "$iv" "$hold"
			fi ;;
		W9) run_fanout "$s" ;;
		*) die "unknown workload $w" ;;
		esac
	done
done

# ---------------------------------------------------------------- report
mkdir -p "$HERE/results"
jq -Rn '[inputs | split("\t") | {workload: .[0], system: .[1], metric: .[2],
          value: (.[3] | tonumber? // null), unit: .[4]}]' <"$RES" >"$HERE/results/latest.json"

{
	echo
	echo "## txmq benchmark ($(date -u +%Y-%m-%dT%H:%MZ), BENCH_SECONDS=$BENCH_SECONDS, BENCH_SOAK_SECONDS=$BENCH_SOAK_SECONDS, $(nproc) cores)"
	echo
	awk -F'\t' -v systems="baseline txmq pgq" -v skip_txmq="${TXMQ_SKIP:+skipped}" '
	{ key = $1 "\t" $3; if (!(key in seen)) { seen[key] = 1; order[++n] = key; unit[key] = $5 }
	  v[key, $2] = $4 }
	function cell(k, s) { return ((k, s) in v) ? v[k, s] : (s == "txmq" && skip_txmq != "" ? "skipped" : "-") }
	function ratio(k, s) {
		if (!((k, s) in v) || !((k, "baseline") in v) || v[k, "baseline"] + 0 <= 0) return "-"
		return sprintf("%.2f", v[k, s] / v[k, "baseline"]) }
	END {
		print "| workload | metric | unit | baseline | txmq | txmq/baseline | pgq | pgq/baseline |"
		print "|---|---|---|---:|---:|---:|---:|---:|"
		for (i = 1; i <= n; i++) {
			k = order[i]; split(k, a, "\t")
			if (a[2] ~ /_interval_/ || a[2] == "load_1m") continue
			printf "| %s | %s | %s | %s | %s | %s | %s | %s |\n", a[1], a[2], unit[k],
				cell(k, "baseline"), cell(k, "txmq"), ratio(k, "txmq"), cell(k, "pgq"), ratio(k, "pgq")
		}
	}' "$RES"
	echo
	echo "Ratios are system/baseline (higher is better for msg/s, lower for ms and bytes)."
	echo "PgQ runs one consumer everywhere and its drain batches are exactly the prefill's ticks (see bench/README.md)."
	awk -F'\t' '$3 == "load_1m" { if (n == 0 || $4 < lo) lo = $4; if (n == 0 || $4 > hi) hi = $4; n++ }
		END { if (n) printf "Host load average (1 min) at workload starts: %s to %s on %d cores (metric load_1m in the JSON).\n", lo, hi, cores }' \
		cores="$(nproc)" "$RES"
	if [[ -s $NOTES ]]; then
		echo
		echo "Notes:"
		sed 's/^/- /' "$NOTES"
	fi
	echo
	echo "Per-interval W7 figures and all metrics: bench/results/latest.json"
} | tee "$HERE/results/latest.md"
