#!/bin/sh
# Rebuild the committed cross-architecture ELF fixtures.
#
# Usage: tests/data/elf/build.sh [machine ...]      (default: all machines)
#
# Needs Debian 12's cross toolchains (one apt package per machine, see the
# table below), python3, and binutils' readelf (the host readelf reads every
# architecture).  After building it writes hello.nosections with
# strip_sections.py and regenerates expected.json with make_expected.py.
set -eu

cd "$(dirname "$0")"
export LC_ALL=C

# The linker's default maximum page size is 64 KiB on aarch64 and powerpc64;
# with RELRO that pads every file to more than 64 KiB, so those three are
# linked with -z max-page-size=4096 (PT_LOAD p_align 0x1000) to stay tiny.
# The last column holds such extra linker flags ('-' for none).
#
# machine  compiler-prefix        Debian package             extra LDFLAGS
TABLE='
aarch64  aarch64-linux-gnu      gcc-aarch64-linux-gnu      -Wl,-z,max-page-size=4096
arm      arm-linux-gnueabihf    gcc-arm-linux-gnueabihf    -
i386     i686-linux-gnu         gcc-i686-linux-gnu         -
riscv64  riscv64-linux-gnu      gcc-riscv64-linux-gnu      -
ppc64le  powerpc64le-linux-gnu  gcc-powerpc64le-linux-gnu  -Wl,-z,max-page-size=4096
ppc64    powerpc64-linux-gnu    gcc-powerpc64-linux-gnu    -Wl,-z,max-page-size=4096
s390x    s390x-linux-gnu        gcc-s390x-linux-gnu        -
mips     mips-linux-gnu         gcc-mips-linux-gnu         -
'

if [ $# -eq 0 ]; then
    set -- $(echo "$TABLE" | awk 'NF { print $1 }')
fi

CFLAGS='-Os -s'

for m in "$@"; do
    line=$(echo "$TABLE" | awk -v m="$m" '$1 == m')
    if [ -z "$line" ]; then
        echo "build.sh: unknown machine '$m'" >&2
        exit 2
    fi
    prefix=$(echo "$line" | awk '{ print $2 }')
    pkg=$(echo "$line" | awk '{ print $3 }')
    ldflags=$(echo "$line" | awk '$4 != "-" { print $4 }')
    cc="$prefix-gcc"
    if ! command -v "$cc" >/dev/null 2>&1; then
        echo "build.sh: $cc not found (apt-get install -y $pkg)" >&2
        exit 1
    fi

    mkdir -p "$m"
    echo "== $m ($cc)"
    set -x
    "$cc" $CFLAGS -fPIC -shared -Wl,-soname,libfix.so.1 $ldflags \
        -o "$m/libfix.so.1" src/libfix.c
    "$cc" $CFLAGS -fPIE -pie -Wl,--enable-new-dtags -Wl,-rpath,'$ORIGIN' $ldflags \
        -o "$m/hello" src/hello.c "$m/libfix.so.1"
    python3 strip_sections.py "$m/hello" "$m/hello.nosections"
    { set +x; } 2>/dev/null
done

python3 make_expected.py
