/* MSG_MORE on loopback TCP and UDP: the bytes wait for a send without it
 * and then arrive in one piece (UDP: one datagram); a shutdown or close
 * sends what TCP holds (the LTP's send02). */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

static char buf[64];

/* "nothing yet" is asked without waiting; expected data is waited for */
static void rd_flags(const char *what, int fd, int flags) {
    errno = 0;
    ssize_t n = recv(fd, buf, sizeof buf, flags);
    printf("%s: %zd errno %d\n", what, n, n < 0 ? errno : 0);
}

static void rd(const char *what, int fd) { rd_flags(what, fd, 0); }
static void none(const char *what, int fd) { rd_flags(what, fd, MSG_DONTWAIT); }

static void pair(int type, int *a, int *b) {
    struct sockaddr_in sa = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    socklen_t len = sizeof sa;
    int l = socket(AF_INET, type, 0);
    bind(l, (struct sockaddr *)&sa, sizeof sa);
    getsockname(l, (struct sockaddr *)&sa, &len);
    *a = socket(AF_INET, type, 0);
    if (type == SOCK_STREAM) {
        listen(l, 1);
        connect(*a, (struct sockaddr *)&sa, len);
        *b = accept(l, NULL, NULL);
        close(l);
    } else {
        connect(*a, (struct sockaddr *)&sa, len);
        *b = l;
    }
}

int main(void) {
    char data[16];
    memset(data, 'x', sizeof data);
    int a, b;
    pair(SOCK_STREAM, &a, &b);
    send(a, data, 16, 0);
    rd("tcp plain", b);
    printf("tcp more send: %zd\n", send(a, data, 16, MSG_MORE));
    none("tcp after more", b);
    send(a, data, 1, 0);
    rd("tcp after the last part", b);
    send(a, data, 5, MSG_MORE);
    shutdown(a, SHUT_WR);
    rd("tcp after shutdown", b);
    rd("tcp then", b);
    close(a);
    close(b);
    pair(SOCK_STREAM, &a, &b);
    send(a, data, 7, MSG_MORE);
    close(a);
    rd("tcp after close", b);
    close(b);
    pair(SOCK_DGRAM, &a, &b);
    send(a, data, 3, MSG_MORE);
    send(a, data, 4, MSG_MORE);
    none("udp after two more", b);
    printf("udp last part: %zd\n", send(a, data, 5, 0));
    rd("udp datagram", b);
    none("udp then", b);
    return 0;
}
