"""Where the time goes: sampling profiles of the 1D reference and a 2D grain case.

Two workloads, each profiled with pyinstrument (a sampling profiler, ~1 ms interval,
little overhead; ``pip install pyinstrument`` into the venv, it is not a cosinter
dependency):

* ``reference_1d``: the case of ``bench/reference_1d.py`` through
  :meth:`Simulation.run` (to ``--peak`` degC, default 450: past the interphase onset;
  the full 850 degC program has the same mix, only longer);
* ``grains_2d``: the random-grain case of ``tests/cases/test_issue4_cases.py``
  (``_RANDOM_GRAINS``: 2D, 2 nm cells, 8 randomly oriented NCM111 grains | LLTO, Li
  charged and Ti; 150 cells) at 1 nm cells (600 cells) with Poisson on, through
  the adaptive stepper until ``--steps`` (default 300) steps are accepted;
* ``scaling_2d`` (full run only): the 2D case of ``bench/scaling.py`` at ``--side``
  (default 316: 1e5 cells), set-up and 3 steps, where the time per cell grows.

For each: the top functions by cumulative and by self time, and the time split into
categories by where a sample sits in the call tree (the first match going up
from the sampled frame wins; "FiPy matrix assembly" is everything under
``Term._prepareLinearSystem`` (only the PETSc back end and ``reference_assembly``
still assemble with FiPy), "direct matrix assembly" everything under
``TransportSystem.assemble``/``assemble_interphase``, "linear solve" everything under
``cosinter.solver.equations.conserving_solve``, i.e. SuperLU and the bordered
inventory solve).

    python bench/profile_hot_path.py            # both (a few minutes)
    python bench/profile_hot_path.py --quick    # to 200 degC and 60 steps

Writes ``bench/results/profile_hot_path.json`` and the pyinstrument call trees
``bench/results/profile_<workload>.txt``.
"""

from __future__ import annotations

import argparse
import contextlib
import tempfile
import time
from collections import defaultdict
from pathlib import Path
from typing import Any

import _common
import reference_1d
import scaling

GRAINS_2D = """\
[case]
name = "bench_random_grains"

[mesh]
dimension = 2
cell_size = "1 nm"
width = "20 nm"
lateral = "periodic"
grains = { layer = 0, count = 8, seed = 1 }

[[layers]]
material = "NCM111"
thickness = "20 nm"
orientation = "random"

[[layers]]
material = "LLTO"
thickness = "10 nm"

[species.Li]
charge = 1
[species.Ti]

[electrostatics]
enabled = true

[temperature]
initial = "25 degC"

[[temperature.steps]]
ramp = "10 K/min"
to = "600 degC"
"""

#: Categories, tested from the sampled frame upwards: (name, predicate on a frame).
ASSEMBLY = {"_prepareLinearSystem", "_buildAndAddMatrices", "_buildMatrix"}
DIRECT = {"assemble", "assemble_interphase"}


def category_of(chain: list[tuple[str, str]]) -> str:
    """The category of a sample from its call chain (innermost first): (function, file)."""
    for function, path in chain:
        if function in {"_solve_", "conserving_solve"}:
            return "linear solve (SuperLU, bordered inventory solve)"
        if function in ASSEMBLY and "/fipy/" in path:
            return "FiPy matrix assembly (terms, coefficients, sparse build)"
        if function in DIRECT and "/cosinter/" in path:
            return "direct matrix assembly (cosinter.solver.assembly)"
    for function, path in chain:
        if "/fipy/" in path:
            return "FiPy, other (variables, solve set-up, constraints)"
        if "/cosinter/" in path:
            if "/results/" in path or function in {"on_frame", "_write_checkpoint"}:
                return "cosinter output (frames, metrics, checkpoint)"
            return "cosinter numpy code (coefficients, interface Newton, stepper)"
    return "other (imports, interpreter)"


def module_of(path: str) -> str | None:
    """A coarse module name of a file: ``fipy/terms``, ``numpy/ma``, ``cosinter/solver``..."""
    if not path or path.startswith("<"):
        return None
    parts = Path(path).parts
    for package in ("fipy", "numpy", "scipy", "cosinter"):
        if package in parts:
            i = len(parts) - 1 - parts[::-1].index(package)
            sub = parts[i + 1 : i + 3 if package == "scipy" else i + 2]
            sub = tuple(p for p in sub if not p.endswith(".py")) or ("",)
            return "/".join((package, *sub)).rstrip("/")
    return Path(path).name


def analyse(session: Any, top: int = 20) -> dict[str, Any]:
    """Cumulative/self time per function and the category split, from a pyinstrument session."""
    root = session.root_frame()
    total = float(root.time) if root is not None else 0.0
    self_time: dict[str, float] = defaultdict(float)
    cumulative: dict[str, float] = defaultdict(float)
    categories: dict[str, float] = defaultdict(float)
    modules: dict[str, float] = defaultdict(float)

    def key(frame: Any) -> str:
        path = frame.file_path_short or frame.file_path or "?"
        return f"{frame.function} ({path}:{frame.line_no})"

    def walk(
        frame: Any, chain: list[tuple[str, str]], on_stack: frozenset[str], parent: str
    ) -> None:
        k = key(frame)
        module = module_of(frame.file_path or "")
        if module is None:  # C code: charged to the Python module that called it
            module = f"{parent} (C)" if not parent.endswith("(C)") else parent
        chain = [(frame.function or "", frame.file_path or ""), *chain]
        if k not in on_stack:  # recursion: count the outermost call only
            cumulative[k] += frame.time
        own = frame.total_self_time
        if own:
            self_time[k] += own
            categories[category_of(chain)] += own
            modules[module] += own
        for child in frame.children:
            if not child.is_synthetic:  # their time is in the parent's total_self_time
                walk(child, chain, on_stack | {k}, module)

    if root is not None:
        walk(root, [], frozenset(), "?")

    def ranked(table: dict[str, float]) -> list[dict[str, Any]]:
        best = sorted(table.items(), key=lambda kv: -kv[1])[:top]
        return [{"function": k, "s": v, "fraction": v / total if total else 0.0} for k, v in best]

    return {
        "total_s": total,
        "cumulative": ranked(cumulative),
        "self": ranked(self_time),
        "self_by_module": ranked(modules),
        "categories": {
            k: {"s": v, "fraction": v / total if total else 0.0}
            for k, v in sorted(categories.items(), key=lambda kv: -kv[1])
        },
    }


def profile_reference_1d(workdir: Path, peak: int) -> tuple[Any, dict[str, Any]]:
    from pyinstrument import Profiler

    from cosinter.case import load_case
    from cosinter.solver.simulation import Simulation

    path = workdir / "reference.toml"
    path.write_text(reference_1d.case_text(peak), encoding="utf-8")
    case, raw = load_case(path)
    sim = Simulation(case, raw)
    profiler = Profiler(interval=0.001)
    profiler.start()
    result = sim.run(workdir / "reference", progress=False)
    profiler.stop()
    return profiler, {"peak_degC": peak, **result.stats}


def profile_grains_2d(workdir: Path, steps: int) -> tuple[Any, dict[str, Any]]:
    from pyinstrument import Profiler

    from cosinter.case import load_case
    from cosinter.solver.equations import TransportSystem
    from cosinter.solver.simulation import Simulation
    from cosinter.solver.stepping import StepperState, run

    path = workdir / "grains.toml"
    path.write_text(GRAINS_2D, encoding="utf-8")
    case, raw = load_case(path)
    sim = Simulation(case, raw)

    class Enough(Exception):  # noqa: N818
        pass

    class Stop:
        def on_start(self, state: StepperState) -> None: ...
        def on_frame(self, state: StepperState) -> None: ...
        def on_finish(self, state: StepperState, error: BaseException | None) -> None: ...

        def on_step(self, state: StepperState) -> None:
            if state.stats.accepted >= steps:
                raise Enough

    profiler = Profiler(interval=0.001)
    profiler.start()
    system = TransportSystem(
        sim.geometry,
        sim.props,
        {"left": {}, "right": {}},
        sim.poisson,
        sim.chemistry,
    )
    holder: dict[str, Any] = {}

    class Keep(Stop):
        def on_finish(self, state: StepperState, error: BaseException | None) -> None:
            holder["state"] = state

    with contextlib.suppress(Enough):
        run(system, sim.program, sim.frame_times, sim.control(), observers=(Keep(),))
    profiler.stop()
    state = holder["state"]
    return profiler, {
        "cells": sim.geometry.n_cells,
        "anisotropic": system.anisotropic,
        "reached_T_K": state.T,
        **state.stats.as_dict(),
    }


def profile_scaling_2d(workdir: Path, side: int, steps: int) -> tuple[Any, dict[str, Any]]:
    from pyinstrument import Profiler

    from cosinter.case import load_case
    from cosinter.solver.equations import TransportSystem
    from cosinter.solver.simulation import Simulation

    path = workdir / "scaling.toml"
    path.write_text(scaling.CASE.format(n=side, h=1.0, width=side, half=side / 2))
    case, raw = load_case(path)
    sim = Simulation(case, raw)
    profiler = Profiler(interval=0.001)
    profiler.start()
    system = TransportSystem(sim.geometry, sim.props, {}, sim.poisson, sim.chemistry)
    T = sim.program.temperature(0.0)
    system.update_coefficients(T)
    sweeps = 0
    for _ in range(steps):
        sweeps += system.step(1.0, T, 30, 1e-5).sweeps
        system.accept(1.0)
    profiler.stop()
    return profiler, {"cells": sim.geometry.n_cells, "steps": steps, "sweeps": sweeps}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="to 200 degC and 60 steps")
    parser.add_argument("--peak", type=int, default=None, help="1D: peak degC (default 450)")
    parser.add_argument("--steps", type=int, default=None, help="2D: steps (default 300)")
    parser.add_argument("--top", type=int, default=15, help="functions listed")
    parser.add_argument(
        "--side", type=int, default=316, help="2D scaling case: cells per side (0: skip)"
    )
    parser.add_argument("--output", type=Path, default=None, help="results JSON")
    args = parser.parse_args(argv)
    peak = args.peak or (200 if args.quick else 450)
    steps = args.steps or (60 if args.quick else 300)
    suffix = "_quick" if args.quick else ""

    record: dict[str, Any] = {"machine": _common.machine(), "quick": args.quick}
    record["workloads"] = {}
    with tempfile.TemporaryDirectory(prefix="cosinter-profile-") as tmp:
        workdir = Path(tmp)
        jobs = [
            ("reference_1d", lambda: profile_reference_1d(workdir, peak)),
            ("grains_2d", lambda: profile_grains_2d(workdir, steps)),
        ]
        if args.side and not args.quick:
            jobs.append(("scaling_2d", lambda: profile_scaling_2d(workdir, args.side, 3)))
        for name, job in jobs:
            _common.say(f"profiling {name} ...")
            t0 = time.perf_counter()
            profiler, stats = job()
            wall = time.perf_counter() - t0
            tree = profiler.output_text(unicode=False, color=False, show_all=False)
            (_common.RESULTS / f"profile_{name}{suffix}.txt").write_text(tree, encoding="utf-8")
            record["workloads"][name] = {
                "wall_s": wall,
                "stats": stats,
                **analyse(profiler.last_session, args.top),
            }
    _common.finish_machine(record)
    path = _common.write_results(f"profile_hot_path{suffix}", record, args.output)

    for name, w in record["workloads"].items():
        print(f"\n## {name}: {w['total_s']:.1f} s sampled; {w['stats']}\n")
        print(
            _common.table(
                ("Category", "Time (s)", "Share"),
                [
                    (k, f"{v['s']:.1f}", f"{100 * v['fraction']:.0f} %")
                    for k, v in w["categories"].items()
                ],
            )
        )
        for kind in ("self_by_module", "cumulative", "self"):
            print(f"\nTop by {kind} time:\n")
            print(
                _common.table(
                    ("Function", "Time (s)", "Share"),
                    [
                        (f"`{e['function']}`", f"{e['s']:.2f}", f"{100 * e['fraction']:.1f} %")
                        for e in w[kind]
                    ],
                )
            )
    print(f"\nMachine: {_common.machine_line(record['machine'])}")
    print(f"Results written to {path} (call trees: bench/results/profile_*{suffix}.txt)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
