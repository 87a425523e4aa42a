"""The ceiling: the most persisted transitions per second this machine allows.

A plain psycopg2 loop that does, per commit, what one transition must at least do: update one
row (the run) and insert one row (its history), then commit. Run from one process and from
two at once (each on its own row); every throughput figure of the suite is also given as a
ratio to the better of the two. No Django, no queue, no engine.

    .venv/bin/python -m bench.ceiling --commits 3000
"""

from __future__ import annotations

import argparse
import json
import multiprocessing
import os
import time

SETUP = """
DROP TABLE IF EXISTS bench_ceiling_history, bench_ceiling_run;
CREATE TABLE bench_ceiling_run (id int PRIMARY KEY, state text NOT NULL, version bigint NOT NULL,
                                updated_at timestamptz NOT NULL);
CREATE TABLE bench_ceiling_history (id bigserial PRIMARY KEY,
                                    run_id int NOT NULL REFERENCES bench_ceiling_run(id),
                                    seq bigint NOT NULL, to_state text NOT NULL,
                                    at timestamptz NOT NULL);
CREATE INDEX ON bench_ceiling_history (run_id, seq);
"""


def _loop(url: str, row: int, commits: int, start: multiprocessing.synchronize.Event,
          out: multiprocessing.Queue) -> None:
    import psycopg2

    conn = psycopg2.connect(url)
    with conn.cursor() as cur:
        cur.execute("INSERT INTO bench_ceiling_run VALUES (%s, 's0', 0, now())", (row,))
    conn.commit()
    start.wait(30)
    began = time.perf_counter()
    with conn.cursor() as cur:
        for seq in range(1, commits + 1):
            cur.execute("UPDATE bench_ceiling_run SET state = %s, version = version + 1, "
                        "updated_at = now() WHERE id = %s", (f"s{seq % 10}", row))
            cur.execute("INSERT INTO bench_ceiling_history (run_id, seq, to_state, at) "
                        "VALUES (%s, %s, %s, now())", (row, seq, f"s{seq % 10}"))
            conn.commit()
    out.put((began, time.perf_counter()))
    conn.close()


def measure(url: str, processes: int, commits: int) -> float:
    """Commits per second of ``processes`` loops of ``commits`` each (from the first start
    to the last end)."""
    import psycopg2

    conn = psycopg2.connect(url)
    conn.autocommit = True
    with conn.cursor() as cur:
        cur.execute(SETUP)
    conn.close()
    ctx = multiprocessing.get_context("spawn")
    start, out = ctx.Event(), ctx.Queue()
    workers = [ctx.Process(target=_loop, args=(url, i, commits, start, out))
               for i in range(processes)]
    for worker in workers:
        worker.start()
    time.sleep(0.5)  # connected and ready
    start.set()
    spans = [out.get(timeout=600) for _ in workers]
    for worker in workers:
        worker.join(30)
    elapsed = max(end for _, end in spans) - min(began for began, _ in spans)
    return processes * commits / elapsed


def main() -> None:
    from bench.harness import DEFAULT_PG, aggregate, drop_database, scratch_database

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--commits", type=int, default=3000, help="per process")
    parser.add_argument("--reps", type=int, default=3)
    args = parser.parse_args()
    name = f"bench_ceiling_{os.getpid()}"  # this run's own: two runs never drop each other's
    url = scratch_database(DEFAULT_PG, name)
    try:
        result = {p: aggregate([{"commits_per_s": measure(url, p, args.commits)}
                                for _ in range(args.reps)]) for p in (1, 2)}
    finally:
        drop_database(DEFAULT_PG, name)
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
