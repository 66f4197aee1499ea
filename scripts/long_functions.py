"""List functions longer than a limit, longest first: the style's "functions <= 60
lines" rule made checkable.

A function's length counts from its ``def`` line (decorators excluded) to its
last line, docstring included, as a reader scrolls it. A long function may stay
whole when its docstring says why (a typer command that is a list of options);
``--unexplained`` lists only those whose docstring does not mention it (it looks
for the words "lines" or "long"), which is what a review needs to chase.

Usage: ``python scripts/long_functions.py [--limit 60] [--unexplained] [paths...]``
(default paths: ``synset_builder annotator_web``).
"""

from __future__ import annotations

import argparse
import ast
import re
import sys
from collections.abc import Iterator
from pathlib import Path

DEFAULT_PATHS = ("synset_builder", "annotator_web")
FunctionNode = ast.FunctionDef | ast.AsyncFunctionDef


def functions(path: Path) -> Iterator[tuple[str, FunctionNode]]:
    """Every function and method in a file, with its dotted name inside the file."""
    tree = ast.parse(path.read_text(), filename=str(path))

    def walk(node: ast.AST, prefix: str) -> Iterator[tuple[str, FunctionNode]]:
        for child in ast.iter_child_nodes(node):
            if isinstance(child, FunctionNode):
                name = f"{prefix}{child.name}"
                yield name, child
                yield from walk(child, f"{name}.")
            elif isinstance(child, ast.ClassDef):
                yield from walk(child, f"{prefix}{child.name}.")
            else:
                yield from walk(child, prefix)

    yield from walk(tree, "")


def explained(node: FunctionNode) -> bool:
    """The docstring says why the function is long (see the module docstring)."""
    return re.search(r"\b(long|lines)\b", (ast.get_docstring(node) or "").lower()) is not None


def long_functions(paths: list[str], limit: int, unexplained: bool) -> list[tuple[int, str, str]]:
    """(lines, file:line, name) of the functions over ``limit``, longest first."""
    found = []
    for root in paths:
        files = [Path(root)] if root.endswith(".py") else sorted(Path(root).rglob("*.py"))
        for path in files:
            if "alembic" in path.parts:
                continue
            for name, node in functions(path):
                n = (node.end_lineno or node.lineno) - node.lineno + 1
                if n > limit and not (unexplained and explained(node)):
                    found.append((n, f"{path}:{node.lineno}", name))
    return sorted(found, reverse=True)


def main(argv: list[str] | None = None) -> int:
    """Print the list; exit 1 when it is not empty, so CI or a hook can use it."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("paths", nargs="*", default=list(DEFAULT_PATHS))
    parser.add_argument("--limit", type=int, default=60)
    parser.add_argument("--unexplained", action="store_true")
    args = parser.parse_args(argv)
    rows = long_functions(args.paths, args.limit, args.unexplained)
    for n, where, name in rows:
        print(f"{n:4d}  {where}  {name}")
    return 1 if rows else 0


if __name__ == "__main__":
    sys.exit(main())
