"""The Pareto front worked out independently of jointopt, for tests to compare the study's and the report's with."""
import math


def expected_front(results, target, accuracy="val_acc"):
    """Trial numbers of the front, cheapest first: walk the trials from the cheapest (equal cost: the more
    accurate, then the lower trial number first) and keep each one more accurate than every trial before it.
    A trial the study marked collapsed is no front point."""
    best, front = -math.inf, []
    for r in sorted((r for r in results if not r.get("collapsed")),
                    key=lambda r: (r["costs"][target], -r[accuracy], r["trial"])):
        if r[accuracy] > best:
            front.append(r["trial"])
            best = r[accuracy]
    return front


def dominates(a, b, target, accuracy="val_acc"):
    """``a`` is at least as good as ``b`` in both accuracy and cost, and better in one."""
    ca, cb = a["costs"][target], b["costs"][target]
    return a[accuracy] >= b[accuracy] and ca <= cb and (a[accuracy] > b[accuracy] or ca < cb)
