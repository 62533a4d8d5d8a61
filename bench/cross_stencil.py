"""Time per call of ``CrossStencil.linearised`` against its sparse-product reference.

``CrossStencil.linearised`` (``cosinter/solver/fields.py``) is called once per
Newton sweep for every species on anisotropic 2D/3D meshes. It builds the
sparsity pattern of the cross-flux operator ``T`` once per closed mask and fixed
face set and then only fills ``T.data``; ``CrossStencil._linearised_reference``
rebuilds every sparse matrix at every call (as the solver did before). This script
times both on the same inputs, alternating them call by call:

* a 2D periodic stack of ``--side`` x ``--side`` 1 nm cells (default 100 x 100),
  half and half two materials (the interface faces closed, as the solver closes
  material jumps), a tensor with eigenvalues 1e-18 and 1e-19 m^2/s turned by 30
  degrees about z, a smooth field with 5 % noise (the limiters take every branch);
* limiters free (chosen at the values) and frozen (the solver freezes them after a
  few sweeps), without and with a fixed concentration on the left end;
* a 3D periodic stack of ``--side-3d`` cells per side, the tensor turned by 20
  degrees about x as well (every off-diagonal entry nonzero), limiters free.

Per case: the median wall and CPU time per call of each (after one warm-up call),
the first call of the fast one (which builds the pattern) and the largest
difference of the two ``T`` relative to the largest entry, plus the time of
``divergence @ T``, the product the solver forms next (for scale).

    python bench/cross_stencil.py            # 100 x 100 and 24^3, 200 calls each
    python bench/cross_stencil.py --quick    # the same meshes, 20 calls each
"""

from __future__ import annotations

import argparse
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import _common
import numpy as np

from cosinter.meshes.stack import StackGeometry
from cosinter.solver.fields import CrossStencil, FaceGeometry, build_mesh


def _turn(dim: int, i: int, j: int, degrees: float) -> np.ndarray:
    """The rotation by ``degrees`` in the plane of axes ``i`` and ``j``."""
    angle = np.radians(degrees)
    rotation = np.eye(dim)
    rotation[[i, i, j, j], [i, j, i, j]] = [
        np.cos(angle),
        -np.sin(angle),
        np.sin(angle),
        np.cos(angle),
    ]
    return rotation


def workload(dim: int, side: int) -> dict[str, Any]:
    """Mesh, stencil and inputs of one case (see the module docstring)."""
    half = side / 2 * 1e-9
    geometry = StackGeometry(
        thicknesses=(half, half),
        cell_size=1e-9,
        dimension=dim,
        width=side * 1e-9,
        lateral_cell_size=1e-9,
        periodic=True,
    )
    mesh = build_mesh(geometry)
    faces = FaceGeometry.of(mesh, geometry)
    stencil = CrossStencil.of(mesh, faces, dim)
    rotation = _turn(dim, 0, 1, 30.0)
    if dim == 3:
        # tilted out of the x-y plane too: every off-diagonal entry nonzero
        rotation = _turn(3, 1, 2, 20.0) @ rotation
    diagonal = np.full(dim, 1e-19)
    diagonal[0] = 1e-18
    tensor = rotation @ np.diag(diagonal) @ rotation.T
    centres = np.asarray(mesh.cellCenters)
    rng = np.random.default_rng(1)
    values = 1.0 + np.sin(centres[0] / 7e-9) * np.cos(centres[1] / 11e-9)
    values += 0.05 * rng.random(len(values))
    x_faces = np.asarray(mesh.faceCenters)[0]
    # the faces at x = half (np.isclose's default atol would take every nm-scale face)
    interface = faces.interior & (faces.axis == 0) & (np.abs(x_faces - half) < 0.25e-9)
    left = np.flatnonzero(np.asarray(mesh.facesLeft))
    return {
        "faces": faces,
        "stencil": stencil,
        "tensor": np.repeat(tensor[:, :, None], len(faces.axis), axis=2),
        "values": values,
        "closed": ~faces.interior | interface,
        "fixed_left": dict.fromkeys(left.tolist(), 0.5),
        "n_cells": len(values),
        "n_faces": len(faces.axis),
    }


def _median_times(
    calls: dict[str, Callable[[], Any]], repeats: int
) -> dict[str, tuple[float, float]]:
    """Median (wall, CPU) seconds per call of each, the calls alternating."""
    wall: dict[str, list[float]] = {name: [] for name in calls}
    cpu: dict[str, list[float]] = {name: [] for name in calls}
    for _ in range(repeats):
        for name, call in calls.items():
            w0, c0 = time.perf_counter(), time.process_time()
            call()
            cpu[name].append(time.process_time() - c0)
            wall[name].append(time.perf_counter() - w0)
    return {name: (_common.median(wall[name]), _common.median(cpu[name])) for name in calls}


def measure(
    label: str, work: dict[str, Any], dim: int, fixed: bool, frozen: bool, repeats: int
) -> dict[str, Any]:
    """Time the fast and the reference operator on one case."""
    # a fresh stencil: the first call below builds (and times) the pattern
    stencil = CrossStencil(
        minus=work["stencil"].minus,
        plus=work["stencil"].plus,
        sign=work["stencil"].sign,
        divergence=work["stencil"].divergence,
    )
    args = (
        work["faces"],
        work["tensor"],
        work["values"],
        work["closed"],
        work["fixed_left"] if fixed else {},
        dim,
    )
    t_first = time.perf_counter()
    T, _t0, choice = stencil.linearised(*args)
    first = time.perf_counter() - t_first
    reference, _r0, _choice = stencil._linearised_reference(*args)
    scale = float(abs(reference).max())
    difference = float(abs(T - reference).max()) / scale
    chosen = choice if frozen else None
    times = _median_times(
        {
            "fast": lambda: stencil.linearised(*args, chosen),
            "reference": lambda: stencil._linearised_reference(*args, chosen),
            "divergence": lambda: stencil.divergence @ T,
        },
        repeats,
    )
    row = {
        "case": label,
        "dimension": dim,
        "cells": work["n_cells"],
        "faces": work["n_faces"],
        "fixed_end": fixed,
        "frozen": frozen,
        "nnz_T": int(T.nnz),
        "first_call_ms": 1e3 * first,
        "fast_us": 1e6 * times["fast"][0],
        "fast_cpu_us": 1e6 * times["fast"][1],
        "reference_us": 1e6 * times["reference"][0],
        "reference_cpu_us": 1e6 * times["reference"][1],
        "speedup": times["reference"][0] / times["fast"][0],
        "divergence_at_T_us": 1e6 * times["divergence"][0],
        "max_relative_difference": difference,
        "repeats": repeats,
    }
    _common.say(
        f"{label}: fast {row['fast_us']:.0f} us, reference {row['reference_us']:.0f} us "
        f"({row['speedup']:.1f}x), first call {row['first_call_ms']:.1f} ms, "
        f"max |T - T_ref| / max |T_ref| = {difference:.1e}"
    )
    return row


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="20 calls per case")
    parser.add_argument("--side", type=int, default=100, help="2D cells per side (100)")
    parser.add_argument("--side-3d", type=int, default=24, help="3D cells per side (24)")
    parser.add_argument("--repeats", type=int, default=None, help="calls per case (200)")
    parser.add_argument("--output", type=Path, default=None, help="results JSON")
    args = parser.parse_args(argv)
    repeats = args.repeats or (20 if args.quick else 200)
    record: dict[str, Any] = {"machine": _common.machine(), "results": []}
    work = workload(2, args.side)
    name = f"2D {args.side}x{args.side}"
    for fixed in (False, True):
        for frozen in (False, True):
            label = f"{name}, {'fixed left end' if fixed else 'no fixed end'}, " + (
                "frozen" if frozen else "free"
            )
            record["results"].append(measure(label, work, 2, fixed, frozen, repeats))
    if args.side_3d > 0:
        work = workload(3, args.side_3d)
        label = f"3D {args.side_3d}^3, no fixed end, free"
        record["results"].append(measure(label, work, 3, False, False, repeats))
    _common.finish_machine(record)
    path = _common.write_results(
        "cross_stencil_quick" if args.quick else "cross_stencil", record, args.output
    )
    print()
    print(
        _common.table(
            (
                "Case",
                "nnz(T)",
                "Reference (µs/call)",
                "Fast (µs/call)",
                "Speed-up",
                "Fast, CPU (µs/call)",
                "First call (ms)",
                "divergence @ T (µs)",
                "max rel. diff.",
            ),
            [
                (
                    r["case"],
                    f"{r['nnz_T']:,}",
                    f"{r['reference_us']:.0f}",
                    f"{r['fast_us']:.0f}",
                    f"{r['speedup']:.1f}x",
                    f"{r['fast_cpu_us']:.0f}",
                    f"{r['first_call_ms']:.1f}",
                    f"{r['divergence_at_T_us']:.0f}",
                    f"{r['max_relative_difference']:.0e}",
                )
                for r in record["results"]
            ],
        )
    )
    print(f"\nMedians of {repeats} calls each, alternating.")
    print(f"Machine: {_common.machine_line(record['machine'])}")
    print(f"Results written to {path}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
