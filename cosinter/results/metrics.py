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

The interface metrics built on these (Li transferred out of the cathode, Ti/La
depths into it, V_O, interphase thickness, interfacial resistance) and their onsets
are in :mod:`cosinter.results.interface`.
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


# --------------------------------------------------------------------------- space charge


def space_charge_names(n_layers: int, with_defects: bool) -> list[str]:
    """Column names of :func:`space_charge_metrics`, in order."""
    names: list[str] = []
    for k in range(n_layers - 1):
        names += [
            f"potential_drop_V_i{k}",
            f"interface_potential_V_i{k}",
            f"scl_width_m_i{k}",
            f"scl_asr_ohm_m2_i{k}",
        ]
        if with_defects:
            names.append(f"defect_zone_m_i{k}")
    return names


def interface_potential(
    geometry: StackGeometry,
    phi: FloatArray,
    eps: FloatArray,
    interface: int,
    sheet_charge: float = 0.0,
    pinned: float | None = None,
) -> float:
    r"""Potential on the interface face from Gauss's law across it (V).

    .. math::

       \phi_f = \frac{\sigma + \varepsilon_1\phi_1/d_1 + \varepsilon_2\phi_2/d_2}
                     {\varepsilon_1/d_1 + \varepsilon_2/d_2}

    with the two neighbouring columns' centres at distances :math:`d_{1,2}`; the
    pinned value when the interface potential is fixed.
    """
    if pinned is not None:
        return float(pinned)
    left = int(np.searchsorted(geometry.layer_of_column, interface, side="right")) - 1
    right = left + 1
    dx = geometry.dx
    g1, g2 = eps[left] / (0.5 * dx[left]), eps[right] / (0.5 * dx[right])
    return float((sheet_charge + g1 * phi[left] + g2 * phi[right]) / (g1 + g2))


def space_charge_metrics(
    geometry: StackGeometry,
    phi: FloatArray,
    eps: FloatArray,
    resistivity: FloatArray,
    sheets: Mapping[int, tuple[float, float | None]],
    mobility: FloatArray | None = None,
) -> dict[str, float]:
    r"""Space-charge metrics of every internal interface k (all per column, lateral mean).

    ``potential_drop_V_i<k>`` (V)
        :math:`\phi(\text{middle of layer } k{+}1) - \phi(\text{middle of layer } k)`.
    ``interface_potential_V_i<k>`` (V)
        :math:`\phi_f - (\phi_L + \phi_R)/2`: the interface (e.g. grain-boundary
        core) potential against the mean of the two layer middles.
    ``scl_width_m_i<k>`` (m)
        Sum over both sides of the distance from the interface at which
        :math:`|\phi - \phi_\mathrm{side}|` has fallen to :math:`1/e` of its value at
        the interface (:math:`\phi_\mathrm{side}` the potential in the middle of that
        layer; a side with less than 1 uV deviation counts 0): the Debye length
        per side in the linear Gouy–Chapman regime.
    ``scl_asr_ohm_m2_i<k>`` (ohm m^2)
        Excess area-specific resistance of the two adjacent layers over their
        middles' bulk: :math:`\int (\rho_e(x) - \rho_{e,\mathrm{side}})\,dx` with the
        ionic resistivity :math:`\rho_e = 1/\sigma` (Nernst–Einstein, at the frame's
        temperature).
    ``defect_zone_m_i<k>`` (m, only with a mobility model)
        Distance from the interface to the cell of lowest mobility factor in the
        two adjacent layers (the defect-deficient zone).
    """
    faces = geometry.x_faces
    x = 0.5 * (faces[1:] + faces[:-1])
    dx = geometry.dx
    layer = geometry.layer_of_column
    out: dict[str, float] = {}
    for k, x_f in enumerate(geometry.interfaces):
        sigma, pinned = sheets.get(k, (0.0, None))
        mids = []
        for side_layer in (k, k + 1):
            cols = np.flatnonzero(layer == side_layer)
            middle = 0.5 * (faces[cols[0]] + faces[cols[-1] + 1])
            mids.append(cols[int(np.argmin(np.abs(x[cols] - middle)))])  # graded meshes too
        phi_l, phi_r = phi[mids[0]], phi[mids[1]]
        phi_f = interface_potential(geometry, phi, eps, k, sigma, pinned)
        out[f"potential_drop_V_i{k}"] = float(phi_r - phi_l)
        out[f"interface_potential_V_i{k}"] = float(phi_f - 0.5 * (phi_l + phi_r))
        width = 0.0
        for side_layer, phi_side in ((k, phi_l), (k + 1, phi_r)):
            cols = np.flatnonzero(layer == side_layer)
            dev0 = abs(phi_f - phi_side)
            if dev0 < 1e-6:
                continue
            cols = cols[::-1] if side_layer == k else cols  # walk away from the interface
            dist = np.concatenate([[0.0], np.abs(x[cols] - x_f)])
            dev = np.concatenate([[dev0], np.abs(phi[cols] - phi_side)])
            below = np.flatnonzero(dev <= dev0 / np.e)
            if len(below) == 0:
                width += float(dist[-1])
                continue
            j = int(below[0])
            # linear interpolation of the crossing between samples j-1 and j
            frac = (dev[j - 1] - dev0 / np.e) / (dev[j - 1] - dev[j])
            width += float(dist[j - 1] + frac * (dist[j] - dist[j - 1]))
        out[f"scl_width_m_i{k}"] = width
        excess = 0.0
        for side_layer, mid in ((k, mids[0]), (k + 1, mids[1])):
            cols = np.flatnonzero(layer == side_layer)
            excess += float(np.sum((resistivity[cols] - resistivity[mid]) * dx[cols]))
        out[f"scl_asr_ohm_m2_i{k}"] = excess
        if mobility is not None:
            cols = np.flatnonzero((layer == k) | (layer == k + 1))
            j = cols[int(np.argmin(mobility[cols]))]
            out[f"defect_zone_m_i{k}"] = float(abs(x[j] - x_f))
    return out
