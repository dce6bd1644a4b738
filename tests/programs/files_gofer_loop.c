/* Reads argv[1] over and over (opening it each time) and looks up a fresh
 * missing name beside it each round (a lookup no cache can answer), until one
 * of them fails unexpectedly: then prints which and the errno name, and exits
 * 7. Prints "started" once the first round succeeded, so a test knows when to
 * pull the file server away. Gives up (exit 3) after 20 s without a failure. */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

int main(int argc, char **argv) {
    if (argc != 2) {
        fprintf(stderr, "usage: %s FILE\n", argv[0]);
        return 2;
    }
    setvbuf(stdout, NULL, _IONBF, 0);
    time_t start = time(NULL);
    int announced = 0;
    char buf[4096], missing[4200];
    unsigned long round = 0;
    while (time(NULL) - start < 20) {
        int fd = open(argv[1], O_RDONLY);
        if (fd < 0) {
            printf("open failed: %s\n", strerrorname_np(errno));
            return 7;
        }
        ssize_t n = read(fd, buf, sizeof buf);
        if (n < 0) {
            printf("read failed: %s\n", strerrorname_np(errno));
            close(fd);
            return 7;
        }
        close(fd);
        snprintf(missing, sizeof missing, "%s.pyvisor-missing-%lu", argv[1], round++);
        struct stat st;
        if (stat(missing, &st) == 0 || errno != ENOENT) {
            printf("lookup failed: %s\n", strerrorname_np(errno));
            return 7;
        }
        if (!announced) {
            printf("started\n");
            announced = 1;
        }
    }
    printf("no failure in 20 s\n");
    return 3;
}
