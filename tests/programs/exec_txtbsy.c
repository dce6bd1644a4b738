/* execve of a file some process has open for writing is ETXTBSY (Linux's
 * deny_write_access in do_open_execat), whether the writer is the caller or
 * another process; once the writer closes it, the same execve runs it.
 * argv[1]: a scratch directory. */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

static char path[4096];

static int try_exec(void) {
    pid_t pid = fork();
    if (pid == 0) {
        char *argv[] = {path, NULL};
        char *envp[] = {NULL};
        execve(path, argv, envp);
        _exit(100 + errno);
    }
    int st = 0;
    waitpid(pid, &st, 0);
    return WIFEXITED(st) ? WEXITSTATUS(st) : -1;
}

int main(int argc, char **argv) {
    if (argc < 2) return 2;
    snprintf(path, sizeof path, "%s/script", argv[1]);
    int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0755);
    const char body[] = "#!/bin/sh\nexit 7\n";
    if (fd < 0 || write(fd, body, strlen(body)) < 0) return 3;
    /* the writer is a descriptor of the caller (inherited by the child) */
    printf("own writer: %d (ETXTBSY is %d)\n", try_exec(), 100 + ETXTBSY);
    close(fd);
    int go[2], done[2];
    if (pipe(go) || pipe(done)) return 4;
    pid_t w = fork();
    if (w == 0) {  /* another process holds it open for writing */
        int wfd = open(path, O_RDWR);
        char c = wfd >= 0 ? 'y' : 'n';
        write(go[1], &c, 1);
        read(done[0], &c, 1);
        _exit(0);
    }
    char c;
    read(go[0], &c, 1);
    printf("writer opened: %c\n", c);
    printf("other writer: %d\n", try_exec());
    write(done[1], "x", 1);
    waitpid(w, NULL, 0);
    printf("writer gone: %d\n", try_exec());
    int rfd = open(path, O_RDONLY);
    printf("reader only: %d\n", try_exec());
    close(rfd);
    return 0;
}
