#!/usr/bin/env bash
#
# run-demo.sh -- the order / cart demo (`make demo`).
#
# Order services create orders and tell the cart service through txmq; cart
# services remove the ordered items from the carts.  Producers and consumers
# are killed with SIGKILL at the worst moments, payments fail, one order is
# poison.  At the end the two stores must agree: "inconsistencies: 0".
#
#   scenario 1  same-db     order row + txmq.send in one transaction
#   scenario 2  half-check  orders in another database: half message,
#                           check-back through a check function (dblink)
#   scenario 2b half-xid    same, check-back from the order transaction's xid
#
# Sharded (DEMO_SHARDS=N, `make demo SHARDS=N`, N a power of 2): txmq and the
# scenario-1 orders live in N partition databases shop_p0 .. behind a proxy
# database shop_proxy (PL/Proxy): the order service places orders, sends
# and resolves half messages through proxy functions routed by order id;
# the cart services read every partition.  Needs postgresql-N-plproxy.
#
# Environment:
#   DEMO_ORDERS=N      checkouts per scenario (default 200)
#   DEMO_SHARDS=N      partitions (default: none, unsharded)
#   DEMO_FAILURES=0    inject no failures (kills, declines, poison, slow
#                      orders): for measuring throughput
#   DEMO_SEED=N        seed of the injected failures (default 42)
#   DEMO_PGPORT=N      port of the throwaway cluster (default: a free one)
#   DEMO_SCENARIOS=".." subset of "same-db half-check half-xid"
#   DEMO_VERBOSE=1     also print the uneventful orders and deliveries
#   DEMO_KEEP=1        keep the cluster's directory (and print where it is)
#   PG_CONFIG, PG=N    the server (test/pg.sh); one this machine cannot
#                      install runs in a chroot that has it (test/chroot.sh)
#
# Needs root (it installs packages when missing and runs `make install`);
# the cluster itself runs as the postgres user, which need not be able to
# read the checkout: it works in a directory of its own.
set -euo pipefail

ORDERS=${DEMO_ORDERS:-200}
SEED=${DEMO_SEED:-42}
SCENARIOS=${DEMO_SCENARIOS:-same-db half-check half-xid}
SHARDS=${DEMO_SHARDS:-0}
HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
ROOT=$(dirname "$HERE")
APP=$HERE/order-cart
ORDER_PW=order-app-demo-password       # a throwaway cluster's passwords
CART_PW=cart-app-demo-password

say() { printf '%s %-12s %s\n' "$(date +%H:%M:%S.%1N)" demo "$*"; }
die() { say "FAILED: $*" >&2; exit 1; }

[ "$(id -u)" = 0 ] || die "run me as root (apt-get, make install, runuser)"

case $SHARDS in
0 | 1 | 2 | 4 | 8 | 16) ;;
*) die "DEMO_SHARDS=$SHARDS: PL/Proxy wants a power of 2 partitions (at most 16 here)" ;;
esac

cd "$ROOT"
. test/pg.sh
pg_chroot_unless_native bash examples/run-demo.sh

TMP=$(mktemp -d /tmp/txmq-demo.XXXXXX)
STARTED=no
SUPERVISORS=()
cleanup() {
	local rc=$?
	touch "$TMP/stop"				# consumers stop, supervisors stop restarting
	for pid in "${SUPERVISORS[@]}"; do kill "$pid" 2>/dev/null || true; done
	if [ $STARTED = yes ]; then
		runuser -u postgres -- $PGBIN/pg_ctl -D "$TMP/data" -m fast -w stop >/dev/null 2>&1 ||
			runuser -u postgres -- $PGBIN/pg_ctl -D "$TMP/data" -m immediate -w stop >/dev/null 2>&1 || true
	fi
	if [ $rc -ne 0 ] && [ -e "$TMP/server.log" ]; then
		echo "--- last lines of the server log ($TMP/server.log)" >&2
		tail -20 "$TMP/server.log" >&2
	fi
	if [ "${DEMO_KEEP:-0}" = 1 ]; then
		echo "cluster directory kept: $TMP" >&2
	else
		rm -rf "$TMP"
	fi
	exit $rc
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# --- 1. what we need --------------------------------------------------------
# test/install.sh installs the server, contrib (dblink), libpq-dev and the
# build tools when missing, then builds and installs txmq.
say "building and installing txmq, building the demo programs"
bash test/install.sh >"$TMP/build.log" 2>&1 ||
	{ tail -30 "$TMP/build.log"; die "make install of txmq"; }
make -s -C "$APP" PG_CONFIG="$PG_CONFIG" >>"$TMP/build.log" 2>&1 ||
	{ tail -30 "$TMP/build.log"; die "building examples/order-cart"; }
PGBIN=$("$PG_CONFIG" --bindir)
if [ "$SHARDS" -gt 0 ] &&
	[ ! -e "$("$PG_CONFIG" --sharedir)/extension/plproxy.control" ]; then
	bash test/bootstrap.sh "postgresql-$PG-plproxy" >>"$TMP/build.log" 2>&1 ||
		die "the sharded demo needs PL/Proxy: no postgresql-$PG-plproxy here"
fi

# --- 2. a throwaway cluster -------------------------------------------------
# The server's programs run as postgres from a directory it owns; the
# checkout's SQL files reach psql on its standard input.
chown postgres: "$TMP"
cd "$TMP"
port_in_use() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }
PORT=${DEMO_PGPORT:-}
if [ -z "$PORT" ]; then
	for p in $(seq 55432 55632); do
		port_in_use "$p" || { PORT=$p; break; }
	done
	[ -n "$PORT" ] || die "no free port"
fi

as_pg() { runuser -u postgres -- "$@"; }
as_pg $PGBIN/initdb -D "$TMP/data" -U postgres -A trust -E UTF8 --locale=C \
	--no-sync >"$TMP/initdb.log" 2>&1 || { cat "$TMP/initdb.log"; die initdb; }
cat >>"$TMP/data/postgresql.conf" <<EOF
listen_addresses = '127.0.0.1'
port = $PORT
unix_socket_directories = '$TMP'
shared_preload_libraries = 'txmq'
max_connections = $((50 + 15 * SHARDS))
max_worker_processes = $((8 + SHARDS))
log_line_prefix = '%m [%p] '
EOF
# The superuser may come in over the socket; the applications need passwords
# (dblink as a non-superuser insists on one).
cat >"$TMP/data/pg_hba.conf" <<EOF
local all postgres trust
local all all scram-sha-256
host all all 127.0.0.1/32 scram-sha-256
EOF
as_pg $PGBIN/pg_ctl -D "$TMP/data" -l "$TMP/server.log" -w start >/dev/null ||
	die "the server did not start"
STARTED=yes
say "PostgreSQL $PG with shared_preload_libraries='txmq' on 127.0.0.1:$PORT ($TMP)"

psql_su() { as_pg $PGBIN/psql -h "$TMP" -p "$PORT" -X -q -v ON_ERROR_STOP=1 "$@"; }
psql_su -d postgres -c 'CREATE DATABASE shop' -c 'CREATE DATABASE orders'
psql_su -d shop -v checkouts="$ORDERS" -v order_pw="$ORDER_PW" -v cart_pw="$CART_PW" \
	<"$APP/shop.sql" >/dev/null
psql_su -d orders <"$APP/orders.sql" >/dev/null

SHOP_AS_ORDER="host=127.0.0.1 port=$PORT dbname=shop user=order_app password=$ORDER_PW"
ORDERS_AS_ORDER="host=127.0.0.1 port=$PORT dbname=orders user=order_app password=$ORDER_PW"
SHOP_AS_CART="host=127.0.0.1 port=$PORT dbname=shop user=cart_app password=$CART_PW"
# Where txmq is (QUEUE_DBS): the shop, or the partitions, which the cart
# services read directly and the order services reach through the proxy.
PROXY_AS_ORDER=()
QUEUES_AS_CART=()
if [ "$SHARDS" -eq 0 ]; then
	QUEUE_DBS=(shop)
	psql_su -d shop -v order_pw="$ORDER_PW" <"$APP/queues.sql" >/dev/null
	say "databases: shop (txmq, carts, scenario-1 orders), orders (scenario-2 orders);" \
		"$ORDERS checkouts per scenario; seed $SEED"
else
	QUEUE_DBS=()
	for ((i = 0; i < SHARDS; i++)); do
		QUEUE_DBS+=("shop_p$i")
		QUEUES_AS_CART+=("host=127.0.0.1 port=$PORT dbname=shop_p$i user=cart_app password=$CART_PW")
		psql_su -d postgres -c "CREATE DATABASE shop_p$i"
		psql_su -d "shop_p$i" -v order_pw="$ORDER_PW" <"$APP/queues.sql" >/dev/null
		psql_su -d "shop_p$i" -v part="$i" <"$APP/partition.sql" >/dev/null
	done
	psql_su -d postgres -c 'CREATE DATABASE shop_proxy'
	psql_su -d shop_proxy -v shards="$SHARDS" -v port="$PORT" -v order_pw="$ORDER_PW" \
		<"$APP/proxy.sql" >/dev/null
	PROXY_AS_ORDER=("host=127.0.0.1 port=$PORT dbname=shop_proxy user=order_app password=$ORDER_PW")
	say "databases: shop (carts), orders (scenario-2 orders), $SHARDS partition(s)" \
		"${QUEUE_DBS[*]} (txmq, scenario-1 orders) behind shop_proxy (PL/Proxy);" \
		"$ORDERS checkouts per scenario; seed $SEED"
fi

# Check-back answers, as the check function logs them.
tail -n0 -F --pid=$$ "$TMP/server.log" 2>/dev/null |
	sed -nu 's/^[0-9-]* \([0-9:]*\.[0-9]\)[0-9]* [A-Z]* \[[0-9]*\] LOG:  txmq-demo check-back: \(.*\)/\1 check-back   \2/p' &

# --- 3. the scenarios -------------------------------------------------------

# supervise SCENARIO NAME COMMAND...: run COMMAND; restart it after a SIGKILL,
# as systemd or Kubernetes would.
supervise() {
	local scenario=$1 name=$2 rc
	shift 2
	while :; do
		{ "$@" 2>&1; } 2>/dev/null && return 0
		rc=$?
		[ $rc -eq 137 ] || { say "$name exited with status $rc"; return $rc; }
		psql_su -d shop -c "INSERT INTO demo.kills VALUES ('$scenario', '$name')"
		[ -e "$TMP/stop" ] && return 0
		say "$name was killed, restarting it"
	done
}

# How much is still to do in a topic: messages not yet acked or parked, and
# half messages not yet resolved.
backlog() {
	local db r ready=0 half=0
	for db in "${QUEUE_DBS[@]}"; do
		r=$(psql_su -d "$db" -At -v topic="$1" <<'EOF'
SELECT coalesce(sum(ready + delayed + in_flight), 0) || ' ' || coalesce(sum(half_pending), 0)
  FROM txmq.stats WHERE topic = :'topic' AND subscription = 'cart';
EOF
) || return 1
		ready=$((ready + ${r% *}))
		half=$((half + ${r#* }))
	done
	echo "$ready $half"
}

run_scenario() {
	local scenario=$1 topic=$2 i pid producers=() consumers=() deadline left
	rm -f "$TMP/stop"
	for i in 1 2; do
		supervise "$scenario" "cart-tx-$i" "$APP/cart-service" "cart-tx-$i" tx \
			"$topic" "$SHOP_AS_CART" "$SEED" "$TMP/stop" "${QUEUES_AS_CART[@]}" &
		consumers+=($!)
	done
	supervise "$scenario" cart-lease "$APP/cart-service" cart-lease lease \
		"$topic" "$SHOP_AS_CART" "$SEED" "$TMP/stop" "${QUEUES_AS_CART[@]}" &
	consumers+=($!)
	for i in 1 2 3; do
		supervise "$scenario" "order-$i" "$APP/order-service" "order-$i" \
			"$scenario" "$SHOP_AS_ORDER" "$ORDERS_AS_ORDER" "$SEED" "${PROXY_AS_ORDER[@]}" &
		producers+=($!)
	done
	SUPERVISORS=("${producers[@]}" "${consumers[@]}")

	for pid in "${producers[@]}"; do
		wait "$pid" || die "an order service failed"
	done
	say "all checkouts done; waiting for txmq to deliver and resolve the rest"
	deadline=$((SECONDS + 90))
	while left=$(backlog "$topic") && [ "$left" != "0 0" ]; do
		[ $SECONDS -lt $deadline ] || die "still not settled after 90 s: $left"
		sleep 0.2
	done
	touch "$TMP/stop"
	for pid in "${consumers[@]}"; do
		wait "$pid" || die "a cart service failed"
	done
	SUPERVISORS=()
}

T0=$SECONDS
for scenario in $SCENARIOS; do
	T1=$(date +%s%3N)
	case $scenario in
	same-db)
		say "=== scenario 1: orders in the shop database: INSERT + txmq.send, one transaction"
		run_scenario same-db orders ;;
	half-check)
		say "=== scenario 2: orders in another database: half message + check function (dblink)"
		run_scenario half-check orders_remote ;;
	half-xid)
		say "=== scenario 2b: orders in another database: half message + local_xid (txmq asks pg_xact_status)"
		run_scenario half-xid orders_xid ;;
	*) die "unknown scenario $scenario" ;;
	esac
	ms=$(($(date +%s%3N) - T1))
	say "scenario $scenario: $ORDERS checkouts settled in $((ms / 1000)).$(printf %03d $((ms % 1000))) s" \
		"($((ORDERS * 1000 / (ms > 0 ? ms : 1))) checkouts/s)"
done
say "scenarios done in $((SECONDS - T0)) s"

# --- 4. the report ----------------------------------------------------------
list=$(printf "'%s'," $SCENARIOS)
conns=
for db in "${QUEUE_DBS[@]}"; do
	conns+="${conns:+,}\"host=$TMP port=$PORT dbname=$db user=postgres\""
done
psql_su -d shop -v orders_conn="host=$TMP port=$PORT dbname=orders user=postgres" \
	-v queue_conns="{$conns}" -v sharded="$([ "$SHARDS" -gt 0 ] && echo true || echo false)" \
	-v scenarios="${list%,}" <"$APP/report.sql" | tee "$TMP/report.txt"
grep -qx 'inconsistencies: 0' "$TMP/report.txt" || exit 1
