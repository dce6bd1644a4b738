/* System V shared memory: shmget's rules, a segment shared by a fork child
 * and its parent, nattch through fork and exit, shmat's address rules
 * (SHM_RND, SHM_REMAP, overlap), SHM_RDONLY, IPC_RMID with attachments left,
 * shmdt's errors, IPC_STAT/SET, SHM_LOCK, IPC_INFO. Ids and addresses are
 * not printed. The same natively and in the sandbox. */
#define _GNU_SOURCE
#include <errno.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <sys/ipc.h>
#include <sys/mman.h>
#include <sys/shm.h>
#include <sys/wait.h>
#include <unistd.h>

static void report(const char *what, long ret) {
    printf("%s: %ld %s\n", what, ret, ret < 0 ? strerrorname_np(errno) : "-");
    fflush(stdout);
}

static long nattch(int id) {
    struct shmid_ds ds;
    if (shmctl(id, IPC_STAT, &ds) < 0)
        return -1;
    return (long)ds.shm_nattch;
}

static volatile sig_atomic_t segv;
static void on_segv(int s) {
    (void)s;
    segv = 1;
    _exit(42);
}

int main(void) {
    setvbuf(stdout, NULL, _IOLBF, 0);
    report("size 0", shmget(IPC_PRIVATE, 0, IPC_CREAT | 0600));
    int id = shmget(IPC_PRIVATE, 4000, IPC_CREAT | 0600);
    report("create 4000", id >= 0);
    struct shmid_ds ds;
    shmctl(id, IPC_STAT, &ds);
    printf("segsz %zu nattch %lu mode %o cpid is me %d\n", ds.shm_segsz,
           (unsigned long)ds.shm_nattch, ds.shm_perm.mode & 0777, ds.shm_cpid == getpid());
    char *p = shmat(id, NULL, 0);
    report("attach", p == (char *)-1 ? -1 : 0);
    printf("zeroed %d, nattch %ld\n", p[0] == 0 && p[3999] == 0, nattch(id));
    strcpy(p, "from parent");
    pid_t pid = fork();
    if (pid == 0) {
        printf("child sees [%s], nattch %ld\n", p, nattch(id));
        strcpy(p + 100, "from child");
        _exit(0);
    }
    int st;
    waitpid(pid, &st, 0);
    printf("parent sees [%s], nattch after child exit %ld\n", p + 100, nattch(id));

    key_t key = 0x5eec0000 + (getpid() & 0xffff);
    int k = shmget(key, 4096, IPC_CREAT | IPC_EXCL | 0640);
    report("keyed create", k >= 0);
    report("keyed larger", shmget(key, 8192, 0));
    report("keyed smaller", shmget(key, 100, 0) == k);

    char *q = shmat(k, NULL, SHM_RDONLY);
    report("attach read-only", q == (char *)-1 ? -1 : 0);
    pid = fork();
    if (pid == 0) {
        signal(SIGSEGV, on_segv);
        q[0] = 1;
        _exit(0);
    }
    waitpid(pid, &st, 0);
    printf("write to read-only attachment: exit %d\n", WEXITSTATUS(st));

    report("shmat unaligned", (long)shmat(k, p + 1, 0) == -1 ? -1 : 0);
    char *r = shmat(k, p + 1, SHM_RND);
    report("shmat SHM_RND onto an attachment", r == (char *)-1 ? -1 : 0);
    report("shmat REMAP without address", (long)shmat(k, NULL, SHM_REMAP) == -1 ? -1 : 0);
    char *s = shmat(k, p, SHM_REMAP);
    report("shmat REMAP onto p", s == (char *)-1 ? -1 : 0);
    printf("remapped at p: %d\n", s == p);
    report("shmdt p", shmdt(p));
    report("shmdt p again", shmdt(p));
    report("shmdt unaligned", shmdt(q + 1));
    report("shmdt not a segment", shmdt((void *)&st));

    report("rmid with attachments", shmctl(k, IPC_RMID, NULL));
    shmctl(k, IPC_STAT, &ds);
    printf("dest flag %d key now %d nattch %lu\n", (ds.shm_perm.mode & 01000) != 0,
           ds.shm_perm.__key, (unsigned long)ds.shm_nattch);
    report("key free again", shmget(key, 4096, 0));
    report("attach removed segment", shmat(k, NULL, 0) == (void *)-1 ? -1 : 0);
    report("shm_lock", shmctl(k, SHM_LOCK, NULL));
    shmctl(k, IPC_STAT, &ds);
    printf("locked flag %d\n", (ds.shm_perm.mode & 02000) != 0);
    ds.shm_perm.mode = 0666;
    report("ipc_set", shmctl(id, IPC_SET, &ds));
    shmctl(id, IPC_STAT, &ds);
    printf("mode now %o\n", ds.shm_perm.mode & 0777);
    struct shminfo info;
    report("ipc_info", shmctl(0, IPC_INFO, (struct shmid_ds *)&info) >= 0);
    printf("shmmni %lu shmmin %lu\n", (unsigned long)info.shmmni, (unsigned long)info.shmmin);
    report("bad cmd", shmctl(id, 99, &ds));
    report("rmid first", shmctl(id, IPC_RMID, NULL));
    report("stat after rmid, unattached", shmctl(id, IPC_STAT, &ds));
    return 0;
}
