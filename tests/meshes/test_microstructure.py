"""Voronoi grains, random orientations and channel masks on cell centres."""

from __future__ import annotations

import numpy as np
import pytest

from cosinter.meshes.microstructure import channel_mask, random_rotations, voronoi_grains
from cosinter.meshes.stack import StackGeometry

NM = 1e-9


def grid(nx: int, ny: int, h: float = 1 * NM) -> np.ndarray:
    """Cell centres of an nx x ny grid of cells of size h, x fastest."""
    x = (np.arange(nx) + 0.5) * h
    y = (np.arange(ny) + 0.5) * h
    return np.column_stack([np.tile(x, ny), np.repeat(y, nx)])


def runs(labels: np.ndarray) -> list[int]:
    """Labels of the maximal runs of equal values along a line, in order."""
    return [int(v) for k, v in enumerate(labels) if k == 0 or v != labels[k - 1]]


def test_cell_centres_follow_the_grid_order() -> None:
    g = StackGeometry((3e-9, 2e-9), 1e-9, dimension=3, width=2e-9, lateral_cell_size=1e-9)
    c = g.cell_centres
    assert c.shape == (g.n_cells, 3)
    assert np.array_equal(c[:, 0], g.cell_x)
    # x fastest, then y, then z
    # atol 0: numpy's default atol (1e-8) would accept any nm coordinate
    assert np.allclose(c[:5, 1], 0.5e-9, atol=0) and np.allclose(c[5:10, 1], 1.5e-9, atol=0)
    assert np.allclose(c[:10, 2], 0.5e-9, atol=0) and np.allclose(c[10:, 2], 1.5e-9, atol=0)
    assert StackGeometry((3e-9,), 1e-9).cell_centres.shape == (3, 1)


def test_grains_are_reproducible_with_a_seed() -> None:
    points = grid(40, 40)
    layer = points[:, 0] < 20 * NM
    a = voronoi_grains(points, layer, 12, seed=7, lateral_period=40 * NM)
    b = voronoi_grains(points, layer, 12, seed=7, lateral_period=40 * NM)
    c = voronoi_grains(points, layer, 12, seed=8, lateral_period=40 * NM)
    assert np.array_equal(a, b)
    assert not np.array_equal(a, c)
    assert a.dtype == np.int64
    # only the layer's cells belong to grains
    assert np.all(a[~layer] == -1) and np.all(a[layer] >= 0)


def test_every_grain_has_cells_on_a_fine_mesh() -> None:
    points = grid(200, 200, 0.1 * NM)
    layer = points[:, 0] < 10 * NM
    for seed in range(5):
        grains = voronoi_grains(points, layer, 20, seed=seed)
        assert set(np.unique(grains[layer])) == set(range(20))
        # each cell belongs to the nearest seed: grains are convex, so a grain's
        # centroid lies near its own cells
        for k in range(20):
            cells = points[grains == k]
            centroid = cells.mean(axis=0)
            nearest = grains[np.argmin(np.linalg.norm(points - centroid, axis=1))]
            assert nearest == k


def test_grains_wrap_around_periodic_lateral_boundaries() -> None:
    """On a line along y, periodic grains are arcs of a circle: one spans y = 0 and width."""
    width = 20 * NM
    points = grid(1, 200, 0.1 * NM)
    layer = np.ones(len(points), dtype=bool)
    wrapped = 0
    for seed in range(20):
        bounded = voronoi_grains(points, layer, 4, seed=seed)
        # without periodicity every grain is one interval along y, so the first and
        # last cells never share a grain
        assert len(runs(bounded)) == len(set(bounded.tolist())) > 1
        assert bounded[0] != bounded[-1]
        periodic = voronoi_grains(points, layer, 4, seed=seed, lateral_period=width)
        labels = runs(periodic)
        if labels[0] == labels[-1]:
            # the cell at y = 0.05 nm belongs to the grain of the cell at
            # y = width - 0.05 nm: one arc across the boundary
            wrapped += 1
            assert len(labels) - 1 == len(set(labels))
        else:  # a grain boundary falls exactly at y = 0
            assert len(labels) == len(set(labels))
    # measured: all 20 seeds wrap (a boundary would have to fall in the 0.1 nm gap)
    assert wrapped >= 18, wrapped


def test_grains_need_cells_and_a_count() -> None:
    points = grid(4, 4)
    with pytest.raises(ValueError, match="no cells"):
        voronoi_grains(points, np.zeros(16, dtype=bool), 3, seed=0)
    with pytest.raises(ValueError, match="at least 1"):
        voronoi_grains(points, np.ones(16, dtype=bool), 0, seed=0)


def test_random_rotations_are_proper_and_seeded() -> None:
    r = random_rotations(50, seed=3)
    assert r.shape == (50, 3, 3)
    assert np.allclose(np.einsum("nji,njk->nik", r, r), np.eye(3), atol=1e-12)
    assert np.allclose(np.linalg.det(r), 1.0, atol=1e-12)
    assert np.array_equal(r, random_rotations(50, seed=3))
    assert not np.allclose(r, random_rotations(50, seed=4))
    # uniform on SO(3): the c axes' x components are uniform on [-1, 1] (mean 0, var 1/3)
    cz = random_rotations(4000, seed=0)[:, 0, 2]
    assert abs(cz.mean()) < 0.05 and abs(cz.var() - 1 / 3) < 0.03


def test_channels_sit_on_their_lines_with_their_width() -> None:
    h = 0.1 * NM
    points = grid(50, 400, h)  # 5 nm x 40 nm
    layer = points[:, 0] < 3 * NM
    mask = channel_mask(points, layer, spacing=10 * NM, width=2 * NM)
    assert not mask[~layer].any()
    column = mask.reshape(400, 50)[:, 0]  # along y at the first x
    y = points.reshape(400, 50, 2)[:, 0, 1]
    starts = np.flatnonzero(np.diff(column.astype(int)) == 1) + 1
    ends = np.flatnonzero(np.diff(column.astype(int)) == -1) + 1
    assert len(starts) == len(ends) == 4
    for line, a, b in zip([5, 15, 25, 35], starts, ends, strict=True):
        assert np.mean(y[a:b]) == pytest.approx(line * NM, rel=1e-9)
        assert (b - a) * h == pytest.approx(2 * NM)
    # every x column of the layer is in the channels alike; outside the layer none
    assert np.array_equal(mask.reshape(400, 50)[:, :30].all(axis=1), column)
    # a line on a cell face takes the cells on both sides
    coarse = grid(3, 20)
    on_face = channel_mask(coarse, np.ones(60, dtype=bool), spacing=20 * NM, width=1 * NM)
    assert sorted(set(np.round(coarse[on_face, 1] / NM, 6))) == [9.5, 10.5]


def test_channels_are_lines_in_3d() -> None:
    h = 1 * NM
    x, y, z = np.meshgrid(*(np.arange(n) * h + h / 2 for n in (2, 10, 10)), indexing="ij")
    points = np.column_stack([a.ravel(order="F") for a in (x, y, z)])
    mask = channel_mask(points, np.ones(len(points), dtype=bool), 5 * NM, 1 * NM)
    lines = {(round(p[1] / NM, 6), round(p[2] / NM, 6)) for p in points[mask]}
    assert lines == {(2.5, 2.5), (2.5, 7.5), (7.5, 2.5), (7.5, 7.5)}
    assert mask.sum() == 2 * 4


def test_channels_need_spacing_above_width() -> None:
    points = grid(2, 10)
    with pytest.raises(ValueError, match="spacing > width > 0"):
        channel_mask(points, np.ones(20, dtype=bool), 1 * NM, 1 * NM)
    with pytest.raises(ValueError, match="lateral"):
        channel_mask(points[:, :1], np.ones(20, dtype=bool), 5 * NM, 1 * NM)
