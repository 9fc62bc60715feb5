"""The benchmark runner: ``python -m bench.run [NAME ...]`` runs each and prints its table."""

from __future__ import annotations

import argparse
import importlib
import sys

BENCHMARKS = ("fanout", "sandbox", "azure", "ssh", "tui", "tui_pty", "output_file")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.run")
    parser.add_argument("names", nargs="*", metavar="NAME", help=f"any of: {', '.join(BENCHMARKS)}")
    parser.add_argument("--quick", action="store_true", help="smaller sizes, for a smoke run")
    args = parser.parse_args(argv)
    unknown = sorted(set(args.names) - set(BENCHMARKS))
    if unknown:
        parser.error(
            f"unknown benchmark(s) {', '.join(unknown)}; choose from {', '.join(BENCHMARKS)}"
        )
    for name in args.names or BENCHMARKS:
        module = importlib.import_module(f"bench.{name}")
        module.main(quick=args.quick)
    return 0


if __name__ == "__main__":
    sys.exit(main())
