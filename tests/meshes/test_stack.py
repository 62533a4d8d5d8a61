"""StackGeometry along x: uniform layers and geometric grading toward internal interfaces."""

from __future__ import annotations

import dataclasses
import itertools
import math

import numpy as np
import pytest
from numpy.typing import NDArray

from cosinter.meshes.stack import StackGeometry

NM = 1e-9
RATIO_SLACK = 1 + 1e-9


def reference_uniform_dx(thicknesses: tuple[float, ...], cell_size: float) -> NDArray[np.float64]:
    """The pre-grading x discretisation, copied verbatim, to pin it bit for bit."""
    cells = tuple(max(1, math.ceil(t / cell_size - 1e-9)) for t in thicknesses)
    return np.concatenate([np.full(n, t / n) for t, n in zip(thicknesses, cells, strict=True)])


def layer_slices(geometry: StackGeometry) -> list[slice]:
    bounds = np.concatenate([[0], np.cumsum(geometry.cells_per_layer)])
    return [slice(int(a), int(b)) for a, b in itertools.pairwise(bounds)]


def couple() -> StackGeometry:
    """100 nm + 100 nm at 1 nm, graded to 0.05 nm over 2 nm at growth 1.2."""
    return StackGeometry((100 * NM, 100 * NM), cell_size=1 * NM).with_refinement(
        0.05 * NM, 2 * NM, 1.2
    )


def random_graded(seed: int) -> StackGeometry:
    rng = np.random.default_rng(seed)
    n_layers = int(rng.integers(2, 6))
    cell = float(rng.uniform(0.2, 2.0)) * NM
    thicknesses = tuple(float(v) * NM for v in rng.uniform(0.3, 150.0, n_layers))
    fine = cell * float(rng.uniform(0.02, 1.0))
    width = float(rng.uniform(0.1, 10.0)) * NM
    growth = float(rng.uniform(1.01, 2.0))
    return StackGeometry(thicknesses, cell_size=cell).with_refinement(fine, width, growth)


GRADED = [couple()] + [random_graded(seed) for seed in range(40)]


# ---------------------------------------------------------------------- uniform (pinned)
@pytest.mark.parametrize(
    ("thickness", "cell_size", "cells"),
    [
        (100 * NM, 0.5 * NM, 200),
        (100 * NM, 1 * NM, 100),
        (100 * NM, 3 * NM, 34),
        (1 * NM, 5 * NM, 1),
    ],
)
def test_uniform_cell_counts(thickness: float, cell_size: float, cells: int) -> None:
    g = StackGeometry((thickness,), cell_size=cell_size)
    assert g.cells_per_layer == (cells,)
    assert g.nx == cells
    np.testing.assert_array_equal(g.dx, np.full(cells, thickness / cells))
    assert g.min_dx == thickness / cells


@pytest.mark.parametrize(
    ("thicknesses", "cell_size"),
    [((100 * NM, 100 * NM), 0.5 * NM), ((10e-6, 7 * NM, 3e-6), 20 * NM), ((1e-6,), 1e-9 / 3)],
)
def test_unchanged_without_refine(thicknesses: tuple[float, ...], cell_size: float) -> None:
    g = StackGeometry(thicknesses, cell_size=cell_size)
    assert g.refine is None
    np.testing.assert_array_equal(g.dx, reference_uniform_dx(thicknesses, cell_size))
    faces = np.concatenate([[0.0], np.cumsum(reference_uniform_dx(thicknesses, cell_size))])
    faces[-1] = sum(thicknesses)
    np.testing.assert_array_equal(g.x_faces, faces)
    # a graded round trip comes back identical
    back = g.with_refinement(cell_size / 10, 1 * NM).without_refinement()
    assert back == g
    np.testing.assert_array_equal(back.dx, g.dx)


def test_dx_is_a_fresh_array() -> None:
    g = couple()
    dx = g.dx
    dx *= 2.0
    assert g.dx.sum() == pytest.approx(200 * NM, rel=1e-12)


# ---------------------------------------------------------------------- graded invariants
@pytest.mark.parametrize("g", GRADED)
def test_layers_sum_to_thicknesses(g: StackGeometry) -> None:
    dx = g.dx
    assert dx.shape == (g.nx,)
    assert np.all(dx > 0)
    for sl, t in zip(layer_slices(g), g.thicknesses, strict=True):
        assert dx[sl].sum() == pytest.approx(t, rel=1e-12)
    assert g.min_dx == dx.min()


@pytest.mark.parametrize("g", GRADED)
def test_interfaces_fall_on_faces(g: StackGeometry) -> None:
    faces = g.x_faces
    assert faces.shape == (g.nx + 1,)
    assert faces[0] == 0.0 and faces[-1] == g.length
    assert np.all(np.diff(faces) > 0)
    at = np.cumsum(g.cells_per_layer)[:-1]
    np.testing.assert_allclose(faces[at], g.interfaces, rtol=1e-12, atol=0)


@pytest.mark.parametrize("g", GRADED)
def test_neighbour_ratio_bounded_inside_layers(g: StackGeometry) -> None:
    assert g.refine is not None
    growth = g.refine[2]
    dx = g.dx
    for sl in layer_slices(g):
        w = dx[sl]
        ratios = np.concatenate([w[1:] / w[:-1], w[:-1] / w[1:]])
        assert ratios.size == 0 or ratios.max() <= growth * RATIO_SLACK


@pytest.mark.parametrize("g", GRADED)
def test_no_cell_exceeds_the_target_profile(g: StackGeometry) -> None:
    """h(d) = fine for d < width, then + ln(growth) per metre, capped at cell_size."""
    assert g.refine is not None
    fine, width, growth = g.refine
    faces = g.x_faces
    interfaces = g.interfaces
    dx = g.dx
    for i, sl in enumerate(layer_slices(g)):
        bounds = [interfaces[j] for j in (i - 1, i) if 0 <= j < len(interfaces)]
        # distance from the cell's nearest face to the nearest bounding interface
        lo, hi = faces[sl.start : sl.stop], faces[sl.start + 1 : sl.stop + 1]
        d = np.min([np.minimum(abs(lo - b), abs(hi - b)) for b in bounds], axis=0)
        target = np.minimum(g.cell_size, fine + math.log(growth) * np.maximum(0.0, d - width))
        # the cell is no larger than the largest target value it covers
        assert np.all(dx[sl] <= (target + math.log(growth) * dx[sl]) * RATIO_SLACK)
        assert np.all(dx[sl] <= g.cell_size * RATIO_SLACK)


def test_fine_on_both_sides_of_each_interface() -> None:
    g = StackGeometry((100 * NM, 40 * NM, 100 * NM), cell_size=1 * NM).with_refinement(
        0.05 * NM, 2 * NM, 1.2
    )
    dx = g.dx
    for at in np.cumsum(g.cells_per_layer)[:-1]:
        assert dx[at - 1] == pytest.approx(0.05 * NM, rel=0.03)
        assert dx[at] == pytest.approx(0.05 * NM, rel=0.03)
        assert dx[at - 1] <= 0.05 * NM * RATIO_SLACK
        assert dx[at] <= 0.05 * NM * RATIO_SLACK
    # the fine zone reaches at least `width` into each layer on each side
    x = g.cell_x
    for b in g.interfaces:
        near = np.abs(x - b) < 2 * NM - 0.05 * NM
        assert near.sum() >= 2 * 2 * NM / (0.05 * NM) - 2
        assert np.all(dx[near] <= 0.05 * NM * RATIO_SLACK)


def test_stack_ends_not_refined() -> None:
    g = StackGeometry((100 * NM, 100 * NM, 100 * NM), cell_size=1 * NM).with_refinement(
        0.05 * NM, 2 * NM, 1.2
    )
    dx = g.dx
    assert dx[0] == pytest.approx(1 * NM, rel=0.02)
    assert dx[-1] == pytest.approx(1 * NM, rel=0.02)
    assert dx[0] <= 1 * NM and dx[-1] <= 1 * NM
    # the middle of a thick middle layer is coarse too
    mid = g.cells_per_layer[0] + g.cells_per_layer[1] // 2
    assert dx[mid] == pytest.approx(1 * NM, rel=0.02)


def test_single_layer_is_not_refined() -> None:
    plain = StackGeometry((100 * NM,), cell_size=0.5 * NM)
    graded = plain.with_refinement(0.01 * NM, 5 * NM)
    np.testing.assert_array_equal(graded.dx, plain.dx)


def test_thin_middle_layer_fully_fine() -> None:
    fine, width = 0.05 * NM, 2 * NM
    g = StackGeometry((100 * NM, 3 * NM, 100 * NM), cell_size=1 * NM).with_refinement(
        fine, width, 1.2
    )
    middle = g.dx[layer_slices(g)[1]]
    assert len(middle) == 60
    np.testing.assert_allclose(middle, fine, rtol=1e-9)
    assert g.min_dx == pytest.approx(fine, rel=0.01)


def test_middle_layer_graded_at_both_ends_and_symmetric() -> None:
    g = StackGeometry((50 * NM, 30 * NM, 50 * NM), cell_size=1 * NM).with_refinement(
        0.1 * NM, 1 * NM, 1.3
    )
    middle = g.dx[layer_slices(g)[1]]
    np.testing.assert_allclose(middle, middle[::-1], rtol=1e-9)
    assert middle[0] == pytest.approx(0.1 * NM, rel=0.03)
    assert middle.max() == pytest.approx(1 * NM, rel=0.03)


def test_fine_equal_to_cell_size_is_uniform_per_layer() -> None:
    plain = StackGeometry((100 * NM, 37 * NM), cell_size=0.5 * NM)
    graded = plain.with_refinement(0.5 * NM, 3 * NM, 1.5)
    assert graded.cells_per_layer == plain.cells_per_layer
    np.testing.assert_allclose(graded.dx, plain.dx, rtol=1e-12)


def test_far_fewer_cells_than_uniform_fine() -> None:
    g = couple()
    uniform_fine = StackGeometry(g.thicknesses, cell_size=0.05 * NM)
    assert uniform_fine.nx == 4000
    assert g.nx < 0.25 * uniform_fine.nx
    assert g.nx > StackGeometry(g.thicknesses, cell_size=1 * NM).nx


def test_deterministic() -> None:
    a, b = random_graded(7), random_graded(7)
    assert a == b and a is not b
    np.testing.assert_array_equal(a.dx, b.dx)


# ---------------------------------------------------------------------- consistency
@pytest.mark.parametrize("dimension", [1, 2, 3])
def test_derived_arrays_consistent(dimension: int) -> None:
    g = StackGeometry(
        (20 * NM, 5 * NM, 20 * NM),
        cell_size=1 * NM,
        dimension=dimension,
        width=4 * NM,
        lateral_cell_size=2 * NM,
    ).with_refinement(0.1 * NM, 0.5 * NM, 1.25)
    n_cols = g.n_cells // g.nx
    assert g.nx == sum(g.cells_per_layer) == len(g.dx)
    assert g.shape[0] == g.nx
    np.testing.assert_allclose(g.x_faces[1:] - g.x_faces[:-1], g.dx, rtol=1e-9)
    cols = g.layer_of_column
    assert len(cols) == g.nx
    assert [int((cols == i).sum()) for i in range(3)] == list(g.cells_per_layer)
    assert np.all(np.diff(cols) >= 0)
    assert np.array_equal(g.cell_layer, np.tile(cols, n_cols))
    centres = 0.5 * (g.x_faces[1:] + g.x_faces[:-1])
    np.testing.assert_array_equal(g.cell_x, np.tile(centres, n_cols))
    # every centre lies inside the layer it is labelled with
    starts = np.concatenate([[0.0], np.cumsum(g.thicknesses)])
    assert np.all(starts[cols] < centres) and np.all(centres < starts[cols + 1])
    volumes = g.cell_volumes
    assert volumes.shape == (g.n_cells,)
    assert volumes.sum() == pytest.approx(g.length * g.lateral_area, rel=1e-12)


# ---------------------------------------------------------------------- API and validation
def test_with_refinement_returns_a_new_object() -> None:
    plain = StackGeometry((100 * NM, 100 * NM), cell_size=1 * NM)
    before = plain.dx
    graded = plain.with_refinement(0.05 * NM, 2 * NM)
    assert graded is not plain
    assert plain.refine is None
    assert graded.refine == (0.05 * NM, 2 * NM, 1.2)
    assert graded.nx > plain.nx
    np.testing.assert_array_equal(plain.dx, before)
    off = graded.without_refinement()
    assert off is not graded and off.refine is None and graded.refine is not None
    assert off == plain


def test_refine_as_field_and_with_copies() -> None:
    g = StackGeometry((10 * NM, 10 * NM), cell_size=1 * NM, refine=(0.1 * NM, 1 * NM, 1.5))
    assert g == StackGeometry((10 * NM, 10 * NM), cell_size=1 * NM).with_refinement(
        0.1 * NM, 1 * NM, 1.5
    )
    assert isinstance(hash(g), int)
    thicker = g.with_thicknesses((20 * NM, 10 * NM))
    assert thicker.refine == g.refine
    assert thicker.dx.sum() == pytest.approx(30 * NM, rel=1e-12)
    assert dataclasses.replace(g, cell_size=2 * NM).nx < g.nx


@pytest.mark.parametrize(
    ("refine", "match"),
    [
        ((0.0, 1 * NM, 1.2), "fine_cell_size"),
        ((-0.1 * NM, 1 * NM, 1.2), "fine_cell_size"),
        ((2 * NM, 1 * NM, 1.2), "fine_cell_size"),
        ((math.nan, 1 * NM, 1.2), "fine_cell_size"),
        ((0.1 * NM, 0.0, 1.2), "width"),
        ((0.1 * NM, -1 * NM, 1.2), "width"),
        ((0.1 * NM, 1 * NM, 1.0), "growth"),
        ((0.1 * NM, 1 * NM, 0.9), "growth"),
        ((0.1 * NM, 1 * NM, 2.5), "growth"),
        ((0.1 * NM, 1 * NM, math.nan), "growth"),
    ],
)
def test_validation(refine: tuple[float, float, float], match: str) -> None:
    plain = StackGeometry((10 * NM, 10 * NM), cell_size=1 * NM)
    with pytest.raises(ValueError, match=match):
        plain.with_refinement(*refine)
    with pytest.raises(ValueError, match=match):
        StackGeometry((10 * NM, 10 * NM), cell_size=1 * NM, refine=refine)


def test_validation_wrong_length_and_cell_size_change() -> None:
    with pytest.raises(ValueError, match="refine must be"):
        StackGeometry((10 * NM,), cell_size=1 * NM, refine=(0.1 * NM, 1 * NM))  # type: ignore[arg-type]
    g = StackGeometry((10 * NM, 10 * NM), cell_size=1 * NM).with_refinement(0.5 * NM, 1 * NM)
    with pytest.raises(ValueError, match="fine_cell_size"):
        g.with_cell_size(0.1 * NM)


def test_growth_two_is_allowed() -> None:
    g = StackGeometry((10 * NM, 10 * NM), cell_size=1 * NM).with_refinement(
        0.01 * NM, 0.1 * NM, 2.0
    )
    dx = g.dx
    assert np.all(dx[1:] / dx[:-1] <= 2.0 * RATIO_SLACK)


def test_width_below_fine_size_still_fine_at_interface() -> None:
    """A fine zone narrower than one fine cell is widened to one fine cell."""
    g = StackGeometry((100 * NM, 100 * NM), cell_size=1 * NM).with_refinement(
        0.3 * NM, 0.01 * NM, 1.5
    )
    at = g.cells_per_layer[0]
    assert g.dx[at - 1] <= 0.3 * NM * RATIO_SLACK
    assert g.dx[at] <= 0.3 * NM * RATIO_SLACK
    assert g.dx[at] == pytest.approx(0.3 * NM, rel=0.03)
