/* segv: write "before" unbuffered, then store through NULL. No handler is
 * installed, so the program is killed by SIGSEGV (status 139 from a shell). */
#include <unistd.h>

int main(void)
{
    write(1, "before\n", 7);
    *(volatile int *)0 = 42;
    write(1, "after\n", 6);
    return 0;
}
