# Yocto / OpenEmbedded: inherit elfcost in a recipe (or INHERIT += "elfcost" in local.conf).
# Runs after do_install on the staged image of the recipe, ${D}. elfcost-native must be in
# DEPENDS (or elfcost on the build host's PATH).
ELFCOST_BUDGET ?= "${THISDIR}/elfcost-budget.toml"
ELFCOST_DIRS ?= "${D}${bindir} ${D}${sbindir}"

do_elfcost_check() {
    dirs=""
    for d in ${ELFCOST_DIRS}; do [ -d "$d" ] && dirs="$dirs $d"; done
    [ -n "$dirs" ] || return 0
    elfcost check --root "${D}" --budget "${ELFCOST_BUDGET}" $dirs
}
addtask elfcost_check after do_install before do_package
