"""multiprocessing Pool(4).map and Queue with the fork start method: pipes for
the data, POSIX semaphores (/dev/shm, MAP_SHARED) for the locks."""

import multiprocessing as mp


def square(x):
    return x * x


if __name__ == "__main__":
    ctx = mp.get_context("fork")
    q = ctx.Queue()
    p = ctx.Process(target=q.put, args=({"answer": 42},))
    p.start()
    print("queue", q.get())
    p.join()
    print("exitcode", p.exitcode)
    with ctx.Pool(4) as pool:
        print("pool", pool.map(square, range(20)))
