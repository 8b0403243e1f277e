# debian/rules fragment: gate the staged package tree (debian/tmp) on its memory budget.
# The budget file lives in the source package: debian/elfcost-budget.toml.
ELFCOST ?= elfcost

execute_after_dh_auto_install:
	$(ELFCOST) check --root debian/tmp --budget debian/elfcost-budget.toml \
	  debian/tmp/usr/bin debian/tmp/usr/sbin
