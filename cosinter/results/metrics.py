r"""Metrics computed from a frame: inventories, transferred amounts, penetration.

All metrics are per unit interface area (1D-equivalent), SI:

``inventory_<sp>_layer<k>`` (mol/m^2)
    :math:`\frac{1}{A}\int_{\mathrm{layer}\,k} c\,dV`.
``crossed_<sp>_i<k>`` (mol/m^2)
    Net amount that has crossed interface k (between layers k and k+1) in the +x
    direction since t = 0: the inflow through x = 0 minus the growth of the layers
    left of the interface.
``depth_<sp>_i<k>_left`` / ``depth_<sp>_i<k>_right`` (m)
    Penetration depth of the composition change into the layer left / right of
    interface k: the distance from the interface to the far edge of the last cell
    of the contiguous run of cells (lateral average) next to the interface whose
    concentration differs from that layer's initial value by more than
    ``penetration_threshold`` (default 1 %) times the species' reference
    concentration: the largest of its initial concentrations and fixed boundary
    values. A species with a zero reference has depth 0.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np
from numpy.typing import NDArray

from cosinter.meshes.stack import StackGeometry

FloatArray = NDArray[np.float64]


def metric_names(species: Sequence[str], n_layers: int) -> list[str]:
    """Column names, in order."""
    names: list[str] = []
    for sp in species:
        names += [f"inventory_{sp}_layer{k}" for k in range(n_layers)]
        names += [f"crossed_{sp}_i{k}" for k in range(n_layers - 1)]
        for k in range(n_layers - 1):
            names += [f"depth_{sp}_i{k}_left", f"depth_{sp}_i{k}_right"]
    return names


def layer_inventories(geometry: StackGeometry, values: FloatArray) -> FloatArray:
    """Amount per interface area in each layer (mol/m^2)."""
    per_cell = values * geometry.cell_volumes / geometry.lateral_area
    counts = np.bincount(geometry.cell_layer, weights=per_cell, minlength=len(geometry.thicknesses))
    return np.asarray(counts, dtype=float)


def penetration_depth(
    geometry: StackGeometry,
    profile: FloatArray,
    initial: FloatArray,
    interface: int,
    side: str,
    threshold: float,
) -> float:
    """Depth (m) of the contiguous changed zone next to ``interface`` on ``side``."""
    layer_of_column = geometry.layer_of_column
    layer = interface if side == "left" else interface + 1
    columns = np.flatnonzero(layer_of_column == layer)
    if side == "left":
        columns = columns[::-1]  # walk away from the interface
    changed = np.abs(profile[columns] - initial[columns]) > threshold
    if not changed[0]:
        return 0.0
    run = len(changed) if changed.all() else int(np.argmin(changed))
    faces = geometry.x_faces
    x_interface = geometry.interfaces[interface]
    last = columns[run - 1]
    edge = faces[last] if side == "left" else faces[last + 1]
    return float(abs(edge - x_interface))


def frame_metrics(
    geometry: StackGeometry,
    values: Mapping[str, FloatArray],
    initial: Mapping[str, FloatArray],
    initial_inventory: Mapping[str, FloatArray],
    boundary_inflow: Mapping[str, float],
    threshold: float,
    references: Mapping[str, float] | None = None,
) -> dict[str, float]:
    """All metrics of one frame, keyed as :func:`metric_names`.

    ``references`` are the per-species concentrations the depth threshold is a
    fraction of (default: the largest initial concentration).
    """
    n_layers = len(geometry.thicknesses)
    out: dict[str, float] = {}
    for sp, c in values.items():
        inv = layer_inventories(geometry, c)
        for k in range(n_layers):
            out[f"inventory_{sp}_layer{k}"] = float(inv[k])
        growth = np.cumsum(inv - initial_inventory[sp])
        for k in range(n_layers - 1):
            out[f"crossed_{sp}_i{k}"] = float(boundary_inflow.get(sp, 0.0) - growth[k])
        profile = geometry.column_average(c)
        start = geometry.column_average(initial[sp])
        reference = (references or {}).get(sp, float(np.max(initial[sp])))
        absolute = threshold * reference if reference > 0 else np.inf
        for k in range(n_layers - 1):
            for side in ("left", "right"):
                out[f"depth_{sp}_i{k}_{side}"] = penetration_depth(
                    geometry, profile, start, k, side, absolute
                )
    return out
