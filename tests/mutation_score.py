"""Prints the mutation score per module from mutmut's results in mutants/ (run by `make mutation`).

Killed: a test failed (or timed out) with the mutant in place. Survived: every test that reaches
the mutated function passed. No tests: none of the selected tests reaches the function. Not run:
mutants of a partial run (``make mutation MUTANTS='fulfillment.shipments*'``) left for later.
"""

import json
import sys
from collections import Counter
from pathlib import Path

KILLED = {1, 3, 24, -24, 36, 152, 255}
SURVIVED = {0}
NO_TESTS = {5, 33}


def main(root: Path = Path("mutants")) -> int:
    metas = sorted(root.rglob("*.py.meta"))
    if not metas:
        print("no results: run `make mutation` first")
        return 1
    totals = Counter()
    print(f"{'module':40} {'killed':>7} {'survived':>9} {'no tests':>9} {'not run':>8} {'score':>7}")
    for meta in metas:
        codes = json.loads(meta.read_text())["exit_code_by_key"]
        if not codes:
            print(f"{str(meta.relative_to(root))[:-5]:40} {'(nothing mutmut can mutate)':>44}")
            continue
        counts = Counter()
        for code in codes.values():
            if code is None:
                counts["not run"] += 1
            elif code in KILLED:
                counts["killed"] += 1
            elif code in SURVIVED:
                counts["survived"] += 1
            elif code in NO_TESTS:
                counts["no tests"] += 1
            else:
                counts["other"] += 1
        totals.update(counts)
        print(_row(str(meta.relative_to(root))[:-5], counts))
    print(_row("all", totals))
    return 0


def _row(name: str, counts: Counter) -> str:
    checked = counts["killed"] + counts["survived"] + counts["no tests"] + counts["other"]
    score = f"{100 * counts['killed'] / checked:.1f}%" if checked else "-"
    return (
        f"{name:40} {counts['killed']:>7} {counts['survived']:>9} {counts['no tests']:>9} "
        f"{counts['not run']:>8} {score:>7}"
    )


if __name__ == "__main__":
    sys.exit(main())
