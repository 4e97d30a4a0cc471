#!/usr/bin/env bash
# test/all.sh: `make test-all`, the whole suite (test/run.sh) on every
# supported server in turn: natively where this machine has or can install
# it, in a Debian root filesystem that has it otherwise (test/chroot.sh).
# Prints each version's totals and wall time, and ends with exactly one
# line `N passed, N failed` summed over all of them; exit status 0 only if
# nothing failed.
#
# Environment: TXMQ_TEST_VERSIONS (default "15 17 18"), and everything
# test/run.sh takes (TXMQ_TEST_SUITES, TXMQ_TEST_FILTER ...).
set -uo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$ROOT"
VERSIONS=${TXMQ_TEST_VERSIONS:-15 17 18}
PASSED=0
FAILED=0
TOTALS=()
LOG=$(mktemp)
trap 'rm -f "$LOG"' EXIT
trap 'exit 130' INT TERM HUP

for v in $VERSIONS; do
	echo "=== PostgreSQL $v"
	start=$SECONDS
	env -u PG_CONFIG PG="$v" bash test/run.sh 2>&1 | tee "$LOG"
	rc=${PIPESTATUS[0]}
	if [[ $(tail -n 1 "$LOG") =~ ^([0-9]+)\ passed,\ ([0-9]+)\ failed$ ]]; then
		p=${BASH_REMATCH[1]}
		f=${BASH_REMATCH[2]}
	else
		p=0
		f=0
	fi
	# a run that failed without saying so counts as one failure
	if [ "$rc" -ne 0 ] && [ "$f" -eq 0 ]; then
		f=1
	fi
	PASSED=$((PASSED + p))
	FAILED=$((FAILED + f))
	TOTALS+=("PostgreSQL $v: $p passed, $f failed ($((SECONDS - start)) s)")
done

echo "=== test-all"
printf '%s\n' "${TOTALS[@]}"
echo "$PASSED passed, $FAILED failed"
[ "$FAILED" -eq 0 ]
