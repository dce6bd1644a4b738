/* unshare(CLONE_FILES) of a shared fd table whose highest fd is past
   fs.nr_open: EMFILE (Linux's dup_fd), and fine again once nr_open allows
   it. Changes fs.nr_open (restored): run it in the sandbox only. */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <sched.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

static char stack[1 << 16];
static char saved[32];

static void set_nr_open(const char *v) {
    int fd = open("/proc/sys/fs/nr_open", O_WRONLY);
    write(fd, v, strlen(v));
    close(fd);
}

static int child(void *arg) {
    (void)arg;
    dup2(2, 65);
    set_nr_open("64");
    int r = unshare(CLONE_FILES);
    printf("unshare past nr_open: %s\n", r ? strerrorname_np(errno) : "ok");
    set_nr_open(saved);
    r = unshare(CLONE_FILES);
    printf("unshare within nr_open: %s\n", r ? strerrorname_np(errno) : "ok");
    fflush(stdout);
    return 0;
}

int main(void) {
    int fd = open("/proc/sys/fs/nr_open", O_RDONLY);
    ssize_t n = read(fd, saved, sizeof saved - 1);
    if (n <= 0) return 2;
    saved[n] = 0;
    close(fd);
    pid_t pid = clone(child, stack + sizeof stack, CLONE_FILES | SIGCHLD, NULL);
    int st;
    waitpid(pid, &st, 0);
    return WIFEXITED(st) ? WEXITSTATUS(st) : 1;
}
