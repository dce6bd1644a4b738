/* execveat: relative to a directory descriptor, fexecve-style with
 * AT_EMPTY_PATH, AT_SYMLINK_NOFOLLOW on a symlink, and the errors. Each exec
 * runs in a child that prints what it was run as. Usage: execveat_calls DIR */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

static char *const args[] = {"probe", "child", NULL};
static char *const env[] = {NULL};

static void run(const char *what, int dirfd, const char *path, int flags) {
    pid_t pid = fork();
    if (pid == 0) {
        syscall(SYS_execveat, dirfd, path, args, env, flags);
        printf("%s: -1 %s\n", what, strerrorname_np(errno));
        fflush(stdout);
        _exit(0);
    }
    int st;
    waitpid(pid, &st, 0);
}

int main(int argc, char **argv) {
    if (argc > 1 && strcmp(argv[1], "child") == 0) {
        printf("  ran as %s\n", argv[0]);
        return 0;
    }
    if (argc < 2)
        return 2;
    setvbuf(stdout, NULL, _IOLBF, 0);
    char self[4096], copy[4200], link[4200];
    ssize_t n = readlink("/proc/self/exe", self, sizeof self - 1);
    self[n < 0 ? 0 : n] = 0;
    snprintf(copy, sizeof copy, "%s/prog", argv[1]);
    snprintf(link, sizeof link, "%s/link", argv[1]);
    int in = open(self, O_RDONLY), out = open(copy, O_CREAT | O_WRONLY | O_TRUNC, 0755);
    char buf[65536];
    ssize_t r;
    while ((r = read(in, buf, sizeof buf)) > 0)
        if (write(out, buf, r) != r)
            return 1;
    close(in);
    close(out);
    if (symlink("prog", link) != 0)
        return 1;
    int dir = open(argv[1], O_RDONLY | O_DIRECTORY);
    int file = open(copy, O_RDONLY);
    printf("relative to dirfd\n");
    run("relative", dir, "prog", 0);
    printf("empty path on the file\n");
    run("empty path", file, "", AT_EMPTY_PATH);
    printf("empty path without the flag\n");
    run("empty no flag", file, "", 0);
    printf("nofollow on a symlink\n");
    run("nofollow", dir, "link", AT_SYMLINK_NOFOLLOW);
    printf("follow the symlink\n");
    run("follow", dir, "link", 0);
    printf("bad flags\n");
    run("bad flags", dir, "prog", 0x2);
    printf("dirfd is a file\n");
    run("dirfd file", file, "prog", 0);
    return 0;
}
