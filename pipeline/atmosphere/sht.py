"""Spherical-harmonic transforms and operators on the sphere (ducc0.sht), for the dynamical core.

Spectral fields are complex arrays ``[nalm]`` in ducc0's (healpy) triangular layout: index
``m (2 lmax + 1 - m) / 2 + l`` holds the coefficient of Y_l^m for 0 ≤ m ≤ l ≤ lmax (negative m
follow from reality). Grid fields are real ``[nlat, nlon]`` with rings north → south
(colatitude θ increasing) and the first pixel of each ring at λ = 0.

Vector fields are stored as (V_θ, V_φ) = (-v, u), ducc0's spin-1 convention (θ points south). For
the unit-sphere gradient E-mode and curl B-mode, with L̃ = l(l+1),

    spin-1 synthesis of [√L̃ χ_lm, √L̃ ψ_lm]  =  ∇χ + k × ∇ψ        (checked in the tests)

so on a sphere of radius a, V = ∇χ + k × ∇ψ has E = √L̃ χ / a, B = √L̃ ψ / a, and

    δ = ∇·V = -√L̃ E / a,        ζ = k·∇×V = -√L̃ B / a,        ∇² Y_l^m = -L̃ / a² Y_l^m.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cached_property

import ducc0
import numpy as np

EARTH_RADIUS = 6.371e6  # a, m


@dataclass(frozen=True)
class SphericalGrid:
    """A spectral truncation ``lmax`` (triangular) with a grid of ``nlat`` × ``nlon`` points.

    ``geometry`` is ducc0's ring layout: "GL" (Gauss–Legendre, the core's native grid), "CC"
    (equiangular with both poles, e.g. 121 × 240) or "F1" (equiangular, rings half a spacing off
    the poles, e.g. WB2's 32 × 64).
    """

    lmax: int
    nlat: int
    nlon: int
    geometry: str = "GL"
    radius: float = EARTH_RADIUS
    nthreads: int = 1

    @cached_property
    def degree(self) -> np.ndarray:
        """l of every coefficient, [nalm] int."""
        return np.concatenate([np.arange(m, self.lmax + 1) for m in range(self.lmax + 1)])

    @cached_property
    def order(self) -> np.ndarray:
        """m of every coefficient, [nalm] int."""
        return np.concatenate([np.full(self.lmax + 1 - m, m) for m in range(self.lmax + 1)])

    @property
    def nalm(self) -> int:
        return (self.lmax + 1) * (self.lmax + 2) // 2

    def index(self, l: int, m: int) -> int:  # noqa: E741 (l is the field's name for the degree)
        """Position of Y_l^m in the coefficient array."""
        return m * (2 * self.lmax + 1 - m) // 2 + l

    @cached_property
    def laplacian_eigenvalues(self) -> np.ndarray:
        """-l(l+1)/a², [nalm]: ∇² in spectral space."""
        return -self.degree * (self.degree + 1.0) / self.radius**2

    @cached_property
    def inverse_laplacian(self) -> np.ndarray:
        """-a²/(l(l+1)), [nalm], with 0 for l = 0 (the mean has no streamfunction)."""
        out = np.zeros(self.nalm)
        out[1:] = 1.0 / self.laplacian_eigenvalues[1:]  # index 0 is (l, m) = (0, 0)
        return out

    @cached_property
    def _sqrt_ll1(self) -> np.ndarray:
        return np.sqrt(self.degree * (self.degree + 1.0))

    @cached_property
    def colatitude(self) -> np.ndarray:
        """θ of the rings, [nlat] radians, 0 (north) → π."""
        if self.geometry == "GL":
            return ducc0.misc.GL_thetas(self.nlat)
        if self.geometry == "CC":
            return np.linspace(0.0, np.pi, self.nlat)
        if self.geometry == "F1":
            return (np.arange(self.nlat) + 0.5) * np.pi / self.nlat
        raise ValueError(f"geometry must be GL, CC or F1, got {self.geometry!r}")

    @cached_property
    def latitude(self) -> np.ndarray:
        """φ in degrees, [nlat], descending."""
        return 90.0 - np.rad2deg(self.colatitude)

    @cached_property
    def longitude(self) -> np.ndarray:
        """λ in degrees, [nlon], 0 ≤ λ < 360."""
        return np.arange(self.nlon) * (360.0 / self.nlon)

    @cached_property
    def quadrature_weights(self) -> np.ndarray:
        """w [nlat, 1] with Σ w · f = global mean of f (exact for band-limited GL fields)."""
        w = ducc0.sht.get_gridweights(self.geometry, self.nlat)
        return (w / w.sum())[:, None] / self.nlon

    def global_mean(self, field: np.ndarray) -> np.ndarray:
        """Area mean over the last two axes [..., nlat, nlon] → [...]."""
        return np.einsum("...ij,ij->...", field, np.broadcast_to(self.quadrature_weights,
                                                                 field.shape[-2:]))

    # --- transforms -----------------------------------------------------------------------
    def _kw(self):
        return {"lmax": self.lmax, "geometry": self.geometry, "nthreads": self.nthreads}

    def to_grid(self, alm: np.ndarray) -> np.ndarray:
        """Scalar synthesis: [nalm] complex → [nlat, nlon] real."""
        return ducc0.sht.synthesis_2d(alm=alm[None], spin=0, ntheta=self.nlat, nphi=self.nlon,
                                      **self._kw())[0]

    def to_spectral(self, field: np.ndarray) -> np.ndarray:
        """Scalar analysis (quadrature projection): [nlat, nlon] real → [nalm] complex."""
        return ducc0.sht.analysis_2d(map=np.ascontiguousarray(field)[None], spin=0,
                                     **self._kw())[0]

    def gradient(self, alm: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """(∂f/∂x, ∂f/∂y) = ((1/(a cos φ)) ∂f/∂λ, (1/a) ∂f/∂φ), each [nlat, nlon], of f [nalm]."""
        d = ducc0.sht.synthesis_2d_deriv1(alm=alm[None], ntheta=self.nlat, nphi=self.nlon,
                                          **self._kw())  # [2, H, W]: ∂_θ f, ∂_λ f / sin θ
        return d[1] / self.radius, -d[0] / self.radius

    def winds(self, psi: np.ndarray, chi: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """(u, v) [nlat, nlon] m s⁻¹ of V = k × ∇ψ + ∇χ for ψ, χ [nalm] in m² s⁻¹."""
        alm = np.stack([self._sqrt_ll1 * chi, self._sqrt_ll1 * psi]) / self.radius
        v = ducc0.sht.synthesis_2d(alm=alm, spin=1, ntheta=self.nlat, nphi=self.nlon,
                                   **self._kw())
        return v[1], -v[0]

    def div_curl(self, u: np.ndarray, v: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """(∇·V, k·∇×V), each [nalm], of the vector field (u, v) [nlat, nlon]."""
        eb = ducc0.sht.analysis_2d(map=np.stack([-v, u]), spin=1, **self._kw())
        return -self._sqrt_ll1 * eb[0] / self.radius, -self._sqrt_ll1 * eb[1] / self.radius

    def resample(self, alm: np.ndarray, lmax: int) -> np.ndarray:
        """The same field truncated or zero-padded to ``lmax``: [nalm] → [nalm(lmax)]."""
        out = np.zeros((lmax + 1) * (lmax + 2) // 2, dtype=alm.dtype)
        for m in range(min(lmax, self.lmax) + 1):
            n = min(lmax, self.lmax) + 1 - m
            src = self.index(m, m)
            dst = m * (2 * lmax + 1 - m) // 2 + m
            out[dst:dst + n] = alm[src:src + n]
        return out


def gaussian_grid(lmax: int, nlat: int, nlon: int, nthreads: int = 1) -> SphericalGrid:
    """The core's native Gauss–Legendre grid (e.g. T42 on 64 × 128)."""
    return SphericalGrid(lmax=lmax, nlat=nlat, nlon=nlon, geometry="GL", nthreads=nthreads)
