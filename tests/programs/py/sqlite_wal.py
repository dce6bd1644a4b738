"""Two processes on one SQLite database in WAL mode: the WAL index is a
MAP_SHARED mapping of the -shm file, the locks are fcntl byte-range locks.
Usage: sqlite_wal.py DB_PATH"""

import os
import sqlite3
import sys

path = sys.argv[1]
db = sqlite3.connect(path)
print("journal", db.execute("PRAGMA journal_mode=WAL").fetchone()[0])
db.execute("CREATE TABLE t (k INTEGER PRIMARY KEY, v TEXT)")
db.commit()
r, w = os.pipe()
pid = os.fork()
if pid == 0:
    os.close(r)
    c = sqlite3.connect(path)
    for i in range(50):
        c.execute("INSERT INTO t (v) VALUES (?)", (f"child-{i}",))
        c.commit()
    os.write(w, b"x")
    os._exit(0)
os.close(w)
os.read(r, 1)
print("parent sees", db.execute("SELECT count(*) FROM t").fetchone()[0], "rows")
db.execute("INSERT INTO t (v) VALUES ('parent')")
db.commit()
_, status = os.waitpid(pid, 0)
print("child status", status)
print("total", db.execute("SELECT count(*), max(k) FROM t").fetchone())
db.close()
for suffix in ("", "-wal", "-shm"):
    try:
        os.unlink(path + suffix)
    except FileNotFoundError:
        pass
