/* The set*id family with ids of 2^31 and more, (u32)-1 and 64-bit register
 * values, as root and after dropping root; each case in a forked child that
 * starts as root.  Prints getres[ug]id and /proc/self/status's Uid/Gid lines.
 * The last case chowns, as root and then unprivileged, files in the directory
 * given as argv[1]. */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

static void r(const char *what, long v) {
    printf("%s = %ld%s%s\n", what, v, v < 0 ? " " : "", v < 0 ? strerror(errno) : "");
    errno = 0;
}

static void show(void) {
    uid_t ru, eu, su;
    gid_t rg, eg, sg;
    getresuid(&ru, &eu, &su);
    getresgid(&rg, &eg, &sg);
    printf("  res uid %u %u %u gid %u %u %u\n", ru, eu, su, rg, eg, sg);
    FILE *f = fopen("/proc/self/status", "r");
    char line[256];
    while (f && fgets(line, sizeof line, f))
        if (!strncmp(line, "Uid:", 4) || !strncmp(line, "Gid:", 4))
            printf("  %s", line);
    if (f)
        fclose(f);
}

#define U31 0x80000000u
#define UMAX 0xFFFFFFFEu

static void scenario(int n) {
    switch (n) {
    case 0:
        r("setresgid(2^31, 2^32-2, 2^31+1)", setresgid(U31, UMAX, U31 + 1));
        r("setresuid(2^31, 2^32-2, -1)", setresuid(U31, UMAX, -1));
        show();
        r("setresuid(0, 0, 0) via the saved uid", setresuid(0, 0, 0));
        show();
        break;
    case 1:
        r("setuid(-1)", setuid(-1));
        r("setgid(-1)", setgid(-1));
        r("setgid(2^31+5)", setgid(U31 + 5));
        r("setuid(2^31+5)", setuid(U31 + 5));
        show();
        r("setuid(0)", setuid(0));
        r("setresuid(-1, 2^31+5, -1)", setresuid(-1, U31 + 5, -1));
        r("setresuid(-1, 7, -1)", setresuid(-1, 7, -1));
        r("setgroups(0)", setgroups(0, NULL));
        break;
    case 2:
        r("setreuid(2^31, -1)", setreuid(U31, -1));
        show();
        r("setreuid(-1, 2^32-2)", setreuid(-1, UMAX));
        show();
        r("setreuid(0, -1)", setreuid(0, -1));
        show();
        r("setreuid(5, -1)", setreuid(5, -1));
        break;
    case 3:
        r("raw setresuid(0x100000007, -1 as u64, 0xFFFFFFFF)",
          syscall(SYS_setresuid, 0x100000007L, -1L, 0xFFFFFFFFL));
        r("raw setregid(0xFFFFFFFF00000009, -1)", syscall(SYS_setregid, 0xFFFFFFFF00000009UL, -1L));
        show();
        r("setresuid(8, 8, 8)", setresuid(8, 8, 8));
        r("setresuid(7, 7, 7)", setresuid(7, 7, 7));
        show();
        r("setresgid(3, 3, 3) unprivileged", setresgid(3, 3, 3));
        break;
    }
}

static void chowns(const char *dir) {
    char mine[4096], other[4096];
    snprintf(mine, sizeof mine, "%s/mine", dir);
    snprintf(other, sizeof other, "%s/other", dir);
    chmod(dir, 0755); /* searchable once root is dropped */
    close(open(mine, O_CREAT | O_WRONLY, 0644));
    close(open(other, O_CREAT | O_WRONLY, 0644));
    r("chown(mine, 2^31+1, 2^31+2) as root", chown(mine, U31 + 1, U31 + 2));
    r("chown(other, 2^31+3, 2^31+4) as root", chown(other, U31 + 3, U31 + 4));
    gid_t groups[] = {U31 + 9};
    r("setgroups(2^31+9)", setgroups(1, groups));
    r("setresgid(2^31+2, 2^31+2, 2^31+2)", setresgid(U31 + 2, U31 + 2, U31 + 2));
    r("setresuid(2^31+1, 2^31+1, 2^31+1)", setresuid(U31 + 1, U31 + 1, U31 + 1));
    r("chown(mine, -1, -1)", chown(mine, -1, -1));
    r("chown(mine, 2^31+1, -1) (itself)", chown(mine, U31 + 1, -1));
    r("chown(mine, 2^31+3, -1)", chown(mine, U31 + 3, -1));
    r("chown(mine, -1, 2^31+9) (a group of mine)", chown(mine, -1, U31 + 9));
    r("chown(mine, -1, 2^31+2) (my egid)", chown(mine, -1, U31 + 2));
    r("chown(mine, -1, 5) (not mine)", chown(mine, -1, 5));
    r("chown(other, -1, 2^31+2) (not the owner)", chown(other, -1, U31 + 2));
    r("chown(other, -1, -1) (not the owner)", chown(other, -1, -1));
    r("lchown(other, 2^31+1, -1)", lchown(other, U31 + 1, -1));
    struct stat st;
    stat(mine, &st);
    printf("  mine %u %u\n", (unsigned)st.st_uid, (unsigned)st.st_gid);
    stat(other, &st);
    printf("  other %u %u\n", (unsigned)st.st_uid, (unsigned)st.st_gid);
}

int main(int argc, char **argv) {
    setvbuf(stdout, NULL, _IONBF, 0);
    if (argc > 1) {
        pid_t pid = fork();
        if (pid == 0) {
            chowns(argv[1]);
            _exit(0);
        }
        int st;
        waitpid(pid, &st, 0);
        printf("exit %d\n", WEXITSTATUS(st));
        return 0;
    }
    for (int n = 0; n < 4; n++) {
        printf("scenario %d\n", n);
        pid_t pid = fork();
        if (pid == 0) {
            scenario(n);
            _exit(0);
        }
        int st;
        waitpid(pid, &st, 0);
        printf("exit %d\n", WEXITSTATUS(st));
    }
    return 0;
}
