"""Generate the material-library tables from ``cosinter/models/library/*.toml``.

A Sphinx extension (``docs/conf.py``) writing ``docs/generated/library.rst``, which
``docs/materials.rst`` includes: a summary table of every entry (with D at 25 degC and
700 degC) and, per entry, every value with its unit and its source exactly as the
library states it (a mobility model key by key, with its fitted crowding scales).
Importable without Sphinx (``render()``).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
from case_schema import _rst

from cosinter.models.materials import Material, library_names, resolve_material
from cosinter.models.transport import DefectMobility, arrhenius
from cosinter.units import EV, ZERO_CELSIUS

OUTPUT = Path("generated") / "library.rst"
#: Temperatures of the D columns of the summary table (K).
SUMMARY_T = (25.0 + ZERO_CELSIUS, 700.0 + ZERO_CELSIUS)


def _g(value: float, digits: int = 4) -> str:
    return f"{value:.{digits}g}"


def _same(x: float, y: float) -> bool:
    return bool(np.isclose(x, y, rtol=1e-9, atol=0.0))


def _principal(values: tuple[float, float, float], scale: float = 1.0) -> str:
    a, b, c = (v / scale for v in values)
    if _same(a, b) and _same(b, c):
        return _g(a, 3)
    if _same(a, b):
        return f"ab {_g(a, 3)}, c {_g(c, 3)}"
    return f"a {_g(a, 3)}, b {_g(b, 3)}, c {_g(c, 3)}"


def _lattice(m: Material) -> str:
    if m.lattice is None:
        return "none"
    lat = m.lattice
    text = f"{lat.system}, a = {_g(lat.a * 1e10, 5)} Å"
    if lat.system == "orthorhombic":
        text += f", b = {_g(lat.b * 1e10, 5)} Å"
    if lat.system != "cubic":
        text += f", c = {_g(lat.c * 1e10, 5)} Å"
    return text


def _base(m: Material) -> str:
    chain = [c.split(":", 1)[1] for c in m.base_chain[1:]]
    return f" (base: {' → '.join(chain)})" if chain else ""


def _list_table(header: list[str], rows: list[list[str]], widths: str) -> list[str]:
    lines = [".. list-table::", "   :header-rows: 1", f"   :widths: {widths}", ""]
    for row in [header, *rows]:
        lines.append(f"   * - {row[0] or '–'}")
        lines += [f"     - {cell or '–'}" for cell in row[1:]]
    return [*lines, ""]


def render() -> str:
    """The library reference as reStructuredText."""
    materials = [resolve_material(name) for name in library_names()]
    species = sorted({sp for m in materials for sp in m.species})
    lines = [
        ".. This file is generated from cosinter/models/library/*.toml by",
        "   docs/_ext/library_table.py; edit the library, not this file.",
        "",
    ]
    for sp in species:
        header = [
            "entry",
            "lattice",
            f"{sp} (mol/L)",
            "sites (mol/L)",
            "θ",
            "μ⁰ (eV)",
            "D0 (m²/s)",
            "Ea (eV)",
            *(f"D_ab / D_c at {T - ZERO_CELSIUS:.0f} °C (m²/s)" for T in SUMMARY_T),
        ]
        rows = []
        for m in materials:
            if sp not in m.species:
                continue
            p = m.species[sp]
            theta = _g(p.initial / p.sites, 3) if p.sites else "dilute"
            d_cols = []
            for T in SUMMARY_T:
                d = arrhenius(p.D0, p.Ea, T)
                d_cols.append(
                    _g(d[0], 3)
                    if _same(d[0], d[1]) and _same(d[1], d[2])
                    else f"{d[0]:.3g} / {d[2]:.3g}"
                )
            rows.append(
                [
                    f"``{m.name}``",
                    _lattice(m),
                    _g(p.initial / 1e3),
                    _g(p.sites / 1e3) if p.sites else "dilute",
                    theta,
                    _g(p.mu0 / EV, 3),
                    _principal(p.D0),
                    _principal(p.Ea, EV),
                    *d_cols,
                ]
            )
        lines += [f"Summary: {sp}", "~" * 20, ""]
        lines += _list_table(header, rows, "12 14 7 7 6 6 14 8 13 13")
    for m in materials:
        heading = f"``{m.name}``"
        lines += [heading, "~" * (len(heading) + 4), "", _rst(m.description) + _base(m), ""]
        rows = [["lattice", _lattice(m), "", _rst(m.source_of("lattice"))]]
        if m.relative_permittivity is not None:
            rows.append(
                [
                    "relative_permittivity",
                    _g(m.relative_permittivity),
                    "",
                    _rst(m.source_of("relative_permittivity")),
                ]
            )
        for sp, p in m.species.items():
            values: list[tuple[str, str, str]] = [
                ("initial", _g(p.initial / 1e3), "mol/L"),
                ("sites", _g(p.sites / 1e3) if p.sites else "dilute", "mol/L"),
                ("mu0", _g(p.mu0 / EV, 3), "eV"),
                ("D0", _principal(p.D0), "m²/s"),
                ("Ea", _principal(p.Ea, EV), "eV"),
            ]
            if not _same(p.background, p.initial):
                values.append(("background", _g(p.background / 1e3), "mol/L"))
            mob = p.mobility
            if mob is not None:
                temps = ", ".join(_g(T) for T in mob.crowding_temperatures)
                values += [
                    ("mobility.model", f"``{mob.model}``", ""),
                    ("mobility.formula_density", _g(mob.formula_density / 1e3, 5), "mol/L"),
                    ("mobility.full_occupancy", _g(mob.full_occupancy), "per f.u."),
                    ("mobility.reference", _g(mob.reference), "per f.u."),
                    ("mobility.intrinsic", _g(mob.intrinsic), "per f.u."),
                    ("mobility.crowding_temperatures", temps, "K"),
                    (
                        "mobility.crowding_compositions",
                        ", ".join(_g(x) for x in mob.crowding_compositions),
                        "per f.u.",
                    ),
                ]
            for key, value, unit in values:
                source = m.source_of(f"species.{sp}.{key}")
                rows.append([f"``species.{sp}.{key}``", value, unit, _rst(source)])
            if mob is not None:
                scales = DefectMobility.from_spec(mob).crowding_scales
                rows.append(
                    [
                        f"(fitted crowding scales of ``species.{sp}.mobility``)",
                        ", ".join(_g(s, 3) for s in scales),
                        "per f.u.",
                        f"derived: :math:`n_c` at {temps} K, from the turning compositions "
                        "(see the theory chapter)",
                    ]
                )
        lines += _list_table(["key", "value", "unit", "source"], rows, "18 18 8 56")
    return "\n".join(lines)


def write(srcdir: Path) -> Path:
    """Write the tables under ``srcdir`` if their content changed; return the path."""
    from case_schema import write_if_changed  # docs/_ext is on sys.path (conf.py)

    return write_if_changed(Path(srcdir) / OUTPUT, render())


def setup(app: Any) -> dict[str, Any]:
    """Sphinx entry point."""
    app.connect("builder-inited", lambda app: write(Path(app.srcdir)))
    return {"parallel_read_safe": True, "parallel_write_safe": True, "version": "1"}
