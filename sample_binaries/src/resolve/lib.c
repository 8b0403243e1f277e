/* Library of a resolution scenario.  The Makefile builds it under many
   sonames; VARIANT makes copies of the same soname in different
   directories differ in content, so the chosen one can be told apart. */
const char resolve_variant[] = VARIANT;
