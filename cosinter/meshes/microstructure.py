"""Microstructure inside a layer: Voronoi polycrystals and fast-diffusion channels.

Plain numpy/scipy on cell centres, no physics and no FiPy: the functions here say
*which* cells form a grain or a channel; :mod:`cosinter.solver.simulation` turns that
into per-cell rotations and diffusivity factors.

Coordinates follow the lab frame of the stack: column 0 of ``points`` is x (the
stack normal), columns 1 and 2 are y and z (in the interface plane), all in metres.
"""

from __future__ import annotations

import math

import numpy as np
from numpy.typing import ArrayLike, NDArray
from scipy.spatial import cKDTree
from scipy.spatial.transform import Rotation

__all__ = ["channel_mask", "random_rotations", "voronoi_grains"]


def _checked(
    points: ArrayLike, in_layer: ArrayLike
) -> tuple[NDArray[np.float64], NDArray[np.bool_]]:
    """``points`` as an (n, d) float array and ``in_layer`` as an (n,) boolean mask."""
    p = np.asarray(points, dtype=np.float64)
    if p.ndim == 1:
        p = p[:, None]
    mask = np.asarray(in_layer, dtype=bool)
    if p.ndim != 2 or not 1 <= p.shape[1] <= 3 or mask.shape != (p.shape[0],):
        raise ValueError(
            f"expected points of shape (n, d) with d = 1..3 and a mask of shape (n,), got "
            f"{p.shape} and {mask.shape}"
        )
    if not np.all(np.isfinite(p)):
        raise ValueError("points must be finite")
    return p, mask


def voronoi_grains(
    points: ArrayLike,
    in_layer: ArrayLike,
    count: int,
    seed: int,
    lateral_period: float | None = None,
) -> NDArray[np.int64]:
    """Grain index of every cell: a Voronoi tessellation of the layer's cells.

    ``count`` seed points are drawn with ``numpy.random.default_rng(seed)``,
    uniformly inside the bounding box of the layer's cell centres (along the lateral
    axes ``[0, lateral_period)`` when that is given); every cell of the layer belongs
    to its nearest seed (Euclidean distance, lateral components taken modulo
    ``lateral_period``, so grains wrap around periodic lateral boundaries).

    Parameters
    ----------
    points
        Cell centres, shape (n, d): x, then y (and z) (m).
    in_layer
        Shape (n,), True for the cells of the grain layer.
    count
        Number of grains (seeds), at least 1.
    seed
        Seed of the random generator: the same seed gives the same grains.
    lateral_period
        Period of the lateral axes (columns 1 and 2) (m), e.g. the mesh width with
        periodic lateral boundaries, or None for bounded ones; lateral coordinates
        are then taken modulo the period.

    Returns
    -------
    numpy.ndarray
        Shape (n,), int64: the grain index ``0 .. count - 1`` of every cell of the
        layer, -1 for the other cells. A grain whose seed is nearest to no cell
        centre (too few cells) has no cells.

    Raises
    ------
    ValueError
        Bad shapes, ``count < 1``, no cell in the layer, or a non-positive period.
    """
    p, mask = _checked(points, in_layer)
    if count < 1:
        raise ValueError(f"count must be at least 1, got {count}")
    if not mask.any():
        raise ValueError("the grain layer has no cells")
    d = p.shape[1]
    cells = p[mask]
    lo, hi = cells.min(axis=0), cells.max(axis=0)
    rng = np.random.default_rng(seed)
    if lateral_period is None:
        seeds = lo + (hi - lo) * rng.random((count, d))
        tree = cKDTree(seeds)
    else:
        period = float(lateral_period)
        if not (math.isfinite(period) and period > 0):
            raise ValueError(f"lateral_period must be positive, got {lateral_period!r}")
        lo[1:], hi[1:] = 0.0, period
        seeds = lo + (hi - lo) * rng.random((count, d))
        boxsize = np.zeros(d)  # 0: x is not periodic
        boxsize[1:] = period
        cells = cells.copy()
        cells[:, 1:] = _wrap(cells[:, 1:], period)
        seeds[:, 1:] = _wrap(seeds[:, 1:], period)
        tree = cKDTree(seeds, boxsize=boxsize)
    _, nearest = tree.query(cells)
    out = np.full(p.shape[0], -1, dtype=np.int64)
    out[mask] = np.asarray(nearest, dtype=np.int64)
    return out


def _wrap(values: NDArray[np.float64], period: float) -> NDArray[np.float64]:
    """``values`` modulo ``period`` in ``[0, period)`` (cKDTree's periodic box)."""
    wrapped = np.mod(values, period)
    # -1e-30 mod 1e-8 rounds to exactly 1e-8, outside the half-open box
    return np.where(wrapped >= period, 0.0, wrapped)


def random_rotations(count: int, seed: int) -> NDArray[np.float64]:
    """Uniformly distributed (Haar) crystal -> lab rotations, one per grain.

    Parameters
    ----------
    count
        Number of rotations, at least 1.
    seed
        Seed (``scipy.spatial.transform.Rotation.random(count, random_state=seed)``).

    Returns
    -------
    numpy.ndarray
        Shape (count, 3, 3), proper rotations (``R^T R = I``, ``det R = +1``).
    """
    if count < 1:
        raise ValueError(f"count must be at least 1, got {count}")
    matrices = Rotation.random(count, random_state=seed).as_matrix()
    return np.asarray(matrices, dtype=np.float64).reshape(count, 3, 3)


def channel_mask(
    points: ArrayLike, in_layer: ArrayLike, spacing: float, width: float
) -> NDArray[np.bool_]:
    """Cells of a layer that belong to a fast-diffusion channel (a line defect).

    The channels run along x (normal to the interfaces) through the whole layer, at
    ``y = spacing / 2 + k * spacing`` (k = 0, 1, ...). A cell of the layer is in a
    channel when its centre lies within ``width / 2`` of one (bounds included, with a
    relative tolerance of 1e-9 so that round-off does not decide when a band edge
    falls on a cell centre). In 3D the channels are lines too: both y and z of the
    centre must lie within ``width / 2`` of a line at ``(y_k, z_m)``, with the same
    positions along z. A channel narrower than the lateral cell size may hold no cell
    at all; a line on a cell face takes the cells on both sides.

    Parameters
    ----------
    points
        Cell centres, shape (n, d): x, then y (and z) (m); d >= 2.
    in_layer
        Shape (n,), True for the cells of the channel layer.
    spacing
        Distance between neighbouring channels (m), > ``width``.
    width
        Channel width (m), > 0.

    Returns
    -------
    numpy.ndarray
        Shape (n,), bool.

    Raises
    ------
    ValueError
        Bad shapes, 1D points, or not ``spacing > width > 0``.
    """
    p, mask = _checked(points, in_layer)
    if p.shape[1] < 2:
        raise ValueError("channels need lateral coordinates (2D or 3D points)")
    if not (np.isfinite(spacing) and np.isfinite(width) and spacing > width > 0):
        raise ValueError(f"need spacing > width > 0, got spacing {spacing!r}, width {width!r}")
    half = 0.5 * width * (1.0 + 1e-9)
    lateral = p[:, 1:]
    # distance to the nearest line at spacing/2 + k*spacing
    distance = np.abs(np.mod(lateral, spacing) - 0.5 * spacing)
    return np.asarray(mask & np.all(distance <= half, axis=1), dtype=bool)
