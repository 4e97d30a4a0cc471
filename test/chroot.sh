#!/usr/bin/env bash
# test/chroot.sh MAJOR [COMMAND...]: run COMMAND (default `make test`) on
# PostgreSQL MAJOR inside a Debian root filesystem of the release that ships
# it, for servers the host cannot install (`make test PG=18` on Debian 12).
#
#   15  Debian 12 "bookworm"   17  Debian 13 "trixie"   18  Debian "sid"
#
# The root is built once with debootstrap from the mirror of the host's apt
# sources and kept in $TXMQ_CHROOT_CACHE (default /var/cache/txmq-test/roots)
# as <suite>/; later runs reuse it.  Every run copies this checkout to a
# fresh directory inside the root, runs COMMAND there through chroot (output
# as it comes, exit status passed on) and deletes the copy.  It mounts /proc,
# /dev, /dev/pts and /dev/shm in the root while it runs and unmounts them on
# any exit.  Runs on one root are serialised with a lock: they would share
# its mounts and its installed txmq.
#
# Environment: TXMQ_CHROOT_CACHE; TXMQ_CHROOT_MIRROR overrides the mirror;
# TXMQ_CHROOT_PACKAGES replaces the list of packages the root gets (the
# package test's clean root, test/deb-check.sh; it then gets none of the
# optional packages either); TXMQ_CHROOT_RESULTS names a
# directory of the checkout that is copied back from the root's copy when
# COMMAND ends (`make deb`'s build/deb); TXMQ_*, DEMO_*, BENCH_* and
# PG_TEST_* variables are passed into the root.
set -euo pipefail

say() { echo "chroot: $*"; }
die() { echo "chroot: $*" >&2; exit 1; }

[ $# -ge 1 ] || die "usage: test/chroot.sh MAJOR [COMMAND...]"
MAJOR=$1
shift
[ $# -gt 0 ] || set -- make test
case $MAJOR in
15) SUITE=bookworm ;;
17) SUITE=trixie ;;
18) SUITE=sid ;;
*) die "no Debian release known for PostgreSQL '$MAJOR' (known: 15 17 18)" ;;
esac
[ "$(id -u)" -eq 0 ] || die "needs root (debootstrap, mount, chroot)"

SRC=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
CACHE=${TXMQ_CHROOT_CACHE:-/var/cache/txmq-test/roots}
ROOTFS=$CACHE/$SUITE

# What the suite, the demo and the build need in the root (test/bootstrap.sh
# and examples/run-demo.sh would install them otherwise, on every run).
OPTIONAL=()
if [ -n "${TXMQ_CHROOT_PACKAGES:-}" ]; then
	read -ra PACKAGES <<<"$TXMQ_CHROOT_PACKAGES"
else
	PACKAGES=(postgresql-$MAJOR postgresql-client-$MAJOR postgresql-server-dev-$MAJOR
		libpq-dev libipc-run-perl perl gcc make util-linux procps tmux
		prometheus-postgres-exporter)
	# Installed where the release has them, skipped where it does not: PL/Proxy
	# for the sharded demo, pg_auto_failover for test/t/072_auto_failover.pl
	# (each test skips, saying so, without them)
	OPTIONAL=(postgresql-$MAJOR-plproxy postgresql-$MAJOR-auto-failover pg-auto-failover-cli)
fi

# The mirror of the host's Debian archive: the URI of the apt source that
# serves the host's own release.
host_mirror() {
	mirror_of "$(. /etc/os-release && echo "${VERSION_CODENAME:-}")"
	# unstable's os-release names the next release, as testing's does (the
	# package test's clean root is made from within a sid root); only its
	# sources say sid
	case $(cat /etc/debian_version 2>/dev/null) in
	*/sid) mirror_of sid ;;
	esac
	return 0
}

# mirror_of SUITE: the URI of the first apt source of SUITE, if any
mirror_of() {
	local codename=$1 files
	files=$(find /etc/apt/sources.list.d -name '*.sources' 2>/dev/null | sort)
	# deb822 stanzas (blank-line separated): URIs of one whose Suites
	# include the codename
	[ -n "$files" ] && awk -v cn="$codename" '
		FNR == 1 || /^[[:space:]]*$/ { ok = 0; uri = "" }
		tolower($1) == "uris:" { uri = $2 }
		tolower($1) == "suites:" { for (i = 2; i <= NF; i++) if ($i == cn) ok = 1 }
		ok && uri != "" { print uri; exit }' $files
	# one-line format: deb [options] URI SUITE COMPONENTS...
	[ -f /etc/apt/sources.list ] && sed -E 's/\[[^]]*\]//' /etc/apt/sources.list |
		awk -v cn="$codename" '$1 == "deb" && $3 == cn { print $2; exit }'
	return 0
}

MOUNTED=()
unmount_all() {
	local i
	for ((i = ${#MOUNTED[@]} - 1; i >= 0; i--)); do
		umount "${MOUNTED[i]}" 2>/dev/null || umount -l "${MOUNTED[i]}" || true
	done
	MOUNTED=()
}
mount_in() {			# mount_in ROOT MOUNT-ARGS... TARGET-IN-ROOT
	local root=$1 target=${*: -1}
	mkdir -p "$root$target"
	mount "${@:2:$#-2}" "$root$target"
	MOUNTED+=("$root$target")
}
mount_all() {
	local root=$1
	mount_in "$root" -t proc proc /proc
	mount_in "$root" --bind /dev /dev
	mount_in "$root" -t devpts -o newinstance,ptmxmode=0666 devpts /dev/pts
	mount_in "$root" -t tmpfs -o mode=1777 shm /dev/shm	# POSIX shared memory
}

COPY=
CHILD=
cleanup() {
	local rc=$?
	trap - EXIT INT TERM HUP
	# interrupted: the command (test/run.sh stops its clusters on TERM)
	# must be gone before its mounts are
	if [ -n "$CHILD" ] && kill -0 "$CHILD" 2>/dev/null; then
		kill -TERM "$CHILD"
		wait "$CHILD" || true
	fi
	unmount_all
	[ -n "$COPY" ] && rm -rf "$COPY"
	exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT TERM HUP

mkdir -p "$CACHE"
exec 9>"$CACHE/$SUITE.lock"
if ! flock -n 9; then
	say "waiting for another run on $ROOTFS"
	flock 9
fi

# in_root ROOT COMMAND...: run COMMAND in ROOT, with a clean environment
ROOT_ENV=(/usr/bin/env -i PATH=/usr/sbin:/usr/bin:/sbin:/bin HOME=/root
	LANG=C.UTF-8 DEBIAN_FRONTEND=noninteractive)
in_root() {
	chroot "$1" "${ROOT_ENV[@]}" "${@:2}"
}

# debootstrap's part is built aside and moved in place when complete; the
# packages are (re)installed until a stamp names them all.
if [ ! -d "$ROOTFS" ]; then
	rm -rf "$ROOTFS.new"
	command -v debootstrap >/dev/null ||
		apt-get -o DPkg::Lock::Timeout=600 install -y -q --no-install-recommends debootstrap ||
		die "cannot install debootstrap"
	MIRROR=${TXMQ_CHROOT_MIRROR:-$(host_mirror | head -n 1)}
	[ -n "$MIRROR" ] || die "no Debian mirror in the host's apt sources; set TXMQ_CHROOT_MIRROR"
	say "building a Debian $SUITE root in $ROOTFS from $MIRROR"
	debootstrap --variant=minbase "$SUITE" "$ROOTFS.new" "$MIRROR" \
		>"$CACHE/$SUITE.debootstrap.log" 2>&1 ||
		{ tail -n 30 "$CACHE/$SUITE.debootstrap.log"; die "debootstrap $SUITE failed"; }
	# The updates and security updates of the release that the host has
	# too, so that the root gets the versions the host has: a package
	# built on the host depends on the server it was built against (the
	# deb suite's clean root).  In the root's sources.list, where a root
	# made from within this one finds them again.
	for s in "$SUITE-updates" "$SUITE-security"; do
		m=$(mirror_of "$s" | head -n 1)
		[ -z "$m" ] || echo "deb $m $s main" >>"$ROOTFS.new/etc/apt/sources.list"
	done
	mv "$ROOTFS.new" "$ROOTFS"
fi
STAMP=$ROOTFS/var/lib/txmq-test-packages
WANT="${PACKAGES[*]}${OPTIONAL[*]:+ ${OPTIONAL[*]}}"
if [ "$(cat "$STAMP" 2>/dev/null)" != "$WANT" ]; then
	cp /etc/resolv.conf "$ROOTFS/etc/resolv.conf"
	# The host's way to reach the mirror: its proxy, and whether it accepts
	# the Release files of a mirror that serves a frozen snapshot.
	apt-config dump | grep -E '^Acquire::(Check-Valid-Until|Check-Date|https?::Proxy) ' \
		>"$ROOTFS/etc/apt/apt.conf.d/99txmq-test-host" || true
	# No cluster of its own and no service start: the tests start theirs.
	mkdir -p "$ROOTFS/etc/postgresql-common/createcluster.d"
	echo "create_main_cluster = false" \
		>"$ROOTFS/etc/postgresql-common/createcluster.d/txmq-test.conf"
	printf '#!/bin/sh\nexit 101\n' >"$ROOTFS/usr/sbin/policy-rc.d"
	chmod 755 "$ROOTFS/usr/sbin/policy-rc.d"
	# before postgresql-common, whose setup fails without /proc
	mount_all "$ROOTFS"
	{ in_root "$ROOTFS" dpkg --configure -a &&
		in_root "$ROOTFS" apt-get update -q; } >"$CACHE/$SUITE.apt.log" 2>&1 ||
		{ tail -n 30 "$CACHE/$SUITE.apt.log"; die "apt-get update in the $SUITE root failed"; }
	for p in "${OPTIONAL[@]}"; do
		# (not piped into grep -q: apt-cache's SIGPIPE would fail the pipe)
		if [[ $(in_root "$ROOTFS" apt-cache policy "$p" 2>/dev/null) =~ Candidate:\ [0-9] ]]; then
			PACKAGES+=("$p")
		else
			say "Debian $SUITE has no $p: not installed"
		fi
	done
	say "installing ${PACKAGES[*]}"
	{ in_root "$ROOTFS" apt-get install -y -q --no-install-recommends "${PACKAGES[@]}" &&
		in_root "$ROOTFS" apt-get clean; } >>"$CACHE/$SUITE.apt.log" 2>&1 ||
		{ tail -n 30 "$CACHE/$SUITE.apt.log"; die "apt-get install in the $SUITE root failed"; }
	unmount_all
	echo "$WANT" >"$STAMP"
	say "root $ROOTFS ready"
fi

# A copy of the checkout (what test/run.sh copies), mode 0700 like a clone
# in root's home: nothing may need the postgres user to read it.
COPY=$(mktemp -d "$ROOTFS/var/tmp/txmq.XXXXXX")
tar -C "$SRC" -cf - --exclude=./.git --exclude=./tmp_check \
	--exclude=./results --exclude=./output_iso --exclude='*.o' \
	--exclude='*.bc' --exclude='*.so' . | tar -C "$COPY" -xf -

ENV=()
while IFS= read -r v; do
	ENV+=("$v=${!v}")
done < <(compgen -e | grep -E '^(TXMQ_|DEMO_|BENCH_|PG_TEST_)' | grep -v '^TXMQ_CHROOT_')

mount_all "$ROOTFS"
say "PostgreSQL $MAJOR in $ROOTFS (Debian $SUITE): $*"
say "(paths it prints are inside $ROOTFS)"
# In the background, so that an interrupt is handled at once (cleanup);
# chroot, env and sh exec, so that CHILD is the command itself.
chroot "$ROOTFS" "${ROOT_ENV[@]}" "${ENV[@]}" PG="$MAJOR" \
	sh -c 'cd "$1" && shift && exec "$@"' sh "${COPY#"$ROOTFS"}" "$@" 9>&- &
CHILD=$!
rc=0
wait "$CHILD" || rc=$?
CHILD=
RESULTS=${TXMQ_CHROOT_RESULTS:-}
if [ -n "$RESULTS" ] && [ -d "$COPY/$RESULTS" ]; then
	mkdir -p "$SRC/$RESULTS"
	cp -a "$COPY/$RESULTS/." "$SRC/$RESULTS/"
fi
exit "$rc"
