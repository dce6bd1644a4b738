/* args_env: argc, every argv entry (with its length) and one chosen env var.
 * argv[0] is printed as a basename only, since callers pass different paths. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int main(int argc, char **argv, char **envp)
{
    const char *name = getenv("PYVISOR_VAR_NAME") ? getenv("PYVISOR_VAR_NAME") : "PYVISOR_TEST";
    const char *value = getenv(name);
    const char *base = strrchr(argv[0], '/');
    int null_terminated = argv[argc] == NULL;

    printf("argc %d\n", argc);
    printf("argv[0] basename %s\n", base ? base + 1 : argv[0]);
    for (int i = 1; i < argc; i++)
        printf("argv[%d] len %zu [%s]\n", i, strlen(argv[i]), argv[i]);
    printf("argv null-terminated %d\n", null_terminated);
    printf("envp after argv %d\n", envp == argv + argc + 1);
    printf("%s %s\n", name, value ? value : "(unset)");
    return 0;
}
