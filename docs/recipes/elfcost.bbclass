# Yocto / OpenEmbedded: inherit elfcost in a recipe (or INHERIT += "elfcost" in local.conf).
# Runs after do_install on the recipe's staged files, ${D}, with the libraries they need from
# the recipe's target sysroot, ${RECIPE_SYSROOT} (libc and the DEPENDS' libraries): elfcost
# reads both in one root, ${ELFCOST_ROOT}, made of hard links (copies where the file system
# refuses them). elfcost-native must be in DEPENDS (or elfcost on the build host's PATH).
ELFCOST_BUDGET ?= "${THISDIR}/elfcost-budget.toml"
ELFCOST_DIRS ?= "${bindir} ${sbindir} ${base_bindir} ${base_sbindir} ${libexecdir}"
ELFCOST_ROOT = "${WORKDIR}/elfcost-root"

do_elfcost_check() {
    dirs=""
    for d in ${ELFCOST_DIRS}; do
        [ -d "${D}$d" ] && [ ! -L "${D}$d" ] && dirs="$dirs ${d#/}"
    done
    [ -n "$dirs" ] || return 0
    rm -rf "${ELFCOST_ROOT}"
    mkdir -p "${ELFCOST_ROOT}"
    cp -al "${RECIPE_SYSROOT}/." "${ELFCOST_ROOT}/" 2>/dev/null \
        || cp -a "${RECIPE_SYSROOT}/." "${ELFCOST_ROOT}/"
    cp -alf "${D}/." "${ELFCOST_ROOT}/" 2>/dev/null || cp -af "${D}/." "${ELFCOST_ROOT}/"
    # Paths relative to ${D} are matched as the image will have them (usr/bin/foo).
    cd "${D}"
    elfcost check --root "${ELFCOST_ROOT}" --budget "${ELFCOST_BUDGET}" $dirs
}
addtask elfcost_check after do_install before do_package
