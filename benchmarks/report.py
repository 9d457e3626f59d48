"""README tables from the benchmarks' JSON: `python -m benchmarks.report` prints Markdown for var/bench/*.json.

So a rerun on a quiet machine updates the README's Benchmarks section by pasting, with every figure traceable to
the JSON it came from.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

from benchmarks.common import OUT_DIR

SYNC_STAGES = (
    "auth", "parse", "base64", "route", "hash", "cache_get", "decode", "preprocess", "infer", "postprocess",
    "raw_output", "cache_put", "threshold", "store", "total",
)  # fmt: skip


def row(cells: list[Any]) -> str:
    return "| " + " | ".join(str(c) for c in cells) + " |"


def sync_tables(report: dict[str, Any]) -> list[str]:
    s, runs = report["summary"], report["runs"]
    loads = ", ".join(str(r["load_avg_start"][0]) for r in runs)
    out = [
        f"**Sync** ({report['date']}, {report.get('api_workers', 1)} API worker process(es), medians of {len(runs)} "
        f"runs, 1-min load average at each run's start: {loads})",
        "",
        row(["model", "miss c1 p50 / p99 ms", "raw c1 p50 ms", "c1 p50 ratio (goal ≤ 1.3)",
             "miss c16 p50 / p99 ms (goal p99 < 800)", "raw c16 p50 / p99 ms"]),
        row(["---"] * 6),
    ]  # fmt: skip
    for model_id, m in s["misses"].items():
        c1, c16 = m["c1"], m["c16"]
        out.append(row([
            model_id, f"{c1['api_p50_ms']} / {c1['api_p99_ms']}", c1["raw_p50_ms"], c1["p50_ratio"],
            f"{c16['api_p50_ms']} / {c16['api_p99_ms']}", f"{c16['raw_p50_ms']} / {c16['raw_p99_ms']}",
        ]))  # fmt: skip
    h = s["hits"]
    out += [
        "",
        row(["cache hit (~120 KB JPEG as base64)", "figure", "goal"]),
        row(["---"] * 3),
        row(["server-side p50 / p99 ms (Server-Timing total)", f"{h['server_p50_ms']} / {h['server_p99_ms']}",
             "≤ 1.5 / ≤ 3"]),
        row(["client p50 ms at concurrency 1 / raw Redis GET p50 ms", f"{h['client_c1_p50_ms']} / "
             f"{h['redis_get_p50_ms']}", ""]),
        row(["hits/s at concurrency 16 (wrk) / its p99 ms", f"{h['hits_per_s_c16']} / {h['wrk_c16_p99_ms']}",
             "≥ 600"]),
        row(["stack memory MB, proportional set size (PostgreSQL, Redis, Triton with every model, API)",
             s["memory_total_mb"], "≤ 6144"]),
        row(["non-2xx answers in all runs (misses and hits)", s.get("non_2xx", "not counted"), "0"]),
        "",
        "Per-stage medians, ms (last run; misses and hits at concurrency 1, from Server-Timing):",
        "",
    ]  # fmt: skip
    last = runs[-1]
    paths = {m: last["misses"][m]["c1"]["stages_ms"] for m in s["misses"]} | {"cache hit": last["hits"]["stages_ms"]}
    out.append(row(["stage", *paths]))
    out.append(row(["---"] * (len(paths) + 1)))
    for stage in SYNC_STAGES:
        out.append(row([stage, *(p.get(stage, "") for p in paths.values())]))
    return out


def batch_tables(report: dict[str, Any]) -> list[str]:
    workloads = report["workloads"]
    settings = report.get("settings", {})
    out = [
        f"**Batch** ({report['date']}, {report['model']}, images ≤ {report['image_max_px']} px, {report['cpus']} "
        f"cores; micro-batch {settings.get('micro_batch_size')} / {settings.get('micro_batch_max_wait_ms')} ms, "
        f"{settings.get('preprocess_threads')} preprocessing threads; medians of "
        f"{len(workloads[0]['runs'])} runs per workload, 1-min load average at each run's start in the last column)",
        "",
        row(["items", "repeats", "unique images/s: pipeline / raw loop", "unique-image ratio (goal ≥ 0.8)",
             "CPU ms per unique image: stack / raw loop", "CPU ratio (goal ≤ 1.5)",
             "Triton busy while a backlog exists / over the wall", "mean micro-batch (goal ≥ 24 of 32)",
             "stack memory MB (PSS)", "failed", "load"]),
        row(["---"] * 11),
    ]  # fmt: skip
    for w in workloads:
        s = w["summary"]
        out.append(row([
            f"{w['items']:,}", f"{w['repeat_share']:.0%}", f"{s['unique_per_s']} / {s['raw_unique_per_s']}",
            s["unique_ratio"], f"{s['stack_cpu_ms_per_unique']} / {s['raw_cpu_ms_per_unique']}", s["cpu_ratio"],
            f"{s['triton_busy_while_backlog']} / {s['triton_busy_wall']}", s["mean_batch"], s["memory_total_mb"],
            s["failed"], ", ".join(str(r["load_avg_start"][0]) for r in w["runs"]),
        ]))  # fmt: skip
    last = max(workloads, key=lambda w: (w["items"], -w["repeat_share"]))
    pipeline = last["runs"][-1]["pipeline"]
    wall, cpu = pipeline["stage_ms_per_inferred_image"], pipeline["stage_cpu_ms_per_inferred_image"]
    out += [
        "",
        f"Per-stage time of the job's Python workers, ms per inferred image (last run of {last['items']:,} items, "
        f"{last['repeat_share']:.0%} repeats; wall, and CPU of the thread that ran it):",
        "",
        row(["stage", "wall ms", "CPU ms"]),
        row(["---"] * 3),
    ]
    out += [row([name, ms, cpu.get(name, "")]) for name, ms in sorted(wall.items(), key=lambda kv: -kv[1])]
    components = pipeline["stack_cpu_s"]
    total = sum(components.values()) or 1.0
    out += [
        "",
        "CPU seconds of each process group of the stack over that run (from /proc):",
        "",
        row(["component", "CPU s", "share"]),
        row(["---"] * 3),
    ]
    out += [row([name, cpu_s, f"{cpu_s / total:.0%}"]) for name, cpu_s in sorted(components.items(),
                                                                                 key=lambda kv: -kv[1])]
    return out


def warm_promotion_tables(report: dict[str, Any]) -> list[str]:
    mix, runs, load = report["mix"], report["runs"], report["load_avg"]
    out = [
        f"**Warm promotion** ({report['date']}, {report['model']}, replayed mix of {mix['rate_per_s']} requests/s: "
        f"{mix['new_share']:.0%} never-seen photos, the rest {mix['popular']} photos with Zipf {mix['zipf']} weights; "
        f"{report['windows_s']:.0f} s windows; {len(runs)} runs, medians; {report['requests']} requests, "
        f"{report['failed']} failed; 1-min load average {load['start'][0]} at start, {load['end'][0]} at end)",
        "",
        row(["promotion", "hit rate in the minute before", "hit rate in the minute after", "gap, points (goal ≤ 5)"]),
        row(["---"] * 4),
    ]
    for kind, m in report["summary"].items():
        label = f"`promote --warm {report['warm_top_n']}`" if kind == "warm" else "`promote`"
        out.append(row([label, m["before"], m["after"], m["gap_points"]]))
    out += [
        "",
        "Each promotion (hit rate per 10 s after it; the promote command's seconds, a warm-up included):",
        "",
        row(["run", "promotion", "before", "after", "per 10 s after", "answers from the new version", "promote s"]),
        row(["---"] * 7),
    ]
    for i, r in enumerate(runs, 1):
        for kind, p in r.items():
            after = p["after"]
            out.append(row([
                i, f"{kind} (v{p['version']})", p["before"]["hit_rate"], after["hit_rate"],
                " / ".join(str(h) for h in after["hit_rate_per_10s"]), f"{after['new_version_share']:.0%}",
                p["promote_s"],
            ]))  # fmt: skip
    return out


def main(argv: list[str] | None = None) -> None:
    """Print the tables of every report found in a folder (default var/bench; the committed runs the README quotes
    are under benchmarks/results)."""
    folder = Path(argv[0]) if argv else OUT_DIR
    for name, render in (("sync", sync_tables), ("batch", batch_tables), ("warm_promotion", warm_promotion_tables)):
        path = folder / f"{name}.json"
        if path.exists():
            print("\n".join(render(json.loads(path.read_text()))) + "\n")


if __name__ == "__main__":
    main(sys.argv[1:])
