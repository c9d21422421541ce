"""Load benchmark of `gtkit serve`: N scripted annotators doing next -> task page -> submit against
real gunicorn servers on loopback, on SQLite and PostgreSQL, with 1 or 2 instances.

Per configuration it prints p50/p95/p99 latency of claim (POST /next), the task page (GET /task/ID,
the worker template rendered) and submit (POST /task/ID/submit, validated at the door), answers per
second, and lost / duplicated answers (acknowledged answers missing from the database, rows stored
twice: both must be 0). The baseline is a static file (GET /_portal/portal.css) fetched by each
annotator right after each submit: the same servers, client threads and load at the same moments;
the ratio is each p99 over the static p99. The "in-app" rows are the same requests timed inside the
service (the access log's `ms`), without the waiting in front of it. With `--think 0` (the default)
annotators fire back to back, a stress test; `--think S` has each spend about S seconds on a task,
as people do (minutes, really). Answers are the simulated worker's (the pre-segments, jittered per
worker, with the schema's questions answered), so validation does real work.

Bounded: every configuration stops after --max-seconds; servers bind 127.0.0.1 only; the
PostgreSQL server is a throwaway cluster (tests/service/conftest.py) unless GTKIT_TEST_POSTGRES_URL
is set.

    .venv/bin/python bench/serve_load.py                                   # 20 annotators, all configs
    .venv/bin/python bench/serve_load.py --annotators 50 --configs sqlite:1 --think 2
    .venv/bin/python bench/serve_load.py --annotators 200 --configs postgresql:2 --gunicorn-workers 2
    GTKIT_BENCH_SERVE_ARGS=--no-queue .venv/bin/python bench/serve_load.py --configs sqlite:1  # extra serve run options
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import random
import shutil
import statistics
import sys
import tempfile
import threading
import time
from datetime import UTC, datetime
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(REPO / "tests" / "service"))  # the test suite's server and database helpers

from argon2 import PasswordHasher  # noqa: E402
from serve_processes import Server, prepare, task_inputs  # noqa: E402
from service_helpers import PASSWORD, PRE, fresh_postgres_database, write_manifest  # noqa: E402
from sqlalchemy import select  # noqa: E402

from toolkit.contract import load_label_schema  # noqa: E402
from toolkit.service import jobs, people  # noqa: E402
from toolkit.service.simulate import simulated_answer_content  # noqa: E402
from toolkit.service.tables import Answer  # noqa: E402
from toolkit.service.web.client import Annotator  # noqa: E402

# The access log's endpoint names (toolkit.service.web.app) of what the annotators time.
ENDPOINTS = {"annotate.next_task": "claim", "annotate.task_page": "page", "annotate.submit": "submit",
             "static": "static"}


def server_timings(logs: list[Path], since: str) -> dict[str, list[float]]:
    """Time inside the app per request kind, from the servers' access logs (`ms`: before_request to
    after_request), for requests logged at or after `since` (ISO, UTC). Against the client's figures
    this separates the service's own time from the waiting in front of it (the gunicorn thread or
    the GIL, the client, a CPU taken by something else)."""
    found: dict[str, list[float]] = {kind: [] for kind in ENDPOINTS.values()}
    for log in logs:
        with log.open(errors="replace") as lines_in:  # a long run logs a line per request: streamed
            for line in lines_in:
                if not line.startswith("{"):
                    continue
                try:
                    entry = json.loads(line)
                except ValueError:
                    continue
                kind = ENDPOINTS.get(entry.get("endpoint"))
                if kind is not None and isinstance(entry.get("ms"), int | float) and entry.get("ts", "") >= since:
                    found[kind].append(float(entry["ms"]))
    return found


def lines(count: int) -> list[dict]:
    return [{"source-ref": f"s3://bench-bucket/calls/c{i:05d}.wav", "media-type": "audio",
             "interaction-id": f"bench-{i:05d}", "duration-seconds": 21.0, "pre-segments": PRE}
            for i in range(count)]


def pct(values: list[float], q: float) -> float:
    if not values:
        return float("nan")
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q / 100 * (len(ordered) - 1)))]


class Run:
    def __init__(self, urls: list[str], users, inputs: dict[int, dict], schema, deadline: float,
                 think_s: float = 0.0) -> None:
        self.urls, self.users, self.inputs, self.schema, self.deadline = urls, users, inputs, schema, deadline
        self.think_s = think_s
        self.lock = threading.Lock()
        self.timings: dict[str, list[float]] = {"claim": [], "page": [], "submit": [], "static": []}
        self.acked: set[tuple[int, int]] = set()
        self.errors: list[str] = []
        self.clients: list[Annotator] = []

    def _time(self, kind: str, fn, *args):
        started = time.perf_counter()
        result = fn(*args)
        with self.lock:
            self.timings[kind].append((time.perf_counter() - started) * 1000)
        return result

    def sign_in_all(self) -> None:
        def one(index: int, user) -> None:
            client = Annotator(self.urls[index % len(self.urls)])
            client.sign_in(user.email, PASSWORD)
            with self.lock:
                self.clients.append((index, user, client))

        threads = [threading.Thread(target=one, args=(i, u)) for i, u in enumerate(self.users)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(120)

    def label(self, index: int, user, client: Annotator) -> None:
        rng = random.Random(index)
        if self.think_s:  # people do not all press "next" in the same millisecond
            time.sleep(rng.uniform(0, self.think_s))
        try:
            while time.monotonic() < self.deadline:
                object_id = self._time("claim", client.next_task)
                if object_id is None:
                    return
                self._time("page", client.open_task, object_id)
                content = simulated_answer_content(self.inputs[object_id], self.schema, index + 1)
                if self.think_s:  # labeling time: 0.5x to 1.5x the mean, so requests do not march in step
                    time.sleep(self.think_s * (0.5 + rng.random()))
                self._time("submit", client.submit, object_id, content)
                with self.lock:
                    self.acked.add((object_id, user.id))
                # The baseline, under the same load at the same moments: a static file.
                status, _h, _b = self._time("static", client.request, "GET", "/_portal/portal.css")
                assert status == 200
        except Exception as exc:
            with self.lock:
                self.errors.append(f"{type(exc).__name__}: {str(exc)[:200]}")

    def parallel(self) -> float:
        started = time.perf_counter()
        threads = [threading.Thread(target=self.label, args=(i, u, c), daemon=True) for i, u, c in self.clients]
        for t in threads:
            t.start()
        # Annotators stop starting tasks at the deadline; the one in hand is finished (bounded) before
        # the database is read and the servers stop, else an answer acknowledged after the count
        # would show as lost and the stop would cut requests off.
        for t in threads:
            t.join(max(1.0, self.deadline + 60 - time.monotonic()))
        if any(t.is_alive() for t in threads):
            with self.lock:
                self.errors.append("annotators still busy 60 s after the deadline")
        return time.perf_counter() - started


def measure(backend: str, instances: int, args, pg_url: str | None, schema) -> dict:
    people.set_password_hasher(PasswordHasher(time_cost=1, memory_cost=1024, parallelism=1))  # setup only
    with tempfile.TemporaryDirectory(prefix="gtkit-serve-load-") as tmp, contextlib.ExitStack() as stack:
        tmp_path = Path(tmp)
        if backend == "postgresql":
            url = stack.enter_context(fresh_postgres_database(pg_url))
        else:
            (tmp_path / "data").mkdir()
            url = f"sqlite:///{tmp_path / 'data' / 'gtkit.db'}"
        db, team, users = prepare(url, args.annotators)
        objects = args.objects or args.annotators * 4
        job = jobs.create_job(db, name="load", manifest=str(write_manifest(tmp_path / "m.jsonl", lines(objects))),
                              schema=schema, team_id=team.id, output_uri=str(tmp_path / "out"),
                              workers_per_object=args.workers_per_object)
        workers = args.gunicorn_workers or (4 if backend == "postgresql" else 1)
        servers = [Server(tmp_path, url, workers=workers, threads=args.threads, lease_s=60,
                          extra_args=tuple(os.environ.get("GTKIT_BENCH_SERVE_ARGS", "").split()))
                   for _ in range(instances)]
        for server in servers:
            server.start()
            stack.callback(server.stop)
        run = Run([s.url for s in servers], users, task_inputs(db, job.id), schema,
                  deadline=time.monotonic() + args.max_seconds, think_s=args.think)
        run.sign_in_all()  # bounded on its own (120 s); the labeling gets the whole --max-seconds
        run.deadline = time.monotonic() + args.max_seconds
        since = datetime.now(UTC).isoformat(timespec="milliseconds")
        wall = run.parallel()
        with db.read() as session:
            stored = [tuple(r) for r in session.execute(select(Answer.object_id, Answer.user_id))]
        db.dispose()
        for _i, _u, client in run.clients:
            client.close()
        for server in servers:
            server.stop()  # flushes the access logs
        inside = server_timings([server.log for server in servers], since)
        if args.keep_logs:
            keep = Path(args.keep_logs)
            keep.mkdir(parents=True, exist_ok=True)
            for server in servers:
                shutil.copy(server.log, keep / f"{backend}-{instances}-{server.log.name}")
    return {"inside": inside, "backend": backend, "instances": instances, "workers": workers,
            "annotators": args.annotators, "timings": run.timings,
            "answers": len(run.acked), "expected": objects * args.workers_per_object, "wall": wall,
            "lost": len(run.acked - set(stored)), "duplicated": len(stored) - len(set(stored)),
            "errors": run.errors}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--annotators", type=int, default=20)
    parser.add_argument("--objects", type=int, default=0, help="default: 4 per annotator")
    parser.add_argument("--workers-per-object", type=int, default=2)
    parser.add_argument("--configs", nargs="+", default=["sqlite:1", "postgresql:1", "postgresql:2"],
                        help="BACKEND:INSTANCES")
    parser.add_argument("--gunicorn-workers", type=int, default=0,
                        help="per instance; default as `gtkit serve run`: 1 on SQLite, 4 on PostgreSQL")
    parser.add_argument("--threads", type=int, default=8, help="per gunicorn worker")
    parser.add_argument("--think", type=float, default=0.0,
                        help="mean seconds an annotator labels before submitting (0: back-to-back, a stress "
                             "test; people take minutes per task)")
    parser.add_argument("--max-seconds", type=float, default=180)
    parser.add_argument("--keep-logs", metavar="DIR",
                        help="copy each server's JSON log (access lines with `ms`) here before the run's data goes")
    parser.add_argument("--durable", action="store_true",
                        help="run the throwaway PostgreSQL with its defaults (fsync on, synchronous commits) "
                             "instead of fsync off, so a commit costs what it does in production")
    args = parser.parse_args()
    schema = load_label_schema("call-center")
    results = []
    with contextlib.ExitStack() as stack:
        pg_url = os.environ.get("GTKIT_TEST_POSTGRES_URL")
        if pg_url is None and any(c.startswith("postgresql") for c in args.configs):
            from service_helpers import throwaway_cluster

            pg_url = stack.enter_context(throwaway_cluster(durable=args.durable))
        for config in args.configs:
            backend, instances = config.split(":")
            print(f"measuring {config} with {args.annotators} annotators ...", file=sys.stderr, flush=True)
            results.append(measure(backend, int(instances), args, pg_url, schema))
    throwaway_pg = (any(c.startswith("postgresql") for c in args.configs)
                    and not os.environ.get("GTKIT_TEST_POSTGRES_URL"))
    print(f"\ngtkit serve load: {args.annotators} annotators, next -> page -> submit, "
          f"{args.workers_per_object} answers per object, think time {args.think:g} s, "
          f"{args.threads} threads per gunicorn worker, "
          f"{os.cpu_count()} CPUs shared with the client and the database"
          + (("; PostgreSQL " + ("durable (fsync on)" if args.durable else "with fsync off")) if throwaway_pg else "")
          + "\n")
    header = (f"{'config':<14} {'kind':<7} {'n':>6} {'p50 ms':>8} {'p95 ms':>8} {'p99 ms':>8} {'p99/static':>11}")
    print(header)
    print("-" * len(header))
    for r in results:
        name = f"{r['backend']}:{r['instances']}x{r['workers']}w"
        static99 = pct(r["timings"]["static"], 99)
        for kind in ("static", "claim", "page", "submit"):
            values = r["timings"][kind]
            ratio = "" if kind == "static" else f"{pct(values, 99) / static99:10.1f}x"
            print(f"{name:<14} {kind:<7} {len(values):>6} {pct(values, 50):8.1f} {pct(values, 95):8.1f} "
                  f"{pct(values, 99):8.1f} {ratio:>11}")
        for kind in ("static", "claim", "page", "submit"):  # the same requests, timed inside the app
            values = r["inside"][kind]
            if values:
                print(f"{name:<14} {'in-app':<7} {len(values):>6} {pct(values, 50):8.1f} {pct(values, 95):8.1f} "
                      f"{pct(values, 99):8.1f} {kind:>11}")
        rate = r["answers"] / r["wall"] if r["wall"] else 0.0
        print(f"{name:<14} answers {r['answers']}/{r['expected']} in {r['wall']:.1f} s = {rate:.1f} answers/s; "
              f"lost {r['lost']}, duplicated {r['duplicated']}, client errors {len(r['errors'])}"
              + (f" (first: {r['errors'][0]})" if r["errors"] else ""))
        if r["timings"]["claim"]:
            print(f"{name:<14} median claim {statistics.median(r['timings']['claim']):.1f} ms")
        print()
    print("Targets (issue 14): p99 < 100 ms with 50 annotators on SQLite; 200 on PostgreSQL with 2 instances.")
    for r in results:
        name = f"{r['backend']}:{r['instances']}x{r['workers']}w"
        under = {kind: bool(r["timings"][kind]) and pct(r["timings"][kind], 99) < 100 for kind in ("claim", "submit")}
        print(f"{name:<14} p99 under 100 ms: claim {'yes' if under['claim'] else 'NO'}, "
              f"submit {'yes' if under['submit'] else 'NO'}")
    broken = [r for r in results if r["lost"] or r["duplicated"] or r["errors"]]
    if broken:  # latency is a figure to read; a lost or duplicated answer is a failed run
        print("FAILED: answers lost or duplicated, or requests failed, in "
              + ", ".join(f"{r['backend']}:{r['instances']}" for r in broken), file=sys.stderr)
    return 1 if broken else 0


if __name__ == "__main__":
    sys.exit(main())
