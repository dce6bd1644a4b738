/* Extended attributes in a directory given as argv[1]: set/get/list/remove by
 * path, by symlink and by descriptor, the flags, the limits, the namespaces'
 * rules for root and for an unprivileged user. Lists are printed sorted, since
 * filesystems differ in the order they keep names in. */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <sys/xattr.h>
#include <unistd.h>

static void report(const char *what, long r) {
    if (r < 0)
        printf("%s: %s\n", what, strerrorname_np(errno));
    else
        printf("%s: %ld\n", what, r);
}

static int cmp(const void *a, const void *b) {
    return strcmp(*(char *const *)a, *(char *const *)b);
}

static void print_list(const char *what, const char *buf, long n) {
    if (n < 0) {
        report(what, n);
        return;
    }
    char *names[64];
    int k = 0;
    for (long i = 0; i < n && k < 64; i += (long)strlen(buf + i) + 1)
        names[k++] = (char *)buf + i;
    qsort(names, k, sizeof names[0], cmp);
    printf("%s:", what);
    for (int i = 0; i < k; i++)
        printf(" %s", names[i]);
    printf("\n");
}

static void *volatile bad_ptr = (void *)8;

int main(int argc, char **argv) {
    if (argc < 2)
        return 2;
    char f[512], d[512], l[512], p[512], buf[70000];
    snprintf(f, sizeof f, "%s/file", argv[1]);
    snprintf(d, sizeof d, "%s/dir", argv[1]);
    snprintf(l, sizeof l, "%s/link", argv[1]);
    snprintf(p, sizeof p, "%s/fifo", argv[1]);
    chmod(argv[1], 0755);
    int fd = open(f, O_CREAT | O_RDWR, 0644);
    mkdir(d, 0755);
    symlink(f, l);
    mkfifo(p, 0644);

    report("set user.a", setxattr(f, "user.a", "hello", 5, 0));
    report("get size 0", getxattr(f, "user.a", NULL, 0));
    report("get short", getxattr(f, "user.a", buf, 2));
    long n = getxattr(f, "user.a", buf, sizeof buf);
    printf("get: %ld %.*s\n", n, (int)(n > 0 ? n : 0), buf);
    report("create existing", setxattr(f, "user.a", "x", 1, XATTR_CREATE));
    report("replace missing", setxattr(f, "user.missing", "x", 1, XATTR_REPLACE));
    report("replace existing", setxattr(f, "user.a", "bye", 3, XATTR_REPLACE));
    report("bad flags", setxattr(f, "user.a", "x", 1, 4));
    report("empty name", setxattr(f, "", "x", 1, 0));
    char longname[300];
    memset(longname, 'n', sizeof longname);
    memcpy(longname, "user.", 5);
    longname[256] = 0;
    report("name 256", setxattr(f, longname, "x", 1, 0));
    report("get name 256", getxattr(f, longname, buf, sizeof buf));
    report("value 65537", setxattr(f, "user.big", buf, 65537, 0));
    memset(buf, 'v', 1000);
    report("value 1000", setxattr(f, "user.kilo", buf, 1000, 0));
    report("get 1000", getxattr(f, "user.kilo", buf, sizeof buf));
    report("empty value", setxattr(f, "user.empty", "", 0, 0));
    report("get empty", getxattr(f, "user.empty", buf, sizeof buf));
    report("unknown prefix", setxattr(f, "foo.bar", "x", 1, 0));
    report("get unknown prefix", getxattr(f, "foo.bar", buf, sizeof buf));
    report("get missing", getxattr(f, "user.none", buf, sizeof buf));
    report("trusted set", setxattr(f, "trusted.t", "T", 1, 0));
    report("security set", setxattr(f, "security.pyvisor", "S", 1, 0));
    report("list size 0", listxattr(f, NULL, 0));
    report("list short", listxattr(f, buf, 3));
    print_list("list", buf, listxattr(f, buf, sizeof buf));

    report("lset on symlink", lsetxattr(l, "user.a", "x", 1, 0));
    report("lget on symlink", lgetxattr(l, "user.a", buf, sizeof buf));
    report("set through symlink", setxattr(l, "user.via", "L", 1, 0));
    report("get of target", getxattr(f, "user.via", buf, sizeof buf));
    report("lset trusted on symlink", lsetxattr(l, "trusted.l", "x", 1, 0));
    print_list("llist", buf, llistxattr(l, buf, sizeof buf));
    report("user on fifo", setxattr(p, "user.a", "x", 1, 0));
    report("get user on fifo", getxattr(p, "user.a", buf, sizeof buf));
    report("user on dir", setxattr(d, "user.d", "D", 1, 0));
    report("fset", fsetxattr(fd, "user.fd", "F", 1, 0));
    report("fget", fgetxattr(fd, "user.fd", buf, sizeof buf));
    report("fremove", fremovexattr(fd, "user.fd"));
    report("fget removed", fgetxattr(fd, "user.fd", buf, sizeof buf));
    report("fset bad fd", fsetxattr(999, "user.fd", "F", 1, 0));
    report("remove", removexattr(f, "user.kilo"));
    report("remove again", removexattr(f, "user.kilo"));
    report("get absent path", getxattr("/nonexistent/x", "user.a", buf, sizeof buf));
    report("bad name pointer", getxattr(f, (const char *)bad_ptr, buf, sizeof buf));
    report("bad value pointer", setxattr(f, "user.p", bad_ptr, 4, 0));
    print_list("list after", buf, listxattr(f, buf, sizeof buf));

    chmod(d, 01777);
    fflush(stdout);
    pid_t pid = fork();
    if (pid == 0) {
        if (setgid(65534) || setuid(65534))
            _exit(3);
        report("nobody set user", setxattr(f, "user.n", "x", 1, 0));
        report("nobody get user", getxattr(f, "user.a", buf, sizeof buf));
        report("nobody get trusted", getxattr(f, "trusted.t", buf, sizeof buf));
        report("nobody set trusted", setxattr(f, "trusted.n", "x", 1, 0));
        report("nobody get security", getxattr(f, "security.pyvisor", buf, sizeof buf));
        report("nobody set security", setxattr(f, "security.n", "x", 1, 0));
        report("nobody sticky dir", setxattr(d, "user.s", "x", 1, 0));
        print_list("nobody list", buf, listxattr(f, buf, sizeof buf));
        fflush(stdout);
        _exit(0);
    }
    int status;
    waitpid(pid, &status, 0);
    printf("child: %d\n", WEXITSTATUS(status));
    close(fd);
    return 0;
}
