"""Nested partitions: Voronoi cells of seed points, clipped to their parent.

``split`` makes one cut: the parent's boundary and the Voronoi edges are noded
together and polygonized into faces, and each child is the union of the faces
whose nearest seed is its own, so siblings share their edges vertex for vertex.

A split leaves the crossings it adds on the parent's edges in the children
only, a float's width off the parent's line; over a long edge, such a sliver
projected to metres can weigh square metres. ``arrangement`` removes them:
it nodes the boundaries of all the leaves of a tree together once (snapped to
a fine grid) into faces, and every polygon of the tree, at every level, is then
rebuilt as a union of those faces. A child then lies exactly inside its parent
and touches its siblings and cousins along identical edges.

Distances are measured in a plane where a degree of longitude is shrunk by
``kx`` (the cosine of the latitude), so cells are not stretched east-west.
"""

from __future__ import annotations

import numpy as np
import shapely


class PartitionError(ValueError):
    """A split that cannot be made (no seeds, a seed outside the parent)."""


def sample_inside(geom: shapely.Geometry, count: int, rng: np.random.Generator) -> np.ndarray:
    """``count`` points uniformly distributed inside ``geom``, as an (N, 2) array."""
    shapely.prepare(geom)
    minx, miny, maxx, maxy = shapely.bounds(geom).tolist()
    found: list[np.ndarray] = []
    have = 0
    for _attempt in range(1000):
        batch = rng.uniform((minx, miny), (maxx, maxy), size=(max(4 * count, 64), 2))
        batch = batch[shapely.contains_xy(geom, batch[:, 0], batch[:, 1])]
        found.append(batch)
        have += len(batch)
        if have >= count:
            return np.concatenate(found)[:count]
    raise PartitionError("could not sample points inside the polygon")


def _squared_distances(points: np.ndarray, centres: np.ndarray) -> np.ndarray:
    diff = points[:, None, :] - centres[None, :, :]
    return np.einsum("ijk,ijk->ij", diff, diff)


def cluster_seeds(
    geom: shapely.Geometry,
    count: int,
    rng: np.random.Generator,
    *,
    kx: float,
    samples: np.ndarray | None = None,
    iterations: int = 25,
) -> np.ndarray:
    """``count`` seeds whose Voronoi cells split ``samples`` into even, compact parts.

    k-means (k-means++ start, Lloyd iterations) over points sampled inside
    ``geom``; a centre that falls outside a concave ``geom`` is moved to the
    nearest of its own points. Returns lon/lat as an (N, 2) array.
    """
    if count < 1:
        raise PartitionError("at least one seed is needed")
    if samples is None:
        samples = sample_inside(geom, max(60 * count, 300), rng)
    scale = np.array([kx, 1.0])
    points = samples * scale
    if count >= len(points):
        raise PartitionError("fewer sample points than seeds")
    centres = np.empty((count, 2))
    centres[0] = points[rng.integers(len(points))]
    nearest = ((points - centres[0]) ** 2).sum(axis=1)
    for k in range(1, count):
        weights = nearest / nearest.sum()
        centres[k] = points[rng.choice(len(points), p=weights)]
        nearest = np.minimum(nearest, ((points - centres[k]) ** 2).sum(axis=1))
    labels = np.zeros(len(points), dtype=np.int64)
    for _step in range(iterations):
        dist = _squared_distances(points, centres)
        labels = dist.argmin(axis=1)
        moved = centres.copy()
        for k in range(count):
            members = points[labels == k]
            if len(members):
                moved[k] = members.mean(axis=0)
            else:  # an empty cluster restarts at the point worst served
                moved[k] = points[dist.min(axis=1).argmax()]
        if np.allclose(moved, centres, rtol=0, atol=1e-12):
            break
        centres = moved
    seeds = centres / scale
    inside = shapely.contains_xy(geom, seeds[:, 0], seeds[:, 1])
    for outside in np.flatnonzero(~inside).tolist():
        own = np.flatnonzero(labels == outside)
        if not len(own):
            own = np.arange(len(points))
        best = own[((points[own] - centres[outside]) ** 2).sum(axis=1).argmin()]
        seeds[outside] = samples[best]
    return seeds


def split(parent: shapely.Geometry, seeds: np.ndarray, *, kx: float) -> list[shapely.Geometry]:
    """The Voronoi cells of ``seeds`` clipped to ``parent``, in the order of ``seeds``.

    Each child is a valid Polygon (or, where ``parent`` itself is in pieces, a
    MultiPolygon); a piece of a cell cut off from its seed's piece by the
    parent's shape is given to the sibling it shares the longest edge with.
    """
    seeds = np.asarray(seeds, dtype=float).reshape(-1, 2)
    count = len(seeds)
    if count == 0:
        raise PartitionError("no seeds")
    if not shapely.contains_xy(parent, seeds[:, 0], seeds[:, 1]).all():
        raise PartitionError("a seed lies outside the polygon it splits")
    if count == 1:
        return [parent]
    scale = np.array([kx, 1.0])
    plane = seeds * scale
    if len(np.unique(plane, axis=0)) != count:
        raise PartitionError("two seeds coincide")
    minx, miny, maxx, maxy = shapely.bounds(parent).tolist()
    pad = max(maxx - minx, maxy - miny)
    frame = shapely.box((minx - pad) * kx, miny - pad, (maxx + pad) * kx, maxy + pad)
    cells = shapely.get_parts(shapely.voronoi_polygons(shapely.multipoints(plane), extend_to=frame))
    edges = shapely.transform(shapely.boundary(cells), lambda c: c / scale)
    noded = shapely.union_all([shapely.boundary(parent), *edges])
    faces = shapely.get_parts(shapely.polygonize(shapely.get_parts(noded)))
    faces = faces[shapely.area(faces) > 0]
    probes = shapely.point_on_surface(faces)
    shapely.prepare(parent)
    faces = faces[shapely.contains(parent, probes)]
    probes = shapely.get_coordinates(shapely.point_on_surface(faces)) * scale
    owner = _squared_distances(probes, plane).argmin(axis=1)
    children = [union(faces[owner == k]) for k in range(count)]
    if any(child.is_empty for child in children):
        raise PartitionError("a seed has no face")
    return _give_away_fragments(children, seeds)


def arrangement(
    leaves: list[shapely.Geometry], *, grid_size: float
) -> tuple[np.ndarray, np.ndarray]:
    """The faces of the leaves' noded boundaries, and the leaf each face belongs to.

    Coordinates are snapped to ``grid_size`` so that edges a float's width
    apart become one. Rebuild a polygon as ``union(faces[owner == k])`` (or
    over several leaves for an ancestor).
    """
    shapes = np.asarray(leaves, dtype=object)
    lines = shapely.union_all(shapely.boundary(shapes), grid_size=grid_size)
    faces = shapely.get_parts(shapely.polygonize(shapely.get_parts(lines)))
    faces = faces[shapely.area(faces) > 0]
    tree = shapely.STRtree(shapes)
    owner = np.full(len(faces), -1, dtype=np.int64)
    face_index, leaf_index = tree.query(shapely.point_on_surface(faces), predicate="within")
    owner[face_index] = leaf_index
    for f in np.flatnonzero(owner < 0).tolist():
        # A face whose probe is on no leaf's inside: a sliver between leaves, or
        # a probe on an edge. It goes to the leaf it overlaps most.
        candidates = tree.query(faces[f])
        if len(candidates):
            overlap = shapely.area(shapely.intersection(shapes[candidates], faces[f]))
            owner[f] = candidates[int(np.argmax(overlap))]
    return faces[owner >= 0], owner[owner >= 0]


def union(faces: np.ndarray) -> shapely.Geometry:
    """The union of faces that share their edges exactly, as a Polygon or MultiPolygon."""
    if len(faces) == 0:
        return shapely.Polygon()
    if len(faces) == 1:
        return faces[0]
    merged = shapely.coverage_union_all(faces)
    if not shapely.is_valid(merged):  # pragma: no cover - faces form a coverage
        merged = shapely.make_valid(shapely.union_all(faces), method="structure")
    return _polygonal(merged)


def _polygonal(geom: shapely.Geometry) -> shapely.Geometry:
    """``geom`` as a Polygon or MultiPolygon, dropping any stray lines or points."""
    parts = [p for p in shapely.get_parts(geom) if shapely.get_type_id(p) in (3, 6)]
    polygons = [q for p in parts for q in shapely.get_parts(p) if not q.is_empty]
    if len(polygons) == 1:
        return polygons[0]
    return shapely.MultiPolygon(polygons)


def _give_away_fragments(
    children: list[shapely.Geometry], seeds: np.ndarray
) -> list[shapely.Geometry]:
    for k in range(len(children)):
        parts = list(shapely.get_parts(children[k]))
        if len(parts) < 2:
            continue
        has_seed = shapely.contains_xy(parts, seeds[k, 0], seeds[k, 1])
        keep = int(has_seed.argmax()) if has_seed.any() else int(np.argmax(shapely.area(parts)))
        kept = [parts[keep]]
        for index, part in enumerate(parts):
            if index == keep:
                continue
            border = shapely.boundary(part)
            shared = [
                shapely.length(shapely.intersection(border, shapely.boundary(other)))
                if j != k
                else 0.0
                for j, other in enumerate(children)
            ]
            j = int(np.argmax(shared))
            if shared[j] > 0:
                children[j] = union(np.array([children[j], part], dtype=object))
            else:
                kept.append(part)
        children[k] = kept[0] if len(kept) == 1 else shapely.MultiPolygon(kept)
    return children
