"""Plans and drills solve in a worker thread, at most STOCKPILE_ALLOCATION_SOLVERS at once per process."""

import asyncio
import threading

from stockpile.services.planning import Limits, off_the_loop


async def test_solves_run_in_worker_threads_at_most_the_configured_number_at_once():
    loop_thread = threading.get_ident()
    lock, running, seen = threading.Lock(), [0], []
    release = threading.Event()

    def solve(n: int) -> int:
        with lock:
            running[0] += 1
            seen.append((threading.get_ident(), running[0]))
        release.wait(5)
        with lock:
            running[0] -= 1
        return n

    for solvers in (1, 2):
        seen.clear()
        release.clear()
        tasks = [asyncio.create_task(off_the_loop(Limits(solvers=solvers), solve, n)) for n in range(4)]
        while len(seen) < solvers:  # the loop stays free while they run: this coroutine keeps going
            await asyncio.sleep(0.01)
        await asyncio.sleep(0.05)
        assert len(seen) == solvers
        release.set()
        assert await asyncio.gather(*tasks) == [0, 1, 2, 3]
        assert all(thread != loop_thread for thread, _ in seen)
        assert max(at_once for _, at_once in seen) == solvers
