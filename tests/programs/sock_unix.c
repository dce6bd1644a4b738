/* sock_unix: AF_UNIX stream, seqpacket and datagram sockets: path names
 * (socket inodes), abstract names, autobind, socketpair, credentials,
 * shutdown, peek/waitall/dontwait, and the errors around them. */
#include "sock_common.h"
#include <stddef.h>

static char dir[64];

static socklen_t path_addr(struct sockaddr_un *a, const char *name)
{
    memset(a, 0, sizeof *a);
    a->sun_family = AF_UNIX;
    snprintf(a->sun_path, sizeof a->sun_path, "%s/%s", dir, name);
    return offsetof(struct sockaddr_un, sun_path) + strlen(a->sun_path) + 1;
}

static socklen_t abstract_addr(struct sockaddr_un *a, const char *name)
{
    memset(a, 0, sizeof *a);
    a->sun_family = AF_UNIX;
    memcpy(a->sun_path + 1, name, strlen(name));
    return offsetof(struct sockaddr_un, sun_path) + 1 + strlen(name);
}

static void stream(int type, const char *label)
{
    struct sockaddr_un a, got;
    char name[80], buf[64];
    socklen_t n = path_addr(&a, label), glen;
    int l = socket(AF_UNIX, type, 0);
    snprintf(name, sizeof name, "%s listen unbound", label);
    show(name, listen(l, 1));
    snprintf(name, sizeof name, "%s bind path", label);
    show(name, bind(l, (void *)&a, n));
    struct stat st;
    stat(a.sun_path, &st);
    showb("bound name is a socket", S_ISSOCK(st.st_mode));
    printf("mode %o\n", st.st_mode & 0777);
    int dup = socket(AF_UNIX, type, 0);
    show("bind same path", bind(dup, (void *)&a, n));
    show("bind twice", bind(l, (void *)&a, n));
    show("connect not listening", connect(dup, (void *)&a, n));
    show("listen", listen(l, 4));
    int c = socket(AF_UNIX, type, 0);
    show("connect", connect(c, (void *)&a, n));
    show("connect again", connect(c, (void *)&a, n));
    glen = sizeof got;
    int s = accept(l, (void *)&got, &glen);
    printf("accepted peer addrlen %d\n", (int)glen);
    glen = sizeof got;
    getsockname(s, (void *)&got, &glen);
    printf("accepted name matches %d len ok %d\n", strcmp(got.sun_path, a.sun_path) == 0,
           glen == n);
    glen = sizeof got;
    getpeername(c, (void *)&got, &glen);
    printf("peername matches %d\n", strcmp(got.sun_path, a.sun_path) == 0);
    struct ucred cr;
    socklen_t clen = sizeof cr;
    getsockopt(s, SOL_SOCKET, SO_PEERCRED, &cr, &clen);
    printf("peercred pid ok %d uid %d len %d\n", cr.pid == getpid(), (int)cr.uid, (int)clen);
    show("write a", write(c, "abc", 3));
    show("write b", write(c, "defg", 4));
    show("peek", recv(s, buf, sizeof buf, MSG_PEEK));
    show("read", read(s, buf, sizeof buf));
    show("read dontwait", recv(s, buf, sizeof buf, MSG_DONTWAIT));
    show("read 0 bytes", read(s, buf, 0));
    if (type == SOCK_SEQPACKET) {
        write(c, "0123456789", 10);
        show("seqpacket short read", read(s, buf, 4));
        write(c, "0123456789", 10);
        show("seqpacket MSG_TRUNC", recv(s, buf, 4, MSG_TRUNC));
    } else {
        pid_t pid = fork();
        if (pid == 0) {
            write(c, "wait", 4);
            write(c, "all!", 4);
            _exit(0);
        }
        show("MSG_WAITALL", recv(s, buf, 8, MSG_WAITALL));
        waitpid(pid, NULL, 0);
    }
    show("sendto on connected", sendto(c, "x", 1, 0, (void *)&a, n));
    show("shutdown bad how", shutdown(c, 7));
    show("shutdown wr", shutdown(c, SHUT_WR));
    show("write after shutdown", send(c, "x", 1, MSG_NOSIGNAL));
    show("peer reads eof", read(s, buf, sizeof buf));
    show("peer still writes", write(s, "back", 4));
    show("half-closed reads", read(c, buf, sizeof buf));
    write(s, "unread", 6);
    close(c);
    show("write to closed peer", send(s, "x", 1, MSG_NOSIGNAL));
    show("read after close with unread", read(s, buf, sizeof buf));
    show("read again", read(s, buf, sizeof buf));
    close(s);
    close(l);
    close(dup);
    int late = socket(AF_UNIX, type, 0);
    show("connect to closed listener's file", connect(late, (void *)&a, n));
    unlink(a.sun_path);
    show("connect after unlink", connect(late, (void *)&a, n));
    int other = socket(AF_UNIX, type == SOCK_STREAM ? SOCK_SEQPACKET : SOCK_STREAM, 0);
    bind(other, (void *)&a, n);
    listen(other, 1);
    show("connect other type", connect(late, (void *)&a, n));
    close(other);
    close(late);
    unlink(a.sun_path);
}

static void names(void)
{
    struct sockaddr_un a, got;
    socklen_t n = abstract_addr(&a, "pyvisor-test-abstract"), glen;
    int l = socket(AF_UNIX, SOCK_STREAM, 0);
    show("bind abstract", bind(l, (void *)&a, n));
    glen = sizeof got;
    getsockname(l, (void *)&got, &glen);
    printf("abstract name len ok %d\n", glen == n);
    int d = socket(AF_UNIX, SOCK_STREAM, 0);
    show("bind abstract again", bind(d, (void *)&a, n));
    listen(l, 1);
    show("connect abstract", connect(d, (void *)&a, n));
    close(d);
    close(l);
    int e = socket(AF_UNIX, SOCK_STREAM, 0);
    show("connect abstract after close", connect(e, (void *)&a, n));
    /* autobind: the family alone */
    sa_family_t fam = AF_UNIX;
    show("autobind", bind(e, (void *)&fam, sizeof fam));
    glen = sizeof got;
    getsockname(e, (void *)&got, &glen);
    printf("autobind len %d abstract %d\n", (int)glen, got.sun_path[0] == 0);
    int u = socket(AF_UNIX, SOCK_STREAM, 0);
    glen = sizeof got;
    getsockname(u, (void *)&got, &glen);
    printf("unbound name len %d\n", (int)glen);
    glen = sizeof got;
    show("unbound getpeername", getpeername(u, (void *)&got, &glen));
    show("bind short len", bind(u, (void *)&a, 1));
    show("bind too long", bind(u, (void *)&a, sizeof a + 1));
    struct sockaddr_un bad = a;
    bad.sun_family = AF_INET;
    show("bind wrong family", bind(u, (void *)&bad, n));
    show("connect short len", connect(u, (void *)&a, 2));
    show("connect missing path", connect(u, (void *)&a, path_addr(&a, "missing")));
    int f = open(a.sun_path, O_CREAT | O_WRONLY, 0600);
    close(f);
    show("connect regular file", connect(u, (void *)&a, path_addr(&a, "missing")));
    unlink(a.sun_path);
    close(u);
    close(e);
}

static void dgram(void)
{
    struct sockaddr_un a, b, from;
    char buf[64];
    socklen_t an = path_addr(&a, "dg-a"), bn = abstract_addr(&b, "pyvisor-dg-b"), flen;
    int x = socket(AF_UNIX, SOCK_DGRAM, 0), y = socket(AF_UNIX, SOCK_DGRAM, 0);
    show("dgram bind path", bind(x, (void *)&a, an));
    show("dgram bind abstract", bind(y, (void *)&b, bn));
    show("dgram sendto path", sendto(y, "to x", 4, 0, (void *)&a, an));
    flen = sizeof from;
    show("dgram recvfrom", recvfrom(x, buf, sizeof buf, 0, (void *)&from, &flen));
    printf("sender name len ok %d abstract %d\n", flen == bn, from.sun_path[0] == 0);
    int z = socket(AF_UNIX, SOCK_DGRAM, 0);
    sendto(z, "anon", 4, 0, (void *)&a, an);
    flen = sizeof from;
    show("recvfrom unbound sender", recvfrom(x, buf, sizeof buf, 0, (void *)&from, &flen));
    printf("unbound sender len %d\n", (int)flen);
    show("send unconnected", send(z, "x", 1, 0));
    show("connect", connect(z, (void *)&b, bn));
    show("send connected", send(z, "hello y", 7, 0));
    show("recv short MSG_TRUNC", recv(y, buf, 2, MSG_TRUNC));
    show("connect y to x", connect(y, (void *)&a, an));
    show("send z to y connected elsewhere", send(z, "x", 1, 0));
    show("listen on dgram", listen(x, 1));
    close(x);
    show("send to closed", send(y, "x", 1, 0));
    show("send after refusal", send(y, "x", 1, 0));
    unlink(a.sun_path);
    close(y);
    close(z);
    /* a full receiver: EAGAIN, not a drop */
    int r = socket(AF_UNIX, SOCK_DGRAM, 0), w = socket(AF_UNIX, SOCK_DGRAM, 0);
    bn = abstract_addr(&b, "pyvisor-dg-full");
    bind(r, (void *)&b, bn);
    connect(w, (void *)&b, bn);
    int sent = 0;
    while (send(w, "q", 1, MSG_DONTWAIT) == 1 && sent < 100000)
        sent++;
    printf("full queue errno %s sent some %d\n", strerrorname_np(errno), sent > 0);
    close(r);
    close(w);
}

static void pair(void)
{
    int sv[2];
    char buf[16];
    show("socketpair stream", socketpair(AF_UNIX, SOCK_STREAM, 0, sv));
    write(sv[0], "ping", 4);
    show("pair read", read(sv[1], buf, sizeof buf));
    struct ucred cr;
    socklen_t clen = sizeof cr;
    getsockopt(sv[0], SOL_SOCKET, SO_PEERCRED, &cr, &clen);
    printf("pair peercred pid ok %d\n", cr.pid == getpid());
    struct stat st;
    fstat(sv[0], &st);
    printf("fstat socket %d mode %o\n", S_ISSOCK(st.st_mode), st.st_mode & 0777);
    struct pollfd p[2] = {{sv[0], POLLIN | POLLOUT, 0}, {sv[1], POLLIN | POLLOUT, 0}};
    poll(p, 2, 0);
    printf("poll %x %x\n", p[0].revents, p[1].revents);
    close(sv[1]);
    poll(p, 1, 0);
    printf("poll after peer close %x\n", p[0].revents);
    show("write to closed pair", send(sv[0], "x", 1, MSG_NOSIGNAL));
    close(sv[0]);
    show("socketpair dgram", socketpair(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0, sv));
    printf("cloexec %d\n", (fcntl(sv[0], F_GETFD) & FD_CLOEXEC) != 0);
    send(sv[0], "d1", 2, 0);
    send(sv[0], "d22", 3, 0);
    show("pair dgram 1", recv(sv[1], buf, sizeof buf, 0));
    show("pair dgram 2", recv(sv[1], buf, sizeof buf, 0));
    close(sv[0]);
    close(sv[1]);
    show("socketpair seqpacket nonblock",
         socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_NONBLOCK, 0, sv));
    show("seqpacket empty read", read(sv[0], buf, sizeof buf));
    close(sv[0]);
    close(sv[1]);
    show("socketpair inet", socketpair(AF_INET, SOCK_STREAM, 0, sv));
    int fresh = socket(AF_UNIX, SOCK_STREAM, 0);
    struct pollfd q = {fresh, POLLIN | POLLOUT, 0};
    poll(&q, 1, 0);
    printf("fresh stream poll %x\n", q.revents);
    show("read unconnected stream", read(fresh, buf, 1));
    show("write unconnected stream", send(fresh, "x", 1, MSG_NOSIGNAL));
    show("shutdown unconnected", shutdown(fresh, SHUT_RDWR));
    close(fresh);
    int sq = socket(AF_UNIX, SOCK_SEQPACKET, 0);
    show("read unconnected seqpacket", read(sq, buf, 1));
    close(sq);
}

int main(void)
{
    signal(SIGPIPE, SIG_IGN);
    strcpy(dir, "/tmp/pyvisor-sockXXXXXX");
    if (!mkdtemp(dir))
        return 1;
    stream(SOCK_STREAM, "stream");
    stream(SOCK_SEQPACKET, "seqpacket");
    names();
    dgram();
    pair();
    rmdir(dir);
    return 0;
}
