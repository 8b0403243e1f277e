#!/bin/bash
# Verify the samples that the Makefile built into OUT:
#   - every runtime sample is alive after 0.2 s, prints nothing (stdio
#     prints one line) and dies from SIGTERM;
#   - every sample shows the ELF feature it claims (readelf);
#   - every resolution scenario resolves as README.md says.
# Usage: check.sh OUT      (make check runs it)
set -u
export LC_ALL=C
unset LD_LIBRARY_PATH LD_PRELOAD

out=$(cd "${1:?usage: check.sh OUT}" && pwd) || exit 2
R=$out/resolve
GLIBC_LDSO=/lib64/ld-linux-x86-64.so.2
MUSL_LDSO=/lib/ld-musl-x86_64.so.1
I386_LDSO=/lib/ld-linux.so.2
PAGE=4096
failures=0
checks=0

pass() { checks=$((checks + 1)); }
fail() { checks=$((checks + 1)); failures=$((failures + 1)); echo "FAIL: $*"; }
expect() { # expect DESCRIPTION COMMAND...
    local what=$1
    shift
    if "$@"; then pass; else fail "$what"; fi
}

# ---------------------------------------------------------------- helpers

mode_of() { echo "${1##*.}"; }
is_dynamic() { case $1 in pie|nopie|now|lazy|norelro|musl-dyn|i386|i386-nopie) return 0;; esac; return 1; }
is_pic_exe() { case $1 in pie|now|lazy|norelro|static-pie|musl-dyn|i386|i386-static-pie) return 0;; esac; return 1; }
rel() { # MODE NAME: the relocation type NAME (COPY, JUMP_SLOT, ...) of the mode's machine
    case $1 in i386*) echo "R_386_$2";; *) echo "R_X86_64_$2";; esac
}

reloc_count() { # FILE TYPE
    readelf -rW "$1" 2>/dev/null | awk -v t="$2" '$3 == t' | wc -l
}
dyn_has() { # FILE REGEX
    readelf -dW "$1" 2>/dev/null | grep -Eq "$2"
}
phdr_has() { # FILE TYPE
    readelf -lW "$1" 2>/dev/null | awk '{print $1}' | grep -qx "$2"
}
# Page numbers of all relocation targets, one per line (not de-duplicated).
reloc_pages() { # FILE
    local off
    readelf -rW "$1" 2>/dev/null | awk '$1 ~ /^[0-9a-f]+$/ && length($1) >= 8 {print $1}' |
        while read -r off; do echo $((0x$off / PAGE)); done
}
elf_type() { readelf -hW "$1" | awk '$1 == "Type:" {print $2}'; }
copies_table() { # FILE TYPE: a TYPE (COPY) relocation names copydata_table
    readelf -rW "$1" | awk -v t="$2" '$3 == t' | grep -q copydata_table
}
symbol() { # FILE NAME -> "value size"
    readelf -sW "$1" | awk -v n="$2" '$8 == n {print $2, $3; exit}'
}
# The first writable PT_LOAD: "vaddr filesz memsz"
rw_load() {
    readelf -lW "$1" | awk '$1 == "LOAD" && $7 ~ /W/ {print $3, $5, $6; exit}'
}

# ------------------------------------------------------------- runtime run

declare -A pids
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
runtime=()
for f in "$out"/*.*; do
    case $f in *.so|*.stamp) continue;; esac
    [ -f "$f" ] && [ -x "$f" ] && runtime+=("$f")
done
[ ${#runtime[@]} -gt 0 ] || fail "no runtime samples in $out"
for f in "${runtime[@]}"; do
    n=$(basename "$f")
    "$f" >"$tmp/$n.out" 2>"$tmp/$n.err" </dev/null &
    pids[$n]=$!
done
sleep 0.2
for f in "${runtime[@]}"; do
    n=$(basename "$f")
    expect "$n is not running after 0.2 s" kill -0 "${pids[$n]}"
done
for f in "${runtime[@]}"; do
    n=$(basename "$f")
    kill -TERM "${pids[$n]}" 2>/dev/null
    wait "${pids[$n]}"
    rc=$?
    expect "$n: exit status $rc after SIGTERM, want 143" test "$rc" -eq 143
    expect "$n wrote to stderr" test ! -s "$tmp/$n.err"
    case $n in
    stdio.*) expect "$n: stdout is not the one line" \
        grep -qx 'stdio sample: one line through stdout' "$tmp/$n.out";;
    *) expect "$n wrote to stdout" test ! -s "$tmp/$n.out";;
    esac
done

# ----------------------------------------------------------- link modes

for f in "${runtime[@]}"; do
    n=$(basename "$f")
    m=$(mode_of "$f")
    case $m in
    pie|now|lazy|norelro)
        expect "$n: not a PIE" dyn_has "$f" 'FLAGS_1.*PIE'
        expect "$n: wrong interpreter" sh -c "readelf -lW '$f' | grep -q 'interpreter: $GLIBC_LDSO'";;
    nopie)
        expect "$n: not ET_EXEC" test "$(elf_type "$f")" = EXEC
        expect "$n: wrong interpreter" sh -c "readelf -lW '$f' | grep -q 'interpreter: $GLIBC_LDSO'";;
    static|musl-static|i386-static)
        expect "$n: not ET_EXEC" test "$(elf_type "$f")" = EXEC
        expect "$n: has PT_INTERP" eval '! phdr_has "$f" INTERP'
        expect "$n: has PT_DYNAMIC" eval '! phdr_has "$f" DYNAMIC';;
    static-pie|i386-static-pie)
        expect "$n: not ET_DYN" test "$(elf_type "$f")" = DYN
        expect "$n: has PT_INTERP" eval '! phdr_has "$f" INTERP'
        expect "$n: no PT_DYNAMIC" phdr_has "$f" DYNAMIC;;
    musl-dyn)
        expect "$n: not a PIE" dyn_has "$f" 'FLAGS_1.*PIE'
        expect "$n: wrong interpreter" sh -c "readelf -lW '$f' | grep -q 'interpreter: $MUSL_LDSO'";;
    i386|i386-nopie)
        expect "$n: not ELF32 i386" sh -c "readelf -hW '$f' | grep -q 'Machine: *Intel 80386'"
        if [ "$m" = i386 ]; then
            expect "$n: not a PIE" dyn_has "$f" 'FLAGS_1.*PIE'
        else
            expect "$n: not ET_EXEC" test "$(elf_type "$f")" = EXEC
        fi
        expect "$n: wrong interpreter" sh -c "readelf -lW '$f' | grep -q 'interpreter: $I386_LDSO'";;
    esac
    case $m in
    now) expect "$n: no BIND_NOW" dyn_has "$f" 'BIND_NOW|FLAGS_1.*NOW';;
    pie|lazy|nopie|norelro|musl-dyn|i386|i386-nopie)
        expect "$n: binds now" eval '! dyn_has "$f" "BIND_NOW|FLAGS_1.*NOW"';;
    esac
    case $m in
    norelro) expect "$n: has PT_GNU_RELRO" eval '! phdr_has "$f" GNU_RELRO';;
    *) expect "$n: no PT_GNU_RELRO" phdr_has "$f" GNU_RELRO;;
    esac
done

# ------------------------------------------------------------ behaviours

for f in "${runtime[@]}"; do
    n=$(basename "$f")
    m=$(mode_of "$f")
    case $n in
    bss_tail.*)
        read -r va fs ms < <(rw_load "$f")
        end=$((va + fs))
        expect "$n: RW segment has no bss" test $((ms)) -gt $((fs))
        expect "$n: .data ends on a page boundary" test $((end % PAGE)) -ne 0
        if is_dynamic "$m"; then
            # No relocation may land on the tail page: it must be dirty for
            # the bss-tail reason only.
            hits=$(reloc_pages "$f" | grep -cx $((end / PAGE)))
            expect "$n: $hits relocation(s) on the bss tail page" test "$hits" -eq 0
        fi;;
    bss_touched.*)
        read -r v s < <(symbol "$f" bss_touched)
        expect "$n: bss_touched is not a page-aligned 64 KiB object" \
            test $((0x$v % PAGE)) -eq 0 -a "$s" -eq 65536;;
    data_untouched_large.*)
        s=$(readelf -SW "$f" | awk '$2 == ".data" {print $6}')
        expect "$n: .data smaller than 256 KiB" test $((0x$s)) -ge 262144;;
    relro_ptr_table.*)
        rel=$(reloc_count "$f" "$(rel "$m" RELATIVE)")
        if is_pic_exe "$m"; then
            expect "$n: only $rel RELATIVE relocations" test "$rel" -ge 4000
            if [ "$m" != norelro ]; then
                read -r v sz < <(symbol "$f" relro_ptr_table)
                read -r rv rm < <(readelf -lW "$f" | awk '$1 == "GNU_RELRO" {print $3, $6}')
                expect "$n: table is not inside PT_GNU_RELRO" \
                    test $((0x$v)) -ge $((rv)) -a $((0x$v + sz)) -le $((rv + rm))
            fi
        else
            expect "$n: $rel RELATIVE relocations in a non-PIE" test "$rel" -eq 0
        fi;;
    copy_reloc.*)
        copy=$(rel "$m" COPY)
        if [ "$m" = i386 ]; then
            # GCC's i386 PIE code reaches the library's data through the GOT: no COPY.
            expect "$n: a COPY relocation in an i386 PIE" eval '! copies_table "$f" "$copy"'
        else
            expect "$n: no $copy for copydata_table" copies_table "$f" "$copy"
        fi
        expect "$n: does not need libcopydata.so" dyn_has "$f" 'NEEDED.*\[libcopydata\.so\]';;
    tls.*)
        read -r fs ms < <(readelf -lW "$f" | awk '$1 == "TLS" {print $5, $6}')
        expect "$n: PT_TLS filesz $fs memsz $ms" test $((fs)) -ge 20000 -a $((ms)) -ge 120000;;
    ctor.*)
        expect "$n: no ctor_touch symbol" test -n "$(symbol "$f" ctor_touch)"
        expect "$n: no .init_array" sh -c "readelf -SW '$f' | grep -q '\.init_array'";;
    ctorlib.*)
        expect "$n: no main_init symbol" test -n "$(symbol "$f" main_init)"
        if is_dynamic "$m"; then
            expect "$n: does not need libctorinit.so" dyn_has "$f" 'NEEDED.*\[libctorinit\.so\]'
        else
            expect "$n: init_lib not linked in" test -n "$(symbol "$f" init_lib)"
        fi;;
    ownlib.*)
        expect "$n: does not need libown.so" dyn_has "$f" 'NEEDED.*\[libown\.so\]'
        case $m in
        musl-dyn) want='RUNPATH.*\[\$ORIGIN/musl\]';;
        i386*) want='RUNPATH.*\[\$ORIGIN/i386\]';;
        *) want='RUNPATH.*\[\$ORIGIN\]';;
        esac
        expect "$n: RUNPATH is not \$ORIGIN" dyn_has "$f" "$want"
        expect "$n: has DT_RPATH" eval '! dyn_has "$f" "\(RPATH\)"';;
    many_plt.*)
        js=$(reloc_count "$f" "$(rel "$m" JUMP_SLOT)")
        expect "$n: only $js JUMP_SLOT relocations" test "$js" -ge 2000;;
    ifunc.*)
        ir=$(reloc_count "$f" "$(rel "$m" IRELATIVE)")
        expect "$n: no IRELATIVE relocation" test "$ir" -ge 1;;
    textrel.*)
        expect "$n: does not need libtextrel.so" dyn_has "$f" 'NEEDED.*\[libtextrel\.so\]';;
    esac
done

for dir in "$out" "$out/musl"; do
    lib=$dir/libtextrel.so
    [ -f "$lib" ] || continue
    expect "$lib: no DT_TEXTREL" dyn_has "$lib" '\(TEXTREL\)'
    # Relocations that land in the executable PT_LOAD, by page.
    read -r xv xm < <(readelf -lW "$lib" | awk '$1 == "LOAD" && / R E | RWE / {print $3, $6}')
    pages=$(reloc_pages "$lib" | sort -u |
        while read -r p; do [ $((p * PAGE)) -ge $((xv & ~(PAGE - 1))) ] && [ $((p * PAGE)) -lt $((xv + xm)) ] && echo "$p"; done |
        wc -l)
    expect "$lib: text relocations on $pages pages, want 2" test "$pages" -eq 2
done
for dir in "$out" "$out/musl"; do
    lib=$dir/libown.so
    [ -f "$lib" ] || continue
    expect "$lib: own_ops has no RELATIVE relocations" test "$(reloc_count "$lib" R_X86_64_RELATIVE)" -ge 4
done

# ------------------------------------------------------------ resolution

# "soname realpath" lines, or "soname NOTFOUND", from the glibc loader in
# trace mode (what ldd uses; --list aborts at the first missing library).
glibc_trace() { # EXE [VAR=VALUE...]
    local exe=$1
    shift
    env -i "$@" LD_TRACE_LOADED_OBJECTS=1 "$GLIBC_LDSO" "$exe" | normalise
}
glibc_list() { # EXE [VAR=VALUE...]
    local exe=$1
    shift
    env -i "$@" "$GLIBC_LDSO" --list "$exe" | normalise
}
musl_list() { # EXE [VAR=VALUE...]
    local exe=$1
    shift
    env -i "$@" "$MUSL_LDSO" --list "$exe" 2>/dev/null | normalise
}
normalise() {
    local name arrow path
    while read -r name arrow path _; do
        case $arrow in
        "=>") case $path in
              not) echo "$name NOTFOUND";;
              /*|.*|[a-z]*) echo "$name $(realpath -e "$path" 2>/dev/null || echo "MISSING:$path")";;
              esac;;
        esac
    done
}
resolved() { # OUTPUT SONAME -> realpath or NOTFOUND (empty if not listed)
    awk -v n="$2" '$1 == n {print $2; exit}' <<<"$1"
}
want() { # DESCRIPTION OUTPUT SONAME EXPECTED-PATH-or-NOTFOUND
    local got
    got=$(resolved "$2" "$3")
    local exp=$4
    [ "$exp" = NOTFOUND ] || exp=$(realpath -e "$exp")
    if [ "$got" = "$exp" ]; then pass; else fail "$1: $3 resolved to '${got:-<not listed>}', want '$exp'"; fi
}

if [ -d "$R" ]; then
    d=$R/rpath_vs_runpath
    want "glibc exe_rpath" "$(glibc_trace $d/exe_rpath)" libdup.so $d/A/libdup.so
    want "glibc exe_rpath + LD_LIBRARY_PATH=C" "$(glibc_trace $d/exe_rpath LD_LIBRARY_PATH=$d/C)" libdup.so $d/A/libdup.so
    want "glibc exe_runpath" "$(glibc_trace $d/exe_runpath)" libdup.so $d/B/libdup.so
    want "glibc exe_runpath + LD_LIBRARY_PATH=C" "$(glibc_trace $d/exe_runpath LD_LIBRARY_PATH=$d/C)" libdup.so $d/C/libdup.so
    want "glibc exe_runpath + --library-path C" \
        "$(env -i "$GLIBC_LDSO" --library-path $d/C --list $d/exe_runpath | normalise)" libdup.so $d/C/libdup.so
    expect "exe_rpath has no DT_RPATH" dyn_has $d/exe_rpath '\(RPATH\)'
    expect "exe_runpath has no DT_RUNPATH" dyn_has $d/exe_runpath '\(RUNPATH\)'

    d=$R/rpath_inherit
    o=$(glibc_trace $d/exe)
    want "glibc rpath_inherit" "$o" libmid.so $d/lib/libmid.so
    want "glibc rpath_inherit" "$o" libleaf.so $d/lib/libleaf.so
    d=$R/runpath_noinherit
    o=$(glibc_trace $d/exe)
    want "glibc runpath_noinherit" "$o" libmid.so $d/lib/libmid.so
    want "glibc runpath_noinherit" "$o" libleaf.so NOTFOUND
    env -i "$GLIBC_LDSO" --list $d/exe >/dev/null 2>&1
    rc=$?
    expect "glibc --list of runpath_noinherit: exit $rc, want 127" test "$rc" -eq 127

    d=$R/origin_symlink
    want "glibc --list real/bin/exe" "$(glibc_list $d/real/bin/exe)" libori.so $d/real/lib/libori.so
    want "glibc --list link/bin/exe (\$ORIGIN = symlink's directory)" \
        "$(glibc_list $d/link/bin/exe)" libori.so $d/link/lib/libori.so
    want "glibc exec link/bin/exe (\$ORIGIN = /proc/self/exe's directory)" \
        "$(env -i LD_TRACE_LOADED_OBJECTS=1 $d/link/bin/exe | normalise)" libori.so $d/real/lib/libori.so
    o=$(glibc_trace $d/app/exe)
    want "glibc app/exe" "$o" libviadir.so $d/pkg/lib/libviadir.so
    want "glibc app/exe (alias/lib/.. is pkg, not alias)" "$o" libdep.so $d/pkg/deps/libdep.so
    expect "glibc prints libdep.so under alias/lib/../deps" \
        sh -c "env -i $GLIBC_LDSO --list $d/app/exe | grep -q 'libdep.so => .*/alias/lib/\.\./deps/libdep.so'"

    d=$R/nodeflib
    expect "exe_nodeflib has no NODEFLIB" dyn_has $d/exe_nodeflib 'FLAGS_1.*NODEFLIB'
    o=$(glibc_trace $d/exe_nodeflib)
    want "glibc exe_nodeflib" "$o" libz.so.1 NOTFOUND
    want "glibc exe_nodeflib" "$o" libc.so.6 NOTFOUND
    o=$(glibc_trace $d/exe_nodeflib LD_LIBRARY_PATH=/lib/x86_64-linux-gnu)
    want "glibc exe_nodeflib + LD_LIBRARY_PATH" "$o" libz.so.1 /lib/x86_64-linux-gnu/libz.so.1
    if [ -e /lib/x86_64-linux-gnu/libz.so.1 ]; then
        want "glibc exe_default" "$(glibc_trace $d/exe_default)" libz.so.1 /lib/x86_64-linux-gnu/libz.so.1
    fi
    o=$(glibc_trace $d/exe_via_lib)
    want "glibc exe_via_lib" "$o" libnodef.so $d/lib/libnodef.so
    want "glibc exe_via_lib" "$o" libz.so.1 NOTFOUND
    want "glibc exe_via_lib" "$o" libc.so.6 /lib/x86_64-linux-gnu/libc.so.6

    d=$R/missing
    want "glibc missing" "$(glibc_trace $d/exe)" libdoesnotexist.so NOTFOUND

    d=$R/self_needed
    expect "libself.so does not need itself" dyn_has $d/libself.so 'NEEDED.*\[libself\.so\]'
    o=$(glibc_trace $d/exe)
    want "glibc self_needed" "$o" libself.so $d/libself.so
    expect "glibc lists libself.so more than once" test "$(grep -c '^libself.so ' <<<"$o")" -eq 1

    d=$R/cycle
    o=$(glibc_trace $d/exe)
    want "glibc cycle" "$o" libcyca.so $d/libcyca.so
    want "glibc cycle" "$o" libcycb.so $d/libcycb.so

    d=$R/wrong_class
    if [ -d $d ]; then
        expect "lib32/libwc.so is not ELFCLASS32" sh -c "readelf -hW $d/lib32/libwc.so | grep -q ELF32"
        want "glibc wrong_class" "$(glibc_trace $d/exe)" libwc.so $d/lib64/libwc.so
    fi

    d=$R/needed_slash
    expect "needed_slash/exe does not need ./sub/libslash.so" dyn_has $d/exe 'NEEDED.*\[\./sub/libslash\.so\]'
    o=$(cd $d && env -i LD_TRACE_LOADED_OBJECTS=1 $GLIBC_LDSO ./exe)
    expect "glibc needed_slash from its directory" grep -q '^[[:space:]]*\./sub/libslash\.so (0x' <<<"$o"
    o=$(cd / && env -i LD_TRACE_LOADED_OBJECTS=1 $GLIBC_LDSO $d/exe | normalise)
    want "glibc needed_slash from /" "$o" ./sub/libslash.so NOTFOUND
    o=$(cd / && env -i LD_TRACE_LOADED_OBJECTS=1 $GLIBC_LDSO $d/exe_abs)
    expect "glibc needed_slash exe_abs" grep -q "^[[:space:]]*$d/sub/libslash\.so (0x" <<<"$o"
fi

if [ -d "$R/musl" ]; then
    d=$R/musl/rpath_vs_runpath
    want "musl exe_rpath" "$(musl_list $d/exe_rpath)" libdup.so $d/A/libdup.so
    want "musl exe_rpath + LD_LIBRARY_PATH=C" "$(musl_list $d/exe_rpath LD_LIBRARY_PATH=$d/C)" libdup.so $d/C/libdup.so
    want "musl exe_runpath" "$(musl_list $d/exe_runpath)" libdup.so $d/B/libdup.so
    want "musl exe_runpath + LD_LIBRARY_PATH=C" "$(musl_list $d/exe_runpath LD_LIBRARY_PATH=$d/C)" libdup.so $d/C/libdup.so

    d=$R/musl/rpath_inherit
    want "musl rpath_inherit" "$(musl_list $d/exe)" libleaf.so $d/lib/libleaf.so
    d=$R/musl/runpath_noinherit
    want "musl runpath_noinherit (musl inherits RUNPATH too)" "$(musl_list $d/exe)" libleaf.so $d/lib/libleaf.so

    d=$R/musl/origin_symlink
    want "musl --list link/bin/exe" "$(musl_list $d/link/bin/exe)" libori.so $d/link/lib/libori.so
    want "musl app/exe" "$(musl_list $d/app/exe)" libdep.so $d/pkg/deps/libdep.so

    d=$R/musl/missing
    env -i "$MUSL_LDSO" --list $d/exe >"$tmp/musl.out" 2>&1
    rc=$?
    expect "musl missing: exit $rc, want 127" test "$rc" -eq 127
    expect "musl missing: no error message" grep -q 'Error loading shared library libdoesnotexist.so' "$tmp/musl.out"

    d=$R/musl/wrong_class
    if [ -d $d ]; then
        env -i "$MUSL_LDSO" --list $d/exe >"$tmp/musl.out" 2>&1
        rc=$?
        expect "musl wrong_class: exit $rc, want 127" test "$rc" -eq 127
        expect "musl wrong_class: no 'Exec format error'" grep -q 'libwc.so: Exec format error' "$tmp/musl.out"
    fi
fi

echo "$checks checks, $failures failed"
[ "$failures" -eq 0 ]
