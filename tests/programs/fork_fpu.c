/* A forked child and a new thread start with their creator's FPU control
 * state (Linux copies the FPU state at clone): MXCSR with flush-to-zero and
 * round-toward-zero, x87 control word with 53-bit precision. */
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <sys/wait.h>
#include <unistd.h>

static void show(const char *who)
{
    uint32_t mxcsr;
    uint16_t fcw;
    __asm__ volatile("stmxcsr %0" : "=m"(mxcsr));
    __asm__ volatile("fnstcw %0" : "=m"(fcw));
    printf("%s: mxcsr=%#x fcw=%#x\n", who, mxcsr, fcw);
    fflush(stdout);
}

static void *thread_main(void *arg)
{
    (void)arg;
    show("thread");
    return NULL;
}

int main(void)
{
    uint32_t mxcsr = 0x7f80 | 0x8000;
    uint16_t fcw = 0x027f;
    __asm__ volatile("ldmxcsr %0" ::"m"(mxcsr));
    __asm__ volatile("fldcw %0" ::"m"(fcw));
    show("parent");
    pid_t pid = fork();
    if (pid == 0) {
        show("child");
        _exit(0);
    }
    if (waitpid(pid, NULL, 0) != pid)
        return 1;
    pthread_t th;
    if (pthread_create(&th, NULL, thread_main, NULL) || pthread_join(th, NULL))
        return 1;
    return 0;
}
