/* SysV IPC across the containers of a pod (tests/test_pods.py): "put KEY TEXT"
 * makes a shared memory segment under KEY holding TEXT; "get KEY" prints what
 * the segment under KEY holds, or shmget's errno name. Two containers of one
 * pod share an IPC namespace, so one's put is the other's get. Natively the
 * same pair run in one IPC namespace behave the same. */
#define _GNU_SOURCE
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ipc.h>
#include <sys/shm.h>

int main(int argc, char **argv) {
    if (argc < 3)
        return 2;
    key_t key = (key_t)atoi(argv[2]);
    int put = strcmp(argv[1], "put") == 0;
    int id = shmget(key, 4096, put ? IPC_CREAT | 0600 : 0);
    if (id < 0) {
        printf("shmget: %s\n", strerrorname_np(errno));
        return 1;
    }
    char *p = shmat(id, NULL, 0);
    if (p == (void *)-1) {
        printf("shmat: %s\n", strerrorname_np(errno));
        return 1;
    }
    if (put && argc > 3)
        snprintf(p, 4096, "%s", argv[3]);
    else
        printf("%s\n", p);
    shmdt(p);
    return 0;
}
