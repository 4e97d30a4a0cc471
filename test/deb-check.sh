#!/usr/bin/env bash
# test/deb-check.sh: the deb suite's check (test/run.sh), run as root by
# test/chroot.sh in a root filesystem that has postgresql-$PG and nothing
# of txmq, from a copy of the checkout that holds `make deb`'s package.
#
# It installs build/deb/postgresql-$PG-txmq_*.deb with dpkg and apt-get
# (for whatever it depends on), checks that the package and META.json have
# txmq.control's version, starts a cluster as the postgres user with
# txmq preloaded, sends, receives and acks a message, runs the packaged
# txmqctl, and purges the package again, so that the root stays clean for
# the next run.  Exit status 0 only if all of that worked.
set -euo pipefail

PKG=postgresql-$PG-txmq
BINDIR=/usr/lib/postgresql/$PG/bin
say() { echo "deb-check: $*"; }
die() { echo "deb-check: $*" >&2; exit 1; }

# A run cut short leaves its package behind: purge it, then nothing of
# txmq may remain (a `make install` here would make the test meaningless).
dpkg --purge "$PKG" >/dev/null 2>&1 || true
left=$(find /usr/lib/postgresql /usr/share/postgresql -name 'txmq*' 2>/dev/null)
[ -z "$left" ] || die "the root is not clean: $left"

DEB=$(ls build/deb/"$PKG"_*_"$(dpkg --print-architecture)".deb)
# The release's number, which debian/changelog and META.json (in semantic
# versioning's three parts) must say as well
VERSION=$(sed -n "s/^default_version = '\(.*\)'$/\1/p" txmq.control)
grep -q "^ *\"version\": \"$VERSION\.0\",\$" META.json ||
	die "META.json's version is not $VERSION.0 (txmq.control's $VERSION)"
DATA=
cleanup() {
	local rc=$?
	[ -n "$DATA" ] && runuser -u postgres -- "$BINDIR/pg_ctl" stop -D "$DATA/pgdata" \
		-m immediate >/dev/null 2>&1
	[ -n "$DATA" ] && rm -rf "$DATA"
	dpkg --purge "$PKG" >/dev/null 2>&1 || true
	exit "$rc"
}
trap cleanup EXIT

say "installing $DEB"
if ! dpkg -i "$DEB"; then
	say "dpkg -i left dependencies to install: apt-get -f install"
	apt-get update -q >/dev/null
	apt-get -f install -y -q --no-install-recommends
fi
dpkg-query -W -f='${Status}\n' "$PKG" | grep -qx 'install ok installed' ||
	die "$PKG is not installed"
[ "$(dpkg-query -W -f='${Version}' "$PKG")" = "$VERSION" ] ||
	die "$PKG is version $(dpkg-query -W -f='${Version}' "$PKG"), txmq.control says $VERSION"

DATA=$(mktemp -d /tmp/txmq-deb.XXXXXX)
chown postgres: "$DATA"
cd "$DATA"			# the checkout's copy is root's alone
as_pg() {
	runuser -u postgres -- env -i PATH="$BINDIR:/usr/bin:/bin" LANG=C.UTF-8 \
		PGHOST="$DATA" PGPORT=5432 PGDATABASE=postgres "$@"
}
as_pg initdb -D "$DATA/pgdata" --no-locale -E UTF8 >"$DATA/initdb.log"
cat >>"$DATA/pgdata/postgresql.conf" <<CONF
shared_preload_libraries = 'txmq'
listen_addresses = ''
unix_socket_directories = '$DATA'
CONF
as_pg pg_ctl start -w -D "$DATA/pgdata" -l "$DATA/server.log" >/dev/null ||
	{ cat "$DATA/server.log"; die "the server did not start with txmq preloaded"; }

say "CREATE EXTENSION, send, receive, ack"
got=$(as_pg psql -X -At -v ON_ERROR_STOP=1 <<'SQL'
CREATE EXTENSION txmq;
SELECT extversion FROM pg_extension WHERE extname = 'txmq';
SELECT txmq.create_queue('deb');
SELECT txmq.send('deb', '{"n": 1}') AS id \gset
SELECT payload FROM txmq.receive('deb', 'deb');
SELECT txmq.ack('deb', 'deb', :id);
SQL
)
want=$(printf '%s\n' 'CREATE EXTENSION' "$VERSION" '' '{"n": 1}' t)
[ "$got" = "$want" ] || die "psql printed
$got
instead of
$want"

say "txmqctl"
as_pg "$BINDIR/txmqctl" --help >/dev/null
as_pg "$BINDIR/txmqctl" topics | grep -qw deb ||
	die "txmqctl topics does not list topic deb"
say "ok"
