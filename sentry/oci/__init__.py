"""The OCI runtime: bundles, container state, the control plane, the lifecycle.

``runsc.py`` drives these modules the way Docker and containerd drive runc:
``create`` / ``start`` / ``state`` / ``kill`` / ``delete`` and friends.  One
container is one *sandbox host* process (``runsc.py sandbox-serve``): it serves
the container's control socket and is the parent of the Sentry process that
runs the container's init.  Nothing here imports the kernel: the Sentry side is
reached only through ``sentry.sandbox``.
"""
