/* A fork child stores into a MAP_SHARED mapping of a file; the parent reads
   the stores through its own mapping and through pread(2) after wait(2), and
   the file keeps them after munmap/close (the test then runs cat on it).
   Also: a second mapping of the same file sees stores at once, write(2) shows
   through the mapping, ftruncate growth reads zeros. Usage: shared_file_fork PATH */
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/wait.h>
#include <unistd.h>

int main(int argc, char **argv) {
    if (argc != 2) return 2;
    int fd = open(argv[1], O_RDWR | O_CREAT | O_TRUNC, 0644);
    if (fd < 0) { perror("open"); return 1; }
    if (write(fd, "original-", 9) != 9) { perror("write"); return 1; }
    if (ftruncate(fd, 3 * 4096) < 0) { perror("ftruncate"); return 1; }
    char *m = mmap(NULL, 3 * 4096, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
    char *m2 = mmap(NULL, 4096, PROT_READ, MAP_SHARED, fd, 4096);
    if (m == MAP_FAILED || m2 == MAP_FAILED) { perror("mmap"); return 1; }
    printf("mapped: %.9s\n", m);
    pid_t pid = fork();
    if (pid == 0) {
        memcpy(m + 9, "child-was-here\n", 15);
        memcpy(m + 4096, "second page\n", 12);
        memcpy(m + 2 * 4096 + 100, "third\n", 6);
        _exit(0);
    }
    int st;
    waitpid(pid, &st, 0);
    printf("child status %d\n", st);
    printf("via mapping: %.24s", m);
    printf("via second mapping: %.12s", m2);
    char buf[64] = {0};
    pread(fd, buf, 24, 0);
    printf("via pread: %s", buf);
    memset(buf, 0, sizeof buf);
    pread(fd, buf, 6, 2 * 4096 + 100);
    printf("page 3 via pread: %s", buf);
    /* write(2) shows through the mapping */
    pwrite(fd, "WRITTEN", 7, 4096 + 20);
    printf("pwrite via mapping: %.7s\n", m + 4096 + 20);
    /* shrink and grow: the dropped tail reads zeros */
    if (ftruncate(fd, 4096 + 30) < 0) { perror("ftruncate"); return 1; }
    if (ftruncate(fd, 3 * 4096) < 0) { perror("ftruncate"); return 1; }
    memset(buf, 1, sizeof buf);
    pread(fd, buf, 6, 2 * 4096 + 100);
    printf("after shrink+grow: %d %d\n", buf[0], buf[5]);
    if (msync(m, 3 * 4096, MS_SYNC) < 0) { perror("msync"); return 1; }
    munmap(m, 3 * 4096);
    munmap(m2, 4096);
    if (ftruncate(fd, 4096 + 12) < 0) { perror("ftruncate"); return 1; }
    close(fd);
    return 0;
}
