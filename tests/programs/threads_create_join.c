/* 300 threads created and joined one after another (slot reuse), results summed. */
#include <pthread.h>
#include <stdio.h>
static void *work(void *arg) { return (void *)((long)arg * 2); }
int main(void) {
  long sum = 0;
  for (int i = 0; i < 300; i++) { pthread_t t; void *r; pthread_create(&t, 0, work, (void *)(long)i); pthread_join(t, &r); sum += (long)r; }
  printf("%ld\n", sum); return 0;
}
