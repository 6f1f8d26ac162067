"""Assembles the grid/mesh HeteroData of OneForecast and caches it as plain tensors."""

from __future__ import annotations

import dataclasses
import hashlib
import json
import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from torch_geometric.data import HeteroData

from graphs.connectivity import (
    grid_lat_lon,
    grid_lat_lon_to_xyz,
    in_mesh_triangle_indices,
    mesh_edge_radius,
    radius_query_indices,
    xyz_to_lat_lon,
)
from graphs.features import indexed_edge_features, node_features
from graphs.icosahedral import ORIENTATIONS, mesh_hierarchy, multi_mesh_edges, vertex_levels
from graphs.regions import in_boxes, refine_regions

# 2: edge features reordered to (dx, dy, dz, |d|); mesh `level`/`in_region`; nested meshes.
GRAPH_FORMAT = "sluice.graph/2"
REGION_MODES = ("conforming", "oneforecast")
_DECIMALS = 6
_BOX = "(lat_min, lat_max, lon_min, lon_max)"


def _canonical(values) -> tuple[float, ...]:
    # Adding 0.0 turns -0.0 into 0.0, so equal grids serialise, and hash, identically.
    return tuple(round(float(v), _DECIMALS) + 0.0 for v in np.asarray(values).reshape(-1))


@dataclass(frozen=True)
class GraphSpec:
    """Everything that determines a graph.

    Coordinates are rounded to 6 decimals on construction (about 0.1 m on the ground), so a
    spec equals its JSON round trip and the hash fully determines the graph built from it.
    ``lat``/``lon`` are the grid's coordinate vectors in the order of the data's axes.

    ``regions`` are geographic boxes ``(lat_min, lat_max, lon_min, lon_max)`` in degrees
    (``lon_min > lon_max`` crosses the date line) refined ``region_levels`` more times beyond
    ``mesh_levels`` by ``region_mode`` (see ``graphs.regions``). ``max_neighbours`` caps the
    grid->mesh edges of each grid point at its nearest mesh nodes within the radius.
    ``mesh_orientation`` is the icosahedron's (see ``graphs.icosahedral.icosahedron``).

    ``domain``, a box like those of ``regions``, makes the graph a limited-area one (see
    ``graphs.regional``): every grid point must lie in it, and the mesh is cropped to the grid.
    None (the default) is the whole sphere; such a spec's JSON has no ``domain`` key.
    """

    lat: tuple[float, ...]
    lon: tuple[float, ...]
    mesh_levels: int = 2
    radius_fraction: float = 0.6
    regions: tuple[tuple[float, float, float, float], ...] = ()
    region_levels: int = 0
    region_mode: str = "conforming"
    max_neighbours: int | None = None
    mesh_orientation: str = "sluice"
    domain: tuple[float, float, float, float] | None = None

    def __post_init__(self) -> None:
        lat, lon = _canonical(self.lat), _canonical(self.lon)
        if not lat or not lon:
            raise ValueError(
                f"GraphSpec.lat and .lon must be non-empty, got {len(lat)}, {len(lon)}"
            )
        if min(lat) < -90.0 or max(lat) > 90.0:
            raise ValueError(f"GraphSpec.lat must lie in [-90, 90], got {min(lat)}..{max(lat)}")
        if int(self.mesh_levels) != self.mesh_levels or self.mesh_levels < 0:
            raise ValueError(
                f"GraphSpec.mesh_levels must be an integer >= 0, got {self.mesh_levels}"
            )
        if not self.radius_fraction > 0.0:
            raise ValueError(f"GraphSpec.radius_fraction must be > 0, got {self.radius_fraction}")
        regions = tuple(_canonical(box) for box in self.regions)
        for box in regions:
            _check_box(box, f"GraphSpec.regions must hold {_BOX} boxes")
        domain = None if self.domain is None else _canonical(self.domain)
        if domain is not None:
            _check_box(domain, f"GraphSpec.domain must be a {_BOX} box")
            _check_grid_in_domain(lat, lon, domain)
        if int(self.region_levels) != self.region_levels or self.region_levels < 0:
            raise ValueError(
                f"GraphSpec.region_levels must be an integer >= 0, got {self.region_levels}"
            )
        if self.region_mode not in REGION_MODES:
            raise ValueError(
                f"GraphSpec.region_mode must be one of {REGION_MODES}, got {self.region_mode!r}"
            )
        if self.max_neighbours is not None and (
            int(self.max_neighbours) != self.max_neighbours or self.max_neighbours < 1
        ):
            raise ValueError(
                f"GraphSpec.max_neighbours must be None or an integer >= 1, "
                f"got {self.max_neighbours}"
            )
        if self.mesh_orientation not in ORIENTATIONS:
            raise ValueError(
                f"GraphSpec.mesh_orientation must be one of {ORIENTATIONS}, "
                f"got {self.mesh_orientation!r}"
            )
        object.__setattr__(self, "lat", lat)
        object.__setattr__(self, "lon", lon)
        object.__setattr__(self, "mesh_levels", int(self.mesh_levels))
        object.__setattr__(self, "radius_fraction", _canonical([self.radius_fraction])[0])
        object.__setattr__(self, "regions", regions)
        object.__setattr__(self, "domain", domain)
        object.__setattr__(self, "region_levels", int(self.region_levels))
        if self.max_neighbours is not None:
            object.__setattr__(self, "max_neighbours", int(self.max_neighbours))

    def to_json(self) -> str:
        """Canonical JSON: sorted keys, no whitespace, floats rounded to 6 decimals.

        ``domain`` is left out when None, so global specs keep the JSON, and the hash (the
        cache key), they had before the field existed."""
        fields = dataclasses.asdict(self) | {
            "lat": list(self.lat),
            "lon": list(self.lon),
            "regions": [list(box) for box in self.regions],
        }
        if self.domain is None:
            del fields["domain"]
        else:
            fields["domain"] = list(self.domain)
        return json.dumps(fields, sort_keys=True, separators=(",", ":"))

    @classmethod
    def from_json(cls, s: str) -> GraphSpec:
        fields = json.loads(s)
        fields["regions"] = tuple(tuple(box) for box in fields.get("regions", ()))
        if fields.get("domain") is not None:
            fields["domain"] = tuple(fields["domain"])
        return cls(**fields)


def _check_box(box: tuple[float, ...], what: str) -> None:
    if len(box) != 4 or not -90.0 <= box[0] < box[1] <= 90.0:
        raise ValueError(f"{what} with -90 <= lat_min < lat_max <= 90, got {box}")


# Degrees of slack in the domain test: decimal boundaries (e.g. 0.1) differ in the last bit
# after the longitude arithmetic.
_DOMAIN_SLACK = 1e-9


def _check_grid_in_domain(
    lat: tuple[float, ...], lon: tuple[float, ...], domain: tuple[float, ...]
) -> None:
    # The axes are tested on their own, so the message can name the coordinate at fault.
    lat_min, lat_max, lon_min, lon_max = domain
    for value in lat:
        if not lat_min - _DOMAIN_SLACK <= value <= lat_max + _DOMAIN_SLACK:
            raise ValueError(
                f"GraphSpec.lat value {value} lies outside GraphSpec.domain {domain} "
                f"(lat {lat_min}..{lat_max}); every grid point must lie in the domain"
            )
    span = lon_max - lon_min
    width = 360.0 if span >= 360.0 else float(np.mod(span, 360.0))  # as regions.in_boxes
    offset = np.mod(np.array(lon) - lon_min, 360.0)
    inside = (offset <= width + _DOMAIN_SLACK) | (offset >= 360.0 - _DOMAIN_SLACK)
    if not inside.all():
        raise ValueError(
            f"GraphSpec.lon value {lon[int(np.argmin(inside))]} lies outside "
            f"GraphSpec.domain {domain} (lon {lon_min} eastward to {lon_max}); every grid "
            "point must lie in the domain"
        )


def spec_hash(spec: GraphSpec) -> str:
    """First 16 hex digits of the sha256 of ``spec.to_json()``; the graph cache key."""
    return hashlib.sha256(spec.to_json().encode()).hexdigest()[:16]


def _edge_store(
    sender_xyz: np.ndarray, receiver_xyz: np.ndarray, senders: np.ndarray, receivers: np.ndarray
) -> dict[str, torch.Tensor]:
    return {
        "edge_index": torch.from_numpy(np.stack([senders, receivers]).astype(np.int64)),
        "edge_attr": torch.from_numpy(
            indexed_edge_features(sender_xyz, receiver_xyz, senders, receivers)
        ),
    }


def build_mesh(spec: GraphSpec) -> dict[str, np.ndarray]:
    """The (possibly nested) mesh of a spec, before any grid is attached.

    Returns:
        dict with ``vertices`` [M, 3] float64 unit vectors; ``faces`` [F, 3] int64 leaf
        triangles tiling the sphere; ``senders``/``receivers`` [E] int64 multi-mesh edges
        (see ``multi_mesh_edges``); ``level`` [M] int64, the refinement at which each node
        first appears (``mesh_levels + j`` for round j of the regional refinement);
        ``radius`` the longest edge (chord) of the unrefined finest level.
    """
    hierarchy = mesh_hierarchy(spec.mesh_levels, spec.mesh_orientation)
    vertices, faces = hierarchy[-1]
    level = vertex_levels([v.shape[0] for v, _ in hierarchy])
    extra_faces: list[np.ndarray] = []
    if spec.regions and spec.region_levels:
        nested = refine_regions(vertices, faces, spec.regions, spec.region_levels, spec.region_mode)
        vertices, faces, extra_faces = nested.vertices, nested.faces, nested.edge_faces
        level = np.concatenate([level, spec.mesh_levels + nested.new_vertex_round])
    senders, receivers = multi_mesh_edges(hierarchy, extra_faces)
    return {
        "vertices": vertices,
        "faces": faces,
        "senders": senders,
        "receivers": receivers,
        "level": level,
        "radius": mesh_edge_radius(*hierarchy[-1]),
    }


def build_graph(spec: GraphSpec) -> HeteroData:
    """The encoder, processor and decoder graphs of GraphCast / OneForecast.

    Node types ``grid`` ([H * W], row-major over (lat, lon), see ``grid_lat_lon``) and
    ``mesh`` (finest refinement's vertices, nested mesh included), each with ``x`` [N, 3]
    float32 node features (``node_features``), ``pos`` [N, 3] float32 unit vectors,
    ``lat``/``lon`` [N] float32 degrees; ``mesh`` also has ``level`` [M] int64 (refinement at
    which the node first appears) and ``in_region`` [M] bool (inside a ``spec.regions`` box).
    Edge types, each with ``edge_index`` [2, E] int64 (row 0 senders, row 1 receivers) and
    ``edge_attr`` [E, 4] float32 (``edge_features``), sorted by receiver:

    - ``("grid", "to", "mesh")``: pairs closer than ``radius_fraction`` x the longest edge of
      the unrefined finest level (so the radius does not shrink in a region), at most
      ``max_neighbours`` nearest per grid point;
    - ``("mesh", "to", "mesh")``: the multi-mesh, edges of every refinement;
    - ``("mesh", "to", "grid")``: the 3 vertices of the finest mesh triangle holding each grid
      node.

    With ``spec.domain`` set, the limited-area graph of ``graphs.regional.build_regional_graph``
    (same types and attributes, mesh cropped to the grid, plus ``mesh.global_index``).

    Raises:
        ValueError: some mesh node receives, or some grid node sends, no grid -> mesh edge.
    """
    if spec.domain is not None:
        # Imported here because graphs.regional builds on this module (mesh, assembly).
        from graphs.regional import build_regional_graph

        return build_regional_graph(spec)
    grid_xyz = grid_lat_lon_to_xyz(np.array(spec.lat), np.array(spec.lon))
    mesh = build_mesh(spec)
    mesh_xyz = mesh["vertices"]

    radius = spec.radius_fraction * mesh["radius"]
    g2m_grid, g2m_mesh = radius_query_indices(grid_xyz, mesh_xyz, radius, spec.max_neighbours)
    lonely_mesh = int((np.bincount(g2m_mesh, minlength=mesh_xyz.shape[0]) == 0).sum())
    if lonely_mesh:
        cap = "" if spec.max_neighbours is None else f" and max_neighbours={spec.max_neighbours}"
        raise ValueError(
            f"{lonely_mesh} of {mesh_xyz.shape[0]} mesh nodes receive no grid->mesh edge: the "
            f"grid (GraphSpec.lat/lon, {len(spec.lat)}x{len(spec.lon)}) is too coarse for "
            f"GraphSpec.mesh_levels={spec.mesh_levels} (+ region_levels="
            f"{spec.region_levels if spec.regions else 0}) at GraphSpec.radius_fraction="
            f"{spec.radius_fraction}{cap}; lower mesh_levels or raise radius_fraction"
        )
    check_grid_senders(spec, g2m_grid, grid_xyz.shape[0])
    m2g_grid, m2g_mesh = in_mesh_triangle_indices(grid_xyz, mesh_xyz, mesh["faces"])
    return assemble_graph(
        spec,
        grid_xyz,
        mesh_xyz,
        mesh["level"],
        g2m=(g2m_grid, g2m_mesh),
        m2m=(mesh["senders"], mesh["receivers"]),
        m2g=(m2g_mesh, m2g_grid),
    )


def check_grid_senders(spec: GraphSpec, g2m_grid: np.ndarray, num_grid: int) -> None:
    """ValueError naming the GraphSpec fields if some grid node sends no grid->mesh edge."""
    lonely_grid = int((np.bincount(g2m_grid, minlength=num_grid) == 0).sum())
    if lonely_grid:
        raise ValueError(
            f"{lonely_grid} of {num_grid} grid nodes send no grid->mesh edge: "
            f"GraphSpec.radius_fraction={spec.radius_fraction} is too small for "
            f"GraphSpec.mesh_levels={spec.mesh_levels}; use at least 0.6"
        )


def assemble_graph(
    spec: GraphSpec,
    grid_xyz: np.ndarray,
    mesh_xyz: np.ndarray,
    mesh_level: np.ndarray,
    g2m: tuple[np.ndarray, np.ndarray],
    m2m: tuple[np.ndarray, np.ndarray],
    m2g: tuple[np.ndarray, np.ndarray],
) -> HeteroData:
    """The HeteroData of ``build_graph`` from its nodes and edges.

    Args:
        spec: the graph's spec (grid coordinates, ``regions``, JSON and hash).
        grid_xyz: [N, 3] float64 unit vectors, row-major over (``spec.lat``, ``spec.lon``).
        mesh_xyz: [M, 3] float64 unit vectors.
        mesh_level: [M] int64.
        g2m, m2m, m2g: (senders, receivers) [E] int64 of each edge type, sorted by receiver.
    """
    grid_lat, grid_lon = grid_lat_lon(np.array(spec.lat), np.array(spec.lon))
    mesh_lat, mesh_lon = xyz_to_lat_lon(mesh_xyz)
    data = HeteroData()
    for node_type, xyz, lat, lon in (
        ("grid", grid_xyz, grid_lat, grid_lon),
        ("mesh", mesh_xyz, mesh_lat, mesh_lon),
    ):
        store = data[node_type]
        store.x = torch.from_numpy(node_features(lat, lon))
        store.pos = torch.from_numpy(xyz.astype(np.float32))
        store.lat = torch.from_numpy(lat.astype(np.float32))
        store.lon = torch.from_numpy(lon.astype(np.float32))
    data["mesh"].level = torch.from_numpy(mesh_level)
    data["mesh"].in_region = torch.from_numpy(in_boxes(mesh_lat, mesh_lon, spec.regions))
    for edge_type, stores in (
        (("grid", "to", "mesh"), _edge_store(grid_xyz, mesh_xyz, *g2m)),
        (("mesh", "to", "mesh"), _edge_store(mesh_xyz, mesh_xyz, *m2m)),
        (("mesh", "to", "grid"), _edge_store(mesh_xyz, grid_xyz, *m2g)),
    ):
        for key, value in stores.items():
            data[edge_type][key] = value
    data.spec_json = spec.to_json()
    data.spec_hash = spec_hash(spec)
    return data


def graph_cache(spec: GraphSpec, cache_dir: str | os.PathLike) -> HeteroData:
    """The graph of ``spec``, loaded from ``<cache_dir>/<spec_hash>.pt`` or built and saved
    there. A file that does not load as this spec's graph is rebuilt and replaced."""
    path = Path(cache_dir) / f"{spec_hash(spec)}.pt"
    if path.is_file():
        try:
            data = load_graph(path)
        except ValueError:
            data = None
        if data is not None and data.spec_hash == spec_hash(spec):
            return data
    data = build_graph(spec)
    path.parent.mkdir(parents=True, exist_ok=True)
    save_graph(data, path)
    return data


def save_graph(data: HeteroData, path: str | os.PathLike) -> None:
    """Writes ``data`` as a dict of tensors and strings that ``torch.load(weights_only=True)``
    reads; atomically, through ``path.with_suffix(".tmp")``."""
    path = Path(path)
    payload = {
        "format": GRAPH_FORMAT,
        "spec_json": data.spec_json,
        "spec_hash": data.spec_hash,
        "nodes": {t: dict(data[t].items()) for t in data.node_types},
        "edges": {t: dict(data[t].items()) for t in data.edge_types},
    }
    tmp = path.with_suffix(".tmp")
    try:
        torch.save(payload, tmp)
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)


def load_graph(path: str | os.PathLike) -> HeteroData:
    """Reads a graph written by ``save_graph``.

    Raises:
        ValueError: naming ``path``, if it does not hold a Sluice graph.
    """
    path = Path(path)
    try:
        payload = torch.load(path, weights_only=True)
    except FileNotFoundError:
        raise
    except Exception as err:
        raise ValueError(f"{path} is not a Sluice graph file (torch.load failed: {err})") from err
    if not isinstance(payload, dict) or payload.get("format") != GRAPH_FORMAT:
        raise ValueError(f"{path} is not a Sluice graph file (expected format {GRAPH_FORMAT!r})")
    spec = GraphSpec.from_json(payload["spec_json"])
    if spec_hash(spec) != payload["spec_hash"]:
        raise ValueError(f"{path}: stored spec_hash does not match its spec_json")
    data = HeteroData()
    for group in ("nodes", "edges"):
        for store_type, tensors in payload[group].items():
            for key, value in tensors.items():
                data[store_type][key] = value
    data.spec_json = payload["spec_json"]
    data.spec_hash = payload["spec_hash"]
    return data
