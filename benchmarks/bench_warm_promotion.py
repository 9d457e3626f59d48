"""Warm promotion: the result-cache hit rate in the minute after a promotion, without and with `--warm`.

One run, on a private stack on free ports (PostgreSQL, Redis, Kafka, Flink with the batch job, Triton, the API):
- the request mix: a replayable log (fixed seed) of sync requests for the scene classifier at `--rate` requests/s,
  each either a brand-new photo (`--new-share`, the long tail a cache never holds) or one of `--popular` photos
  drawn with Zipf weights (exponent `--zipf`); distinct photos differ by a trailer after the JPEG end marker, so
  every one is a new hash with the same decode cost. The log is replayed open-loop (each request at its own
  time, whatever the answers' latency) from a background thread for the whole run;
- version 2 (the same network, uploaded again) is registered and evaluated while the cache fills for version 1;
  at `--prime-s` seconds it is promoted without warm-up; `--settle-s` later, version 3 is registered, evaluated and
  promoted with `--warm N` (the top N images by request count go through Kafka -> Flink -> Triton first); `--runs`
  repeats the pair (versions 4 and 5, ...) on the same stack and traffic, and the medians are reported;
- per promotion: the hit rate over the requests sent in the `--window-s` seconds before the promote command
  started (the old version's steady state), and in the `--window-s` seconds after it returned (traffic during a
  warm-up is in neither), with the share of answers from the new version and the hit rate per 10 s.
The goal (issue 11): with warm-up, the hit rate after the promotion within 5 points of the one before it.
Prints a table and writes var/bench/warm_promotion.json.
"""

from __future__ import annotations

import argparse
import random
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from itertools import accumulate
from pathlib import Path
from typing import Any

from benchmarks.bench_batch import base_photos, start_stack
from benchmarks.common import (
    MODEL_STORE,
    load_average,
    median_of,
    print_table,
    private_stack,
    unlimited_key,
    write_report,
)
from runners.api_client import ApiClient, ApiError
from transforms.settings import REPO_ROOT

MODEL_ID = "scene-classification"
BUCKET_S = 10


@dataclass(frozen=True)
class Answer:
    sent: float  # seconds since the replay began
    ok: bool
    cache_hit: bool
    version: str


def request_log(count: int, popular: int, new_share: float, zipf: float, seed: int = 11) -> list[int]:
    """Image numbers in sending order: 0..popular-1 are the popular photos, each higher number a new one."""
    rng = random.Random(seed)
    cumulative = list(accumulate(1 / (rank + 1) ** zipf for rank in range(popular)))
    fresh = iter(range(popular, popular + count))
    return [
        next(fresh) if rng.random() < new_share else rng.choices(range(popular), cum_weights=cumulative)[0]
        for _ in range(count)
    ]


class Replay:
    """Sends the logged requests at `rate` per second, open-loop, and keeps every answer."""

    def __init__(self, client: ApiClient, log: list[int], photos: list[bytes], rate: float, workers: int = 16) -> None:
        self.client = client
        self.log = log
        self.photos = photos
        self.rate = rate
        self.answers: list[Answer] = []
        self.began = time.monotonic()
        self._stop = threading.Event()
        self._pool = ThreadPoolExecutor(workers)
        self._thread = threading.Thread(target=self._run, daemon=True)

    def image(self, number: int) -> bytes:
        return self.photos[number % len(self.photos)] + f"imgrec-warm-bench-{number}".encode()

    def now(self) -> float:
        return time.monotonic() - self.began

    def start(self) -> None:
        self.began = time.monotonic()
        self._thread.start()

    def _run(self) -> None:
        for i, number in enumerate(self.log):
            if self._stop.wait(max(0.0, i / self.rate - self.now())):
                return
            self._pool.submit(self._send, self.now(), number)
        raise RuntimeError(f"the request log ran out after {len(self.log)} requests; raise its length")

    def _send(self, sent: float, number: int) -> None:
        try:
            body = self.client.recognize(MODEL_ID, self.image(number))
            self.answers.append(Answer(sent, True, bool(body["cache_hit"]), str(body["model_version"])))
        except (ApiError, OSError) as exc:
            print(f"request failed: {exc}", file=sys.stderr)
            self.answers.append(Answer(sent, False, False, ""))

    def stop(self) -> None:
        self._stop.set()
        self._thread.join()
        self._pool.shutdown(wait=True)

    def window(self, start: float, end: float) -> list[Answer]:
        return [a for a in self.answers if start <= a.sent < end]


def hit_rate(answers: list[Answer]) -> float:
    ok = [a for a in answers if a.ok]
    return round(sum(a.cache_hit for a in ok) / max(1, len(ok)), 3)


def window_figures(answers: list[Answer], start: float, new_version: str | None = None) -> dict[str, Any]:
    figures: dict[str, Any] = {
        "requests": len(answers),
        "failed": sum(not a.ok for a in answers),
        "hit_rate": hit_rate(answers),
        "hit_rate_per_10s": [
            hit_rate([a for a in answers if start + b <= a.sent < start + b + BUCKET_S])
            for b in range(0, int(max((a.sent - start for a in answers), default=0)) + 1, BUCKET_S)
        ],
    }
    if new_version is not None:
        figures["new_version_share"] = round(sum(a.version == new_version for a in answers) / max(1, len(answers)), 3)
    return figures


def imgrec_models(env: dict[str, str], *args: str) -> str:
    """`imgrec models ...` as an operator runs it, against the stack."""
    done = subprocess.run(
        [sys.executable, "-m", "runners.cli", "models", *args],
        env=env, cwd=REPO_ROOT, capture_output=True, text=True, timeout=900,
    )  # fmt: skip
    if done.returncode != 0:
        raise RuntimeError(f"imgrec models {' '.join(args)} failed:\n{done.stdout}{done.stderr}")
    return done.stdout


def new_version(env: dict[str, str], version: str, artifact: Path) -> None:
    """Register the same network again as `version` and evaluate it (a promotion needs a passing evaluation)."""
    imgrec_models(env, "register", MODEL_ID, version, "--artifact", artifact.as_uri(), "--handler", "classifier")
    imgrec_models(env, "evaluate", MODEL_ID, version)


def promotion(replay: Replay, env: dict[str, str], version: str, warm: int, window_s: float) -> dict[str, Any]:
    """Promote `version` under the replayed traffic; the hit rate in the window before and after it."""
    load = load_average()
    began = replay.now()
    args = ["promote", MODEL_ID, version] + (["--warm", str(warm)] if warm else [])
    output = imgrec_models(env, *args)
    took_effect = replay.now()
    print(f"  {replay.now():.0f} s: {' '.join(args)} took {took_effect - began:.1f} s", flush=True)
    time.sleep(window_s + 5)  # the last answers of the window come back
    return {
        "version": version,
        "warm": warm,
        "load_avg_start": load,
        "promote_s": round(took_effect - began, 1),
        "promote_output": output.strip().splitlines()[-3:],
        "before": window_figures(replay.window(began - window_s, began), began - window_s),
        "after": window_figures(replay.window(took_effect, took_effect + window_s), took_effect, version),
    }


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rate", type=float, default=12.0, help="Requests per second of the replayed mix.")
    parser.add_argument("--popular", type=int, default=300, help="Distinct popular photos in the mix.")
    parser.add_argument("--zipf", type=float, default=1.0, help="Zipf exponent of the popular photos' weights.")
    parser.add_argument("--new-share", type=float, default=0.15, help="Share of requests for never-seen photos.")
    parser.add_argument("--warm", type=int, default=300, help="N of `promote --warm N`.")
    parser.add_argument("--prime-s", type=float, default=120.0, help="Traffic before the first promotion.")
    parser.add_argument("--settle-s", type=float, default=60.0, help="Traffic between the two promotions.")
    parser.add_argument("--window-s", type=float, default=60.0, help="The window before and after a promotion.")
    parser.add_argument("--runs", type=int, default=2, help="Pairs of promotions (cold, warm) on the same stack.")
    args = parser.parse_args(argv or [])

    load_before = load_average()
    # Long enough for every run: prime, then per run two new versions, two promotions, their windows and the settling.
    log = request_log(int(args.rate * (args.prime_s + args.runs * 900)), args.popular, args.new_share, args.zipf)
    upload = Path(tempfile.mkdtemp(prefix="imgrec-warm-bench-")) / "model.onnx"
    shutil.copy(MODEL_STORE / MODEL_ID / "1" / "model.onnx", upload)  # the same network, uploaded as new versions
    runs: list[dict[str, Any]] = []
    with private_stack() as stack:
        startup_s = start_stack(stack)
        print(f"  stack and job up in {startup_s:.0f} s; replaying {args.rate} requests/s", flush=True)
        env = stack["api"].env()
        key = unlimited_key(stack.settings.database_url, "bench-warm")
        client = ApiClient(stack.settings.api_url, key, timeout_s=120)
        replay = Replay(client, log, base_photos(160), args.rate)
        replay.start()
        try:
            for run in range(args.runs):
                cold_version, warm_version = str(2 + 2 * run), str(3 + 2 * run)
                new_version(env, cold_version, upload)
                time.sleep(max(0.0, args.prime_s - replay.now()) if run == 0 else args.settle_s)
                cold = promotion(replay, env, cold_version, 0, args.window_s)
                new_version(env, warm_version, upload)
                time.sleep(args.settle_s)
                runs.append({"cold": cold, "warm": promotion(replay, env, warm_version, args.warm, args.window_s)})
        finally:
            replay.stop()
            client.close()
            shutil.rmtree(upload.parent, ignore_errors=True)

    summary = {
        kind: {
            "before": median_of(r[kind]["before"]["hit_rate"] for r in runs),
            "after": median_of(r[kind]["after"]["hit_rate"] for r in runs),
            "gap_points": median_of(gap_points(r[kind]) for r in runs),
        }
        for kind in ("cold", "warm")
    }
    report = {
        "model": MODEL_ID,
        "mix": {"rate_per_s": args.rate, "popular": args.popular, "zipf": args.zipf, "new_share": args.new_share},
        "warm_top_n": args.warm,
        "windows_s": args.window_s,
        "stack_startup_s": round(startup_s, 1),
        "requests": len(replay.answers),
        "failed": sum(not a.ok for a in replay.answers),
        "load_avg": {"start": load_before, "end": load_average()},
        "summary": summary,
        "runs": runs,
    }
    write_report("warm_promotion", report)
    print_table(
        ["promotion", "hit rate before", "hit rate after (minute)", "gap, points"],
        [[kind, m["before"], m["after"], m["gap_points"]] for kind, m in summary.items()],
    )


def gap_points(promotion: dict[str, Any]) -> float:
    """Hit rate before minus after, in points."""
    return round(100 * (promotion["before"]["hit_rate"] - promotion["after"]["hit_rate"]), 1)

if __name__ == "__main__":
    main(sys.argv[1:])
