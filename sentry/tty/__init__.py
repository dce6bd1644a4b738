"""Terminals: the line discipline, pty pairs, devpts, and the console bridge
that makes a host terminal the sandbox's terminal.

This package sits above the kernel (it sends signals to process groups and
knows sessions), beside procfs; sentry/vfs only sees its drivers through the
device registry.
"""
