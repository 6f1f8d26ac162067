"""Limited-area grid/mesh graphs: a regional grid on the true sphere, the mesh cropped to it.

OneForecast forecasts a region with a regional model, and its released code builds that
model's graph as if the region's grid were a global one: the H x W patch is laid out as
latitudes pole to pole and longitudes round 360 degrees. So the patch's west and east edges
become neighbours (grid->mesh and mesh->grid edges, and mesh triangles, join the westmost
and eastmost columns), its first and last rows sit on the poles, and every edge's length and
direction is that of the stretched patch, not of the ground it covers.

Here the grid stays where it is. ``GraphSpec.domain`` is a ``(lat_min, lat_max, lon_min,
lon_max)`` box (as ``GraphSpec.regions``) that holds every grid point; the mesh is the
spec's global one (``graphs.build.build_mesh``: icosahedral hierarchy, refined in
``regions``, typically ``regions=(domain,)``), cropped. Cropping rule: a mesh vertex is kept
if it receives a grid->mesh edge (the global radius query: ``radius_fraction`` x the longest
edge of the unrefined finest level, at most ``max_neighbours`` per grid point) or is a
corner of a finest-mesh triangle holding a grid point (the mesh->grid senders); every other
vertex is dropped, and with it every multi-mesh edge that touches it. Kept vertices keep
their order, so the edges stay sorted by receiver after re-indexing. Nothing wraps: an edge
joins two points at their true great-circle distance, and the mesh ends within about two
radii of the grid (a radius for grid->mesh receivers, one finest edge for triangle corners).
Coarse multi-mesh edges between kept vertices stay: they are the region's long-range links
(a 20 x 30 degree box keeps some of the icosahedron's level-1 edges, about 32 degrees).
As the global graph requires an edge into every mesh vertex, this one requires it into every
vertex among the grid points, so the cropped mesh has no holes.

Shapes (N = H * W grid points, M kept of M_0 mesh vertices), as ``graphs.build.build_graph``:
``grid`` and ``mesh`` nodes with ``x`` [., 3], ``pos`` [., 3], ``lat``/``lon`` [.] float32;
``mesh.level`` [M] int64, ``mesh.in_region`` [M] bool, and ``mesh.global_index`` [M] int64,
each kept vertex's index among the M_0 of the uncropped mesh; edge types ``("grid", "to",
"mesh")``, ``("mesh", "to", "mesh")``, ``("mesh", "to", "grid")`` (exactly 3 per grid point)
with ``edge_index`` [2, E] int64 and ``edge_attr`` [E, 4] float32, sorted by receiver. Edge
features are normalised by the longest edge of each cropped set, as for any edge set.
"""

from __future__ import annotations

import numpy as np
import torch
from torch_geometric.data import HeteroData

from graphs.build import GraphSpec, assemble_graph, build_mesh, check_grid_senders
from graphs.connectivity import (
    grid_lat_lon_to_xyz,
    in_mesh_triangle_indices,
    radius_query_indices,
    xyz_to_lat_lon,
)
from graphs.regions import in_boxes


def kept_mesh_vertices(num_mesh: int, g2m_mesh: np.ndarray, m2g_mesh: np.ndarray) -> np.ndarray:
    """The mesh vertices a limited-area graph keeps: grid->mesh receivers and mesh->grid senders.

    Args:
        num_mesh: M_0, vertices of the uncropped mesh.
        g2m_mesh: [E_g2m] int64 receivers of the grid->mesh edges.
        m2g_mesh: [E_m2g] int64 senders of the mesh->grid edges.

    Returns:
        [M] int64, increasing: the kept vertices' indices in the uncropped mesh.
    """
    keep = np.zeros(num_mesh, dtype=bool)
    keep[g2m_mesh] = True
    keep[m2g_mesh] = True
    return np.flatnonzero(keep).astype(np.int64)


def new_indices(num_mesh: int, kept: np.ndarray) -> np.ndarray:
    """[M_0] int64: each uncropped vertex's index among the ``kept`` ones, -1 if dropped."""
    index = np.full(num_mesh, -1, dtype=np.int64)
    index[kept] = np.arange(kept.shape[0], dtype=np.int64)
    return index


def crop_edges(
    senders: np.ndarray, receivers: np.ndarray, index: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """The edges whose both ends are kept, re-indexed by ``index`` (from ``new_indices``).

    ``index`` increases over the kept vertices, so edges sorted by (receiver, sender) stay so.

    Args:
        senders: [E] int64.
        receivers: [E] int64.
        index: [M_0] int64, -1 for dropped vertices.

    Returns:
        senders: [E'] int64.
        receivers: [E'] int64.
    """
    new_senders, new_receivers = index[senders], index[receivers]
    both = (new_senders >= 0) & (new_receivers >= 0)
    return new_senders[both], new_receivers[both]


def grid_extent(spec: GraphSpec) -> tuple[float, float, float, float]:
    """The smallest box inside ``spec.domain`` holding every grid point, in its conventions.

    Longitudes are measured eastward from the domain's ``lon_min``, so a grid crossing the
    date line gives a box that does too.
    """
    lon_min = spec.domain[2]
    offset = np.mod(np.array(spec.lon) - lon_min, 360.0)
    # The domain test lets points a hair west of lon_min in; they count as lon_min.
    offset = np.where(offset > 360.0 - 1e-8, 0.0, offset)
    return (min(spec.lat), max(spec.lat), lon_min + offset.min(), lon_min + offset.max())


def _grid_edges(
    spec: GraphSpec, grid_xyz: np.ndarray, mesh: dict[str, np.ndarray]
) -> tuple[tuple[np.ndarray, np.ndarray], tuple[np.ndarray, np.ndarray]]:
    """Grid->mesh (grid, mesh) and mesh->grid (mesh, grid) edges on the uncropped mesh.

    Raises:
        ValueError: naming the GraphSpec fields, when a grid point sends no grid->mesh edge,
            lies in no mesh triangle, or a mesh vertex among the grid points receives none.
    """
    mesh_xyz = mesh["vertices"]
    radius = spec.radius_fraction * mesh["radius"]
    g2m_grid, g2m_mesh = radius_query_indices(grid_xyz, mesh_xyz, radius, spec.max_neighbours)
    check_grid_senders(spec, g2m_grid, grid_xyz.shape[0])
    # The global graph requires an edge into every mesh vertex; here only into those among
    # the grid points, else the cropped mesh would have holes inside the region.
    mesh_lat, mesh_lon = xyz_to_lat_lon(mesh_xyz)
    among_grid = in_boxes(mesh_lat, mesh_lon, [grid_extent(spec)])
    among_grid[g2m_mesh] = False
    if among_grid.any():
        cap = "" if spec.max_neighbours is None else f" and max_neighbours={spec.max_neighbours}"
        raise ValueError(
            f"{int(among_grid.sum())} mesh nodes among the grid points of GraphSpec.domain="
            f"{spec.domain} receive no grid->mesh edge: the grid (GraphSpec.lat/lon, "
            f"{len(spec.lat)}x{len(spec.lon)}) is too coarse for GraphSpec.mesh_levels="
            f"{spec.mesh_levels} (+ region_levels={spec.region_levels if spec.regions else 0}) "
            f"at GraphSpec.radius_fraction={spec.radius_fraction}{cap}; lower mesh_levels or "
            "region_levels, or raise radius_fraction"
        )
    try:
        m2g_grid, m2g_mesh = in_mesh_triangle_indices(grid_xyz, mesh_xyz, mesh["faces"])
    except ValueError as err:
        raise ValueError(
            f"some grid nodes (GraphSpec.lat/lon) lie in no triangle of the mesh of "
            f"GraphSpec.mesh_levels={spec.mesh_levels}, regions={spec.regions}, "
            f"region_levels={spec.region_levels}, region_mode={spec.region_mode!r}: {err}"
        ) from err
    return (g2m_grid, g2m_mesh), (m2g_mesh, m2g_grid)


def build_regional_graph(spec: GraphSpec) -> HeteroData:
    """The limited-area graph of a spec with a ``domain`` (see the module docstring).

    Returns:
        HeteroData as ``graphs.build.build_graph``'s, the mesh cropped to the kept vertices,
        plus ``data["mesh"].global_index`` [M] int64.

    Raises:
        ValueError: ``spec.domain`` is None, or as ``_grid_edges``.
    """
    if spec.domain is None:
        raise ValueError("build_regional_graph needs a GraphSpec.domain; use build_graph")
    grid_xyz = grid_lat_lon_to_xyz(np.array(spec.lat), np.array(spec.lon))
    mesh = build_mesh(spec)
    num_mesh = mesh["vertices"].shape[0]
    (g2m_grid, g2m_mesh), (m2g_mesh, m2g_grid) = _grid_edges(spec, grid_xyz, mesh)
    kept = kept_mesh_vertices(num_mesh, g2m_mesh, m2g_mesh)
    index = new_indices(num_mesh, kept)
    data = assemble_graph(
        spec,
        grid_xyz,
        mesh["vertices"][kept],
        mesh["level"][kept],
        g2m=(g2m_grid, index[g2m_mesh]),
        m2m=crop_edges(mesh["senders"], mesh["receivers"], index),
        m2g=(index[m2g_mesh], m2g_grid),
    )
    data["mesh"].global_index = torch.from_numpy(kept)
    return data
