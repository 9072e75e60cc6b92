"""Pool and connection benchmarks, written only against kombu's public API.

Like ``bench/workloads.py``, this file runs unchanged under this project's
virtualenv and under one with real kombu 5.x (``bench/run.py --workload
pools`` starts it in both and compares).  Each result is one JSON line::

    python bench/pools.py --url memory:// --url redis://127.0.0.1:6379/13 --n 100000

For every URL, in a fresh set of global pools (``kombu.pools.reset()``):

* ``pool_connections``: ``pools.connections[conn].acquire()`` then
  ``release()``, on 1 thread (``_1t``) and on ``--threads`` threads
  (``_Nt``, cycles per second summed over the threads);
* ``pool_producers``: the same with ``pools.producers[conn]``;
* ``ensure_connection``: ``conn.ensure_connection()`` on a connection that
  is already connected, ``10 * n`` times (a call costs far less than a pool
  cycle; fewer would time little more than noise).

The key of the pool groups is a :class:`~kombu.Connection` (kombu needs
one).  The pools keep the global default limit (10), so with more threads
than that the threads wait for each other: they acquire with ``block=True``
and a timeout.  Before timing, every pooled connection is connected, so the
cycles hand out live connections.  A URL whose transport cannot connect on
this side (not installed, broker down) is reported as a ``skipped`` line and
the others still run.
"""

from __future__ import annotations

import argparse
import json
import platform
import sys
import threading
import time
from typing import Any, Callable

#: Bound on one blocking pool acquire, and on joining the threads, in seconds.
WAIT = 30.0
#: Bound on connecting to a broker before the URL is skipped, in seconds.
CONNECT_TIMEOUT = 5.0


def emit(workload: str, **fields: Any) -> None:
    import kombu

    print(json.dumps({"workload": workload, "kombu": kombu.__version__,
                      "python": platform.python_version(), **fields}), flush=True)


def _cycle(pool: Any, n: int) -> None:
    acquire = pool.acquire
    for _ in range(n):
        acquire(block=True, timeout=WAIT).release()


def _threaded(pool: Any, n: int, threads: int) -> float:
    """Seconds for ``threads`` threads to do ``n`` acquire+release cycles between them."""
    share, extra = divmod(n, threads)
    barrier = threading.Barrier(threads + 1, timeout=WAIT)
    errors: list[BaseException] = []

    def work(count: int) -> None:
        try:
            barrier.wait()
            _cycle(pool, count)
        except BaseException as exc:  # noqa: BLE001  (reported by the main thread)
            errors.append(exc)

    workers = [threading.Thread(target=work, args=(share + (i < extra),), daemon=True)
               for i in range(threads)]
    for worker in workers:
        worker.start()
    barrier.wait()
    start = time.perf_counter()
    deadline = time.monotonic() + WAIT + n * 1e-3
    for worker in workers:
        worker.join(max(deadline - time.monotonic(), 0))
    elapsed = time.perf_counter() - start
    if errors:
        raise SystemExit(f"a worker thread failed: {errors[0]!r}")
    if any(worker.is_alive() for worker in workers):
        raise SystemExit(f"{threads} threads did not finish {n} cycles in time")
    return elapsed


def _warm(pool: Any, limit: int, prepare: Callable[[Any], None]) -> None:
    """Acquire every resource of ``pool`` at once, ``prepare`` each, release them."""
    held = [pool.acquire(block=True, timeout=WAIT) for _ in range(limit)]
    for resource in held:
        prepare(resource)
    for resource in held:
        resource.release()


def _connectable(url: str) -> str | None:
    """Why ``url`` cannot be benchmarked on this side, or None when it can."""
    from kombu import Connection

    try:
        conn = Connection(url, connect_timeout=CONNECT_TIMEOUT)
        try:
            conn.connect()
            if not conn.connected:
                return "connect() returned without a connection"
        finally:
            conn.release()
    except Exception as exc:  # noqa: BLE001  (any failure means: skip this URL)
        return f"{type(exc).__name__}: {exc}"
    return None


def run(url: str, n: int, threads: int) -> None:
    from kombu import Connection, pools
    from kombu.utils.url import maybe_sanitize_url

    # only a URL with user info can hold a password (and memory:// stays as given)
    shown = maybe_sanitize_url(url) if "@" in url else url
    why = _connectable(url)
    if why is not None:
        emit("skipped", url=shown, reason=f"Connection({shown!r}).connect() failed: {why}")
        return
    limit = pools.get_limit()
    results: list[tuple[str, float]] = []
    for group, warm in (("connections", lambda c: c.connect()),
                        ("producers", lambda p: p.connection.connect())):
        pools.reset()
        conn = Connection(url)
        pool = getattr(pools, group)[conn]
        _warm(pool, limit, warm)
        _cycle(pool, min(n, 1000))
        start = time.perf_counter()
        _cycle(pool, n)
        results.append((f"pool_{group}_1t", time.perf_counter() - start))
        results.append((f"pool_{group}_{threads}t", _threaded(pool, n, threads)))
        pools.reset()
        conn.release()

    for name, seconds in results:
        emit(name, url=shown, n=n, seconds=seconds, rate=n / seconds, limit=limit,
             threads=threads if name.endswith(f"_{threads}t") else 1)

    calls = 10 * n
    with Connection(url) as conn:
        conn.connect()
        ensure = conn.ensure_connection
        start = time.perf_counter()
        for _ in range(calls):
            ensure()
        seconds = time.perf_counter() - start
    emit("ensure_connection", url=shown, n=calls, seconds=seconds, rate=calls / seconds)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--url", action="append",
                        help="broker URL, repeatable (default memory://)")
    parser.add_argument("--n", type=int, default=100_000, help="cycles per workload")
    parser.add_argument("--threads", type=int, default=16,
                        help="threads of the threaded workloads")
    args = parser.parse_args(argv)
    if args.threads < 2:
        parser.error("--threads must be at least 2 (the 1-thread workloads always run)")
    for url in args.url or ["memory://"]:
        run(url, args.n, args.threads)
    return 0


if __name__ == "__main__":
    sys.exit(main())
