"""Checkpoint and restore of a whole sandbox (issue 17 item 5).

A checkpoint freezes the kernel (quiesce.py), writes every kernel object as
plain msgpack data (one module per object type: mm_state, file_state,
task_state; the file format and its checks in image.py) and a restore
rebuilds those objects in a new Sentry with new stub processes (restore.py).
docs/checkpoint.md says what is and is not saved.
"""
