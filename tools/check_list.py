"""Check that ``tt-milestones list --json`` shows exactly the expected milestones runnable.

Usage: ``python tools/check_list.py 01 02`` (the ids that must be runnable; every other one
must be locked and name the missing components and the package(s) that provide them).
Used by the tox environments that install a prefix of the Acts.
"""

from __future__ import annotations

import json
import subprocess
import sys
import time


def main(expected: list[str]) -> int:
    start = time.perf_counter()
    result = subprocess.run(["tt-milestones", "list", "--json"], capture_output=True, text=True)
    elapsed = time.perf_counter() - start
    if result.returncode != 0:
        print(result.stdout + result.stderr)
        return 1
    rows = json.loads(result.stdout)
    runnable = sorted(row["id"] for row in rows if row["status"] == "runnable")
    problems = []
    if runnable != sorted(expected):
        problems.append(f"runnable milestones are {runnable}, expected {sorted(expected)}")
    for row in rows:
        if row["status"] == "locked" and not (row["missing"] and row["install"]):
            problems.append(f"locked milestone {row['id']} does not say what is missing and what to install")
    for row in rows:
        note = "" if row["status"] == "runnable" else f" - install {', '.join(row['install'])}"
        print(f"  {row['id']} {row['slug']:<12} {row['status']}{note}")
    print(f"tt-milestones list --json answered in {elapsed:.2f} s")
    for problem in problems:
        print(f"FAIL: {problem}")
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
