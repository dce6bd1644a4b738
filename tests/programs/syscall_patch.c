/* Syscall patching (sentry/systrap/patch.py): a `mov $nr,%eax; syscall` site
 * in a page of our own, called many times so the Sentry patches it, must keep
 * working as a syscall after the things that could break a patch: mprotect
 * of its page, the program rewriting its own code (to another syscall and
 * back), fork (the child and the parent), and exec.
 *
 * Default mode prints what a native run prints too.  `probe` prints what
 * only the sandbox can show: whether the site's bytes were rewritten, and
 * what the trampoline answers when called directly (`escape`: it must be
 * the Sentry's getpid, never the host's; the test compares it with the
 * sandbox's own). */
#define _GNU_SOURCE
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <stddef.h>
#include <sys/prctl.h>
#include <linux/filter.h>
#include <linux/seccomp.h>
#include <ucontext.h>
#include <unistd.h>

#define PATCH_TABLE 0x050f0000UL
#define CALLS 50

typedef long (*site_fn)(long, const void *, long);
static unsigned char *page;
static unsigned char *site;

/* `mov $nr,%eax; syscall; ret` at the site. */
static void write_site(int nr)
{
    unsigned char code[8] = {0xb8, (unsigned char)nr, (unsigned char)(nr >> 8), 0, 0, 0x0f, 0x05, 0xc3};
    memcpy(site, code, sizeof code);
    __builtin___clear_cache((char *)site, (char *)site + sizeof code);
}

static long call_site(long a, const void *b, long c) { return ((site_fn)site)(a, b, c); }

/* write(1, line) through the site, CALLS times (only the first is kept on
 * stdout: the rest write 0 bytes); returns how many reported success. */
static int write_through_site(const char *line)
{
    int ok = 0;
    long n = (long)strlen(line);
    if (call_site(1, line, n) == n)
        ok++;
    for (int i = 1; i < CALLS; i++)
        if (call_site(1, line, 0) == 0)
            ok++;
    return ok;
}

static int getpid_through_site(void)
{
    int ok = 0;
    for (int i = 0; i < CALLS; i++)
        if (call_site(0, 0, 0) == getpid())
            ok++;
    return ok;
}

static void setup(void)
{
    page = mmap(NULL, 4096, PROT_READ | PROT_WRITE | PROT_EXEC, MAP_PRIVATE | MAP_ANONYMOUS,
                -1, 0);
    if (page == MAP_FAILED) {
        perror("mmap");
        exit(1);
    }
    site = page + 64; /* the 8 bytes the Sentry exchanges stay inside a cache line */
    write_site(SYS_write);
    if (mprotect(page, 4096, PROT_READ | PROT_EXEC) != 0) {
        perror("mprotect");
        exit(1);
    }
}

static int table_mapped(void)
{
    unsigned char vec;
    return mincore((void *)PATCH_TABLE, 4096, &vec) == 0;
}

static int probe(void)
{
    setup();
    write_through_site("");
    printf("patched %d\n", site[0] == 0xff);
    printf("table %d\n", table_mapped());
    fflush(stdout);
    return 0;
}

/* Jump straight into the trampoline (entry 0 of the patch table) with a
 * syscall number: the answer must come from the Sentry. */
static void on_sigill(int sig, siginfo_t *info, void *uc)
{
    (void)sig;
    (void)info;
    long rax = ((ucontext_t *)uc)->uc_mcontext.gregs[REG_RAX];
    printf("resync getpid %ld then SIGILL\n", rax);
    fflush(stdout);
    _exit(0);
}

static int escape(int argc, char **argv)
{
    setup();
    write_through_site("");
    if (!table_mapped()) {
        printf("no table\n");
        return 0;
    }
    uint64_t entry = *(volatile uint64_t *)PATCH_TABLE;
    long ret;
    __asm__ volatile("lea 1f(%%rip), %%rcx\n\t"
                     "mov $39, %%eax\n\t"
                     "jmp *%1\n"
                     "1:"
                     : "=a"(ret)
                     : "r"(entry)
                     : "rcx", "r11", "memory", "cc");
    printf("trampoline getpid %ld libc getpid %d\n", ret, getpid());
    fflush(stdout);
    if (argc > 2) { /* the trampoline's own syscall instruction: a plain trap */
        struct sigaction sa;
        memset(&sa, 0, sizeof sa);
        sa.sa_sigaction = on_sigill;
        sa.sa_flags = SA_SIGINFO;
        sigaction(SIGILL, &sa, NULL);
        uint64_t resync = entry + strtoull(argv[2], NULL, 0);
        __asm__ volatile("mov $39, %%eax\n\t"
                         "jmp *%0\n"
                         :
                         : "r"(resync)
                         : "rax", "rcx", "r11", "memory", "cc");
    }
    return 0;
}

static int check; /* `check`: also say whether the site was patched (sandbox only) */

static void patched(const char *when)
{
    if (check)
        printf("patched %s: %d\n", when, site[0] == 0xff);
}

int main(int argc, char **argv)
{
    if (argc > 1 && strcmp(argv[1], "probe") == 0)
        return probe();
    if (argc > 1 && strcmp(argv[1], "escape") == 0)
        return escape(argc, argv);
    if (argc > 1 && strcmp(argv[1], "seccomp") == 0) {
        /* the application's own filter sees a patched site's calls too */
        setup();
        mprotect(page, 4096, PROT_READ | PROT_WRITE | PROT_EXEC);
        write_site(SYS_getppid);
        long before = 0;
        for (int i = 0; i < CALLS; i++)
            before = call_site(0, 0, 0);
        int same = before == getppid();
        fprintf(stderr, "site patched %d\n", site[0] == 0xff); /* the sandbox's test reads it */
        struct sock_filter f[] = {
            BPF_STMT(BPF_LD | BPF_W | BPF_ABS, offsetof(struct seccomp_data, nr)),
            BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, SYS_getppid, 0, 1),
            BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ERRNO | 42),
            BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ALLOW),
        };
        struct sock_fprog prog = {sizeof f / sizeof f[0], f};
        if (prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) != 0 ||
            syscall(SYS_seccomp, SECCOMP_SET_MODE_FILTER, 0, &prog) != 0) {
            perror("seccomp");
            return 1;
        }
        int denied = 0;
        for (int i = 0; i < CALLS; i++)
            denied += call_site(0, 0, 0) == -42;
        printf("before filter %d, denied after %d\n", same, denied);
        return 0;
    }
    if (argc > 1 && strcmp(argv[1], "unmap") == 0) {
        /* the program takes the table's range for itself: every site goes
         * back to its own bytes first, and keeps working (by trapping) */
        setup();
        write_through_site("");
        int was = site[0] == 0xff;
        munmap((void *)PATCH_TABLE, 0x10000);
        void *mine = mmap((void *)PATCH_TABLE, 4096, PROT_READ | PROT_WRITE,
                          MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED, -1, 0);
        memset(mine, 0xab, 4096);
        int n = write_through_site("after unmap\n");
        printf("patched before %d, restored %d, calls %d\n", was, site[0] == 0xb8, n);
        return 0;
    }
    check = argc > 1 && strcmp(argv[1], "check") == 0;
    int exec_stage = argc > 1 && strncmp(argv[1], "exec", 4) == 0;
    check = check || (argc > 1 && strcmp(argv[1], "exec-check") == 0);
    setup();
    printf("first: %d\n", write_through_site(exec_stage ? "after exec\n" : "hello\n"));
    patched("first");
    fflush(stdout);
    if (exec_stage)
        return 0;

    /* mprotect: writable and back, then execute again */
    if (mprotect(page, 4096, PROT_READ | PROT_WRITE | PROT_EXEC) != 0 ||
        mprotect(page, 4096, PROT_READ | PROT_EXEC) != 0) {
        perror("mprotect");
        return 1;
    }
    printf("after mprotect: %d\n", write_through_site("mprotect\n"));
    patched("mprotect");
    fflush(stdout);

    /* the program rewrites its own code: getpid, then write again */
    mprotect(page, 4096, PROT_READ | PROT_WRITE | PROT_EXEC);
    write_site(SYS_getpid);
    printf("after rewrite to getpid: %d\n", getpid_through_site());
    patched("getpid");
    write_site(SYS_write);
    printf("after rewrite to write: %d\n", write_through_site("rewritten\n"));
    patched("write");
    fflush(stdout);
    mprotect(page, 4096, PROT_READ | PROT_EXEC);

    /* fork: the child runs the site; so does the parent after it */
    pid_t pid = fork();
    if (pid == 0) {
        patched("in child before");
        printf("child: %d\n", write_through_site("in child\n"));
        printf("child getpid ok: %d\n", getpid() == (int)syscall(SYS_getpid));
        fflush(stdout);
        _exit(0);
    }
    int status;
    waitpid(pid, &status, 0);
    printf("child status %d\n", status);
    printf("parent after fork: %d\n", write_through_site("in parent\n"));
    patched("parent");
    fflush(stdout);

    /* exec: a fresh image patches (and traps) anew */
    execl("/proc/self/exe", argv[0], check ? "exec-check" : "exec", (char *)NULL);
    perror("execl");
    return 1;
}
