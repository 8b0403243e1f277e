#!/usr/bin/perl
# dh $@ --with elfcost: check every binary package's staged tree against its memory budget
# (dh_elfcost) once its files are final (stripped) and its library dependencies known.
use strict;
use warnings;
use Debian::Debhelper::Dh_Lib;

insert_after('dh_shlibdeps', 'dh_elfcost');
add_command_options('dh_clean', 'debian/elfcost-junit.xml');

1;
