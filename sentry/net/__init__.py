"""The socket layer: sockets are file descriptions (socketfile.SocketFile)
over one endpoint interface (endpoint.Endpoint) with an implementation per
protocol: AF_UNIX stream/seqpacket/dgram (unix.py), and AF_INET/AF_INET6
loopback TCP and UDP served in memory (inet.py). No application socket ever
reaches the host: DESIGN.md section 6.
"""
