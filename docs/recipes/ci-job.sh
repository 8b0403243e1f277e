#!/bin/sh
# A CI job step: check the build output, keep a JUnit report for the CI's test view, and
# fail the job when a program is over budget (exit 1) or an input is broken (exit 3).
set -e
DESTDIR="${DESTDIR:-build/destdir}"
status=0
elfcost check --root "$DESTDIR" --budget "${BUDGET:-elfcost-budget.toml}" \
  --format junit "$DESTDIR/usr/bin" > elfcost-junit.xml || status=$?
echo "elfcost check: exit $status (report: elfcost-junit.xml)"
exit $status
