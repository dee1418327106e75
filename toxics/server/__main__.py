"""`simcity-toxiproxy` / `python -m toxics.server`: the command line of `toxiproxy-server`.

Flags are read the way Go's flag package reads them: `-port 8474`, `-port=8474`, `--port 8474`.
"""

from __future__ import annotations

import logging
import sys
import time
from collections.abc import Sequence
from pathlib import Path

from toxics.server.api import VERSION
from toxics.server.app import run

_FLAGS = {
    "host": ("127.0.0.1", "Host for toxiproxy's API to listen on"),
    "port": ("8474", "Port for toxiproxy's API to listen on"),
    "config": ("", "JSON file containing proxies to create on startup"),
    "seed": (None, "Seed for randomizing toxics with"),
}


class FlagError(Exception):
    pass


def usage() -> str:
    lines = ["Usage of simcity-toxiproxy:"]
    for name, (default, doc) in _FLAGS.items():
        lines.append(f"  -{name} value\n    \t{doc}" + (f' (default "{default}")' if default else ""))
    lines.append("  -version\n    \tshow version information")
    return "\n".join(lines)


def parse(argv: Sequence[str]) -> dict[str, str]:
    values = {name: default for name, (default, _) in _FLAGS.items() if default is not None}
    args = list(argv)
    while args:
        arg = args.pop(0)
        if arg == "--" or not arg.startswith("-") or arg == "-":
            break  # Go stops at the first non-flag argument
        name = arg[2:] if arg.startswith("--") else arg[1:]
        name, eq, value = name.partition("=")
        if name in ("h", "help"):
            raise FlagError("help")
        if name == "version":
            values["version"] = "true"
            continue
        if name not in _FLAGS:
            raise FlagError(f"flag provided but not defined: -{name}")
        if not eq:
            if not args:
                raise FlagError(f"flag needs an argument: -{name}")
            value = args.pop(0)
        values[name] = value
    return values



class OncePerCondition(logging.Filter):
    """One log line per condition, not per event: past the fd limit asyncio logs a traceback for
    every failed accept (tens of thousands a second). The first of a message is logged without its
    traceback; repeats within a minute are counted and reported with the next one let through."""

    WINDOW_S = 60.0

    def __init__(self) -> None:
        super().__init__()
        self._seen: dict[str, tuple[float, int]] = {}

    def filter(self, record: logging.LogRecord) -> bool:
        key = str(record.msg)
        now = time.monotonic()
        first, repeats = self._seen.get(key, (0.0, -1))
        if repeats >= 0 and now - first < self.WINDOW_S:
            self._seen[key] = (first, repeats + 1)
            return False
        self._seen[key] = (now, 0)
        if repeats > 0:
            record.msg = f"{record.msg} (and {repeats} more like it in the last minute)"
        record.exc_info, record.exc_text = None, None
        return True

def main(argv: Sequence[str] | None = None) -> int:
    try:
        flags = parse(sys.argv[1:] if argv is None else argv)
        port = int(flags["port"])
        seed = int(flags["seed"]) if "seed" in flags else time.time_ns()
        if not 0 <= port <= 65535:
            raise ValueError(f"port out of range: {port}")
    except FlagError as exc:
        if str(exc) != "help":
            print(exc, file=sys.stderr)
        print(usage(), file=sys.stderr)
        return 0 if str(exc) == "help" else 2
    except ValueError as exc:
        print(f"invalid value: {exc}", file=sys.stderr)
        print(usage(), file=sys.stderr)
        return 2
    if "version" in flags:
        print(f"simcity-toxiproxy (Toxiproxy {VERSION} stand-in)")
        return 0
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    logging.getLogger("asyncio").addFilter(OncePerCondition())
    run(flags["host"], port, Path(flags["config"]) if flags["config"] else None, seed)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
