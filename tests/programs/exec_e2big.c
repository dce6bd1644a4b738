/* execve with one argument (or environment string) at and past Linux's
 * per-string limit, MAX_ARG_STRLEN (32 pages = 131072 bytes, counting the
 * NUL): the longest allowed one runs, one byte more is E2BIG (not
 * ENAMETOOLONG, which is for paths).  Usage: exec_e2big (re-executes itself
 * through argv[0], which must be a path). */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#define MAX_ARG_STRLEN (32 * 4096)

static const char *ename(int e) {
    switch (e) {
    case E2BIG: return "E2BIG";
    case ENAMETOOLONG: return "ENAMETOOLONG";
    case EFAULT: return "EFAULT";
    default: return strerror(e);
    }
}

/* Exec argv[0] "child" with one string of len bytes in argv or envp; report. */
static void try_exec(const char *self, const char *what, size_t len, int in_env) {
    char *s = malloc(len + 8);
    size_t off = 0;
    if (in_env) {
        memcpy(s, "BIG=", 4);
        off = 4;
    }
    memset(s + off, 'x', len - off);
    s[len] = '\0';
    char *argv_arg[] = {(char *)self, "child", s, NULL};
    char *argv_env[] = {(char *)self, "child", NULL};
    char *envp_env[] = {s, NULL};
    char *envp_none[] = {NULL};
    fflush(stdout);
    pid_t pid = fork();
    if (pid == 0) {
        execve(self, in_env ? argv_env : argv_arg, in_env ? envp_env : envp_none);
        printf("%-40s -1 %s\n", what, ename(errno));
        fflush(stdout);
        _exit(0);
    }
    int status;
    waitpid(pid, &status, 0);
    free(s);
}

int main(int argc, char **argv) {
    if (argc >= 2 && strcmp(argv[1], "child") == 0) {
        const char *big = argc >= 3 ? argv[2] : getenv("BIG");
        printf("%-40s ran, %zu bytes\n", argc >= 3 ? "  child argv[2]" : "  child env BIG=",
               big ? strlen(big) : 0);
        return 0;
    }
    setvbuf(stdout, NULL, _IOLBF, 0);
    try_exec(argv[0], "argument of MAX_ARG_STRLEN-1 bytes", MAX_ARG_STRLEN - 1, 0);
    try_exec(argv[0], "argument of MAX_ARG_STRLEN bytes", MAX_ARG_STRLEN, 0);
    try_exec(argv[0], "argument of 200000 bytes", 200000, 0);
    try_exec(argv[0], "env string of MAX_ARG_STRLEN-1 bytes", MAX_ARG_STRLEN - 1, 1);
    try_exec(argv[0], "env string of MAX_ARG_STRLEN bytes", MAX_ARG_STRLEN, 1);
    return 0;
}
