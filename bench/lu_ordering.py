"""Fill-in and time of SuperLU's column orderings on cosinter's own 2D matrices.

An experiment behind a suggestion of ``docs/performance.md`` (not an issue-5
target): :class:`cosinter.solver.equations._ConservingLU` factors every matrix with
``splu(A, permc_spec="COLAMD")``. On the 2D case of ``bench/scaling.py`` this run
records the matrices that one step hands to ``splu`` (wrapping the name in
``cosinter.solver.equations`` for this process only; nothing in cosinter/ changes),
then factors each distinct one with every ordering SuperLU offers and reports the
factor time and the fill ``nnz(L) + nnz(U)`` (memory ~ 12 bytes per entry).

    python bench/lu_ordering.py            # 316 x 316 cells (1e5)
    python bench/lu_ordering.py --quick    # 100 x 100 cells
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path
from typing import Any

import _common
import scaling
import scipy.sparse as sparse
from scipy.sparse.linalg import splu

ORDERINGS = ("COLAMD", "MMD_AT_PLUS_A", "MMD_ATA")


def capture(side: int) -> list[Any]:
    """The matrices ``splu`` sees during one step of the scaling case (distinct shapes)."""
    import cosinter.solver.equations as equations
    from cosinter.case import load_case
    from cosinter.solver.simulation import Simulation

    seen: dict[tuple[int, int], Any] = {}
    original = equations.splu

    def recording(matrix: Any, **kwargs: Any) -> Any:
        seen.setdefault(matrix.shape, sparse.csc_matrix(matrix, copy=True))
        return original(matrix, **kwargs)

    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "case.toml"
        path.write_text(scaling.CASE.format(n=side, h=1.0, width=side, half=side / 2))
        case, raw = load_case(path)
    sim = Simulation(case, raw)
    system = equations.TransportSystem(sim.geometry, sim.props, {}, sim.poisson, sim.chemistry)
    T = sim.program.temperature(0.0)
    system.update_coefficients(T)
    equations.splu = recording  # type: ignore[assignment]
    try:
        system.step(1.0, T, 30, 1e-5)
    finally:
        equations.splu = original
    return list(seen.values())


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="100 x 100 cells")
    parser.add_argument("--side", type=int, default=None, help="cells per side (default 316)")
    parser.add_argument("--output", type=Path, default=None, help="results JSON")
    args = parser.parse_args(argv)
    side = args.side or (100 if args.quick else 316)
    record: dict[str, Any] = {"machine": _common.machine(), "side": side, "results": []}
    for matrix in capture(side):
        for ordering in ORDERINGS:
            t0 = time.perf_counter()
            try:
                lu = splu(matrix, permc_spec=ordering)
            except MemoryError:
                record["results"].append({"n": matrix.shape[0], "ordering": ordering})
                continue
            wall = time.perf_counter() - t0
            fill = int(lu.L.nnz + lu.U.nnz)
            record["results"].append(
                {
                    "n": matrix.shape[0],
                    "nnz": int(matrix.nnz),
                    "ordering": ordering,
                    "factor_s": wall,
                    "fill": fill,
                    "factor_mib": fill * 12 / 2**20,
                }
            )
            _common.say(f"n = {matrix.shape[0]}: {ordering}: {wall:.2f} s, fill {fill:,}")
            del lu
    _common.finish_machine(record)
    path = _common.write_results(
        "lu_ordering_quick" if args.quick else "lu_ordering", record, args.output
    )
    print()
    print(
        _common.table(
            ("Unknowns", "Matrix nnz", "Ordering", "Factor time (s)", "nnz(L+U)", "Factors (MiB)"),
            [
                (
                    f"{r['n']:,}",
                    f"{r.get('nnz', 0):,}",
                    r["ordering"],
                    f"{r['factor_s']:.2f}" if "factor_s" in r else "MemoryError",
                    f"{r['fill']:,}" if "fill" in r else "-",
                    f"{r['factor_mib']:.0f}" if "fill" in r else "-",
                )
                for r in record["results"]
            ],
        )
    )
    print(f"\nMachine: {_common.machine_line(record['machine'])}")
    print(f"Results written to {path}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
