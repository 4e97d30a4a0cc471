# test/pg.sh: which PostgreSQL server to build for, test and run on.
# Sourced by test/bootstrap.sh, test/run.sh, examples/run-demo.sh and
# bench/run.sh; the Makefile runs it to print PG_CONFIG.
#
#   PG_CONFIG=/path/to/pg_config   that installation
#   PG=N                           /usr/lib/postgresql/N/bin/pg_config
#   neither                        the newest installed there, else the
#                                  distribution's default version
#
# Sets and exports PG_CONFIG (it may not exist yet: test/bootstrap.sh
# installs it) and PG, the major version.

if [ -n "${PG_CONFIG:-}" ]; then
	PG=$("$PG_CONFIG" --version 2>/dev/null | sed -n 's/^PostgreSQL \([0-9]*\).*/\1/p')
	# not installed yet: Debian's path names the version
	[ -n "$PG" ] || PG=$(echo "$PG_CONFIG" |
		sed -n 's|^/usr/lib/postgresql/\([0-9][0-9]*\)/bin/pg_config$|\1|p')
	if [ -z "$PG" ]; then
		echo "pg.sh: cannot run PG_CONFIG=$PG_CONFIG" >&2
		exit 1
	fi
else
	if [ -z "${PG:-}" ]; then
		PG=$(find /usr/lib/postgresql -mindepth 3 -maxdepth 3 -path '*/bin/pg_config' \
			2>/dev/null | sed 's|^/usr/lib/postgresql/\([^/]*\)/.*|\1|' | sort -n | tail -n 1)
	fi
	if [ -z "$PG" ]; then
		PG=$(apt-cache depends postgresql 2>/dev/null |
			sed -n 's/^ *Depends: postgresql-\([0-9][0-9]*\)$/\1/p' | head -n 1)
	fi
	if [ -z "$PG" ]; then
		echo "pg.sh: no PostgreSQL installed and no default to install; set PG or PG_CONFIG" >&2
		exit 1
	fi
	PG_CONFIG=/usr/lib/postgresql/$PG/bin/pg_config
fi
export PG PG_CONFIG

# pg_native: true if this machine has the server, or its package manager
# can install it.
pg_native() {
	command -v "$PG_CONFIG" >/dev/null && return 0
	# captured, not piped into grep -q: under pipefail, grep quitting at
	# the first match could make apt-cache die of SIGPIPE and the test fail
	local policy
	policy=$(apt-cache policy "postgresql-server-dev-$PG" 2>/dev/null)
	grep -q '^ *Candidate: [0-9]' <<<"$policy"
}

# pg_chroot_unless_native COMMAND...: on a server this machine cannot have,
# run COMMAND from the top of the checkout in a Debian root filesystem that
# has it (test/chroot.sh) instead, and exit with its status.
pg_chroot_unless_native() {
	pg_native && return 0
	echo "PostgreSQL $PG cannot be installed here: running in a chroot (test/chroot.sh)"
	exec bash "$(dirname "${BASH_SOURCE[0]}")/chroot.sh" "$PG" "$@"
}

if [ "${BASH_SOURCE[0]}" = "$0" ]; then
	echo "$PG_CONFIG"
fi
