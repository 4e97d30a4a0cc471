#!/usr/bin/env bash
# test/bootstrap.sh: install the Debian packages that building and testing
# txmq need, but only those that are missing.  Idempotent and quiet when
# there is nothing to do.  Called by the Makefile (when the server headers
# are missing), by test/run.sh (`make test`) and by `make demo`.
#
# For the server that test/pg.sh picks (PG=N, PG_CONFIG):
#
#   postgresql-N             the server (initdb, postgres, pg_ctl) and the
#                            contrib modules (dblink for the demo)
#   postgresql-server-dev-N  server headers and libpq-dev; with
#                            postgresql-client-N it brings PGXS, pg_regress,
#                            pg_isolation_regress and the PostgreSQL::Test::*
#                            TAP modules
#   libipc-run-perl          IPC::Run, needed by PostgreSQL::Test::Cluster
#   perl                     prove, Test::More
#   make, gcc                the build
#   tmux                     a terminal for txmqctl top's TAP test
#   prometheus-postgres-exporter  the exporter that the Prometheus queries
#                            file's TAP test runs
#   postgresql-N-plproxy     PL/Proxy, for the sharded demo; only where the
#                            package sources have it (the test skips, saying
#                            so, where not)
#   postgresql-N-auto-failover, pg-auto-failover-cli  pg_auto_failover, for
#                            the automatic failover TAP test
#                            (test/t/072_auto_failover.pl); installed where
#                            the package sources have them (Debian 12, 13
#                            and unstable do, for 15, 17 and 18), else left
#                            out with a line that says so, and that test
#                            skips
#
# `test/bootstrap.sh PACKAGE...` installs those instead, the same way
# (`make deb`'s build dependencies).
set -euo pipefail

. "$(dirname "${BASH_SOURCE[0]}")/pg.sh"

OPTIONAL=()
if [ $# -gt 0 ]; then
	PACKAGES=("$@")
else
	PACKAGES=(make gcc perl libipc-run-perl tmux prometheus-postgres-exporter
		"postgresql-$PG" "postgresql-client-$PG" "postgresql-server-dev-$PG")
	OPTIONAL=("postgresql-$PG-plproxy" "postgresql-$PG-auto-failover" pg-auto-failover-cli)
fi

installed() {
	dpkg-query -W -f='${Status}\n' "$1" 2>/dev/null | grep -q '^install ok installed$'
}

missing=()
for p in "${PACKAGES[@]}"; do
	installed "$p" || missing+=("$p")
done
# An optional package is installed if the package sources know it.
for p in "${OPTIONAL[@]}"; do
	installed "$p" && continue
	# (grep -q would end apt-cache early: pipefail)
	if apt-cache policy "$p" 2>/dev/null | grep -Ec '^ +Candidate: [^(]' >/dev/null; then
		missing+=("$p")
	else
		echo "bootstrap: $p is not in this machine's package sources; not installed"
	fi
done

if [ "${#missing[@]}" -eq 0 ]; then
	exit 0
fi

echo "bootstrap: installing missing packages: ${missing[*]}"

SUDO=()
if [ "$(id -u)" -ne 0 ]; then
	if command -v sudo >/dev/null 2>&1; then
		SUDO=(sudo)
	else
		echo "bootstrap: need root (or sudo) to install: ${missing[*]}" >&2
		echo "bootstrap: run as root: apt-get install -y ${missing[*]}" >&2
		exit 1
	fi
fi

export DEBIAN_FRONTEND=noninteractive
apt_install() {
	"${SUDO[@]}" apt-get -o DPkg::Lock::Timeout=600 install -y -q \
		--no-install-recommends "${missing[@]}"
}

# Try with the package lists we have first; refresh them only if that fails
# (a fresh machine may have stale or no lists).
if ! apt_install; then
	echo "bootstrap: install failed; running apt-get update and retrying"
	"${SUDO[@]}" apt-get -o DPkg::Lock::Timeout=600 update -q
	apt_install || {
		echo "bootstrap: PostgreSQL $PG is not in this machine's package sources;" \
			"\`make test PG=$PG\` and \`make demo PG=$PG\` run it in a chroot" >&2
		exit 1
	}
fi

# Of packages named on the command line, apt-get's success is the check
[ $# -eq 0 ] || exit 0

# Check that what the build and the suite need is really there now.
inc=$("$PG_CONFIG" --includedir-server)
if [ ! -f "$inc/postgres.h" ]; then
	echo "bootstrap: $inc/postgres.h still missing after install" >&2
	exit 1
fi
perl -MIPC::Run -e 1 || { echo "bootstrap: perl IPC::Run missing" >&2; exit 1; }
echo "bootstrap: done"
