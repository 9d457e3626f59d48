"""Run every benchmarks/bench_*.py module's `main()`, or those named; options after one name go to it:
`python -m benchmarks bench_batch --items 1000 --runs 1`."""

from __future__ import annotations

import importlib
import sys
from pathlib import Path

args = sys.argv[1:]
first_option = next((i for i, arg in enumerate(args) if arg.startswith("-")), len(args))
names, options = args[:first_option], args[first_option:]
if options and len(names) != 1:
    sys.exit("options go to one benchmark: python -m benchmarks NAME --option ...")
for name in names or sorted(p.stem for p in Path(__file__).parent.glob("bench_*.py")):
    print(f"== {name}", flush=True)
    importlib.import_module(f"benchmarks.{name}").main(options)
