"""Pictures of a grid/mesh graph: orthographic views of the mesh, its densified regions and a
sample of grid <-> mesh edges. The only module of ``graphs`` that imports matplotlib."""

from __future__ import annotations

import json
import os

import numpy as np
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.collections import LineCollection
from matplotlib.figure import Figure
from matplotlib.patches import Circle
from torch_geometric.data import HeteroData

from graphs.connectivity import lat_lon_to_xyz


def orthographic(xyz: np.ndarray, lat0: float, lon0: float) -> tuple[np.ndarray, np.ndarray]:
    """Orthographic projection seen from above (lat0, lon0).

    Args:
        xyz: [N, 3] unit vectors.
        lat0, lon0: centre of the view, degrees.

    Returns:
        uv: [N, 2] east and north coordinates on the picture plane (unit disc).
        visible: [N] bool, on the hemisphere facing the viewer.
    """
    phi, lam = np.deg2rad(lat0), np.deg2rad(lon0)
    towards = np.array([np.cos(phi) * np.cos(lam), np.cos(phi) * np.sin(lam), np.sin(phi)])
    east = np.array([-np.sin(lam), np.cos(lam), 0.0])
    north = np.cross(towards, east)
    return np.stack([xyz @ east, xyz @ north], axis=1), xyz @ towards > 0.0


def _segments(xyz, senders, receivers, lat0, lon0) -> np.ndarray:
    """[S, 2, 2] projected segments of the edges with both ends visible."""
    uv, visible = orthographic(xyz, lat0, lon0)
    keep = visible[senders] & visible[receivers]
    return np.stack([uv[senders[keep]], uv[receivers[keep]]], axis=1)


def _bipartite_segments(src_xyz, dst_xyz, senders, receivers, lat0, lon0) -> np.ndarray:
    src_uv, src_visible = orthographic(src_xyz, lat0, lon0)
    dst_uv, dst_visible = orthographic(dst_xyz, lat0, lon0)
    keep = src_visible[senders] & dst_visible[receivers]
    return np.stack([src_uv[senders[keep]], dst_uv[receivers[keep]]], axis=1)


def _box_outline(box, steps: int = 60) -> np.ndarray:
    """[4 * steps, 3] points along a lat/lon box's boundary (date line handled)."""
    lat_min, lat_max, lon_min, lon_max = box
    span = lon_max - lon_min
    width = 360.0 if span >= 360.0 else np.mod(span, 360.0)
    lons = lon_min + np.linspace(0.0, width, steps)
    lats = np.linspace(lat_min, lat_max, steps)
    lat = np.concatenate([np.full(steps, lat_min), lats, np.full(steps, lat_max), lats[::-1]])
    lon_max = lon_min + width
    lon = np.concatenate([lons, np.full(steps, lon_max), lons[::-1], np.full(steps, lon_min)])
    return lat_lon_to_xyz(lat, lon)


def view_centres(spec: dict) -> list[tuple[float, float]]:
    """Three view centres: the first region's centre (or 30N 0E), then 120 and 240 deg east."""
    if spec.get("regions"):
        lat_min, lat_max, lon_min, lon_max = spec["regions"][0]
        lat0 = (lat_min + lat_max) / 2.0
        lon0 = lon_min + np.mod(lon_max - lon_min, 360.0) / 2.0
    else:
        lat0, lon0 = 30.0, 0.0
    return [(lat0, lon0), (lat0, lon0 + 120.0), (lat0, lon0 + 240.0)]


def plot_graph(
    data: HeteroData,
    path: str | os.PathLike,
    *,
    sample: int = 200,
    seed: int = 0,
    dpi: int = 72,
) -> None:
    """Writes a PNG with three orthographic views of ``data``.

    Drawn: the finest regular level's mesh edges (grey) and the regional refinement's (red),
    mesh nodes inside the regions (orange), the region boxes (black), and ``sample`` random
    grid->mesh (blue) and mesh->grid (green) edges.

    Args:
        data: a graph from ``graphs.build_graph`` / ``load_graph``.
        path: the PNG.
        sample: grid <-> mesh edges drawn per direction.
        seed: for the sample.
        dpi: resolution.
    """
    spec = json.loads(data.spec_json)
    mesh_xyz = data["mesh"].pos.double().numpy()
    grid_xyz = data["grid"].pos.double().numpy()
    level = data["mesh"].level.numpy()
    senders, receivers = data["mesh", "to", "mesh"].edge_index.numpy()
    edge_level = np.maximum(level[senders], level[receivers])
    finest = spec["mesh_levels"]
    regular = edge_level == finest
    refined = edge_level > finest
    rng = np.random.default_rng(seed)
    g2m = data["grid", "to", "mesh"].edge_index.numpy()
    m2g = data["mesh", "to", "grid"].edge_index.numpy()
    g2m = g2m[:, rng.choice(g2m.shape[1], min(sample, g2m.shape[1]), replace=False)]
    m2g = m2g[:, rng.choice(m2g.shape[1], min(sample, m2g.shape[1]), replace=False)]
    in_region = data["mesh"].in_region.numpy()

    fig = Figure(figsize=(13.5, 5.0))
    FigureCanvasAgg(fig)
    for i, (lat0, lon0) in enumerate(view_centres(spec)):
        ax = fig.add_subplot(1, 3, i + 1)
        ax.add_patch(Circle((0.0, 0.0), 1.0, facecolor="#f4f7fb", edgecolor="0.3", linewidth=0.8))
        for mask, colour, width in ((regular, "0.55", 0.4), (refined, "tab:red", 0.4)):
            segs = _segments(mesh_xyz, senders[mask], receivers[mask], lat0, lon0)
            ax.add_collection(LineCollection(segs, colors=colour, linewidths=width))
        uv, visible = orthographic(mesh_xyz, lat0, lon0)
        shown = visible & in_region
        ax.scatter(uv[shown, 0], uv[shown, 1], s=4, c="tab:orange", linewidths=0)
        for src, dst, (s, r), colour in (
            (grid_xyz, mesh_xyz, g2m, "tab:blue"),
            (mesh_xyz, grid_xyz, m2g, "tab:green"),
        ):
            segs = _bipartite_segments(src, dst, s, r, lat0, lon0)
            ax.add_collection(LineCollection(segs, colors=colour, linewidths=0.8))
        for box in spec.get("regions", []):
            uv_box, vis_box = orthographic(_box_outline(box), lat0, lon0)
            uv_box[~vis_box] = np.nan
            ax.plot(uv_box[:, 0], uv_box[:, 1], color="black", linewidth=0.9)
        ax.set_xlim(-1.02, 1.02)
        ax.set_ylim(-1.02, 1.02)
        ax.set_aspect("equal")
        ax.axis("off")
        ax.set_title(f"view from {lat0:.0f}°N {np.mod(lon0, 360):.0f}°E", fontsize=10)
    counts = ", ".join(
        f"{'→'.join((t[0], t[2]))} {data[t].num_edges:,}" for t in data.edge_types
    )
    regions = (
        f"; {len(spec['regions'])} region(s) +{spec['region_levels']} levels "
        f"({spec['region_mode']})"
        if spec.get("regions") and spec.get("region_levels")
        else ""
    )
    fig.suptitle(
        f"grid {data['grid'].num_nodes:,} nodes, mesh {data['mesh'].num_nodes:,} nodes "
        f"(level {finest}{regions}); edges {counts}\n"
        "grey: finest mesh level, red: regional refinement, orange: nodes in region, "
        f"blue/green: {sample} sampled grid→mesh / mesh→grid edges",
        fontsize=9,
    )
    fig.tight_layout()
    fig.savefig(path, dpi=dpi)

