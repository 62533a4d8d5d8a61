"""The ``cosinter`` command: run, check, materials, plot, sweep.

Exit codes: 0 success; 2 bad input (case file, overrides, paths, names), with a
one-paragraph message and no traceback; 1 anything else (traceback only with
``--debug``).
"""

from __future__ import annotations

import argparse
import sys
import traceback
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from cosinter.errors import CaseError, CosinterError, InputError

EXIT_OK, EXIT_ERROR, EXIT_INPUT = 0, 1, 2


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="cosinter",
        description="Transport across cathode | coating | electrolyte stacks under heating.",
    )
    p.add_argument("--debug", action="store_true", help="show tracebacks")
    sub = p.add_subparsers(dest="command", required=True)

    r = sub.add_parser("run", help="run a case file")
    r.add_argument("case", type=Path)
    r.add_argument("-o", "--output", type=Path, help="output folder (default results/<name>)")
    r.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE")
    r.add_argument("--quiet", action="store_true", help="no progress bar, no summary")
    r.add_argument(
        "--resume",
        action="store_true",
        help="continue a killed run from the last frame in its folder (checkpoint.npz)",
    )
    r.add_argument(
        "--solver",
        choices=("scipy", "petsc"),
        default="scipy",
        help="linear solver: scipy (default, SuperLU on this process) or petsc (MUMPS"
        " through PETSc, across the ranks of `mpirun -n N`; needs make install-mpi)",
    )

    c = sub.add_parser("check", help="validate a case and print what it resolves to")
    c.add_argument("case", type=Path)
    c.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE")

    m = sub.add_parser("materials", help="list the library or show one material")
    m.add_argument("name", nargs="?")
    m.add_argument("--plane", help="orientation for D_xx/D_yy/D_zz, e.g. '1,0,4' (default none)")
    m.add_argument("--T", dest="temperature", default="25 degC", help="temperature for D")

    pl = sub.add_parser(
        "plot", help="draw profiles and metrics of a run folder, or maps of a sweep folder (PNG)"
    )
    pl.add_argument("directory", type=Path)
    pl.add_argument("-o", "--output", type=Path, help="where the PNGs go (default DIR/plots)")
    pl.add_argument(
        "--metric", help="sweep folders: the sweep.csv column to plot (default asr_ohm_m2@end)"
    )
    pl.add_argument("--x", dest="x_axis", help="sweep folders: the axis along x (default: first)")
    pl.add_argument("--y", dest="y_axis", help="sweep folders: the second axis (default: second)")

    sw = sub.add_parser("sweep", help="run a base case over the points of a sweep file")
    sw.add_argument("sweep", type=Path)
    sw.add_argument("-o", "--output", type=Path, required=True, help="sweep output folder")
    sw.add_argument(
        "--workers", type=int, help="local worker processes (default: the number of cores)"
    )
    sw.add_argument(
        "--scheduler", metavar="tcp://HOST:PORT", help="run the points on this Dask scheduler"
    )
    sw.add_argument("--quiet", action="store_true", help="no progress bar, no summary")
    return p


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point; returns the exit code."""
    args = _parser().parse_args(argv)
    try:
        if args.command == "run":
            return _run(args)
        if args.command == "check":
            return _check(args)
        if args.command == "materials":
            return _materials(args)
        if args.command == "plot":
            return _plot(args)
        if args.command == "sweep":
            return _sweep(args)
    except InputError as exc:
        if args.debug:
            traceback.print_exc()
        print(f"cosinter: error: {exc}", file=sys.stderr)
        return EXIT_INPUT
    except (CosinterError, Exception) as exc:
        if args.debug:
            traceback.print_exc()
        kind = "" if isinstance(exc, CosinterError) else f"{type(exc).__name__}: "
        print(f"cosinter: {kind}{exc}", file=sys.stderr)
        if not args.debug:
            print("(run with --debug for a traceback)", file=sys.stderr)
        return EXIT_ERROR
    return EXIT_ERROR


def _load(path: Path, overrides: Sequence[str]):  # type: ignore[no-untyped-def]
    from cosinter.case import load_case
    from cosinter.solver.simulation import Simulation

    case, raw = load_case(path, overrides)
    try:
        return Simulation(case, raw, source=str(path))
    except CaseError as exc:
        # resolution errors know the key but not the file: add it and the line
        # (no line when a --set override wrote the key: the file's line is not the value)
        from cosinter.case import locate_key, override_for

        text = path.read_text(encoding="utf-8")
        loc: list[str | int] = [int(p) if p.isdigit() else p for p in (exc.key or "").split(".")]
        item = override_for(exc.key, overrides) if exc.key else None
        line = locate_key(text, loc) if exc.key and item is None else None
        detail = exc.detail + (f" [from --set {item}]" if item else "")
        raise CaseError(detail, file=str(path), key=exc.key, line=line) from None


def _run(args: argparse.Namespace) -> int:
    if args.solver == "petsc":
        from cosinter.solver.distributed import root_session

        # under mpirun rank 0 runs the case; the other ranks serve its MUMPS solves
        with root_session() as root:
            return _run_case(args) if root else EXIT_OK
    return _run_case(args)


def _run_case(args: argparse.Namespace) -> int:
    sim = _load(args.case, args.overrides)  # validates fully before touching outputs
    if args.resume and not _resume_notice(sim, args):
        return EXIT_OK
    result = sim.run(args.output, progress=not args.quiet, resume=args.resume, solver=args.solver)
    if not args.quiet:
        _summary(result)
    return EXIT_OK


def _resume_notice(sim, args: argparse.Namespace) -> bool:  # type: ignore[no-untyped-def]
    """Say where ``--resume`` continues; False if the run is already complete."""
    directory = args.output if args.output is not None else sim.case.output_directory()
    point = sim.checkpoint_status(directory)  # CaseError if the case changed
    if point is not None and point.complete:
        if not args.quiet:
            print(f"{directory}: the run is complete ({point.frames_total} frames); nothing to do")
        return False
    if not args.quiet:
        if point is None:
            print(f"{directory}: no checkpoint to resume from; starting at t = 0", file=sys.stderr)
        else:
            print(
                f"{directory}: resuming from frame {point.frame} of {point.frames_total - 1} "
                f"(t = {point.time_s:.6g} s, T = {point.T_K - 273.15:.1f} degC)",
                file=sys.stderr,
            )
    return True


def _summary(result) -> None:  # type: ignore[no-untyped-def]
    from rich.console import Console
    from rich.table import Table

    console = Console(markup=False)  # user text may hold '[...]'
    table = Table(title=f"Results in {result.directory}  (open fields.pvd in ParaView)")
    table.add_column("metric")
    table.add_column("value (SI)", justify="right")
    for key, value in result.metrics.items():
        if key.startswith(("crossed_", "depth_")) or key.endswith("layer0"):
            table.add_row(key, f"{value:.4g}")
    s = result.stats
    table.add_row("frames", str(result.frames))
    table.add_row("steps accepted / rejected", f"{s['steps_accepted']} / {s['steps_rejected']}")
    table.add_row("wall time (s)", f"{s['wall_s']:.2f}")
    console.print(table)
    console.print(f"output folder: {result.directory}")


def _check(args: argparse.Namespace) -> int:
    from rich.console import Console
    from rich.table import Table
    from rich.text import Text

    from cosinter.models.transport import lab_tensors

    sim = _load(args.case, args.overrides)
    case, console = sim.case, Console(markup=False)  # user text may hold '[...]'
    console.print(Text.assemble((case.case.name, "bold"), f": {case.case.description}"))
    g = sim.geometry
    console.print(
        f"mesh: {g.dimension}D, {g.n_cells} cells {tuple(g.shape)}, stack {g.length * 1e9:.2f} nm"
    )
    program = sim.program
    temps = sorted({program.initial, program.T_max})
    layers = Table(title="layers (D in m^2/s, lab frame: x = stack normal)")
    for col in ("#", "material", "thickness (nm)", "cells", "orientation", "species"):
        layers.add_column(col)
    for T in temps:
        layers.add_column(f"D_xx / D_yy / D_zz at {T - 273.15:.0f} degC")
    for k, layer in enumerate(case.layers):
        mat = sim.materials[layer.material]
        o = layer.orientation
        orient = (
            f"per grain ({o if isinstance(o, str) else f'{len(o)} listed'})"
            if isinstance(o, str | list)
            else "crystal = lab"
            if o is None
            else f"plane {tuple(o.plane)}"
            + (f", in-plane {np.degrees(o.in_plane):.1f} deg" if o.in_plane else "")
            if o.plane is not None
            else f"tilt {np.degrees(o.tilt):.1f} deg"
            if o.tilt is not None
            else f"euler {tuple(round(float(np.degrees(a)), 2) for a in o.euler or [])} deg"
        )
        for sp in case.species:
            p = mat.species[sp]
            cells = [
                " / ".join(
                    f"{d:.3g}"
                    for d in np.diag(
                        lab_tensors(sim.rotations[k][None], np.array([p.D0]), np.array([p.Ea]), T)[
                            0
                        ]
                    )
                )
                for T in temps
            ]
            layers.add_row(
                str(k),
                layer.material,
                f"{layer.thickness * 1e9:.2f}",
                str(g.cells_per_layer[k]),
                orient,
                sp,
                *cells,
            )
    console.print(layers)
    seg = Table(title="temperature program")
    for col in (
        "segment",
        "step",
        "kind",
        "t start (s)",
        "t end (s)",
        "T start (degC)",
        "T end (degC)",
        "rate (K/min)",
    ):
        seg.add_column(col)
    for row in program.table():
        seg.add_row(
            str(row["segment"]),
            str(row["step"]),
            str(row["kind"]),
            f"{float(row['t_start_s']):.1f}",
            f"{float(row['t_end_s']):.1f}",
            f"{float(row['T_start_K']) - 273.15:.1f}",
            f"{float(row['T_end_K']) - 273.15:.1f}",
            f"{float(row['rate_K_per_s']) * 60:.3g}",
        )
    console.print(seg)
    console.print(
        f"frames: start, end and {len(sim.frame_times)} from [output]; "
        f"output folder: {case.output_directory()}"
    )
    return EXIT_OK


def _materials(args: argparse.Namespace) -> int:
    from rich.console import Console
    from rich.table import Table
    from rich.text import Text

    from cosinter.errors import MaterialError
    from cosinter.models import crystal
    from cosinter.models.materials import library_names, library_specs, resolve_material
    from cosinter.models.transport import lab_tensors
    from cosinter.units import EV, UnitParseError, to_si

    console = Console(markup=False)  # user text may hold '[...]'
    if args.name is None:
        table = Table(title="cosinter material library")
        table.add_column("name")
        table.add_column("description")
        for name in library_names():
            table.add_row(name, library_specs()[name].description)
        console.print(table)
        return EXIT_OK
    try:
        mat = resolve_material(args.name)
    except MaterialError as exc:
        raise InputError(str(exc)) from None
    try:
        T = to_si(args.temperature, "temperature")
    except UnitParseError as exc:
        raise InputError(f"--T: {exc}") from None
    R = np.eye(3)
    if args.plane:
        try:
            plane = [int(v) for v in args.plane.replace(" ", "").split(",")]
            if mat.lattice is None:
                raise ValueError(f"{mat.name} has no lattice")
            R = crystal.rotation_from_plane(mat.lattice, plane)
        except ValueError as exc:
            raise InputError(f"--plane {args.plane}: {exc}") from None
    console.print(Text.assemble((mat.name, "bold"), f": {mat.description}"))
    if mat.lattice is not None:
        lat = mat.lattice
        console.print(
            f"lattice: {lat.system}, a = {lat.a * 1e10:.4g} A, b = {lat.b * 1e10:.4g} A, "
            f"c = {lat.c * 1e10:.4g} A  [{mat.source_of('lattice')}]"
        )
    table = Table(
        title=f"species (D at {T - 273.15:.1f} degC"
        + (f", plane ({args.plane})" if args.plane else "")
        + ")"
    )
    for col in ("species", "quantity", "value", "unit", "source"):
        table.add_column(col, overflow="fold")
    for sp, p in mat.species.items():
        rows = [
            ("initial", f"{p.initial / 1e3:.4g}", "mol/L", "initial"),
            ("sites", f"{p.sites / 1e3:.4g}" if p.sites else "dilute", "mol/L", "sites"),
            ("mu0", f"{p.mu0 / EV:.4g}", "eV", "mu0"),
            ("D0 (a, b, c)", ", ".join(f"{v:.3g}" for v in p.D0), "m^2/s", "D0"),
            ("Ea (a, b, c)", ", ".join(f"{v / EV:.3g}" for v in p.Ea), "eV", "Ea"),
        ]
        D = np.diag(lab_tensors(R[None], np.array([p.D0]), np.array([p.Ea]), T)[0])
        for label, value, unit, key in rows:
            table.add_row(sp, label, value, unit, mat.source_of(f"species.{sp}.{key}"))
        table.add_row(
            sp, "D_xx / D_yy / D_zz", " / ".join(f"{d:.3g}" for d in D), "m^2/s", "computed"
        )
    console.print(table)
    return EXIT_OK


def _plot(args: argparse.Namespace) -> int:
    from cosinter.results.plots import plot_run

    if not args.directory.is_dir():
        raise InputError(f"{args.directory}: not a folder")
    if (args.directory / "sweep.csv").is_file():
        from cosinter.results.sweep_plots import plot_sweep

        paths = plot_sweep(args.directory, args.output, args.metric, args.x_axis, args.y_axis)
        for path in paths:
            print(path)
        return EXIT_OK
    if args.metric or args.x_axis or args.y_axis:
        raise InputError(f"{args.directory}: --metric, --x and --y apply to sweep folders only")
    try:
        paths = plot_run(args.directory, args.output)
    except FileNotFoundError as exc:
        raise InputError(str(exc)) from None
    for path in paths:
        print(path)
    return EXIT_OK


def _sweep(args: argparse.Namespace) -> int:
    import signal

    from cosinter.sweep import load_sweep, run_sweep, validate_points

    if args.workers is not None and args.workers < 1:
        raise InputError(f"--workers {args.workers}: give at least 1")
    from cosinter.solver.distributed import launched_ranks

    if launched_ranks() > 1:
        # every rank would run every point into the same folders
        raise InputError(
            "cosinter sweep runs on one process (its points in --workers processes or on a"
            " Dask cluster); start it without mpirun"
        )
    sweep = load_sweep(args.sweep, validate=False)
    cases = validate_points(sweep)  # every point, before anything runs

    def _stop(signum: int, frame: object) -> None:
        raise KeyboardInterrupt  # finished points are kept, running ones become pending

    previous = signal.signal(signal.SIGTERM, _stop)
    try:
        outcome = run_sweep(
            sweep,
            args.output,
            workers=args.workers,
            scheduler=args.scheduler,
            progress=not args.quiet,
            cases=cases,
        )
    except KeyboardInterrupt:
        print(
            f"cosinter: sweep interrupted; finished points are kept in {args.output}, "
            "rerun the same command to continue",
            file=sys.stderr,
        )
        return 130
    finally:
        signal.signal(signal.SIGTERM, previous)
    if not args.quiet:
        print(
            f"{len(sweep.points)} points: {outcome.done} done, {outcome.failed} failed "
            f"({outcome.ran} run now); table {outcome.directory / 'sweep.csv'}"
        )
    if outcome.failed:
        print(
            f"cosinter: {outcome.failed} point(s) failed; their errors are in "
            f"{outcome.directory / 'manifest.json'} (rerun the command to retry them)",
            file=sys.stderr,
        )
        return EXIT_ERROR
    return EXIT_OK
