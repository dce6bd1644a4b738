/* Read-only private memory after fork: the Sentry shares it between parent
 * and child instead of copying it (sentry/mm/address_space.py fork), so every
 * way to change it must leave the other process's copy alone: mprotect to
 * writable then a write, madvise(MADV_DONTNEED), mremap, and the same in the
 * parent after the child has changed its copy. Also a read-only page of the
 * program's own text/rodata stays readable in both. Prints what each side
 * sees; the output is compared with Linux's. */
#define _GNU_SOURCE
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/wait.h>
#include <unistd.h>

static const char rodata[] = "rodata-before";

static char *ro_page(const char *text)
{
    char *p = mmap(NULL, 4096, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (p == MAP_FAILED) {
        perror("mmap");
        exit(1);
    }
    strcpy(p, text);
    if (mprotect(p, 4096, PROT_READ) != 0) {
        perror("mprotect");
        exit(1);
    }
    return p;
}

int main(void)
{
    char *a = ro_page("a-before");   /* child: mprotect + write */
    char *b = ro_page("b-before");   /* child: madvise DONTNEED */
    char *c = ro_page("c-before");   /* child: mremap to a new place, then write */
    char *d = ro_page("d-before");   /* parent writes after the child exited */
    fflush(stdout);
    pid_t pid = fork();
    if (pid < 0) {
        perror("fork");
        return 1;
    }
    if (pid == 0) {
        if (mprotect(a, 4096, PROT_READ | PROT_WRITE) != 0)
            _exit(2);
        strcpy(a, "a-child");
        if (madvise(b, 4096, MADV_DONTNEED) != 0)
            _exit(3);
        char *c2 = mremap(c, 4096, 8192, MREMAP_MAYMOVE);
        if (c2 == MAP_FAILED || mprotect(c2, 8192, PROT_READ | PROT_WRITE) != 0)
            _exit(4);
        strcpy(c2, "c-child");
        printf("child: a=%s b=[%s] c=%s d=%s rodata=%s\n", a, b, c2, d, rodata);
        fflush(stdout);
        _exit(0);
    }
    int status;
    if (waitpid(pid, &status, 0) != pid)
        return 5;
    printf("child status %d\n", WIFEXITED(status) ? WEXITSTATUS(status) : -1);
    printf("parent: a=%s b=%s c=%s d=%s rodata=%s\n", a, b, c, d, rodata);
    /* Now the parent changes d; a second child forked before that sees the old. */
    pid = fork();
    if (pid == 0) {
        usleep(100000);
        printf("second child: d=%s\n", d);
        fflush(stdout);
        _exit(0);
    }
    if (mprotect(d, 4096, PROT_READ | PROT_WRITE) != 0)
        return 6;
    strcpy(d, "d-parent");
    waitpid(pid, &status, 0);
    printf("parent: d=%s\n", d);
    return 0;
}
