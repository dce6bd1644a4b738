/* sock_tcp: loopback TCP over IPv4 and IPv6: an echo server in a forked
 * child, half-close, resets, refused and non-blocking connects, options. */
#include "sock_common.h"
#include <sys/time.h>

static socklen_t addr_of(int fam, struct sockaddr_storage *ss, const char *ip, int port)
{
    memset(ss, 0, sizeof *ss);
    if (fam == AF_INET) {
        struct sockaddr_in *s = (void *)ss;
        s->sin_family = AF_INET;
        s->sin_port = htons(port);
        inet_pton(AF_INET, ip, &s->sin_addr);
        return sizeof *s;
    }
    struct sockaddr_in6 *s = (void *)ss;
    s->sin6_family = AF_INET6;
    s->sin6_port = htons(port);
    inet_pton(AF_INET6, ip, &s->sin6_addr);
    return sizeof *s;
}

static int port_of(int fd)
{
    struct sockaddr_storage ss;
    socklen_t len = sizeof ss;
    getsockname(fd, (void *)&ss, &len);
    return ntohs(ss.ss_family == AF_INET ? ((struct sockaddr_in *)&ss)->sin_port
                                         : ((struct sockaddr_in6 *)&ss)->sin6_port);
}

static int listener(int fam, const char *ip)
{
    struct sockaddr_storage ss;
    int l = socket(fam, SOCK_STREAM, 0);
    int one = 1;
    setsockopt(l, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
    socklen_t n = addr_of(fam, &ss, ip, 0);
    if (bind(l, (void *)&ss, n) < 0 || listen(l, 8) < 0)
        perror("listener");
    return l;
}

static void echo_child(int l)
{
    int c = accept(l, NULL, NULL);
    char buf[4096];
    ssize_t n;
    while ((n = read(c, buf, sizeof buf)) > 0)
        write(c, buf, n);
    close(c);
    _exit(0);
}

static void echo(int fam, const char *ip, const char *label)
{
    struct sockaddr_storage ss;
    char buf[256], name[80];
    int l = listener(fam, ip);
    pid_t pid = fork();
    if (pid == 0)
        echo_child(l);
    int s = socket(fam, SOCK_STREAM, 0);
    socklen_t n = addr_of(fam, &ss, ip, port_of(l));
    snprintf(name, sizeof name, "%s connect", label);
    show(name, connect(s, (void *)&ss, n));
    snprintf(name, sizeof name, "%s write", label);
    show(name, write(s, "hello", 5));
    memset(buf, 0, sizeof buf);
    snprintf(name, sizeof name, "%s read", label);
    show(name, read(s, buf, sizeof buf));
    printf("%s echoed %s\n", label, buf);
    struct sockaddr_storage peer;
    socklen_t plen = sizeof peer;
    getpeername(s, (void *)&peer, &plen);
    showb("peer port matches", port_of(l) == ntohs(((struct sockaddr_in *)&peer)->sin_port));
    showb("peername len", plen);
    snprintf(name, sizeof name, "%s shutdown wr", label);
    show(name, shutdown(s, SHUT_WR));
    snprintf(name, sizeof name, "%s read eof", label);
    show(name, read(s, buf, sizeof buf));
    close(s);
    int st;
    waitpid(pid, &st, 0);
    showb("child status", st);
    close(l);
}

static void refused(int fam, const char *ip)
{
    struct sockaddr_storage ss;
    int b = socket(fam, SOCK_STREAM, 0);
    socklen_t n = addr_of(fam, &ss, ip, 0);
    bind(b, (void *)&ss, n);
    int port = port_of(b);
    int s = socket(fam, SOCK_STREAM, 0);
    n = addr_of(fam, &ss, ip, port);
    show("connect unlistened port", connect(s, (void *)&ss, n));
    int again = socket(fam, SOCK_STREAM, 0);
    show("bind same port", bind(again, (void *)&ss, n));
    close(again);
    /* non-blocking: EINPROGRESS, then the refusal in SO_ERROR */
    int nb = socket(fam, SOCK_STREAM | SOCK_NONBLOCK, 0);
    show("nonblock connect refused", connect(nb, (void *)&ss, n));
    struct pollfd p = {nb, POLLOUT, 0};
    show("poll refused", poll(&p, 1, 5000));
    showb("revents", p.revents & (POLLOUT | POLLERR | POLLHUP));
    showb("SO_ERROR is ECONNREFUSED", int_opt(nb, SOL_SOCKET, SO_ERROR) == ECONNREFUSED);
    showb("SO_ERROR cleared", int_opt(nb, SOL_SOCKET, SO_ERROR));
    close(nb);
    close(s);
    close(b);
}

static void nonblocking(void)
{
    struct sockaddr_storage ss;
    int l = listener(AF_INET, "127.0.0.1");
    int s = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK, 0);
    socklen_t n = addr_of(AF_INET, &ss, "127.0.0.1", port_of(l));
    show("nonblock connect", connect(s, (void *)&ss, n));
    struct pollfd p = {s, POLLOUT, 0};
    show("poll connect", poll(&p, 1, 5000));
    showb("revents out", p.revents);
    showb("SO_ERROR", int_opt(s, SOL_SOCKET, SO_ERROR));
    show("connect again", connect(s, (void *)&ss, n));
    char c;
    show("read nothing yet", read(s, &c, 1));
    int a = accept4(l, NULL, NULL, SOCK_NONBLOCK);
    show("accept4 nonblock", a >= 0 ? 0 : -1);
    showb("accepted O_NONBLOCK", (fcntl(a, F_GETFL) & O_NONBLOCK) != 0);
    fcntl(l, F_SETFL, O_NONBLOCK);
    show("accept empty queue", accept(l, NULL, NULL) < 0 ? -1 : 0);
    struct pollfd q = {a, POLLIN, 0};
    show("poll accepted before data", poll(&q, 1, 0));
    write(s, "x", 1);
    show("poll accepted after data", poll(&q, 1, 5000));
    showb("revents in", q.revents);
    /* reset: close with unread data */
    write(a, "unread", 6);
    struct pollfd r = {s, POLLIN, 0};
    poll(&r, 1, 5000);
    close(s);
    p.fd = a;
    p.events = POLLIN;
    poll(&p, 1, 5000);
    char buf[16];
    show("read after peer reset: x", read(a, buf, sizeof buf));
    show("read after peer reset", read(a, buf, sizeof buf));
    show("read after reset again", read(a, buf, sizeof buf));
    show("write after reset", send(a, "y", 1, MSG_NOSIGNAL));
    close(a);
    close(l);
}

static void fin_then_write(void)
{
    struct sockaddr_storage ss;
    int l = listener(AF_INET, "127.0.0.1");
    int s = socket(AF_INET, SOCK_STREAM, 0);
    socklen_t n = addr_of(AF_INET, &ss, "127.0.0.1", port_of(l));
    connect(s, (void *)&ss, n);
    int a = accept(l, NULL, NULL);
    close(a);
    char c;
    show("read after peer close", read(s, &c, 1));
    show("first write after close", send(s, "a", 1, MSG_NOSIGNAL));
    struct pollfd p = {s, POLLIN, 0};
    poll(&p, 1, 5000);
    show("second write after close", send(s, "b", 1, MSG_NOSIGNAL));
    show("read still eof", read(s, &c, 1));
    close(s);
    close(l);
}

static void options(void)
{
    int s = socket(AF_INET, SOCK_STREAM, 0);
    int l = listener(AF_INET6, "::");
    showb("SO_TYPE", int_opt(s, SOL_SOCKET, SO_TYPE));
    showb("SO_DOMAIN", int_opt(l, SOL_SOCKET, SO_DOMAIN));
    showb("SO_PROTOCOL", int_opt(s, SOL_SOCKET, SO_PROTOCOL));
    showb("SO_ACCEPTCONN listener", int_opt(l, SOL_SOCKET, SO_ACCEPTCONN));
    showb("SO_ACCEPTCONN plain", int_opt(s, SOL_SOCKET, SO_ACCEPTCONN));
    struct ucred uc;
    socklen_t ul = sizeof uc;
    getsockopt(s, SOL_SOCKET, SO_PEERCRED, &uc, &ul);
    printf("tcp peercred %d %d %d\n", uc.pid, (int)uc.uid, (int)uc.gid);
    int one = 1;
    show("TCP_NODELAY set", setsockopt(s, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one));
    showb("TCP_NODELAY", int_opt(s, IPPROTO_TCP, TCP_NODELAY));
    show("SO_KEEPALIVE set", setsockopt(s, SOL_SOCKET, SO_KEEPALIVE, &one, sizeof one));
    showb("SO_KEEPALIVE", int_opt(s, SOL_SOCKET, SO_KEEPALIVE));
    struct linger lg = {1, 5}, lg2;
    socklen_t len = sizeof lg2;
    show("SO_LINGER set", setsockopt(s, SOL_SOCKET, SO_LINGER, &lg, sizeof lg));
    getsockopt(s, SOL_SOCKET, SO_LINGER, &lg2, &len);
    printf("linger %d %d len %d\n", lg2.l_onoff, lg2.l_linger, (int)len);
    showb("IPV6_V6ONLY", int_opt(l, IPPROTO_IPV6, IPV6_V6ONLY));
    show("IPV6_V6ONLY on v4", int_opt(s, IPPROTO_IPV6, IPV6_V6ONLY) < -1000 ? (errno = -1000 - int_opt(s, IPPROTO_IPV6, IPV6_V6ONLY), -1) : 0);
    show("unknown SOL_SOCKET option", setsockopt(s, SOL_SOCKET, 9999, &one, sizeof one));
    show("short optlen", setsockopt(s, SOL_SOCKET, SO_KEEPALIVE, &one, 2));
    struct timeval tv = {0, 20000};
    show("SO_RCVTIMEO set", setsockopt(l, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv));
    show("accept times out", accept(l, NULL, NULL));
    tv.tv_usec = 2000000;
    show("SO_RCVTIMEO bad usec", setsockopt(l, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv));
    /* v4 client to a dual-stack v6 listener: v4-mapped peer */
    struct sockaddr_storage ss;
    socklen_t n = addr_of(AF_INET, &ss, "127.0.0.1", port_of(l));
    show("v4 to dual-stack listener", connect(s, (void *)&ss, n));
    struct sockaddr_in6 peer;
    socklen_t plen = sizeof peer;
    int a = accept(l, (void *)&peer, &plen);
    char txt[64];
    inet_ntop(AF_INET6, &peer.sin6_addr, txt, sizeof txt);
    printf("accepted from %s len %d\n", txt, (int)plen);
    struct sockaddr_in6 me;
    socklen_t mlen = sizeof me;
    getsockname(a, (void *)&me, &mlen);
    inet_ntop(AF_INET6, &me.sin6_addr, txt, sizeof txt);
    printf("accepted at %s\n", txt);
    close(a);
    close(s);
    close(l);
    /* v6only listener ignores v4 */
    int v6 = socket(AF_INET6, SOCK_STREAM, 0);
    show("IPV6_V6ONLY set", setsockopt(v6, IPPROTO_IPV6, IPV6_V6ONLY, &one, sizeof one));
    n = addr_of(AF_INET6, &ss, "::", 0);
    bind(v6, (void *)&ss, n);
    listen(v6, 1);
    int v4 = socket(AF_INET, SOCK_STREAM, 0);
    n = addr_of(AF_INET, &ss, "127.0.0.1", port_of(v6));
    show("v4 bind beside v6only", bind(v4, (void *)&ss, n));
    int c4 = socket(AF_INET, SOCK_STREAM, 0);
    show("v4 connect to v6only", connect(c4, (void *)&ss, n));
    close(c4);
    close(v4);
    show("IPV6_V6ONLY after bind", setsockopt(v6, IPPROTO_IPV6, IPV6_V6ONLY, &one, sizeof one));
    close(v6);
}

static void on_alarm(int sig)
{
    (void)sig;
}

static void interrupted(void)
{
    int l = listener(AF_INET, "127.0.0.1");
    struct sigaction sa = {.sa_handler = on_alarm};
    sigaction(SIGALRM, &sa, NULL);
    struct itimerval it = {{0, 0}, {0, 20000}};
    setitimer(ITIMER_REAL, &it, NULL);
    show("accept interrupted", accept(l, NULL, NULL));
    sa.sa_flags = SA_RESTART;
    sigaction(SIGALRM, &sa, NULL);
    struct timeval tv = {30, 0};
    setsockopt(l, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
    setitimer(ITIMER_REAL, &it, NULL);
    show("accept with timeout, SA_RESTART", accept(l, NULL, NULL));
    int sv[2];
    socketpair(AF_UNIX, SOCK_STREAM, 0, sv);
    sa.sa_flags = 0;
    sigaction(SIGALRM, &sa, NULL);
    setitimer(ITIMER_REAL, &it, NULL);
    char c;
    show("read unix interrupted", read(sv[0], &c, 1));
    close(sv[0]);
    close(sv[1]);
    close(l);
}

static void reuse(int opt, const char *label)
{
    struct sockaddr_storage ss;
    int one = 1, a = socket(AF_INET, SOCK_STREAM, 0), b = socket(AF_INET, SOCK_STREAM, 0);
    char name[80];
    setsockopt(a, SOL_SOCKET, opt, &one, sizeof one);
    setsockopt(b, SOL_SOCKET, opt, &one, sizeof one);
    socklen_t n = addr_of(AF_INET, &ss, "127.0.0.1", 0);
    bind(a, (void *)&ss, n);
    n = addr_of(AF_INET, &ss, "127.0.0.1", port_of(a));
    snprintf(name, sizeof name, "%s: bind second", label);
    show(name, bind(b, (void *)&ss, n));
    snprintf(name, sizeof name, "%s: listen first", label);
    show(name, listen(a, 1));
    snprintf(name, sizeof name, "%s: listen second", label);
    show(name, listen(b, 1));
    int c = socket(AF_INET, SOCK_STREAM, 0);
    show("connect to a shared port", connect(c, (void *)&ss, n));
    close(c);
    close(a);
    close(b);
}

int main(void)
{
    signal(SIGPIPE, SIG_IGN);
    echo(AF_INET, "127.0.0.1", "v4");
    echo(AF_INET6, "::1", "v6");
    echo(AF_INET6, "::ffff:127.0.0.1", "v4mapped");
    refused(AF_INET, "127.0.0.1");
    refused(AF_INET6, "::1");
    nonblocking();
    fin_then_write();
    options();
    interrupted();
    reuse(SO_REUSEADDR, "SO_REUSEADDR");
    reuse(SO_REUSEPORT, "SO_REUSEPORT");
    return 0;
}
