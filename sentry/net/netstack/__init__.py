"""--network=sandbox: the container's network through a user-space TCP/IP
stack (PyTCP) in the Sentry, on one packet descriptor (docs/network.md)."""
