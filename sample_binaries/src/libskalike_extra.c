/* libskalike's other member: the part of the library skalike.c does not use. Its data,
   pointer table and bss are in libskalike.so, and left out when the archive is linked in. */
#include <stdio.h>
#include <string.h>

static const char *const sk_extra_names[] = {
    "ftrigr", "ftrigw", "s6lock", "fdholder", "accessrules", "svstatus", "dtally", "instance",
    "servicedir", "supervise_link", "svc_write", "svc_writectl", "compat", "uidgid", "ip4", "ip6",
};
const char *const *const sk_extra_table[4] = { sk_extra_names, sk_extra_names + 4,
                                               sk_extra_names + 8, sk_extra_names + 12 };
char sk_extra_data[4096] = "extra";
char sk_extra_bss[65536];

int sk_extra(const char *s)
{
    for (unsigned i = 0; i < sizeof sk_extra_names / sizeof *sk_extra_names; i++)
        if (!strcmp(sk_extra_names[i], s))
            return snprintf(sk_extra_bss, sizeof sk_extra_bss, "%s%s", sk_extra_data, s);
    return fputs(s, stderr);
}
