"""FiPy meshes and face coefficients built from the numpy models.

This is the FiPy room: camelCase FiPy objects stay inside ``cosinter.solver``.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import fipy
import numpy as np
import scipy.sparse as sparse
from numpy.typing import NDArray

from cosinter.meshes.stack import StackGeometry

FloatArray = NDArray[np.float64]


def build_mesh(geometry: StackGeometry) -> fipy.meshes.mesh.Mesh:
    """A FiPy grid for the stack (x fastest; periodic laterally if asked).

    Always serial (FiPy's ``serialComm``), also under ``mpirun``: cosinter's per-cell
    arrays are global, and the PETSc back end distributes the LU, not the mesh
    (:mod:`cosinter.solver.distributed`).
    """
    dx = geometry.dx
    comm = fipy.tools.serialComm
    if geometry.dimension == 1:
        return fipy.Grid1D(dx=dx, communicator=comm)
    n = geometry.n_lateral
    dl = geometry.d_lateral
    if geometry.dimension == 2:
        if geometry.periodic:
            return fipy.PeriodicGrid2DTopBottom(
                dx=dx, dy=[dl] * n, nx=len(dx), ny=n, communicator=comm
            )
        return fipy.Grid2D(dx=dx, dy=[dl] * n, communicator=comm)
    if geometry.periodic:
        return fipy.PeriodicGrid3DTopBottomFrontBack(
            dx=dx, dy=[dl] * n, dz=[dl] * n, nx=len(dx), ny=n, nz=n, communicator=comm
        )
    return fipy.Grid3D(dx=dx, dy=[dl] * n, dz=[dl] * n, communicator=comm)


def container_mesh(n_cells: int) -> fipy.meshes.mesh.Mesh:
    """A FiPy mesh that only holds ``n_cells`` cell values (a uniform 1D grid).

    The direct assembly reads the geometry from :class:`FaceGeometry` and
    :class:`~cosinter.solver.assembly.FaceMesh`; its FiPy variables are containers
    of values (old values, ``updateOld``). A uniform grid computes no geometry
    arrays: ~30 MiB at 10^6 cells where the stack's own 2D grid keeps ~1 GiB. Its
    spacing is NaN, so that no number can come from its geometry.
    """
    # NaN spacing: a geometry read by mistake (a gradient, a face value, a new FiPy
    # term on the direct path) gives NaN, not numbers of the wrong grid
    return fipy.Grid1D(nx=n_cells, dx=np.nan, communicator=fipy.tools.serialComm)


@dataclass(frozen=True)
class FaceGeometry:
    """Per-face index data for turning cell quantities into face coefficients.

    Attributes
    ----------
    cell1, cell2
        The two cells of each face (``cell2 == cell1`` on the exterior).
    interior
        True for faces between two cells (including periodic ones).
    axis
        The lab axis each face is normal to (0 = x).
    d1, d2
        Distances from each cell centre to the face, along the normal (m).
    """

    cell1: NDArray[np.int64]
    cell2: NDArray[np.int64]
    interior: NDArray[np.bool_]
    axis: NDArray[np.int64]
    d1: FloatArray
    d2: FloatArray

    @classmethod
    def of(cls, mesh: fipy.meshes.mesh.Mesh, geometry: StackGeometry) -> FaceGeometry:
        ids = mesh.faceCellIDs
        cell1 = np.asarray(ids[0].filled(-1), dtype=np.int64)
        mask = np.ma.getmaskarray(ids[1])
        cell2 = np.where(mask, cell1, np.asarray(ids[1].filled(0), dtype=np.int64))
        normals = np.asarray(mesh.faceNormals)
        axis = np.argmax(np.abs(normals), axis=0)
        widths = np.empty((geometry.dimension, geometry.n_cells))
        widths[0] = geometry.cell_dx
        widths[1:] = geometry.d_lateral
        d1 = 0.5 * widths[axis, cell1]
        d2 = np.where(mask, d1, 0.5 * widths[axis, cell2])
        return cls(
            cell1=cell1,
            cell2=cell2,
            interior=~mask,
            axis=axis,
            d1=d1,
            d2=d2,
        )


def face_tensor(faces: FaceGeometry, cell_tensors: FloatArray, dim: int) -> FloatArray:
    r"""Face diffusion coefficients from per-cell lab tensors.

    The normal component is the distance-weighted harmonic mean, which makes the
    flux continuous across a material jump; the other components are arithmetic
    means.

    .. math::

       D_{nn,f} = \frac{d_1 + d_2}{d_1/D_{nn,1} + d_2/D_{nn,2}}

    Returns
    -------
    ndarray
        (n_faces,) in 1D, else (dim, dim, n_faces).
    """
    t1 = cell_tensors[faces.cell1][:, :dim, :dim]
    t2 = cell_tensors[faces.cell2][:, :dim, :dim]
    idx = np.arange(len(faces.axis))
    n1 = t1[idx, faces.axis, faces.axis]
    n2 = t2[idx, faces.axis, faces.axis]
    with np.errstate(divide="ignore", invalid="ignore"):
        harmonic = np.where(
            (n1 > 0) & (n2 > 0),
            (faces.d1 + faces.d2)
            / (faces.d1 / np.where(n1 > 0, n1, 1) + faces.d2 / np.where(n2 > 0, n2, 1)),
            0.0,
        )
    if dim == 1:
        return np.asarray(harmonic)
    mean = 0.5 * (t1 + t2)
    mean[idx, faces.axis, faces.axis] = harmonic
    return np.ascontiguousarray(np.transpose(mean, (1, 2, 0)))


def normal_component(faces: FaceGeometry, coeff: FloatArray, dim: int) -> FloatArray:
    """n . D . n on every face from :func:`face_tensor`'s output."""
    if dim == 1:
        return coeff
    idx = np.arange(len(faces.axis))
    return np.asarray(coeff[faces.axis, faces.axis, idx])


def monotonized_central(a: FloatArray, b: FloatArray) -> FloatArray:
    r"""The monotonized-central slope limiter of two one-sided differences.

    .. math::

       L(a, b) = \begin{cases}
           \operatorname{sign}(a)\min\left(2|a|, 2|b|, |a+b|/2\right) & ab > 0\\
           0 & \text{otherwise}
       \end{cases}
    """
    small = np.minimum(np.minimum(2.0 * np.abs(a), 2.0 * np.abs(b)), 0.5 * np.abs(a + b))
    return np.where(a * b > 0.0, np.sign(a) * small, 0.0)


#: Per axis, the weights of the inner (cell slope) and outer (face) limiters.
LimiterChoice = list[tuple[FloatArray, FloatArray, FloatArray, FloatArray]]


#: ``_mc_weights``' weights by branch: opposite signs or a zero, (a+b)/2, 2a, 2b.
_MC_WA = np.array([0.0, 0.5, 2.0, 0.0])
_MC_WB = np.array([0.0, 0.5, 0.0, 2.0])


def _mc_weights(a: FloatArray, b: FloatArray) -> tuple[FloatArray, FloatArray]:
    """The weights ``(wa, wb)`` with ``monotonized_central(a, b) == wa a + wb b``."""
    twice_b = 2.0 * np.abs(b)
    half_sum = 0.5 * np.abs(a + b)
    first = 2.0 * np.abs(a) <= np.minimum(twice_b, half_sum)
    second = ~first & (twice_b <= half_sum)
    same = a * b > 0.0
    # one table lookup per weight: about twice as fast as nested np.where (hot path)
    branch = (same * (1 + first.view(np.uint8) + 2 * second.view(np.uint8))).astype(np.intp)
    return _MC_WA[branch], _MC_WB[branch]


def _rows(weights: FloatArray, matrix: sparse.csr_matrix, rows: NDArray[np.int64]) -> Any:
    """``diag(weights) @ matrix[rows]``."""
    return sparse.diags(weights) @ matrix[rows]


def _differences(
    sign: FloatArray,
    faces: FaceGeometry,
    closed: NDArray[np.bool_],
    fixed_ids: NDArray[np.int64],
    n_cells: int,
) -> tuple[sparse.csr_matrix, FloatArray]:
    r"""The difference across every face along its own axis, :math:`g = G c + g_0`.

    Parameters
    ----------
    sign
        ``(n_faces,)`` :attr:`CrossStencil.sign`.
    faces
        The face geometry.
    closed
        ``(n_faces,)`` faces with no difference (zero rows of ``G``).
    fixed_ids
        Exterior faces with a fixed concentration: the one-sided difference to it.
    n_cells
        Number of cells.

    Returns
    -------
    G, at
        ``(n_faces, n_cells)`` sparse (m^-1), and ``(len(fixed_ids),)``: on those
        faces :math:`g_0` is ``at`` times the fixed concentration.
    """
    n_faces = len(faces.axis)
    open_ = np.flatnonzero(~closed)
    scale = sign[open_] / (faces.d1[open_] + faces.d2[open_])
    G = sparse.csr_matrix(
        (
            np.concatenate([scale, -scale]),
            (np.tile(open_, 2), np.concatenate([faces.cell2[open_], faces.cell1[open_]])),
        ),
        shape=(n_faces, n_cells),
    )
    at = sign[fixed_ids] / faces.d1[fixed_ids]
    if len(fixed_ids):
        G = G + sparse.csr_matrix(
            (-at, (fixed_ids, faces.cell1[fixed_ids])), shape=(n_faces, n_cells)
        )
    return G, at


@dataclass(frozen=True)
class _AxisPattern:
    r"""The fixed structure of the slopes along one transverse axis ``t``.

    The cell slope matrix is :math:`S = \mathrm{diag}(w_a) G_{\mathrm{minus}} +
    \mathrm{diag}(w_b) G_{\mathrm{plus}}`; its entries (the union of both
    patterns, sorted by cell then column) are ``wa[cell] * g_minus + wb[cell] * g_plus``.

    Attributes
    ----------
    cell, column
        ``(n_slope,)`` row (cell) and column of every entry of :math:`S`.
    g_minus, g_plus
        ``(n_slope,)`` the entry of ``G[minus[t]]`` / ``G[plus[t]]`` there (0 if none).
    across
        Open faces not normal to ``t``: the faces with a cross flux along ``t``.
    cell1, cell2, sign
        Their cells and :attr:`CrossStencil.sign`.
    tensor_index
        Flat index of ``tensor[normal, t, across]`` in a C-ordered
        ``(dim, dim, n_faces)`` tensor.
    """

    cell: NDArray[np.signedinteger[Any]]
    column: NDArray[np.signedinteger[Any]]
    g_minus: FloatArray
    g_plus: FloatArray
    across: NDArray[np.signedinteger[Any]]
    cell1: NDArray[np.signedinteger[Any]]
    cell2: NDArray[np.signedinteger[Any]]
    sign: FloatArray
    tensor_index: NDArray[np.signedinteger[Any]]


@dataclass(frozen=True)
class _CrossPattern:
    r"""What :meth:`CrossStencil.linearised` can build once per closed mask and fixed set.

    Every entry of :math:`T` is a sum of terms ``(u coeff)[face, side] * S_t[cell, col]``
    (outer limiter weight times tensor, times a cell slope entry). The first term
    of every entry comes first, in the order of the entries of ``T`` (face, then
    column), then the second terms of the entries that have one (3D: the centre
    cells get one term per transverse axis), and so on; so a call fills ``T.data``
    with two gathers, a product and a few scattered additions. The CSR index
    arrays are built here only (a call copies them and drops the entries that are
    zero at its weights).

    Attributes
    ----------
    faces
        The geometry it was built for (kept so that the ``id`` in the cache key
        cannot be reused by another object while this pattern lives).
    G, fixed_ids, fixed_at
        :func:`_differences`; ``fixed_ids`` in the order of the ``fixed`` keys.
    axes
        Per transverse axis ``t``.
    term_side
        Index of every term into the per-call concatenation over ``t`` of
        ``[ua coeff, ub coeff]`` per across face (``2 k + side``).
    term_slope
        Index of every term into the concatenation over ``t`` of the slope entries.
    extra
        Per further term ``j = 1, 2, ...``: the entries with more than ``j`` terms
        and the slice of the terms that are their ``j``-th (added in the order of
        ``t``, as the reference sums).
    indices, indptr
        The CSR pattern of ``T``.
    """

    faces: FaceGeometry
    G: sparse.csr_matrix
    fixed_ids: NDArray[np.int64]
    fixed_at: FloatArray
    axes: list[_AxisPattern]
    term_side: NDArray[np.signedinteger[Any]]
    term_slope: NDArray[np.signedinteger[Any]]
    extra: list[tuple[NDArray[np.signedinteger[Any]], slice]]
    indices: NDArray[np.signedinteger[Any]]
    indptr: NDArray[np.signedinteger[Any]]


def _first_of_runs(keys: NDArray[np.int64]) -> NDArray[np.bool_]:
    """True at the first of every run of equal values of a sorted array.

    (``np.unique`` hashes in NumPy 2.x, several times slower on sorted keys.)
    """
    first = np.empty(len(keys), dtype=bool)
    first[:1] = True
    np.not_equal(keys[1:], keys[:-1], out=first[1:])
    return first


#: Patterns kept per :class:`CrossStencil` (one per species' closed mask and fixed
#: set in practice; the bound only stops a caller with ever new masks from piling up).
_MAX_PATTERNS = 16


@dataclass(frozen=True)
class CrossStencil:
    r"""Neighbour faces of every cell along every axis, for the tensor's cross terms.

    The off-diagonal part of :math:`-\mathbf{D}\nabla c` on a face normal to axis
    :math:`a` is :math:`-\sum_{t\ne a} D_{at}\,\partial_t c`. The transverse
    derivative on the face is built as in Sharma & Hammett (J. Comput. Phys. 227,
    123, 2007, "limited symmetric" scheme): the one-sided differences across the
    faces normal to :math:`t` of each of the face's two cells are limited per cell,
    and the two cell slopes are limited again,

    .. math::

       \partial_t c\big|_f = L\bigl(L(\delta^-_{t,1}, \delta^+_{t,1}),
                                   L(\delta^-_{t,2}, \delta^+_{t,2})\bigr),

    so the explicit cross flux vanishes at extrema and cannot dig a new minimum
    (FiPy's own treatment, harmonic face averages of Gauss cell gradients, puts
    undershoots next to steep fronts: negative Ti in rotated grains).

    Attributes
    ----------
    minus, plus
        ``(dim, n_cells)`` face on the low / high side of each cell along each axis.
    sign
        ``(n_faces,)`` +1 where the face normal points along its axis, -1 otherwise
        (FiPy's normals run from ``cell1`` to ``cell2``, outward on the exterior).
    """

    minus: NDArray[np.int64]
    plus: NDArray[np.int64]
    sign: FloatArray
    divergence: sparse.csr_matrix  # (n_cells, n_faces): net inflow per face flux (m^2)
    # linearised's precomputed structure per (faces, closed mask, fixed faces, dim)
    _patterns: dict[tuple[Any, ...], _CrossPattern] = field(
        default_factory=dict, init=False, compare=False, repr=False
    )

    @classmethod
    def of(cls, mesh: fipy.meshes.mesh.Mesh, faces: FaceGeometry, dim: int) -> CrossStencil:
        normals = np.asarray(mesh.faceNormals)
        index = np.arange(len(faces.axis))
        sign = np.sign(normals[faces.axis, index])
        n_cells = int(mesh.numberOfCells)
        minus = np.full((dim, n_cells), -1, dtype=np.int64)
        plus = np.full((dim, n_cells), -1, dtype=np.int64)
        up = sign > 0
        # exterior faces first: a periodic grid keeps its seam's outer faces too, and
        # the interior (wrapping) face must win
        for group in (~faces.interior, faces.interior):
            a, c1, c2, ids = faces.axis[group], faces.cell1[group], faces.cell2[group], index[group]
            positive = up[group]
            plus[a[positive], c1[positive]] = ids[positive]
            minus[a[~positive], c1[~positive]] = ids[~positive]
            if group is faces.interior:
                minus[a[positive], c2[positive]] = ids[positive]
                plus[a[~positive], c2[~positive]] = ids[~positive]
        if np.any(minus < 0) or np.any(plus < 0):
            raise AssertionError("structured grid expected: a cell lacks a face along an axis")
        # a flux J.n (cell1 -> cell2) times the face area leaves cell1 and enters cell2
        inner = np.flatnonzero(faces.interior)
        area = np.asarray(mesh._faceAreas)[inner]
        divergence = sparse.csr_matrix(
            (
                np.concatenate([-area, area]),
                (np.concatenate([faces.cell1[inner], faces.cell2[inner]]), np.tile(inner, 2)),
            ),
            shape=(n_cells, len(faces.axis)),
        )
        return cls(minus=minus, plus=plus, sign=sign.astype(float), divergence=divergence)

    def linearised(
        self,
        faces: FaceGeometry,
        tensor: FloatArray,
        values: FloatArray,
        closed: NDArray[np.bool_],
        fixed: dict[int, float],
        dim: int,
        frozen: LimiterChoice | None = None,
    ) -> tuple[sparse.csr_matrix, FloatArray, LimiterChoice]:
        r"""The cross flux as :math:`F = T c + t_0`, the limiters frozen at ``values``.

        Every limiter output is one of :math:`2a, 2b, (a+b)/2, 0`, a linear function
        of the differences, so with the choice each limiter makes at ``values`` the
        cross flux is linear (affine with fixed ends) in :math:`c`, and
        :math:`T\,\mathrm{values} + t_0` is exactly :meth:`cross_flux` of
        ``values``. The solver puts :math:`T` in the matrix (implicit) and sweeps
        until the choices settle, instead of iterating an explicit cross flux, which
        converges as slowly as :math:`|D_{xy}|/D_{xx}\to 1` for a strongly
        anisotropic grain turned by 45 degrees.

        :meth:`_linearised_reference` builds the same operator from sparse matrix
        products; here the sparsity pattern of :math:`T` is built once per
        ``(faces, closed, fixed keys, dim)`` and cached on the stencil
        (:class:`_CrossPattern`), and a call only computes the limiter weights and
        ``T.data``. ``faces`` must be the geometry the stencil was built from.

        Parameters
        ----------
        faces, tensor, dim
            As for :meth:`cross_flux`.
        values
            ``(n_cells,)`` the current iterate (mol/m^3).
        closed
            ``(n_faces,)`` faces with no slope and no cross flux: the exterior and
            material interfaces.
        fixed
            Exterior face -> fixed concentration (mol/m^3): a one-sided slope to it.
        frozen
            The limiters' choices to use instead of those at ``values`` (a sweep
            that toggles between two choices settles once they are frozen).

        Returns
        -------
        T, t0, choice
            ``(n_faces, n_cells)`` sparse and ``(n_faces,)``: the face flux
            :math:`\mathbf J\cdot\hat n_f` (mol m^-2 s^-1) is ``T @ c + t0``;
            the limiters' choices it was built with.
        """
        n_faces, n_cells = len(faces.axis), len(values)
        pattern = self._pattern(faces, closed, fixed, n_cells, dim)
        g0 = np.zeros(n_faces)
        if fixed:
            g0[pattern.fixed_ids] = pattern.fixed_at * np.fromiter(
                fixed.values(), dtype=float, count=len(fixed)
            )
        g = pattern.G @ values + g0
        # np.take on 1-D arrays: several times faster than fancy indexing here
        c_ordered = tensor.shape == (dim, dim, n_faces) and tensor.flags.c_contiguous
        flat = tensor.reshape(-1) if c_ordered else None
        t0 = np.zeros(n_faces)
        choice: LimiterChoice = []
        sides, slopes = [], []
        for t, axis in enumerate(pattern.axes):
            if frozen is None:
                wa, wb = _mc_weights(np.take(g, self.minus[t]), np.take(g, self.plus[t]))
            else:
                wa, wb = frozen[t][0], frozen[t][1]
            # the entries of diag(wa) G[minus] + diag(wb) G[plus], rounded as there
            slope = np.take(wa, axis.cell) * axis.g_minus + np.take(wb, axis.cell) * axis.g_plus
            slope0 = wa * g0[self.minus[t]] + wb * g0[self.plus[t]] if fixed else None
            c1, c2 = axis.cell1, axis.cell2
            if frozen is None:
                # slope @ values, summed along each row in column order
                value = np.asarray(
                    np.bincount(axis.cell, slope * np.take(values, axis.column), minlength=n_cells),
                    dtype=np.float64,
                )
                if slope0 is not None:
                    value += slope0
                ua, ub = _mc_weights(np.take(value, c1), np.take(value, c2))
            else:
                ua, ub = frozen[t][2], frozen[t][3]
            choice.append((wa, wb, ua, ub))
            if flat is not None:
                coeff = -np.take(flat, axis.tensor_index) * axis.sign
            else:
                coeff = -tensor[faces.axis[axis.across], t, axis.across] * axis.sign
            sides.append(np.column_stack([ua * coeff, ub * coeff]).ravel())
            slopes.append(slope)
            if slope0 is not None:
                t0[axis.across] += coeff * (ua * slope0[c1] + ub * slope0[c2])
        data = np.take(np.concatenate(sides), pattern.term_side) * np.take(
            np.concatenate(slopes), pattern.term_slope
        )
        n_entries = len(pattern.indices)
        if pattern.extra:
            first = data[:n_entries].copy()
            for entries, terms in pattern.extra:
                first[entries] += data[terms]
            data = first
        # copies: the pruning below (and the caller) may change T's arrays in place
        T = sparse.csr_matrix(
            (data, pattern.indices.copy(), pattern.indptr.copy()), shape=(n_faces, n_cells)
        )
        # about half the entries are zero at a call (a zero weight, or the centre of a
        # (a+b)/2 slope on a uniform grid); dropping them costs less than they would
        # cost the caller's divergence @ T
        T.eliminate_zeros()
        return T, t0, choice

    def _pattern(
        self,
        faces: FaceGeometry,
        closed: NDArray[np.bool_],
        fixed: dict[int, float],
        n_cells: int,
        dim: int,
    ) -> _CrossPattern:
        """The cached :class:`_CrossPattern` of :meth:`linearised` (built on a miss)."""
        mask = np.asarray(closed, dtype=bool)
        key = (id(faces), n_cells, dim, mask.tobytes(), tuple(fixed))
        pattern = self._patterns.get(key)
        if pattern is None:
            if len(self._patterns) >= _MAX_PATTERNS:
                del self._patterns[next(iter(self._patterns))]
            pattern = self._build_pattern(faces, mask, fixed, n_cells, dim)
            self._patterns[key] = pattern
        return pattern

    def _build_pattern(
        self,
        faces: FaceGeometry,
        closed: NDArray[np.bool_],
        fixed: dict[int, float],
        n_cells: int,
        dim: int,
    ) -> _CrossPattern:
        """Build :class:`_CrossPattern` (see there) for one closed mask and fixed set.

        Indices are kept 32-bit where they fit and temporaries are dropped as soon as
        they are used: at 10^6 cells the build held ~1.9 GiB of temporaries, the
        set-up's peak.
        """
        n_faces = len(faces.axis)
        # the largest index kept: tensor_index < dim^2 n_faces, term_side < 2 dim n_faces,
        # term_slope < 4 dim n_cells (a cell's slope has at most 4 entries per axis)
        largest = max(dim * dim * n_faces, 2 * dim * n_faces, 4 * dim * n_cells)
        small = np.int32 if largest < 2**31 else np.int64
        fixed_ids = np.fromiter(fixed, dtype=np.int64, count=len(fixed))
        G, fixed_at = _differences(self.sign, faces, closed, fixed_ids, n_cells)
        G.sum_duplicates()  # canonical: one entry per (face, cell), sorted
        axes: list[_AxisPattern] = []
        keys, term_side, term_slope = [], [], []
        side_offset = slope_offset = 0
        for t in range(dim):
            # the slope entries: union of the patterns of G[minus[t]] and G[plus[t]]
            low, high = G[self.minus[t]].tocoo(), G[self.plus[t]].tocoo()
            key_low = low.row.astype(np.int64) * n_cells + low.col
            key_high = high.row.astype(np.int64) * n_cells + high.col
            union = np.concatenate([key_low, key_high])
            union.sort()
            union = union[_first_of_runs(union)]
            g_minus, g_plus = np.zeros(len(union)), np.zeros(len(union))
            g_minus[np.searchsorted(union, key_low)] = low.data
            g_plus[np.searchsorted(union, key_high)] = high.data
            cell, column = np.divmod(union, n_cells)
            del union
            start = np.searchsorted(cell, np.arange(n_cells + 1))
            across = np.flatnonzero(~closed & (faces.axis != t))
            axes.append(
                _AxisPattern(
                    cell=cell.astype(small),
                    column=column.astype(small),
                    g_minus=g_minus,
                    g_plus=g_plus,
                    across=across.astype(small),
                    cell1=faces.cell1[across].astype(small),
                    cell2=faces.cell2[across].astype(small),
                    sign=self.sign[across],
                    tensor_index=((faces.axis[across] * dim + t) * n_faces + across).astype(small),
                )
            )
            # terms: every slope entry of each across face's two cells (side 2 k + s)
            owners = np.column_stack([faces.cell1[across], faces.cell2[across]]).ravel()
            counts = start[owners + 1] - start[owners]
            owner = np.repeat(np.arange(len(owners)), counts)
            entry = (
                start[owners][owner] + np.arange(counts.sum()) - (np.cumsum(counts) - counts)[owner]
            )
            keys.append(across[owner // 2] * n_cells + column[entry])
            term_side.append((owner + side_offset).astype(small))
            term_slope.append((entry + slope_offset).astype(small))
            side_offset += len(owners)
            slope_offset += len(cell)
            del cell, column, owners, counts, owner, entry
        key = np.concatenate(keys)
        del keys
        n_terms = len(key)
        terms = small if n_terms < 2**31 else np.int64
        # stable: an entry's terms stay in the order of t (the reference's sum order)
        order = np.argsort(key, kind="stable")
        key = key[order]
        first = _first_of_runs(key)
        starts = np.flatnonzero(first)
        entries = key[starts]
        del key
        # each term's entry of T and its rank among that entry's terms (0 = first)
        entry_of: NDArray[np.signedinteger[Any]] = np.cumsum(first, dtype=terms)
        entry_of -= 1
        del first
        rank = np.arange(n_terms, dtype=terms) - starts[entry_of].astype(terms)
        del starts
        by_rank = np.argsort(rank, kind="stable")  # within a rank: the order of T
        order = order[by_rank]
        counts = np.bincount(rank)
        del rank
        bounds = np.concatenate([[0], np.cumsum(counts)])
        extra = [
            (entry_of[by_rank[bounds[j] : bounds[j + 1]]], slice(bounds[j], bounds[j + 1]))
            for j in range(1, len(counts))
        ]
        del entry_of, by_rank
        row, column = np.divmod(entries, n_cells)
        del entries
        index_dtype = np.int32 if max(n_faces, n_cells, len(row)) < 2**31 else np.int64
        indptr: NDArray[np.signedinteger[Any]] = np.zeros(n_faces + 1, dtype=index_dtype)
        np.cumsum(np.bincount(row, minlength=n_faces), out=indptr[1:])
        del row
        side = np.concatenate(term_side)[order]
        del term_side
        slope = np.concatenate(term_slope)[order]
        del term_slope, order
        return _CrossPattern(
            faces=faces,
            G=G,
            fixed_ids=fixed_ids,
            fixed_at=fixed_at,
            axes=axes,
            term_side=side,
            term_slope=slope,
            extra=extra,
            indices=column.astype(index_dtype),
            indptr=indptr,
        )

    def _linearised_reference(
        self,
        faces: FaceGeometry,
        tensor: FloatArray,
        values: FloatArray,
        closed: NDArray[np.bool_],
        fixed: dict[int, float],
        dim: int,
        frozen: LimiterChoice | None = None,
    ) -> tuple[sparse.csr_matrix, FloatArray, LimiterChoice]:
        """The readable reference of :meth:`linearised`: the same ``T, t0, choice``.

        Built from sparse matrix products at every call (several times slower); kept
        to test and benchmark :meth:`linearised` against.
        """
        n_faces, n_cells = len(faces.axis), len(values)
        open_ = np.flatnonzero(~closed)
        scale = self.sign[open_] / (faces.d1[open_] + faces.d2[open_])
        # g = G c + g0: the difference across every face along its own axis
        G = sparse.csr_matrix(
            (
                np.concatenate([scale, -scale]),
                (np.tile(open_, 2), np.concatenate([faces.cell2[open_], faces.cell1[open_]])),
            ),
            shape=(n_faces, n_cells),
        )
        g0 = np.zeros(n_faces)
        if fixed:
            ids = np.fromiter(fixed, dtype=np.int64)
            at = self.sign[ids] / faces.d1[ids]
            G = G + sparse.csr_matrix((-at, (ids, faces.cell1[ids])), shape=(n_faces, n_cells))
            g0[ids] = at * np.fromiter(fixed.values(), dtype=float)
        g = G @ values + g0
        T = sparse.csr_matrix((n_faces, n_cells))
        t0 = np.zeros(n_faces)
        choice: LimiterChoice = []
        for t in range(dim):
            if frozen is None:
                wa, wb = _mc_weights(g[self.minus[t]], g[self.plus[t]])
            else:
                wa, wb = frozen[t][0], frozen[t][1]
            slope = _rows(wa, G, self.minus[t]) + _rows(wb, G, self.plus[t])
            slope0 = wa * g0[self.minus[t]] + wb * g0[self.plus[t]]
            value = slope @ values + slope0
            across = np.flatnonzero(~closed & (faces.axis != t))
            c1, c2 = faces.cell1[across], faces.cell2[across]
            if frozen is None:
                ua, ub = _mc_weights(value[c1], value[c2])
            else:
                ua, ub = frozen[t][2], frozen[t][3]
            choice.append((wa, wb, ua, ub))
            coeff = -tensor[faces.axis[across], t, across] * self.sign[across]
            transverse = _rows(ua * coeff, slope, c1) + _rows(ub * coeff, slope, c2)
            select = sparse.csr_matrix(
                (np.ones(len(across)), (across, np.arange(len(across)))),
                shape=(n_faces, len(across)),
            )
            T = T + select @ transverse
            t0[across] += coeff * (ua * slope0[c1] + ub * slope0[c2])
        return sparse.csr_matrix(T), t0, choice

    def cross_flux(
        self,
        faces: FaceGeometry,
        tensor: FloatArray,
        face_gradient: FloatArray,
        dim: int,
    ) -> FloatArray:
        r"""Cross-term flux along each face's normal (cell1 -> cell2 on interior faces).

        The readable reference of :meth:`linearised` (which the solver uses): the
        limiters applied to the numbers directly.

        Parameters
        ----------
        faces
            The face geometry.
        tensor
            ``(dim, dim, n_faces)`` face tensors (:func:`face_tensor`), m^2/s.
        face_gradient
            ``(n_faces,)`` one-sided derivative along each face's own axis, towards
            +axis (mol m^-4); zero where the cross flux must not look across
            (material jumps, closed walls).

        Returns
        -------
        ndarray
            ``(n_faces,)`` :math:`\mathbf{J}\cdot\hat n_f`, mol m^-2 s^-1.
        """
        flux = np.zeros(len(faces.axis))
        for t in range(dim):
            slope = monotonized_central(face_gradient[self.minus[t]], face_gradient[self.plus[t]])
            transverse = monotonized_central(slope[faces.cell1], slope[faces.cell2])
            across = faces.axis != t
            index = np.flatnonzero(across)
            flux[index] -= tensor[faces.axis[index], t, index] * transverse[index]
        return self.sign * flux
