"""``python -m benchmarks <name> [options]``: run ``benchmarks/<name>.py``'s ``main(argv)``.

Benchmarks are discovered, not registered: any module in this folder whose name does not start
with ``_`` and that defines a top-level ``main`` is one. Listing reads the files' syntax only, so
``python -m benchmarks`` is quick and does not import torch.
"""
from __future__ import annotations

import ast
import difflib
import importlib
import inspect
import sys
from pathlib import Path
from typing import Dict

HERE = Path(__file__).resolve().parent


def discover() -> Dict[str, str]:
    """Benchmark name → first paragraph of its module docstring (shortened)."""
    found = {}
    for path in sorted(HERE.glob("*.py")):
        if path.stem.startswith("_"):
            continue
        try:
            tree = ast.parse(path.read_text(encoding="utf-8"))
        except (SyntaxError, UnicodeDecodeError, OSError):
            continue
        if any(isinstance(node, ast.FunctionDef) and node.name == "main" for node in tree.body):
            doc = ast.get_docstring(tree) or ""
            first = " ".join(doc.strip().split("\n\n")[0].split())
            found[path.stem] = first if len(first) <= 100 else first[:97] + "..."
    return found


def usage(found: Dict[str, str]) -> str:
    width = max((len(n) for n in found), default=0)
    lines = ["usage: python -m benchmarks <name> [options]   (python -m benchmarks <name> --help)", "", "benchmarks:"]
    lines += [f"  {name:<{width}}  {doc}" for name, doc in found.items()] or ["  (none found)"]
    return "\n".join(lines)


def main(argv=None) -> int:
    argv = sys.argv[1:] if argv is None else list(argv)
    found = discover()
    if not argv or argv[0] in ("-h", "--help", "list"):
        print(usage(found))
        return 0
    name, rest = argv[0].replace("-", "_"), argv[1:]
    if name not in found:
        close = difflib.get_close_matches(name, list(found), n=3)
        hint = f"; did you mean {', '.join(repr(c) for c in close)}?" if close else ""
        print(f"unknown benchmark {argv[0]!r}{hint}\n\n{usage(found)}", file=sys.stderr)
        return 2
    module = importlib.import_module(f"benchmarks.{name}")
    takes_argv = bool(inspect.signature(module.main).parameters)
    saved, sys.argv = sys.argv, [f"python -m benchmarks {name}", *rest]  # for modules that read sys.argv
    try:
        code = module.main(rest) if takes_argv else module.main()
    finally:
        sys.argv = saved
    return int(code or 0)


if __name__ == "__main__":
    sys.exit(main())
