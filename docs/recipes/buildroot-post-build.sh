#!/bin/sh
# Buildroot: BR2_ROOTFS_POST_BUILD_SCRIPT="board/mine/post-build.sh"; Buildroot passes the
# target directory as $1. Fails the build when a program exceeds the board's budget.
set -e
TARGET_DIR="$1"
BUDGET="${BUDGET:-$(dirname "$0")/elfcost-budget.toml}"
set --
for d in usr/bin usr/sbin bin sbin; do
  [ -d "$TARGET_DIR/$d" ] && [ ! -L "$TARGET_DIR/$d" ] && set -- "$@" "$TARGET_DIR/$d"
done
[ $# -gt 0 ] || exit 0
exec elfcost check --root "$TARGET_DIR" --budget "$BUDGET" "$@"
