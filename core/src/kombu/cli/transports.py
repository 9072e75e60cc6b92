"""``kombu transports``: every installed transport and whether it loads."""

from __future__ import annotations

import argparse
import json
from typing import Any

from kombu.cli.errors import one_line

__all__ = ["collect", "run"]


def _error(exc: BaseException) -> str:
    return one_line(f"{type(exc).__name__}: {exc}")


def collect(load: bool = True) -> list[dict[str, Any]]:
    """One row per transport registration and per plugin that failed."""
    from kombu.transport import TRANSPORT_ALIASES, registry

    rows: list[dict[str, Any]] = []
    seen: set[int] = set()
    for name in registry.names():
        reg = registry.registration(name)
        if reg is None:  # a TRANSPORT_ALIASES entry
            target = TRANSPORT_ALIASES[name]
            rows.append({"name": name, "aliases": [], "schemes": [name], "plugin": None,
                         "distribution": None, "version": None, "api": None,
                         "target": target if isinstance(target, str) else repr(target),
                         "source": "TRANSPORT_ALIASES", "loads": None, "error": None})
            if load:
                try:
                    registry.resolve(name)
                    rows[-1]["loads"] = True
                except Exception as exc:  # noqa: BLE001 - reported, not raised
                    rows[-1].update(loads=False, error=_error(exc))
            continue
        if id(reg) in seen:
            continue
        seen.add(id(reg))
        target = reg.target if isinstance(reg.target, str) else (
            f"{getattr(reg.target, '__module__', '?')}:{getattr(reg.target, '__qualname__', '?')}")
        names = [reg.name, *reg.aliases]
        # An alias another registration won is not this one's scheme.
        schemes = [n for n in names if registry.registration(n) is reg]
        row: dict[str, Any] = {
            "name": reg.name, "aliases": list(reg.aliases), "schemes": schemes,
            "plugin": reg.plugin, "distribution": reg.dist, "version": reg.version,
            "api": f"{reg.api[0]}.{reg.api[1]}", "target": target,
            "source": "plugin" if reg.plugin else "this process", "loads": None, "error": None,
        }
        if load:
            try:
                reg.load()
                row["loads"] = True
            except Exception as exc:  # noqa: BLE001 - reported, not raised
                cause = exc.__cause__ or exc
                row.update(loads=False, error=_error(cause))
        rows.append(row)
    for info in registry.plugin_info():
        if info.get("error"):
            rows.append({"name": info["plugin"], "aliases": [], "schemes": [],
                         "plugin": info["plugin"], "distribution": info["dist"],
                         "version": info["version"], "api": None, "target": None,
                         "source": "plugin", "loads": False,
                         "error": one_line(info["error"])})
    return rows


def _cell(values: list[str]) -> str:
    return ", ".join(values) if values else "-"


def run(args: argparse.Namespace) -> int:
    import kombu

    rows = collect(load=args.load)
    failed = [row for row in rows if row["loads"] is False]
    if args.json:
        print(json.dumps({"kombu_core": kombu.__version__,
                          "transport_api": "{}.{}".format(*kombu.TRANSPORT_API),
                          "transports": rows}, sort_keys=True))
        return 1 if failed else 0
    print(f"kombu-core {kombu.__version__}, transport API "
          "{}.{}".format(*kombu.TRANSPORT_API))
    header = ("NAME", "ALIASES", "URL SCHEMES", "DISTRIBUTION", "API", "LOADS")
    table = [header]
    for row in rows:
        dist = f"{row['distribution']} {row['version'] or ''}".rstrip() \
            if row["distribution"] else row["source"]
        loads = {True: "yes", False: "NO", None: "not checked"}[row["loads"]]
        table.append((row["name"], _cell(row["aliases"]),
                      _cell([f"{s}://" for s in row["schemes"]]), dist,
                      row["api"] or "-", loads))
    widths = [max(len(r[i]) for r in table) for i in range(len(header))]
    for line in table:
        print("  ".join(cell.ljust(width) for cell, width in zip(line, widths)).rstrip())
    if not rows:
        print("no transport is installed: pip install kombu-memory, kombu-redis or kombu-pyamqp")
    for row in failed:
        who = f"{row['distribution']} {row['version'] or ''}".rstrip() \
            if row["distribution"] else row["source"]
        print(f"error: {row['name']} ({who}): {row['error']}")
    return 1 if failed else 0
