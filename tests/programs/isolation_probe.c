/* Cross-process isolation probe: can an unprivileged process read a secret
 * held by a root process of the same sandbox (or host)?
 *
 * The parent (root) forks first, so the child's memory never holds the
 * secret; then the parent writes the secret into a fresh page and sends its
 * address down a pipe.  The child drops to uid/gid 65534 and tries:
 *   procmem          pread of /proc/PPID/mem at the secret's address
 *   process_vm_readv the same through process_vm_readv(2)
 *   stub_mmap        (argv[1] given: the stub's trusted syscall instruction)
 *                    mmap of each memory file a stub may hold (fd 3, its own
 *                    arena; fd 6, the shared object it last received) from
 *                    that instruction, window by window, looking for the secret
 * and prints one line each: "refused (ERRNO)", "no secret" or "READ SECRET".
 * Mode "fd4" instead has the child map fd 4 (where every stub once held the
 * sandbox's common arena) from that instruction and print "fd4: mapped" or
 * "fd4: refused (ERRNO)"; the stub's filter kills it first (the parent's
 * "child exit" line says with what).
 * A third argument says where else the secret is:
 *   shared  shared anonymous memory instead of private memory
 *   tmpfs   a root-only (0600) file in /dev/shm, mapped shared by the parent
 *   memfd   a memfd the parent made after the fork, mapped shared
 *   sysv    a SysV segment (mode 0600) the parent made and attached
 * so that tmpfs pages kept in the memory file are probed as well.
 * Usage: isolation_probe [STUB_SYSCALL_INSN_HEX [SCAN_MIB [MODE]]] */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <setjmp.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/shm.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/uio.h>
#include <sys/wait.h>
#include <unistd.h>

#define SECRET "pyvisor-isolation-probe-secret-7f3a9c"
#define WINDOW (2UL << 20)
#define SCAN_ADDR 0x200000000000UL

#include "jump_syscall.h"

static const char *err_name(int e) {
    switch (e) {
    case EACCES: return "EACCES";
    case EPERM: return "EPERM";
    case ESRCH: return "ESRCH";
    case ENOSYS: return "ENOSYS";
    case EFAULT: return "EFAULT";
    case EIO: return "EIO";
    case ENOENT: return "ENOENT";
    default: return strerror(e);
    }
}

static void report(const char *how, ssize_t n, const char *buf) {
    if (n < 0)
        printf("%s: refused (%s)\n", how, err_name(errno));
    else if (n >= (ssize_t)sizeof(SECRET) - 1 && !memcmp(buf, SECRET, sizeof(SECRET) - 1))
        printf("%s: READ SECRET\n", how);
    else
        printf("%s: no secret\n", how);
}

/* A window past the end of a small file (a shared object's) faults with
 * SIGBUS: that ends the scan of that file. */
static sigjmp_buf past_end;
static void on_sigbus(int sig) {
    (void)sig;
    siglongjmp(past_end, 1);
}

static void child(pid_t parent, int rfd, void *insn, unsigned long scan_mib, int fd4) {
    unsigned long addr;
    if (read(rfd, &addr, sizeof addr) != sizeof addr)
        _exit(3);
    if (setgid(65534) != 0 || setuid(65534) != 0) {
        perror("setuid");
        _exit(4);
    }
    char buf[64] = {0};
    char path[64];
    snprintf(path, sizeof path, "/proc/%d/mem", (int)parent);
    int fd = open(path, O_RDONLY);
    ssize_t n = fd < 0 ? -1 : pread(fd, buf, sizeof buf, (off_t)addr);
    report("procmem", n, buf);

    memset(buf, 0, sizeof buf);
    struct iovec local = {buf, sizeof buf}, remote = {(void *)addr, sizeof buf};
    n = process_vm_readv(parent, &local, 1, &remote, 1, 0);
    report("process_vm_readv", n, buf);

    if (insn == NULL)
        return;
    if (fd4) {
        long r = jump_syscall(SYS_mmap, SCAN_ADDR, WINDOW, PROT_READ, MAP_SHARED | MAP_FIXED, 4,
                              0, insn);
        if (r < 0 && r > -4096) {
            errno = (int)-r;
            report("fd4", -1, buf);
        } else {
            printf("fd4: mapped\n");
        }
        return;
    }
    /* From the stub's own syscall instruction the stub filter allows mmap of
     * the memory files (fds 3 and 6): look for the secret at the start of
     * each page.  A descriptor the stub does not hold ends the scan of it. */
    signal(SIGBUS, on_sigbus);
    for (volatile int fd = 3; fd <= 6; fd += 3) {
        if (sigsetjmp(past_end, 1))
            continue;
        for (unsigned long off = 0; off < scan_mib << 20; off += WINDOW) {
            long r = jump_syscall(SYS_mmap, SCAN_ADDR, WINDOW, PROT_READ, MAP_SHARED | MAP_FIXED,
                                  fd, (long)off, insn);
            if (r < 0 && r > -4096)
                break;
            for (unsigned long p = 0; p < WINDOW; p += 4096)
                if (!memcmp((char *)SCAN_ADDR + p, SECRET, sizeof(SECRET) - 1)) {
                    printf("stub_mmap: READ SECRET\n");
                    return;
                }
        }
    }
    printf("stub_mmap: no secret\n");
}

/* A page holding nothing yet, in the place MODE names ("private" and
 * "shared": anonymous memory; "tmpfs", "memfd", "sysv": a root-only file or
 * segment, mapped shared so that its pages are in the memory file). */
static char *secret_page(const char *mode) {
    int fd = -1;
    if (!strcmp(mode, "private") || !strcmp(mode, "shared")) {
        int flags = (!strcmp(mode, "shared") ? MAP_SHARED : MAP_PRIVATE) | MAP_ANONYMOUS;
        char *p = mmap(NULL, 4096, PROT_READ | PROT_WRITE, flags, -1, 0);
        return p == MAP_FAILED ? NULL : p;
    }
    if (!strcmp(mode, "sysv")) {
        int id = shmget(IPC_PRIVATE, 4096, IPC_CREAT | 0600);
        char *p = id < 0 ? (char *)-1 : shmat(id, NULL, 0);
        if (id >= 0)
            shmctl(id, IPC_RMID, NULL); /* gone with the last detach */
        return p == (char *)-1 ? NULL : p;
    }
    if (!strcmp(mode, "tmpfs")) {
        char path[64];
        snprintf(path, sizeof path, "/dev/shm/isolation-probe-%d", (int)getpid());
        fd = open(path, O_RDWR | O_CREAT | O_EXCL, 0600);
        unlink(path);
    } else if (!strcmp(mode, "memfd")) {
        fd = memfd_create("isolation-probe", 0);
    }
    if (fd < 0 || ftruncate(fd, 4096) != 0)
        return NULL;
    char *p = mmap(NULL, 4096, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
    close(fd);
    return p == MAP_FAILED ? NULL : p;
}

int main(int argc, char **argv) {
    void *insn = argc > 1 ? (void *)strtoul(argv[1], NULL, 16) : NULL;
    unsigned long scan_mib = argc > 2 ? strtoul(argv[2], NULL, 10) : 256;
    const char *mode = argc > 3 ? argv[3] : "private";
    int p[2];
    setvbuf(stdout, NULL, _IONBF, 0);
    if (pipe(p) != 0)
        return 1;
    pid_t parent = getpid();
    pid_t pid = fork();
    if (pid < 0)
        return 1;
    if (pid == 0) {
        close(p[1]);
        child(parent, p[0], insn, scan_mib, !strcmp(mode, "fd4"));
        _exit(0);
    }
    close(p[0]);
    char *page = secret_page(strcmp(mode, "fd4") ? mode : "private");
    if (page == NULL) {
        perror(mode);
        return 1;
    }
    memcpy(page, SECRET, sizeof SECRET);
    unsigned long addr = (unsigned long)page;
    if (write(p[1], &addr, sizeof addr) != sizeof addr)
        return 1;
    int status;
    if (waitpid(pid, &status, 0) != pid)
        return 1;
    printf("child exit %d\n", WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status));
    return 0;
}
