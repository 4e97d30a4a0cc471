#!/usr/bin/env bash
# test/install.sh: install build dependencies (test/bootstrap.sh), build
# txmq and `make install` it into the installation test/pg.sh picks (PG=N,
# PG_CONFIG).  Used by `make test` (test/run.sh) and `make demo`.  Run it
# from anywhere.
#
# `make install` writes into the system PostgreSQL directories: as root it
# runs directly; otherwise through sudo, if there is one.
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$ROOT"

. test/pg.sh
bash test/bootstrap.sh

# Strip make's own flags (-s, jobserver ...) inherited from a calling `make`
# so that this build behaves the same under `make test` and by hand.
unset MAKEFLAGS MFLAGS MAKELEVEL

echo "install: building txmq"
make -s -j"$(nproc 2>/dev/null || echo 2)" PG_CONFIG="$PG_CONFIG"

echo "install: installing txmq"
if [ "$(id -u)" -eq 0 ]; then
	make -s install PG_CONFIG="$PG_CONFIG"
elif command -v sudo >/dev/null 2>&1; then
	sudo make -s install PG_CONFIG="$PG_CONFIG"
else
	echo "install: 'make install' needs root; run as root or install sudo" >&2
	exit 1
fi
