"""Longest functions in stelab's engine/, sweep/ and analysis/ (issue 20: none over ~80 lines).

A function's length is its code lines: the lines from ``def`` to its last statement, less blank
lines, comment-only lines and its docstring. Nested functions count inside their parent too.

    python scripts/function_lengths.py [--top 5] [--limit 80]

Exits 1 when a function is over ``--limit``.
"""

from __future__ import annotations

import argparse
import ast
import io
import sys
import tokenize
from pathlib import Path

PACKAGES = ("engine", "sweep", "analysis")
ROOT = Path(__file__).resolve().parents[1] / "src" / "stelab"


def code_lines(source: str) -> set[int]:
    """Line numbers that hold a token other than a comment, newline or indentation."""
    skip = {tokenize.COMMENT, tokenize.NL, tokenize.NEWLINE, tokenize.INDENT, tokenize.DEDENT,
            tokenize.ENDMARKER}
    lines: set[int] = set()
    for tok in tokenize.generate_tokens(io.StringIO(source).readline):
        if tok.type not in skip:
            lines.update(range(tok.start[0], tok.end[0] + 1))
    return lines


def function_lengths(path: Path) -> list[tuple[int, str]]:
    """(code lines, 'path:line name') of every function in one file."""
    source = path.read_text()
    lines = code_lines(source)
    out = []
    for node in ast.walk(ast.parse(source)):
        if not isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
            continue
        span = set(range(node.lineno, node.end_lineno + 1)) & lines
        doc = node.body[0]
        if (isinstance(doc, ast.Expr) and isinstance(doc.value, ast.Constant)
                and isinstance(doc.value.value, str)):
            span -= set(range(doc.lineno, doc.end_lineno + 1))
        rel = path.relative_to(ROOT.parent)
        out.append((len(span), f"{rel}:{node.lineno} {node.name}"))
    return out


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--top", type=int, default=5)
    parser.add_argument("--limit", type=int, default=80)
    args = parser.parse_args()
    found = sorted((entry for pkg in PACKAGES for path in sorted((ROOT / pkg).rglob("*.py"))
                    for entry in function_lengths(path)), reverse=True)
    for length, name in found[: args.top]:
        print(f"{length:4d}  {name}")
    return 1 if found and found[0][0] > args.limit else 0


if __name__ == "__main__":
    sys.exit(main())
