/* System V semaphores and message queues: every result with its errno, the
 * same natively and in the sandbox. Run as root (one scenario drops to uid
 * 1000 in a child). Ids are never printed: the host's namespace has others.
 * Waiting children are synchronised through GETNCNT / the queue's state,
 * polled with sched_yield, never with sleeps. */
#define _GNU_SOURCE
#include <errno.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ipc.h>
#include <sys/msg.h>
#include <sys/sem.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#ifndef MSG_COPY
#define MSG_COPY 040000
#endif

union semun {
    int val;
    struct semid_ds *buf;
    unsigned short *array;
    struct seminfo *__buf;
};

static void report(const char *what, long ret) {
    printf("%s: %ld %s\n", what, ret, ret < 0 ? strerrorname_np(errno) : "-");
    fflush(stdout);
}

static int wait_for(int semid, int semnum, int cmd, int want) {
    for (long i = 0; i < 100000000; i++) {
        if (semctl(semid, semnum, cmd) == want)
            return 1;
        sched_yield();
    }
    return 0;
}

/* Whether ``pid`` is asleep (state S in /proc/PID/stat) within a bounded
 * number of looks; then a few more yields so it is inside its wait. */
static int sleeping(pid_t pid) {
    char path[64], buf[256];
    snprintf(path, sizeof path, "/proc/%d/stat", pid);
    for (long i = 0; i < 10000000; i++) {
        FILE *f = fopen(path, "r");
        if (!f)
            return 0;
        size_t n = fread(buf, 1, sizeof buf - 1, f);
        fclose(f);
        buf[n] = 0;
        char *p = strrchr(buf, ')');
        if (p && p[1] == ' ' && p[2] == 'S') {
            for (int j = 0; j < 100; j++)
                sched_yield();
            return 1;
        }
        sched_yield();
    }
    return 0;
}

static int status_of(pid_t pid) {
    int st;
    waitpid(pid, &st, 0);
    return WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st);
}

static void semaphores(void) {
    int id = semget(IPC_PRIVATE, 3, IPC_CREAT | 0600);
    report("semget private", id >= 0);
    unsigned short vals[3] = {1, 2, 3}, got[3] = {0};
    report("setall", semctl(id, 0, SETALL, (union semun){.array = vals}));
    report("getall", semctl(id, 0, GETALL, (union semun){.array = got}));
    printf("values %u %u %u\n", got[0], got[1], got[2]);
    struct sembuf dec = {0, -2, IPC_NOWAIT};
    report("decrement below zero nowait", semop(id, &dec, 1));
    struct sembuf two[2] = {{1, -1, 0}, {0, -5, IPC_NOWAIT}};
    report("all or nothing", semop(id, two, 2));
    report("getval 1 unchanged", semctl(id, 1, GETVAL));
    struct sembuf bad = {3, 1, 0};
    report("sem_num out of range", semop(id, &bad, 1));
    report("nsops 0", semop(id, &dec, 0));
    struct sembuf many[501];
    memset(many, 0, sizeof many);
    report("nsops 501", semop(id, many, 501));
    report("setval 40000", semctl(id, 0, SETVAL, (union semun){.val = 40000}));
    report("setval 32767", semctl(id, 0, SETVAL, (union semun){.val = 32767}));
    struct sembuf up = {0, 1, 0};
    report("increment past semvmx", semop(id, &up, 1));
    report("getval semnum 3", semctl(id, 3, GETVAL));
    report("bad cmd", semctl(id, 0, 99));
    struct timespec ts = {0, 20000000};
    struct sembuf wait0 = {2, 0, 0};
    report("semtimedop times out", semtimedop(id, &wait0, 1, &ts));
    ts.tv_nsec = 1000000000;
    report("semtimedop bad timeout", semtimedop(id, &wait0, 1, &ts));
    struct semid_ds ds;
    report("ipc_stat", semctl(id, 0, IPC_STAT, (union semun){.buf = &ds}));
    printf("nsems %lu mode %o uid %u cuid %u\n", (unsigned long)ds.sem_nsems,
           ds.sem_perm.mode & 0777, ds.sem_perm.uid, ds.sem_perm.cuid);

    /* A child blocks until the parent posts; GETNCNT sees it waiting. */
    semctl(id, 1, SETVAL, (union semun){.val = 0});
    pid_t pid = fork();
    if (pid == 0) {
        struct sembuf w = {1, -1, 0};
        _exit(semop(id, &w, 1) == 0 ? 0 : 1);
    }
    report("child waits (ncnt 1)", wait_for(id, 1, GETNCNT, 1));
    struct sembuf post = {1, 1, 0};
    report("post", semop(id, &post, 1));
    printf("child exit %d\n", status_of(pid));
    report("getpid is the child's", semctl(id, 1, GETPID) == pid);

    /* SEM_UNDO: the child's increment is undone when it exits. */
    pid = fork();
    if (pid == 0) {
        struct sembuf u = {1, 5, SEM_UNDO};
        semop(id, &u, 1);
        _exit(semctl(id, 1, GETVAL));
    }
    printf("child saw %d\n", status_of(pid));
    report("value after undo", semctl(id, 1, GETVAL));

    /* A child waiting for zero sees the set removed. */
    semctl(id, 2, SETVAL, (union semun){.val = 1});
    pid = fork();
    if (pid == 0) {
        struct sembuf z = {2, 0, 0};
        int r = semop(id, &z, 1);
        _exit(r == -1 && errno == EIDRM ? 42 : 1);
    }
    report("child waits for zero (zcnt 1)", wait_for(id, 2, GETZCNT, 1));
    report("ipc_rmid", semctl(id, 0, IPC_RMID));
    printf("child exit %d\n", status_of(pid));
    report("removed set", semctl(id, 0, GETVAL));

    /* Keys. */
    key_t key = 0x5eed0000 + (getpid() & 0xffff);
    int k = semget(key, 2, IPC_CREAT | IPC_EXCL | 0640);
    report("semget key excl", k >= 0);
    report("semget key excl again", semget(key, 2, IPC_CREAT | IPC_EXCL | 0640));
    report("semget key same", semget(key, 2, 0) == k);
    report("semget key more sems", semget(key, 3, 0));
    report("semget missing key", semget(key + 1, 1, 0));
    report("semget nsems 0 new", semget(key + 1, 0, IPC_CREAT));
    pid = fork();
    if (pid == 0) {
        setresgid(1000, 1000, 1000);
        setresuid(1000, 1000, 1000);
        struct sembuf u = {0, 1, 0};
        report("other user semop", semop(k, &u, 1));
        report("other user semget", semget(key, 2, 0600));
        report("other user rmid", semctl(k, 0, IPC_RMID));
        _exit(0);
    }
    status_of(pid);
    struct seminfo si;
    report("sem_info (max index >= 0)", semctl(0, 0, SEM_INFO, (union semun){.__buf = &si}) >= 0);
    printf("semmsl %d semopm %d semvmx %d\n", si.semmsl, si.semopm, si.semvmx);
    report("rmid key", semctl(k, 0, IPC_RMID));
}

struct msg {
    long mtype;
    char mtext[8200];
};

static long send(int q, long type, const char *text, size_t len, int flags) {
    struct msg m;
    m.mtype = type;
    memcpy(m.mtext, text, len);
    return msgsnd(q, &m, len, flags);
}

static void show_rcv(int q, size_t bufsz, long type, int flags, const char *what) {
    struct msg m;
    memset(&m, 0, sizeof m);
    long n = msgrcv(q, &m, bufsz, type, flags);
    if (n < 0)
        report(what, n);
    else
        printf("%s: type %ld text %.*s (%ld)\n", what, m.mtype, (int)n, m.mtext, n);
}

static void queues(void) {
    int q = msgget(IPC_PRIVATE, IPC_CREAT | 0600);
    report("msgget", q >= 0);
    report("send 3", send(q, 3, "three", 5, 0));
    report("send 1", send(q, 1, "one", 3, 0));
    report("send 2", send(q, 2, "two", 3, 0));
    report("send type 0", send(q, 0, "x", 1, 0));
    char big[8193] = {0};
    report("send 8193 bytes", send(q, 1, big, 8193, 0));
    show_rcv(q, 100, 0, MSG_COPY | IPC_NOWAIT, "copy index 0");
    show_rcv(q, 100, 0, MSG_COPY, "copy without nowait");
    show_rcv(q, 100, -2, 0, "lowest type <= 2");
    show_rcv(q, 2, 0, IPC_NOWAIT, "too small buffer");
    show_rcv(q, 2, 0, MSG_NOERROR, "truncated");
    show_rcv(q, 100, 2, MSG_EXCEPT | IPC_NOWAIT, "except 2");
    show_rcv(q, 100, 2, 0, "type 2");
    show_rcv(q, 100, 0, IPC_NOWAIT, "empty nowait");
    struct msqid_ds ds;
    report("fill 1", send(q, 1, big, 8192, 0));
    report("fill 2", send(q, 1, big, 8192, 0));
    report("full nowait", send(q, 1, "x", 1, IPC_NOWAIT));
    report("ipc_stat", msgctl(q, IPC_STAT, &ds));
    printf("qnum %lu cbytes %lu qbytes %lu mode %o\n", (unsigned long)ds.msg_qnum,
           (unsigned long)ds.__msg_cbytes, (unsigned long)ds.msg_qbytes, ds.msg_perm.mode & 0777);
    /* A blocked sender goes on once a receiver makes room. */
    pid_t pid = fork();
    if (pid == 0)
        _exit(send(q, 7, "late", 4, 0) == 0 ? 0 : 1);
    show_rcv(q, 8192, 1, 0, "make room");
    printf("sender exit %d\n", status_of(pid));
    show_rcv(q, 100, 7, 0, "the late one");
    ds.msg_qbytes = 100000;
    report("raise qbytes", msgctl(q, IPC_SET, &ds));
    /* A blocked receiver sees the queue removed. */
    pid = fork();
    if (pid == 0) {
        struct msg m;
        long r = msgrcv(q, &m, 100, 99, 0);
        _exit(r == -1 && errno == EIDRM ? 42 : 1);
    }
    report("receiver sleeps", sleeping(pid));
    report("rmid", msgctl(q, IPC_RMID, NULL));
    printf("receiver exit %d\n", status_of(pid));
    report("removed queue", send(q, 1, "x", 1, 0));
    struct msginfo mi;
    report("msg_info", msgctl(0, MSG_INFO, (struct msqid_ds *)&mi) >= 0);
    printf("msgmax %d msgmnb %d\n", mi.msgmax, mi.msgmnb);
}

int main(void) {
    setvbuf(stdout, NULL, _IOLBF, 0);
    printf("== semaphores\n");
    semaphores();
    printf("== queues\n");
    queues();
    return 0;
}
