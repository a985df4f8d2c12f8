"""Time the demo generator at benchmark scale (1M customers, ~10M transactions).

Run: .venv/bin/python benchmarks/bench_demo.py [customers_per_unit]  — prints a Markdown table row.
"""

import sys
import time
from pathlib import Path

from custlib import demo

per_unit = int(sys.argv[1]) if len(sys.argv) > 1 else 333_334
out = Path(__file__).parent / "out" / f"demo_{per_unit}"
t0 = time.perf_counter()
counts = demo.generate(out, customers=per_unit, seed=1)
seconds = time.perf_counter() - t0
print("| step | customers | transactions | seconds |")
print("|---|---:|---:|---:|")
print(f"| demo-data (3 units) | {counts['customers']:,} | {counts['transactions']:,} | {seconds:.1f} |")
