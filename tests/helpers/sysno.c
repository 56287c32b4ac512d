/* sysno N [ARG...]: make raw syscall N with integer or string arguments and
 * print "<return value> <errno name or 0>". Built by the seccomp tests
 * (cc -static) and bound into containers. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <sys/syscall.h>

static long arg(const char *s) {
    char *end;
    long v = strtol(s, &end, 0);
    return *end ? (long)s : v; /* not a number: pass the string */
}

int main(int argc, char **argv) {
    long a[6] = {0};
    if (argc < 2)
        return 2;
    for (int i = 2; i < argc && i < 8; i++)
        a[i - 2] = arg(argv[i]);
    errno = 0;
    long r = syscall(strtol(argv[1], NULL, 0), a[0], a[1], a[2], a[3], a[4], a[5]);
    int e = errno;
    printf("%ld %s\n", r, e == 0 ? "0" : e == ENOSYS ? "ENOSYS" : e == EPERM ? "EPERM"
           : e == EACCES ? "EACCES" : e == ENOENT ? "ENOENT" : strerror(e));
    return 0;
}
