#!/usr/bin/env bash
# tools/build-deb.sh: `make deb`, the Debian package postgresql-N-txmq of
# this checkout (debian/) for the server test/pg.sh picks (PG=N, or
# PG_CONFIG=/usr/lib/postgresql/N/bin/pg_config), left in build/deb/.
#
# It installs the build dependencies (test/bootstrap.sh), copies the
# checkout without its build products to a temporary directory, fills in
# debian/control for N alone (pg_buildext updatecontrol) and builds the
# binary packages there with dpkg-buildpackage.  A server this machine
# cannot install is built for in a Debian root filesystem that ships it
# (test/chroot.sh), from which build/deb/ is copied back.
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$ROOT"
. test/pg.sh

if [ "$PG_CONFIG" != "/usr/lib/postgresql/$PG/bin/pg_config" ]; then
	echo "deb: the package builds against Debian's postgresql-server-dev-$PG," \
		"not PG_CONFIG=$PG_CONFIG; use PG=$PG" >&2
	exit 1
fi
export TXMQ_CHROOT_RESULTS=build/deb
pg_chroot_unless_native bash tools/build-deb.sh

bash test/bootstrap.sh build-essential debhelper \
	postgresql-server-dev-all "postgresql-server-dev-$PG"

# Flags of a calling make (-s, the jobserver) are not the package build's
unset MAKEFLAGS MFLAGS MAKELEVEL
# pg_buildext builds for the versions of debian/pgversions that
# postgresql-common supports, which it reads from here
export PG_SUPPORTED_VERSIONS=$PG

BUILD=$(mktemp -d "${TMPDIR:-/tmp}/txmq-deb.XXXXXX")
trap 'rm -rf "$BUILD"' EXIT
# Products of an earlier build would be found through VPATH and taken as
# up to date.
mkdir "$BUILD/txmq"
tar -C "$ROOT" -cf - --exclude=./.git --exclude=./build --exclude=./tmp_check \
	--exclude=./results --exclude=./output_iso --exclude=./.pg_config \
	--exclude='*.o' --exclude='*.bc' --exclude='*.so' \
	--exclude=./tools/txmqctl/txmqctl . | tar -C "$BUILD/txmq" -xf -

echo "deb: building postgresql-$PG-txmq"
(cd "$BUILD/txmq" && pg_buildext updatecontrol &&
	dpkg-buildpackage -b -us -uc -j"$(nproc 2>/dev/null || echo 2)") \
	>"$BUILD/build.log" 2>&1 ||
	{ tail -n 40 "$BUILD/build.log"; echo "deb: dpkg-buildpackage failed" >&2; exit 1; }

OUT=$ROOT/build/deb
mkdir -p "$OUT"
rm -f "$OUT/postgresql-$PG-txmq"_* "$OUT/postgresql-$PG-txmq-dbgsym"_*
cp "$BUILD"/*.deb "$OUT/"
ls build/deb/postgresql-"$PG"-txmq_*.deb
