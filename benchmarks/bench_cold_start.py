"""Cold-start share we control: importing a route group's Lambda handler in a fresh interpreter.

    .venv/bin/python benchmarks/bench_cold_start.py [--group datasets] [--runs 7]

Target (issue 2): <= 400 ms for the datasets handler. Reports the median of fresh-process imports.
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent

PROBE = (
    "import time; t = time.perf_counter(); import functions.{group}.handler; print((time.perf_counter() - t) * 1000)"
)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--group", default="datasets")
    parser.add_argument("--runs", type=int, default=7)
    args = parser.parse_args()
    env = {
        **os.environ,
        "FLOWLESS_BACKEND": "aws",
        "FLOWLESS_TABLE_NAME": "flowless-bench",
        "FLOWLESS_DOCUMENTS_BUCKET": "flowless-bench",
        "AWS_REGION": "us-east-1",
        "AWS_DEFAULT_REGION": "us-east-1",
        "POWERTOOLS_SERVICE_NAME": "flowless",
        "POWERTOOLS_METRICS_NAMESPACE": "Flowless",
        # What the Lambda runtime sets: the X-Ray SDK then samples locally (as on Lambda) instead of
        # building a botocore X-Ray client for centralized sampling rules at import.
        "LAMBDA_TASK_ROOT": str(ROOT),
        "AWS_LAMBDA_FUNCTION_NAME": f"flowless-{args.group}",
        "AWS_LAMBDA_FUNCTION_MEMORY_SIZE": "512",
        "AWS_EXECUTION_ENV": "AWS_Lambda_python3.13",
    }
    code = PROBE.format(group=args.group)
    subprocess.run([sys.executable, "-c", code], env=env, check=True, capture_output=True)  # warm .pyc files
    times = []
    for _ in range(args.runs):
        out = subprocess.run([sys.executable, "-c", code], env=env, check=True, capture_output=True, text=True)
        times.append(float(out.stdout.strip().splitlines()[-1]))
    print(
        f"import functions.{args.group}.handler in a fresh interpreter: median {statistics.median(times):.0f} ms, "
        f"min {min(times):.0f} ms, max {max(times):.0f} ms over {args.runs} runs"
    )


if __name__ == "__main__":
    main()
