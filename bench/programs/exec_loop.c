/* N x (fork, child execve of this same static binary with the argument
 * "exit", which returns at once, parent waitpid): process creation plus
 * loading a fresh static ELF. argv[0] must be a path the exec can find (the
 * benchmark passes an absolute one). Usage: exec_loop N */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

extern char **environ;

int main(int argc, char **argv)
{
    if (argc > 1 && strcmp(argv[1], "exit") == 0)
        return 0;
    long n = argc > 1 ? atol(argv[1]) : 0;
    char *child_argv[] = {argv[0], "exit", NULL};
    for (long i = 0; i < n; i++) {
        pid_t pid = fork();
        if (pid < 0) {
            perror("fork");
            return 1;
        }
        if (pid == 0) {
            execve(argv[0], child_argv, environ);
            _exit(127);
        }
        int status;
        if (waitpid(pid, &status, 0) != pid || !WIFEXITED(status) || WEXITSTATUS(status)) {
            fprintf(stderr, "waitpid: child %d status %#x\n", (int)pid, status);
            return 1;
        }
    }
    return 0;
}
