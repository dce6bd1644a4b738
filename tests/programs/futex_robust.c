/* Futex features glibc leans on: a robust mutex whose owner thread exits while
 * holding it (the next locker gets EOWNERDEAD), a condition variable broadcast
 * to 4 waiters, and a POSIX timer ticking 5 times into a SIGRTMIN handler. */
#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

static pthread_mutex_t robust;
static pthread_mutex_t m = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t cv = PTHREAD_COND_INITIALIZER;
static int go, arrived;
static volatile int ticks;

static void *die_holding(void *arg) {
    (void)arg;
    pthread_mutex_lock(&robust);
    return NULL; /* exits with the lock held */
}

static void *waiter(void *arg) {
    (void)arg;
    pthread_mutex_lock(&m);
    arrived++;
    while (!go)
        pthread_cond_wait(&cv, &m);
    pthread_mutex_unlock(&m);
    return NULL;
}

static void tick(int s, siginfo_t *si, void *u) {
    (void)s;
    (void)u;
    if (si->si_code == SI_TIMER)
        ticks++;
}

int main(void) {
    pthread_mutexattr_t a;
    pthread_mutexattr_init(&a);
    pthread_mutexattr_setrobust(&a, PTHREAD_MUTEX_ROBUST);
    pthread_mutex_init(&robust, &a);
    pthread_t t;
    pthread_create(&t, NULL, die_holding, NULL);
    pthread_join(t, NULL);
    int r = pthread_mutex_lock(&robust);
    printf("robust lock: %s\n", r == EOWNERDEAD ? "EOWNERDEAD" : strerror(r));
    pthread_mutex_consistent(&robust);
    pthread_mutex_unlock(&robust);

    pthread_t w[4];
    for (int i = 0; i < 4; i++)
        pthread_create(&w[i], NULL, waiter, NULL);
    for (;;) {
        pthread_mutex_lock(&m);
        int n = arrived;
        pthread_mutex_unlock(&m);
        if (n == 4)
            break;
        usleep(1000);
    }
    pthread_mutex_lock(&m);
    go = 1;
    pthread_cond_broadcast(&cv);
    pthread_mutex_unlock(&m);
    for (int i = 0; i < 4; i++)
        pthread_join(w[i], NULL);
    printf("broadcast woke 4\n");

    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_sigaction = tick;
    sa.sa_flags = SA_SIGINFO;
    sigaction(SIGRTMIN, &sa, NULL);
    struct sigevent ev;
    memset(&ev, 0, sizeof ev);
    ev.sigev_notify = SIGEV_SIGNAL;
    ev.sigev_signo = SIGRTMIN;
    timer_t tm;
    if (timer_create(CLOCK_MONOTONIC, &ev, &tm) != 0) {
        perror("timer_create");
        return 1;
    }
    struct itimerspec its = {{0, 20000000}, {0, 20000000}};
    timer_settime(tm, 0, &its, NULL);
    while (ticks < 5)
        pause();
    timer_delete(tm);
    printf("timer ticked 5\n");
    return 0;
}
