"""Shared helpers of the benchmark scripts: machine record, results file, tables.

Not a benchmark itself. Each script in ``bench/`` is run as ``python bench/NAME.py``,
so this folder is on ``sys.path`` and ``import _common`` finds this module.
"""

from __future__ import annotations

import datetime as dt_module
import json
import os
import platform
import statistics
import subprocess
from collections.abc import Iterable, Sequence
from importlib import metadata
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
RESULTS = HERE / "results"
ROOT = HERE.parent


def cpu_model() -> str:
    """The CPU model from /proc/cpuinfo (``platform.processor()`` elsewhere)."""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"


def git_commit() -> str:
    """The checked-out commit, read from ``.git`` (no git process is started)."""
    git = ROOT / ".git"
    try:
        head = (git / "HEAD").read_text().strip()
        if head.startswith("ref: "):
            ref = head[5:]
            path = git / ref
            if path.is_file():
                return path.read_text().strip()[:10]
            packed = git / "packed-refs"
            for line in packed.read_text().splitlines() if packed.is_file() else []:
                if line.endswith(" " + ref):
                    return line.split()[0][:10]
            return "unknown"
        return head[:10]
    except OSError:
        return "unknown"


def busy_processes(limit: int = 4, threshold: float = 20.0) -> list[str]:
    """Other processes using much CPU now (``ps``): what shared the machine."""
    try:
        out = subprocess.run(
            ["ps", "-eo", "pid,pcpu,etime,args", "--sort=-pcpu", "--no-headers"],
            capture_output=True,
            text=True,
            check=True,
        ).stdout
    except (OSError, subprocess.CalledProcessError):
        return []
    mine = os.getpid()
    rows = []
    for line in out.splitlines():
        parts = line.split(None, 3)
        if len(parts) < 4 or int(parts[0]) == mine or "ps -eo" in parts[3]:
            continue
        if float(parts[1]) < threshold:
            break
        rows.append(f"{parts[1]}% cpu, up {parts[2]}: {parts[3][:100]}")
        if len(rows) >= limit:
            break
    return rows


def machine() -> dict[str, Any]:
    """Where, when and with what a benchmark ran (and how busy the machine was)."""
    versions = {"python": platform.python_version()}
    for pkg in ("cosinter", "fipy", "numpy", "scipy"):
        try:
            versions[pkg] = metadata.version(pkg)
        except metadata.PackageNotFoundError:
            versions[pkg] = "not installed"
    return {
        "date": dt_module.datetime.now(dt_module.UTC).isoformat(timespec="seconds"),
        "platform": platform.platform(),
        "cpu_model": cpu_model(),
        "cpu_count": os.cpu_count(),
        "load_average_at_start": list(os.getloadavg()),
        "busy_processes_at_start": busy_processes(),
        "versions": versions,
        "git": git_commit(),
    }


def finish_machine(record: dict[str, Any]) -> None:
    """Add the load at the end and a plain-words note on how busy the machine was."""
    m = record["machine"]
    m["load_average_at_end"] = list(os.getloadavg())
    m["busy_processes_at_end"] = busy_processes()
    busy = bool(m["busy_processes_at_start"] or m["busy_processes_at_end"])
    m["other_core_busy"] = busy
    loads = (m["load_average_at_start"][0], m["load_average_at_end"][0])
    m["note"] = (
        f"shared machine: other processes were running (load average {loads[0]:.1f} at the "
        f"start, {loads[1]:.1f} at the end on {m['cpu_count']} cores; see busy_processes_*), "
        "so at least the second core was busy and wall times are inflated"
        if busy or max(loads) > 1.5
        else "no other busy process seen at the start or the end"
    )


def machine_line(m: dict[str, Any]) -> str:
    """One line for the tables: CPU, cores, versions, load."""
    v = m["versions"]
    return (
        f"{m['cpu_model']}, {m['cpu_count']} cores, {m['platform']}, Python {v['python']}, "
        f"NumPy {v['numpy']}, SciPy {v['scipy']}, FiPy {v['fipy']}, cosinter {v['cosinter']} "
        f"(git {m['git']}), {m['date']}; {m.get('note', '')}"
    )


def write_results(name: str, record: dict[str, Any], output: Path | None = None) -> Path:
    """Write ``bench/results/NAME.json`` (or ``output``)."""
    path = output if output is not None else RESULTS / f"{name}.json"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(record, indent=2, default=_jsonable) + "\n", encoding="utf-8")
    return path


def _jsonable(value: Any) -> Any:
    if hasattr(value, "tolist"):
        return value.tolist()
    if isinstance(value, Path):
        return str(value)
    raise TypeError(f"not JSON serialisable: {type(value).__name__}")


def median(values: Iterable[float]) -> float:
    return float(statistics.median(list(values)))


def table(header: Sequence[str], rows: Iterable[Sequence[Any]]) -> str:
    """A Markdown table."""
    lines = [
        "| " + " | ".join(header) + " |",
        "| " + " | ".join("---" for _ in header) + " |",
    ]
    lines += ["| " + " | ".join(str(c) for c in row) + " |" for row in rows]
    return "\n".join(lines)


def verdict(value: float, target: float, *, at_most: bool) -> str:
    """``met`` / ``not met`` for a value against a target (NaN: not measured)."""
    if value != value:  # NaN
        return "not measured"
    ok = value <= target if at_most else value >= target
    return "met" if ok else "not met"


def say(text: str) -> None:
    """Progress on stdout, flushed (the scripts run for minutes)."""
    print(text, flush=True)
