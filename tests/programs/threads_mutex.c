/* 8 threads each increment a mutex-protected counter 100,000 times. */
#include <pthread.h>
#include <stdio.h>
static pthread_mutex_t m = PTHREAD_MUTEX_INITIALIZER;
static long counter;
static void *work(void *arg) { (void)arg; for (int i = 0; i < 100000; i++) { pthread_mutex_lock(&m); counter++; pthread_mutex_unlock(&m); } return 0; }
int main(void) { pthread_t t[8]; for (int i = 0; i < 8; i++) pthread_create(&t[i], 0, work, 0); for (int i = 0; i < 8; i++) pthread_join(t[i], 0); printf("%ld\n", counter); return 0; }
