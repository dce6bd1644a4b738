"""multiprocessing Lock and Value between fork children (no sockets, no pipes
beyond the fork start method's own sentinel): the Lock is a POSIX semaphore in
/dev/shm, the Value lives in an mmap'd arena file; both are MAP_SHARED."""

import multiprocessing as mp


def work(value, lock, n):
    for _ in range(n):
        with lock:
            value.value += 1


if __name__ == "__main__":
    ctx = mp.get_context("fork")
    value = ctx.Value("i", 0, lock=False)
    lock = ctx.Lock()
    procs = [ctx.Process(target=work, args=(value, lock, 300)) for _ in range(3)]
    for p in procs:
        p.start()
    work(value, lock, 300)
    for p in procs:
        p.join()
    print("value", value.value, "exitcodes", [p.exitcode for p in procs])
    arr = ctx.Array("d", 4)
    p = ctx.Process(target=lambda: arr.__setitem__(2, 1.5))
    p.start()
    p.join()
    print("array", list(arr))
