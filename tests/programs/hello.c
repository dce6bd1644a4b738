/* hello: the smallest differential case (printf -> fstat + write, return 0). */
#include <stdio.h>

int main(void)
{
    printf("hello, world\n");
    return 0;
}
