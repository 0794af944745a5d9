"""Grid trees to benchmark against: the demo district, and a synthetic city of any size.

Both come out as a ``GridSet``: flat arrays in tree order (parents before
children), ids = position, which is what ``Locator`` is built from.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import shapely

from civicgrid.grids.locator import Locator


@dataclass
class GridSet:
    label: str
    codes: list[str]
    names: list[str]
    levels: np.ndarray  # int
    parent_index: np.ndarray  # int, -1 for a root
    geoms: np.ndarray  # shapely polygons, storage lon/lat
    #: The ``GridInput`` items it came from, when it came from some.
    items: list[Any] | None = None

    def __len__(self) -> int:
        return len(self.codes)

    @property
    def bounds(self) -> tuple[float, float, float, float]:
        roots = self.geoms[self.parent_index < 0]
        x0, y0, x1, y1 = shapely.total_bounds(roots)
        return float(x0), float(y0), float(x1), float(y1)

    @property
    def leaf(self) -> np.ndarray:
        """True for the polygons without children (where the locator looks first)."""
        has_child = np.zeros(len(self), dtype=bool)
        has_child[self.parent_index[self.parent_index >= 0]] = True
        return ~has_child

    def level_counts(self) -> dict[int, int]:
        values, counts = np.unique(self.levels, return_counts=True)
        return {int(v): int(c) for v, c in zip(values, counts, strict=True)}

    def vertices(self) -> dict[str, float]:
        """Vertex counts per polygon: the level-3 ones, and the total."""
        n = shapely.get_num_coordinates(self.geoms)
        leaf = n[self.levels == self.levels.max()]
        return {
            "leaf_min": int(leaf.min()),
            "leaf_median": float(np.median(leaf)),
            "leaf_max": int(leaf.max()),
            "total": int(n.sum()),
            "largest": int(n.max()),
        }

    def locator(self) -> Locator:
        n = len(self)
        return Locator(
            ids=list(range(n)),
            codes=self.codes,
            names=self.names,
            levels=self.levels.tolist(),
            parent_ids=[int(p) if p >= 0 else None for p in self.parent_index],
            geometries=list(self.geoms),
        )

    def random_points(
        self, n: int, rng: np.random.Generator, margin: float = 0.0
    ) -> tuple[np.ndarray, np.ndarray]:
        """Uniform points over the bounding box of the roots, widened by ``margin`` (a share)."""
        x0, y0, x1, y1 = self.bounds
        mx, my = (x1 - x0) * margin, (y1 - y0) * margin
        return rng.uniform(x0 - mx, x1 + mx, n), rng.uniform(y0 - my, y1 + my, n)


# -- the demo district ------------------------------------------------------------
def demo(seed: int = 620103) -> GridSet:
    """The demo district (Qilihe), straight from its generator; no database."""
    from civicgrid.demo.district import generate_partition

    items = sorted(generate_partition(seed=seed), key=lambda item: item.level)
    index = {item.code: i for i, item in enumerate(items)}
    return GridSet(
        label="demo",
        codes=[item.code for item in items],
        names=[item.name for item in items],
        levels=np.array([item.level for item in items], dtype=np.int64),
        parent_index=np.array(
            [index[item.parent_code] if item.parent_code else -1 for item in items], dtype=np.int64
        ),
        geoms=np.array([item.geometry for item in items], dtype=object),
        items=items,
    )


# -- a synthetic city ---------------------------------------------------------------
def synthetic(
    *,
    seed: int = 1,
    subdistricts: tuple[int, int] = (10, 10),
    communities: tuple[int, int] = (5, 2),
    grids: tuple[int, int] = (10, 10),
    origin: tuple[float, float] = (116.0, 39.6),
    cell: tuple[float, float] = (0.0012, 0.0010),
) -> GridSet:
    """A nested tree cut from one jittered lattice: 1 district → 10×10 subdistricts
    → 5×2 communities each → 10×10 grids each (100,000 level-3 grids by default).

    Lattice corners are jittered and every cell edge gets 4–14 jittered
    intermediate vertices, shared by the two cells it separates, so the level-3
    polygons have 21–61 vertices and tile their community exactly; a parent's
    ring is walked from the same edges, so it is exactly the union of its
    children (no slivers, no gaps). Cells are about 100 m × 110 m.
    """
    rng = np.random.default_rng(seed)
    nx = subdistricts[0] * communities[0] * grids[0]
    ny = subdistricts[1] * communities[1] * grids[1]
    dx, dy = cell
    ci, cj = np.meshgrid(np.arange(nx + 1), np.arange(ny + 1), indexing="ij")
    corner = np.stack([origin[0] + ci * dx, origin[1] + cj * dy], axis=-1)
    corner[1:-1, 1:-1] += rng.uniform(-0.18, 0.18, (nx - 1, ny - 1, 2)) * [dx, dy]

    def edges(a: np.ndarray, b: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        k = rng.integers(4, 15, len(a))  # intermediate vertices per edge
        start = np.concatenate([[0], np.cumsum(k)])
        edge = np.repeat(np.arange(len(a)), k)
        pos = np.arange(start[-1]) - start[edge]
        t = (pos + 1 + rng.uniform(-0.3, 0.3, len(edge))) / (k[edge] + 1)
        d = b[edge] - a[edge]
        normal = np.stack([-d[:, 1], d[:, 0]], axis=-1)
        offset = rng.uniform(-0.08, 0.08, len(edge)) * np.minimum(t, 1 - t) * 2
        return a[edge] + d * t[:, None] + normal * offset[:, None], start

    # Horizontal edge (i, j): corner (i, j) → (i+1, j); vertical (i, j): (i, j) → (i, j+1).
    h_pts, h_start = edges(corner[:-1, :].reshape(-1, 2), corner[1:, :].reshape(-1, 2))
    v_pts, v_start = edges(corner[:, :-1].reshape(-1, 2), corner[:, 1:].reshape(-1, 2))
    coords = np.concatenate([corner.reshape(-1, 2), h_pts, v_pts])
    h_off = (nx + 1) * (ny + 1)
    v_off = h_off + len(h_pts)
    h_lo, h_hi = (h_off + h_start[:-1]).tolist(), (h_off + h_start[1:]).tolist()
    v_lo, v_hi = (v_off + v_start[:-1]).tolist(), (v_off + v_start[1:]).tolist()

    def ring(i0: int, i1: int, j0: int, j1: int) -> list[int]:
        """Vertex indices of the block of cells [i0, i1) × [j0, j1), anticlockwise."""
        out: list[int] = []
        for i in range(i0, i1):  # bottom, west to east
            e = i * (ny + 1) + j0
            out.append(i * (ny + 1) + j0)
            out.extend(range(h_lo[e], h_hi[e]))
        for j in range(j0, j1):  # east side, upwards
            e = i1 * ny + j
            out.append(i1 * (ny + 1) + j)
            out.extend(range(v_lo[e], v_hi[e]))
        for i in range(i1 - 1, i0 - 1, -1):  # top, east to west
            e = i * (ny + 1) + j1
            out.append((i + 1) * (ny + 1) + j1)
            out.extend(range(h_hi[e] - 1, h_lo[e] - 1, -1))
        for j in range(j1 - 1, j0 - 1, -1):  # west side, downwards
            e = i0 * ny + j
            out.append(i0 * (ny + 1) + j + 1)
            out.extend(range(v_hi[e] - 1, v_lo[e] - 1, -1))
        out.append(i0 * (ny + 1) + j0)
        return out

    blocks: list[tuple[int, int, int, int]] = []  # (i0, i1, j0, j1) per node
    levels: list[int] = []
    parents: list[int] = []
    codes: list[str] = []

    def add(block: tuple[int, int, int, int], level: int, parent: int, code: str) -> int:
        blocks.append(block)
        levels.append(level)
        parents.append(parent)
        codes.append(code)
        return len(blocks) - 1

    root = add((0, nx, 0, ny), 0, -1, "SYN")
    sw, sh = communities[0] * grids[0], communities[1] * grids[1]
    cw, ch = grids
    sub_nodes = []
    for si in range(subdistricts[0]):
        for sj in range(subdistricts[1]):
            i0, j0 = si * sw, sj * sh
            code = f"SYN{si * subdistricts[1] + sj + 1:03d}"
            sub_nodes.append((add((i0, i0 + sw, j0, j0 + sh), 1, root, code), i0, j0, code))
    com_nodes = []
    for s, i0, j0, scode in sub_nodes:
        for k, (ci_, cj_) in enumerate(np.ndindex(*communities)):
            a0, b0 = i0 + ci_ * cw, j0 + cj_ * ch
            code = f"{scode}{k + 1:03d}"
            com_nodes.append((add((a0, a0 + cw, b0, b0 + ch), 2, s, code), a0, b0, code))
    for c, a0, b0, ccode in com_nodes:
        for k, (gi, gj) in enumerate(np.ndindex(*grids)):
            add((a0 + gi, a0 + gi + 1, b0 + gj, b0 + gj + 1), 3, c, f"{ccode}{k + 1:03d}")

    rings = [ring(*b) for b in blocks]
    lengths = np.fromiter((len(r) for r in rings), dtype=np.int64, count=len(rings))
    flat = np.fromiter((v for r in rings for v in r), dtype=np.int64, count=int(lengths.sum()))
    shells = shapely.linearrings(coords[flat], indices=np.repeat(np.arange(len(rings)), lengths))
    geoms = shapely.polygons(shells)
    return GridSet(
        label="synthetic",
        codes=codes,
        names=[f"合成{code}" for code in codes],
        levels=np.array(levels, dtype=np.int64),
        parent_index=np.array(parents, dtype=np.int64),
        geoms=np.asarray(geoms, dtype=object),
    )
