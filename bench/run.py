"""The benchmark runner: ``python -m bench.run [NAME ...]`` runs each and prints its table."""

from __future__ import annotations

import argparse
import importlib
import sys

BENCHMARKS = ("fanout",)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.run")
    parser.add_argument("names", nargs="*", default=list(BENCHMARKS), choices=BENCHMARKS)
    parser.add_argument("--quick", action="store_true", help="smaller sizes, for a smoke run")
    args = parser.parse_args(argv)
    for name in args.names:
        module = importlib.import_module(f"bench.{name}")
        module.main(quick=args.quick)
    return 0


if __name__ == "__main__":
    sys.exit(main())
