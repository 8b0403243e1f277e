#!/bin/sh
# A CI job step: check the programs a native build installed into DESTDIR, keep a JUnit report
# for the CI's test view, and fail the job when a program is over budget (exit 1) or an input
# is broken (exit 3). Paths are matched inside DESTDIR (usr/bin/foo); libraries are found in
# DESTDIR first, then on this machine, as the installed programs will find them.
set -e
DESTDIR="${DESTDIR:-build/destdir}"
BUDGET="$(realpath "${BUDGET:-elfcost-budget.toml}")"
REPORT="$PWD/elfcost-junit.xml"
cd "$DESTDIR"
libs=$(find "$PWD" -name '*.so*' -type f -printf '%h\n' | sort -u | paste -sd: -)
status=0
elfcost check --budget "$BUDGET" --isa-level baseline ${libs:+--ld-library-path "$libs"} \
  --format junit usr > "$REPORT" || status=$?
echo "elfcost check: exit $status (report: elfcost-junit.xml)"
exit $status
