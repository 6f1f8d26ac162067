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
    in_mesh_triangle_indices,
    lat_lon_to_xyz,
    mesh_edge_radius,
    radius_query_indices,
    xyz_to_lat_lon,
)
from graphs.features import edge_features, node_features
from graphs.icosahedral import mesh_hierarchy, multi_mesh_edges

GRAPH_FORMAT = "sluice.graph/1"
_DECIMALS = 6


def _canonical(values) -> tuple[float, ...]:
    # Adding 0.0 turns -0.0 into 0.0, so equal grids serialise, and hash, identically.
    return tuple(round(float(v), _DECIMALS) + 0.0 for v in np.asarray(values).reshape(-1))


@dataclass(frozen=True)
class GraphSpec:
    """Everything that determines a graph.

    Coordinates are rounded to 6 decimals on construction (about 0.1 m on the ground), so a
    spec equals its JSON round trip and the hash fully determines the graph built from it.
    ``lat``/``lon`` are the grid's coordinate vectors in the order of the data's axes.
    """

    lat: tuple[float, ...]
    lon: tuple[float, ...]
    mesh_levels: int = 2
    radius_fraction: float = 0.6

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
        object.__setattr__(self, "lat", lat)
        object.__setattr__(self, "lon", lon)
        object.__setattr__(self, "mesh_levels", int(self.mesh_levels))
        object.__setattr__(self, "radius_fraction", _canonical([self.radius_fraction])[0])

    def to_json(self) -> str:
        """Canonical JSON: sorted keys, no whitespace, floats rounded to 6 decimals."""
        return json.dumps(
            dataclasses.asdict(self) | {"lat": list(self.lat), "lon": list(self.lon)},
            sort_keys=True,
            separators=(",", ":"),
        )

    @classmethod
    def from_json(cls, s: str) -> GraphSpec:
        fields = json.loads(s)
        return cls(
            lat=tuple(fields["lat"]),
            lon=tuple(fields["lon"]),
            mesh_levels=fields["mesh_levels"],
            radius_fraction=fields["radius_fraction"],
        )


def spec_hash(spec: GraphSpec) -> str:
    """First 16 hex digits of the sha256 of ``spec.to_json()``; the graph cache key."""
    return hashlib.sha256(spec.to_json().encode()).hexdigest()[:16]


def _edge_store(
    sender_xyz: np.ndarray, receiver_xyz: np.ndarray, senders: np.ndarray, receivers: np.ndarray
) -> dict[str, torch.Tensor]:
    return {
        "edge_index": torch.from_numpy(np.stack([senders, receivers]).astype(np.int64)),
        "edge_attr": torch.from_numpy(edge_features(sender_xyz[senders], receiver_xyz[receivers])),
    }


def build_graph(spec: GraphSpec) -> HeteroData:
    """The encoder, processor and decoder graphs of GraphCast / OneForecast.

    Node types ``grid`` ([H * W], row-major over (lat, lon), see ``grid_lat_lon``) and
    ``mesh`` (finest refinement's vertices), each with ``x`` [N, 3] float32 node features,
    ``pos`` [N, 3] float32 unit vectors, ``lat``/``lon`` [N] float32 degrees. Edge types,
    each with ``edge_index`` [2, E] int64 (row 0 senders, row 1 receivers) and ``edge_attr``
    [E, 4] float32, sorted by receiver:

    - ``("grid", "to", "mesh")``: pairs closer than ``radius_fraction`` x the longest edge
      of the finest mesh;
    - ``("mesh", "to", "mesh")``: the multi-mesh, edges of every refinement;
    - ``("mesh", "to", "grid")``: the 3 vertices of the mesh triangle holding each grid node.

    Raises:
        ValueError: some mesh node receives, or some grid node sends, no grid -> mesh edge.
    """
    grid_lat, grid_lon = grid_lat_lon(np.array(spec.lat), np.array(spec.lon))
    grid_xyz = lat_lon_to_xyz(grid_lat, grid_lon)
    hierarchy = mesh_hierarchy(spec.mesh_levels)
    mesh_xyz, mesh_faces = hierarchy[-1]
    mesh_lat, mesh_lon = xyz_to_lat_lon(mesh_xyz)

    radius = spec.radius_fraction * mesh_edge_radius(mesh_xyz, mesh_faces)
    g2m_grid, g2m_mesh = radius_query_indices(grid_xyz, mesh_xyz, radius)
    lonely_mesh = mesh_xyz.shape[0] - np.unique(g2m_mesh).shape[0]
    if lonely_mesh:
        raise ValueError(
            f"{lonely_mesh} of {mesh_xyz.shape[0]} mesh nodes receive no grid->mesh edge: the "
            f"grid (GraphSpec.lat/lon, {len(spec.lat)}x{len(spec.lon)}) is too coarse for "
            f"GraphSpec.mesh_levels={spec.mesh_levels} at GraphSpec.radius_fraction="
            f"{spec.radius_fraction}; lower mesh_levels or raise radius_fraction"
        )
    lonely_grid = grid_xyz.shape[0] - np.unique(g2m_grid).shape[0]
    if lonely_grid:
        raise ValueError(
            f"{lonely_grid} of {grid_xyz.shape[0]} grid nodes send no grid->mesh edge: "
            f"GraphSpec.radius_fraction={spec.radius_fraction} is too small for "
            f"GraphSpec.mesh_levels={spec.mesh_levels}; use at least 0.6"
        )
    m2m_senders, m2m_receivers = multi_mesh_edges(hierarchy)
    m2g_grid, m2g_mesh = in_mesh_triangle_indices(grid_xyz, mesh_xyz, mesh_faces)

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
    for edge_type, stores in (
        (("grid", "to", "mesh"), _edge_store(grid_xyz, mesh_xyz, g2m_grid, g2m_mesh)),
        (("mesh", "to", "mesh"), _edge_store(mesh_xyz, mesh_xyz, m2m_senders, m2m_receivers)),
        (("mesh", "to", "grid"), _edge_store(mesh_xyz, grid_xyz, m2g_mesh, m2g_grid)),
    ):
        for key, value in stores.items():
            data[edge_type][key] = value
    data.spec_json = spec.to_json()
    data.spec_hash = spec_hash(spec)
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
