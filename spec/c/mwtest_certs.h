/* mwtest_certs: the test certificates of spec/servers/tls_certs.sh, made in a
 * fresh temporary directory for a C unit test, and removed after it. */
#ifndef MWTEST_CERTS_H
#define MWTEST_CERTS_H
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Makes dir (from the template in dir, e.g. "/tmp/mw-x-XXXXXX") and the
 * certificates in dir/certs, whose path goes in certs. test_file is the
 * caller's __FILE__, an absolute path in spec/c/ (the script is found from
 * it). Returns 0, or -1 with a message on stderr. */
static int mwt_make_certs(char *dir, char *certs, size_t certscap, const char *test_file)
{
    if (!mkdtemp(dir)) { perror("mkdtemp"); return -1; }
    snprintf(certs, certscap, "%s/certs", dir);
    char src[512], cmd[1200];
    snprintf(src, sizeof src, "%s", test_file);
    char *cut = strstr(src, "spec/c/");
    if (!cut) { fprintf(stderr, "cannot find the source tree from %s\n", test_file); return -1; }
    *cut = 0;
    snprintf(cmd, sizeof cmd, "sh '%sspec/servers/tls_certs.sh' '%s' >/dev/null 2>&1", src, certs);
    if (system(cmd) != 0) { fprintf(stderr, "making certificates failed: %s\n", cmd); return -1; }
    return 0;
}

static void mwt_remove_dir(const char *dir)
{
    char cmd[300];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
    if (system(cmd) != 0) fprintf(stderr, "could not remove %s\n", dir);
}
#endif
