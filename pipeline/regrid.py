"""First-order conservative regridding between regular latitude/longitude grids.

On a rectilinear grid the remapping factorises into one latitude and one longitude step
(Hoyer's scheme, which xarray-regrid also uses):

    out[i, k] = Σ_j Σ_l  A_lat[i, j] · A_lon[k, l] · x[j, l] / (area_lat[i] · area_lon[k])

where A_lat[i, j] is the overlap of target band i and source band j measured in sin φ (the
area of a latitude band on the unit sphere is 2π Δsin φ) and A_lon[k, l] the overlap of the
longitude intervals in degrees, with periodic wrap. Cell edges are the midpoints between
centres; the outermost latitude edges are clipped to ±90°. So on WeatherBench2's equiangular
grids *with poles* (721 × 1440, 121 × 240, …) the pole rows are half cells — [90 − Δ/2, 90] —
and on grids without poles (e.g. 32 × 64 at ±87.19°) the outer cells reach the pole.

Why not xarray-regrid's own `ds.regrid.conservative`: it extrapolates the outer edges past the
pole ([90 − Δ/2, 90 + Δ/2]) and weights a source band by sin φ evaluated over that symmetric
interval, which is exactly 0 for a cell centred on the pole: the pole row of a 721-row source
gets no weight at all, and a source cell split between two target cells is split in degrees,
not in sin φ. Area-weighted global means then drift (2.5e-6 relative for 73×144 → 25×48,
2.8e-10 for 721×1440 → 121×240) and the pole rows differ by a few percent of the field's
spread (tests/pipeline/test_regrid.py shows it). The weights here are exact, so the
area-weighted global mean is conserved to rounding (~1e-15 in float64).

Conventions: latitude in any monotonic order (the output follows the target's order), longitude
in degrees (any origin; periodic), both 1-D. Weights are [H_out, H_in] and [W_out, W_in],
applied as sparse products plane by plane; the data stay lazy when they are dask arrays
(whole (lat, lon) planes per block).
"""

from __future__ import annotations

import numpy as np
import xarray as xr
from scipy import sparse


def equiangular_grid(n_lat: int, n_lon: int) -> tuple[np.ndarray, np.ndarray]:
    """WB2's equiangular grid with poles: lat [n_lat] 90 → -90, lon [n_lon] 0, 360/n_lon, …"""
    return np.linspace(90.0, -90.0, n_lat), np.arange(n_lon) * (360.0 / n_lon)


def latitude_edges(lat: np.ndarray) -> np.ndarray:
    """Cell edges [H+1] (degrees, same order as lat [H]): midpoints, outer edges clipped to ±90."""
    lat = np.asarray(lat, dtype=np.float64)
    if lat.size < 2:
        raise ValueError(f"need at least two latitudes, got {lat.size}")
    mid = (lat[:-1] + lat[1:]) / 2
    edges = np.concatenate([[2 * lat[0] - mid[0]], mid, [2 * lat[-1] - mid[-1]]])
    return np.clip(edges, -90.0, 90.0)


def longitude_edges(lon: np.ndarray) -> np.ndarray:
    """Cell edges [W+1] (degrees, ascending, edges[-1] - edges[0] = 360 for a global grid)."""
    lon = np.asarray(lon, dtype=np.float64)
    if lon.size < 2 or np.any(np.diff(lon) <= 0):
        raise ValueError("longitudes must be ascending, at least two")
    mid = (lon[:-1] + lon[1:]) / 2
    return np.concatenate([[2 * lon[0] - mid[0]], mid, [2 * lon[-1] - mid[-1]]])


def _interval_overlap(dst: np.ndarray, src: np.ndarray) -> np.ndarray:
    """Overlap lengths [N_dst, N_src] of intervals given by ascending edges [N+1]."""
    lo = np.maximum(dst[:-1, None], src[None, :-1])
    hi = np.minimum(dst[1:, None], src[None, 1:])
    return np.maximum(hi - lo, 0.0)


def _normalise_rows(overlap: np.ndarray, what: str) -> np.ndarray:
    total = overlap.sum(axis=1, keepdims=True)
    if np.any(total <= 0):
        raise ValueError(f"{what}: {int(np.sum(total <= 0))} target cells lie outside the source")
    return overlap / total


def gaussian_latitude_edges(nlat: int) -> np.ndarray:
    """Edges [nlat + 1], north → south, of the cells whose areas are the Gauss–Legendre weights.

    Midpoints between Gaussian latitudes are not the cells a GL quadrature integrates over; these
    are: sin φ of edge k = 1 − Σ_{i<k} w_i / 2π (ducc0's weights sum to 4π with nphi = 1).
    """
    import ducc0

    w = ducc0.misc.GL_weights(nlat, 1)
    sin_edges = 1.0 - np.concatenate([[0.0], np.cumsum(w) / (2.0 * np.pi)])
    return np.rad2deg(np.arcsin(np.clip(sin_edges, -1.0, 1.0)))


def latitude_weights(src_lat: np.ndarray, dst_lat: np.ndarray, *,
                     src_edges: np.ndarray | None = None) -> np.ndarray:
    """[H_dst, H_src] weights, rows summing to 1: band overlaps measured in sin φ.

    ``src_edges`` [H_src + 1] (same order as ``src_lat``) replaces the midpoint edges, e.g.
    ``gaussian_latitude_edges`` for a Gauss–Legendre source.
    """
    def sin_edges(lat, edges=None):  # ascending sin φ edges, and the way back to lat's order
        edges = np.sin(np.deg2rad(latitude_edges(lat) if edges is None else edges))
        return (edges, slice(None)) if lat[0] < lat[-1] else (edges[::-1], slice(None, None, -1))

    src_sin, src_order = sin_edges(np.asarray(src_lat, dtype=np.float64), src_edges)
    dst_sin, dst_order = sin_edges(np.asarray(dst_lat, dtype=np.float64))
    src_edges, dst_edges = src_sin, dst_sin
    overlap = _interval_overlap(dst_edges, src_edges)[dst_order][:, src_order]
    return _normalise_rows(overlap, "latitude")


def longitude_weights(src_lon: np.ndarray, dst_lon: np.ndarray) -> np.ndarray:
    """[W_dst, W_src] weights, rows summing to 1: interval overlaps with periodic wrap.

    The source must be global (its edges span 360°); the target may be any ascending set.
    """
    src_edges = longitude_edges(src_lon)
    if not np.isclose(src_edges[-1] - src_edges[0], 360.0):
        raise ValueError(f"source longitudes span {src_edges[-1] - src_edges[0]:g}° of edges, "
                         "conservative regridding here needs a global (360°) source")
    dst_edges = longitude_edges(dst_lon)
    # Shift the target so it starts inside the source's first period, then count the source
    # one period either side, which covers any target interval narrower than 360°.
    dst_edges = dst_edges - 360.0 * np.floor((dst_edges[0] - src_edges[0]) / 360.0)
    overlap = sum(_interval_overlap(dst_edges, src_edges + shift)
                  for shift in (-360.0, 0.0, 360.0))
    return _normalise_rows(overlap, "longitude")


def regrid_conservative(x: xr.DataArray, lat: np.ndarray, lon: np.ndarray) -> xr.DataArray:
    """Regrid ``x`` [..., latitude, longitude] (any other dims) onto (lat [H'], lon [W']).

    Returns [..., latitude=H', longitude=W'] in ``x``'s dim order, float64 or wider, lazy if
    ``x`` is; the output coordinates are exactly ``lat`` and ``lon``. NaNs propagate (fill them
    first): a skipna variant would need a second, mask-weighted pass.
    """
    w_lat = latitude_weights(x["latitude"].values, lat)  # [H', H]
    w_lon = longitude_weights(x["longitude"].values, lon)  # [W', W]
    dims = x.dims
    x = x.drop_vars(["latitude", "longitude"], errors="ignore")
    if x.chunks is not None:  # each block must hold whole (latitude, longitude) planes
        x = x.chunk({"latitude": -1, "longitude": -1})
    out = xr.apply_ufunc(
        _apply_weights, x, kwargs={"w_lat": w_lat, "w_lon": w_lon},
        input_core_dims=[["latitude", "longitude"]], output_core_dims=[["latitude", "longitude"]],
        exclude_dims={"latitude", "longitude"}, dask="parallelized",
        output_dtypes=[np.result_type(x.dtype, np.float64)],
        dask_gufunc_kwargs={"output_sizes": {"latitude": len(lat), "longitude": len(lon)}})
    return out.transpose(*dims).assign_coords(latitude=np.asarray(lat, dtype=np.float64),
                                              longitude=np.asarray(lon, dtype=np.float64))


def regrid_conservative_array(field: np.ndarray, src_lat, src_lon, dst_lat, dst_lon, *,
                              src_lat_edges: np.ndarray | None = None) -> np.ndarray:
    """numpy form of `regrid_conservative`: field [..., H, W] → [..., H', W'] (float64)."""
    return _apply_weights(np.asarray(field),
                          w_lat=latitude_weights(src_lat, dst_lat, src_edges=src_lat_edges),
                          w_lon=longitude_weights(src_lon, dst_lon))


def _apply_weights(x: np.ndarray, *, w_lat: np.ndarray, w_lon: np.ndarray) -> np.ndarray:
    """x [..., H, W] → w_lat [H', H] · x · w_lonᵀ [W, W'] = [..., H', W'] in float64."""
    # Each target cell overlaps only a few source cells, so the weights are sparse: one sparse
    # product per (H, W) plane is ~100x less arithmetic than dense BLAS at 721x1440 → 121x240.
    w_lat, w_lon_t = sparse.csr_matrix(w_lat), sparse.csr_matrix(w_lon.T)
    planes = np.asarray(x).reshape(-1, *x.shape[-2:])
    dtype = np.result_type(x.dtype, np.float64)
    out = np.empty((planes.shape[0], w_lat.shape[0], w_lon_t.shape[1]), dtype=dtype)
    for i, plane in enumerate(planes):
        out[i] = (w_lat @ plane.astype(dtype, copy=False)) @ w_lon_t
    return out.reshape(*x.shape[:-2], *out.shape[-2:])


def area_weights(lat: np.ndarray, edges: np.ndarray | None = None) -> np.ndarray:
    """Relative areas [H] of latitude bands (Δ sin φ over the cell edges), summing to 1 globally.

    The weights for an area-weighted mean that match `regrid_conservative`'s cells exactly
    (pole rows of grids with poles are half cells); ``edges`` as in `latitude_weights`.
    """
    edges = np.sin(np.deg2rad(latitude_edges(lat) if edges is None else edges))
    return np.abs(np.diff(edges)) / 2.0
