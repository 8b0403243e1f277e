# debian/rules fragment, for a package that does not use the debhelper add-on (dh $@ --with
# elfcost checks each binary package instead: docs/distribution.md). After dh_auto_install,
# gate debian/tmp on its memory budget, debian/elfcost.toml. Paths are matched inside debian/tmp
# (usr/bin/foo); libraries are found in debian/tmp first, then on the build system, as they
# will be once the package is installed.
ELFCOST ?= elfcost

execute_after_dh_auto_install:
	cd debian/tmp && [ ! -d usr ] || { \
	  libs=$$(find "$$PWD" -name '*.so*' -type f -printf '%h\n' | sort -u | paste -sd: -); \
	  $(ELFCOST) check --budget ../elfcost.toml --isa-level baseline \
	    $${libs:+--ld-library-path "$$libs"} usr; }
