r"""Interface metrics of a frame and the temperatures at which they set in (onsets).

Plain numpy. Layers are numbered :math:`k = 0, 1, \dots` along :math:`+x`;
interface :math:`k` at :math:`x_f` lies between layers :math:`k` and :math:`k+1`. A
*cathode* layer is one whose material has a ``compensation`` model (a layered
oxide); the *cathode interface* is the first interface with a cathode on either
side. Per interface :math:`k` the columns carry the suffix ``_i<k>``; the cathode
interface's values are repeated without suffix. All per unit interface area, SI:

``li_transferred_mol_m2`` (mol/m^2)
    Net Li that has crossed the interface out of the cathode since :math:`t = 0`:
    ``crossed_<Li>_i<k>`` (:mod:`cosinter.results.metrics`) with the sign flipped when
    the cathode is on the right (positive: Li left the cathode); without a cathode
    neighbour the net amount in :math:`+x`.
``ti_depth_m``, ``la_depth_m`` (m)
    Penetration depth of Ti / La into the cathode side (``depth_<sp>_i<k>_<side>``);
    without a cathode neighbour the larger of the two sides.
``vo_max`` (-)
    Largest V\ :sub:`O` site fraction :math:`c_{V_O}/s_O` in the cells of the cathode
    layer(s) next to the interface.
``interphase_thickness_m`` (m)
    :math:`\int_{\text{layers } k,\,k+1} \bar\eta\,dx` with :math:`\bar\eta` the lateral
    average.
``asr_ohm_m2`` (ohm m^2)
    Area-specific ionic resistance of the zone :math:`[x_f - w, x_f + w]` (clipped to
    the two layers) at the measuring temperature :math:`T_m`:

    .. math::

       \mathrm{ASR} = \sum_j \frac{\ell_j}{\bar\sigma_j}, \qquad
       \sigma = \sum_i \frac{z_i^2 F^2}{R T_m}\, c_i (1 - \theta_i)\, D_{xx,i}\, f_i,

    :math:`\ell_j` the overlap of column :math:`j` with the zone, :math:`\bar\sigma_j`
    the lateral mean of :math:`\sigma` (columns conduct in parallel), :math:`D_{xx}`
    the normal entry of the effective tensor
    (:func:`cosinter.models.transport.effective_tensors`) and :math:`f` the
    concentration-dependent mobility factor, both at :math:`T_m`.
"""

from __future__ import annotations

import math
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from numpy.typing import NDArray

from cosinter.meshes.stack import StackGeometry
from cosinter.models.transport import nernst_einstein_conductivity
from cosinter.units import celsius

FloatArray = NDArray[np.float64]

#: The interface metrics, in column order.
INTERFACE_METRICS = (
    "li_transferred_mol_m2",
    "ti_depth_m",
    "la_depth_m",
    "vo_max",
    "interphase_thickness_m",
    "asr_ohm_m2",
)

#: The species whose penetration depths are reported, by metric.
DEPTH_SPECIES = {"ti_depth_m": "Ti", "la_depth_m": "La"}

_SUFFIX = re.compile(r"_i\d+$")


@dataclass(frozen=True)
class Cathode:
    """What the metrics need of a cathode layer's compensation model.

    ``oxygen_sites`` in mol/m^3 (the V_O site fraction is ``c_VO / oxygen_sites``).
    """

    lithium: str
    vacancy: str
    oxygen_sites: float


@dataclass(frozen=True)
class InterfaceLayout:
    """Which layers are cathodes and which metrics a stack has.

    Attributes
    ----------
    cathodes
        Per layer, its :class:`Cathode`, or None for a layer that is not a cathode.
    solved
        Names of the solved species.
    interphase
        Whether the interphase phase field is solved.
    asr
        Whether some ASR carrier is solved.
    """

    cathodes: tuple[Cathode | None, ...]
    solved: frozenset[str]
    interphase: bool = False
    asr: bool = False

    @property
    def n_interfaces(self) -> int:
        return len(self.cathodes) - 1

    @property
    def cathode_interface(self) -> int | None:
        """The first interface with a cathode on either side; None without a cathode."""
        for k in range(self.n_interfaces):
            if self.cathode_layer(k) is not None:
                return k
        return None

    def cathode_layer(self, k: int) -> int | None:
        """The cathode side of interface ``k``: layer k if it is a cathode, else k+1, else None."""
        for layer in (k, k + 1):
            if self.cathodes[layer] is not None:
                return layer
        return None

    def lithium(self, k: int) -> str | None:
        """The Li species of interface ``k`` (the cathode's, else "Li"), if solved."""
        layer = self.cathode_layer(k)
        cathode = self.cathodes[layer] if layer is not None else None
        name = cathode.lithium if cathode is not None else "Li"
        return name if name in self.solved else None

    def vacancy_layers(self, k: int) -> list[int]:
        """The cathode layers next to interface ``k`` whose vacancy species is solved."""
        out = []
        for layer in (k, k + 1):
            cathode = self.cathodes[layer]
            if cathode is not None and cathode.vacancy in self.solved:
                out.append(layer)
        return out

    def present(self, k: int) -> list[str]:
        """The metrics (names without suffix) interface ``k`` has, in column order."""
        have = {
            "li_transferred_mol_m2": self.lithium(k) is not None,
            "ti_depth_m": "Ti" in self.solved,
            "la_depth_m": "La" in self.solved,
            "vo_max": bool(self.vacancy_layers(k)),
            "interphase_thickness_m": self.interphase,
            "asr_ohm_m2": self.asr,
        }
        return [name for name in INTERFACE_METRICS if have[name]]


def interface_names(layout: InterfaceLayout) -> list[str]:
    """Column names of :func:`interface_metrics`, in order.

    The cathode interface's metrics without suffix first, then those of every
    interface ``k`` with the suffix ``_i<k>``.
    """
    names: list[str] = []
    first = layout.cathode_interface
    if first is not None:
        names += layout.present(first)
    for k in range(layout.n_interfaces):
        names += [f"{name}_i{k}" for name in layout.present(k)]
    return names


def base_name(column: str) -> str:
    """A column name without its interface suffix (``asr_ohm_m2_i1`` -> ``asr_ohm_m2``)."""
    return _SUFFIX.sub("", column)


# --------------------------------------------------------------------------- resistance


def carrier_conductivity(
    c: FloatArray,
    sites: FloatArray,
    d_xx: FloatArray,
    charge: int,
    T: float,
    factor: FloatArray | None = None,
) -> FloatArray:
    r"""Nernst–Einstein conductivity of one carrier per cell (S/m).

    .. math::

       \sigma = \frac{z^2 F^2}{R T}\, c\,(1 - \theta)\, D_{xx}\, f,
       \qquad \theta = c/s \in [0, 1]

    with :math:`z` = ``charge``, or 1 for an uncharged (``charge = 0``) species: a
    species solved without electrostatics still carries its ionic charge.

    Parameters
    ----------
    c
        Concentration per cell (mol/m^3); negative round-off counts as 0.
    sites
        Site density per cell (mol/m^3), +inf where the species is dilute.
    d_xx
        Diffusivity normal to the interfaces per cell (m^2/s).
    charge
        Charge number (0 counts as 1).
    T
        Temperature (K).
    factor
        Concentration-dependent mobility factor per cell; default 1.
    """
    conc = np.maximum(np.asarray(c, dtype=float), 0.0)
    mobile = conc * (1.0 - np.clip(conc / sites, 0.0, 1.0))
    d = np.asarray(d_xx, dtype=float) if factor is None else d_xx * factor
    return nernst_einstein_conductivity(mobile, d, charge or 1, T)


def zone_resistance(
    geometry: StackGeometry, conductivity: FloatArray, interface: int, half_width: float
) -> float:
    r"""Area-specific resistance of :math:`[x_f - w, x_f + w]` around ``interface`` (ohm m^2).

    .. math::

       \mathrm{ASR} = \sum_j \frac{\ell_j}{\bar\sigma_j}, \qquad
       \ell_j = \big|[x_j, x_{j+1}] \cap [\max(x_f - w, a), \min(x_f + w, b)]\big|,

    over the columns :math:`j` of layers ``interface`` and ``interface + 1`` (from
    :math:`a` to :math:`b`); :math:`\bar\sigma_j` is the lateral mean of the per-cell
    conductivity (the cells of a column conduct in parallel, the columns in series).
    Infinite when a column in the zone does not conduct.
    """
    faces = geometry.x_faces
    layer = geometry.layer_of_column
    cols = np.flatnonzero((layer == interface) | (layer == interface + 1))
    x_f = float(geometry.interfaces[interface])
    lo = max(x_f - half_width, float(faces[cols[0]]))
    hi = min(x_f + half_width, float(faces[cols[-1] + 1]))
    overlap = np.minimum(faces[cols + 1], hi) - np.maximum(faces[cols], lo)
    inside = overlap > 0.0
    sigma = geometry.column_average(np.asarray(conductivity, dtype=float))[cols][inside]
    if np.any(sigma <= 0.0):
        return math.inf
    return float(np.sum(overlap[inside] / sigma))


# --------------------------------------------------------------------------- metrics


def interphase_thickness(geometry: StackGeometry, eta: FloatArray, interface: int) -> float:
    r""":math:`\int \bar\eta\,dx` over layers ``interface`` and ``interface + 1`` (m)."""
    cols = np.flatnonzero(
        (geometry.layer_of_column == interface) | (geometry.layer_of_column == interface + 1)
    )
    profile = geometry.column_average(np.asarray(eta, dtype=float))
    return float(np.sum(profile[cols] * geometry.dx[cols]))


def interface_metrics(
    layout: InterfaceLayout,
    geometry: StackGeometry,
    metrics: Mapping[str, float],
    values: Mapping[str, FloatArray],
    eta: FloatArray | None = None,
    conductivity: FloatArray | None = None,
    half_width: float = 20e-9,
) -> dict[str, float]:
    """All interface metrics of a frame, keyed as :func:`interface_names`.

    Parameters
    ----------
    layout
        The stack's cathodes and solved fields.
    geometry
        The stack.
    metrics
        The frame's :func:`cosinter.results.metrics.frame_metrics` (crossed amounts
        and penetration depths are taken from there).
    values
        Concentrations per cell (mol/m^3) of the solved species.
    eta
        Phase field per cell, needed when ``layout.interphase``.
    conductivity
        Ionic conductivity per cell at the measuring temperature (S/m), needed when
        ``layout.asr`` (:func:`carrier_conductivity`, summed over the carriers).
    half_width
        Half-width w of the ASR zone (m).
    """
    out: dict[str, float] = {}
    for k in range(layout.n_interfaces):
        cathode = layout.cathode_layer(k)
        side = None if cathode is None else ("left" if cathode == k else "right")
        for name in layout.present(k):
            if name == "li_transferred_mol_m2":
                crossed = metrics[f"crossed_{layout.lithium(k)}_i{k}"]
                value = -crossed if side == "right" else crossed  # out of the cathode
            elif name in DEPTH_SPECIES:
                sp = DEPTH_SPECIES[name]
                sides = [side] if side is not None else ["left", "right"]
                value = max(metrics[f"depth_{sp}_i{k}_{s}"] for s in sides)
            elif name == "vo_max":
                value = -math.inf
                for layer in layout.vacancy_layers(k):
                    info = layout.cathodes[layer]
                    assert info is not None
                    cells = geometry.cell_layer == layer
                    theta = np.asarray(values[info.vacancy])[cells] / info.oxygen_sites
                    value = max(value, float(np.max(theta)))
            elif name == "interphase_thickness_m":
                if eta is None:
                    raise ValueError("interphase_thickness_m needs eta")
                value = interphase_thickness(geometry, eta, k)
            else:  # asr_ohm_m2
                if conductivity is None:
                    raise ValueError("asr_ohm_m2 needs the conductivity")
                with np.errstate(divide="ignore"):
                    value = zone_resistance(geometry, conductivity, k, half_width)
            out[f"{name}_i{k}"] = float(value)
    first = layout.cathode_interface
    if first is not None:
        for name in layout.present(first):
            out[name] = out[f"{name}_i{first}"]
    return out


# --------------------------------------------------------------------------- onsets


def crossing(
    before: tuple[float, float, float],
    after: tuple[float, float, float],
    threshold: float,
) -> tuple[float, float]:
    r"""Temperature and time at which a metric reaches ``threshold`` between two frames.

    ``before`` and ``after`` are ``(T, t, value)`` of the two frames that bracket the
    crossing (``value_before < threshold <= value_after``); linear in between:

    .. math::

       s = \frac{v^* - v_0}{v_1 - v_0}, \qquad T^* = T_0 + s\,(T_1 - T_0), \qquad
       t^* = t_0 + s\,(t_1 - t_0).

    An infinite (or otherwise not finite) value on either side gives the later frame.
    """
    T0, t0, v0 = before
    T1, t1, v1 = after
    if not (math.isfinite(v0) and math.isfinite(v1)) or v1 <= v0:
        return T1, t1
    s = min(max((threshold - v0) / (v1 - v0), 0.0), 1.0)
    return T0 + s * (T1 - T0), t0 + s * (t1 - t0)


def _finite_or_none(value: float | None) -> float | None:
    return value if value is not None and math.isfinite(value) else None


@dataclass
class OnsetTracker:
    """The first crossing of its threshold of every interface metric column.

    ``thresholds`` are keyed like ``[output] onset_thresholds``: a metric's name
    without the suffix (in the metric's unit), and ``asr_ratio`` for ``asr_ohm_m2``,
    whose threshold is that ratio times the column's value in the first frame. A
    column reaches its threshold when its value is at least the threshold; a column
    already there in the first frame has its onset at that frame.
    """

    thresholds: Mapping[str, float]
    columns: Sequence[str]
    frames: int = 0
    reference: dict[str, float | None] = field(default_factory=dict)
    onsets: dict[str, dict[str, float | int] | None] = field(default_factory=dict)
    _last: dict[str, tuple[float, float, float]] = field(default_factory=dict)

    def __post_init__(self) -> None:
        for column in self.columns:
            self.onsets.setdefault(column, None)
            if base_name(column) == "asr_ohm_m2":
                self.reference.setdefault(column, None)

    def threshold(self, column: str) -> float | None:
        """The absolute threshold of a column (None: not known yet, or never reachable)."""
        name = base_name(column)
        if name != "asr_ohm_m2":
            return float(self.thresholds[name])
        ref = self.reference.get(column)
        if ref is None or not math.isfinite(ref) or ref <= 0.0:
            return None  # an infinite initial resistance cannot rise by a ratio
        return float(self.thresholds["asr_ratio"]) * ref

    def update(self, frame: int, t: float, T: float, metrics: Mapping[str, float]) -> None:
        """Take a frame's metrics (in frame order)."""
        for column in self.columns:
            value = float(metrics[column])
            if base_name(column) == "asr_ohm_m2" and self.frames == 0:
                self.reference[column] = value
            if math.isnan(value):
                continue  # keep the last number for the interpolation
            threshold = self.threshold(column)
            if self.onsets[column] is None and threshold is not None and value >= threshold:
                last = self._last.get(column)
                T_on, t_on = (T, t) if last is None else crossing(last, (T, t, value), threshold)
                self.onsets[column] = {
                    "T_K": T_on,
                    "T_degC": celsius(T_on),
                    "time_s": t_on,
                    "frame": frame,
                    "threshold": threshold,
                }
            self._last[column] = (T, t, value)
        self.frames += 1

    def as_dict(self, status: str = "running") -> dict[str, Any]:
        """The ``onsets.json`` content (JSON-safe: no infinities)."""
        return {
            "status": status,
            "frames": self.frames,
            "thresholds": {k: float(v) for k, v in self.thresholds.items()},
            "asr_reference_ohm_m2": {k: _finite_or_none(v) for k, v in self.reference.items()},
            "onsets": dict(self.onsets),
        }


def onset_columns(columns: Iterable[str]) -> list[str]:
    """The interface metric columns among ``columns`` (those :class:`OnsetTracker` follows)."""
    return [c for c in columns if base_name(c) in INTERFACE_METRICS]
