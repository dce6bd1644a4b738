/* IP multicast memberships: join and leave with Linux's errnos, and a socket
 * made by accept() has none of its listener's groups (the LTP's accept02,
 * CVE-2017-8890). */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <net/if.h>
#include <netinet/in.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

static void show(const char *what, int r) { printf("%s: %d errno %d\n", what, r, r < 0 ? errno : 0); }

int main(void) {
    struct group_req gr;
    memset(&gr, 0, sizeof gr);
    /* lo, named: with no interface the answer depends on the host's routes */
    gr.gr_interface = if_nametoindex("lo");
    struct sockaddr_in *g = (struct sockaddr_in *)&gr.gr_group;
    g->sin_family = AF_INET;
    inet_aton("224.0.0.0", &g->sin_addr);
    int u = socket(AF_INET, SOCK_DGRAM, 0);
    errno = 0;
    show("join short", setsockopt(u, SOL_IP, MCAST_JOIN_GROUP, &gr, 8));
    show("join", setsockopt(u, SOL_IP, MCAST_JOIN_GROUP, &gr, sizeof gr));
    show("join again", setsockopt(u, SOL_IP, MCAST_JOIN_GROUP, &gr, sizeof gr));
    show("leave", setsockopt(u, SOL_IP, MCAST_LEAVE_GROUP, &gr, sizeof gr));
    show("leave again", setsockopt(u, SOL_IP, MCAST_LEAVE_GROUP, &gr, sizeof gr));
    struct ip_mreq mr = {0};
    inet_aton("10.0.0.1", &mr.imr_multiaddr);
    show("ip_mreq unicast group", setsockopt(u, SOL_IP, IP_ADD_MEMBERSHIP, &mr, sizeof mr));
    inet_aton("239.1.2.3", &mr.imr_multiaddr);
    mr.imr_interface.s_addr = htonl(INADDR_LOOPBACK);
    show("ip_mreq drop unjoined", setsockopt(u, SOL_IP, IP_DROP_MEMBERSHIP, &mr, sizeof mr));
    show("ip_mreq join on 127.0.0.1", setsockopt(u, SOL_IP, IP_ADD_MEMBERSHIP, &mr, sizeof mr));
    show("ip_mreq drop", setsockopt(u, SOL_IP, IP_DROP_MEMBERSHIP, &mr, sizeof mr));
    mr.imr_interface.s_addr = inet_addr("192.0.2.77");
    show("ip_mreq join on a foreign address", setsockopt(u, SOL_IP, IP_ADD_MEMBERSHIP, &mr,
                                                         sizeof mr));
    struct ip_mreqn mn = {0};
    inet_aton("239.1.2.3", &mn.imr_multiaddr);
    mn.imr_ifindex = 100000;
    show("ip_mreqn unknown interface", setsockopt(u, SOL_IP, IP_ADD_MEMBERSHIP, &mn, sizeof mn));
    g->sin_family = AF_INET6;
    show("group of the wrong family", setsockopt(u, SOL_IP, MCAST_JOIN_GROUP, &gr, sizeof gr));
    g->sin_family = AF_INET;

    struct sockaddr_in sa = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    socklen_t len = sizeof sa;
    int l = socket(AF_INET, SOCK_STREAM, 0);
    show("tcp listener join", setsockopt(l, SOL_IP, MCAST_JOIN_GROUP, &gr, sizeof gr));
    bind(l, (struct sockaddr *)&sa, sizeof sa);
    getsockname(l, (struct sockaddr *)&sa, &len);
    listen(l, 1);
    int cl = socket(AF_INET, SOCK_STREAM, 0);
    connect(cl, (struct sockaddr *)&sa, len);
    int a = accept(l, NULL, NULL);
    show("accepted socket leaves", setsockopt(a, SOL_IP, MCAST_LEAVE_GROUP, &gr, sizeof gr));
    show("listener leaves", setsockopt(l, SOL_IP, MCAST_LEAVE_GROUP, &gr, sizeof gr));
    return 0;
}
