/* N x (fork, child _exit(0), parent waitpid): the cost of creating and
 * reaping a process, address-space copy included. A child that does not exit
 * 0 fails the run. Usage: fork_loop N */
#include <stdio.h>
#include <stdlib.h>
#include <sys/wait.h>
#include <unistd.h>

int main(int argc, char **argv)
{
    long n = argc > 1 ? atol(argv[1]) : 0;
    for (long i = 0; i < n; i++) {
        pid_t pid = fork();
        if (pid < 0) {
            perror("fork");
            return 1;
        }
        if (pid == 0)
            _exit(0);
        int status;
        if (waitpid(pid, &status, 0) != pid || !WIFEXITED(status) || WEXITSTATUS(status)) {
            fprintf(stderr, "waitpid: child %d status %#x\n", (int)pid, status);
            return 1;
        }
    }
    return 0;
}
