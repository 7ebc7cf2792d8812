"""Linear observations y = A x + tau n (n ~ N(0, I), tau >= 0), decoupled in an orthonormal basis.

With the SVD A = U S V^T (r non-zero singular values s_i), the coordinates z = V^T x split into
r *observed* ones z_o and d - r *free* ones z_u.  The observation says exactly
    ybar = S^{-1} U^T y = z_o + (tau / s_i) n_i,
so each observed coordinate is seen with noise std tau_i = tau / s_i, and z_u is not seen at all.
score_sde's inpainting (V = identity, a permutation) and colorization (a fixed orthogonal
mix of the channels at each pixel) are the two structured instances; both are given here
without a dense d x d matrix.  Every observation exposes:
    split(x) -> (z_o (B, r), z_u (B, d - r)),  merge(z_o, z_u) -> x,
    ybar (r,), tau (r,) = per-coordinate noise std, matrix() / y_vector() (dense A and y, for small d).
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import torch

from samplekit.errors import InvalidArgumentError

Tensor = torch.Tensor


def _noise_std(noise_std) -> float:
    value = float(noise_std)
    if not math.isfinite(value) or value < 0:
        raise InvalidArgumentError(f"noise_std={noise_std!r} must be a finite number >= 0 (0 = noise-free observation)")
    return value


class LinearObservation:
    """Base: ``split``/``merge`` to the orthonormal (observed, free) coordinates, ``ybar``, ``tau``."""

    shape: tuple[int, ...]
    ybar: Tensor
    singular_values: Tensor
    noise_std: float

    @property
    def d(self) -> int:
        return math.prod(self.shape)

    @property
    def r(self) -> int:
        return self.ybar.numel()

    @property
    def tau(self) -> Tensor:
        """Noise std of each observed coordinate: noise_std / s_i."""
        return self.noise_std / self.singular_values

    def split(self, x: Tensor) -> tuple[Tensor, Tensor]:
        raise NotImplementedError

    def merge(self, z_obs: Tensor, z_free: Tensor) -> Tensor:
        raise NotImplementedError

    def matrix(self) -> Tensor:
        """Dense A (m, d) in float64 (small d only)."""
        raise NotImplementedError

    def y_vector(self) -> Tensor:
        """y as a vector (m,) matching ``matrix()``."""
        raise NotImplementedError

    def apply(self, x: Tensor) -> Tensor:
        """A x (noise-free), shape (B, m)."""
        return x.flatten(1).to(torch.float64) @ self.matrix().T

    def check_shape(self, shape: Sequence[int], argument: str = "model") -> None:
        if tuple(shape) != tuple(self.shape):
            raise InvalidArgumentError(
                f"{argument} has sample shape {tuple(shape)} but the observation was built for "
                f"{tuple(self.shape)}; build the observation for the model's shape"
            )

    def __repr__(self) -> str:
        return f"{type(self).__name__}(shape={self.shape}, observed={self.r}/{self.d}, noise_std={self.noise_std:g})"


class DenseObservation(LinearObservation):
    """A general y = A x + noise_std n with A of shape (m, d); x of shape ``shape`` (default (d,))."""

    def __init__(self, A, y, noise_std: float = 0.0, shape: Sequence[int] | None = None, rtol: float = 1e-10) -> None:
        A = torch.as_tensor(A, dtype=torch.float64)
        y = torch.as_tensor(y, dtype=torch.float64).flatten()
        if A.ndim != 2:
            raise InvalidArgumentError(f"A has shape {tuple(A.shape)}; pass a matrix (m, d)")
        self.shape = tuple(shape) if shape is not None else (A.shape[1],)
        if math.prod(self.shape) != A.shape[1]:
            raise InvalidArgumentError(f"A has {A.shape[1]} columns for samples of shape {self.shape}; they must match")
        if y.shape != (A.shape[0],):
            raise InvalidArgumentError(
                f"y has {y.numel()} entries for A with {A.shape[0]} rows; pass one value per row"
            )
        if not (torch.isfinite(A).all() and torch.isfinite(y).all()):
            raise InvalidArgumentError("A and y must be finite")
        self.noise_std = _noise_std(noise_std)
        U, S, Vh = torch.linalg.svd(A, full_matrices=True)
        r = int((S > rtol * S.max()).sum()) if S.numel() else 0
        if r == 0:
            raise InvalidArgumentError("A is zero: the observation carries no information")
        self.A, self.y = A, y
        self.V = Vh.T  # (d, d), columns: observed first, then free
        self.singular_values = S[:r]
        self.ybar = (U[:, :r].T @ y) / S[:r]

    def split(self, x):
        z = x.flatten(1) @ self.V.to(x.dtype)
        return z[:, : self.r], z[:, self.r :]

    def merge(self, z_obs, z_free):
        z = torch.cat([z_obs, z_free], dim=1)
        return (z @ self.V.T.to(z.dtype)).reshape(z.shape[0], *self.shape)

    def matrix(self):
        return self.A

    def y_vector(self):
        return self.y


class Inpainting(LinearObservation):
    """Known pixels: y = x[mask] (+ noise); ``mask`` (bool, the sample shape) is True where x is known.

    ``y`` is an array of the sample shape (values where mask is False are ignored) or the known
    values in mask order.  The decoupled basis is the identity: observed = known pixels.
    """

    def __init__(self, mask, y, noise_std: float = 0.0) -> None:
        mask = torch.as_tensor(mask)
        if mask.dtype != torch.bool:
            if not bool(((mask == 0) | (mask == 1)).all()):
                raise InvalidArgumentError("mask must be boolean (or 0/1): True/1 where the pixel is known")
            mask = mask.bool()
        self.shape = tuple(mask.shape)
        self.mask = mask.flatten()
        if not self.mask.any():
            raise InvalidArgumentError("mask has no known pixel; inpainting needs at least one")
        y = torch.as_tensor(y, dtype=torch.float64)
        if tuple(y.shape) == self.shape:
            y = y.flatten()[self.mask]
        elif y.shape != (int(self.mask.sum()),):
            raise InvalidArgumentError(
                f"y has shape {tuple(y.shape)}; pass an array of the mask's shape {self.shape} "
                f"or the {int(self.mask.sum())} known values in mask order"
            )
        if not torch.isfinite(y).all():
            raise InvalidArgumentError("y must be finite at the known pixels")
        self.noise_std = _noise_std(noise_std)
        self.ybar = y.flatten()
        self.singular_values = torch.ones_like(self.ybar)
        self._index_obs = torch.nonzero(self.mask).flatten()
        self._index_free = torch.nonzero(~self.mask).flatten()

    def split(self, x):
        flat = x.flatten(1)
        return flat[:, self._index_obs.to(x.device)], flat[:, self._index_free.to(x.device)]

    def merge(self, z_obs, z_free):
        out = z_obs.new_empty(z_obs.shape[0], self.d)
        out[:, self._index_obs.to(out.device)] = z_obs
        out[:, self._index_free.to(out.device)] = z_free
        return out.reshape(out.shape[0], *self.shape)

    def matrix(self):
        return torch.eye(self.d, dtype=torch.float64)[self._index_obs]

    def y_vector(self):
        return self.ybar


class Colorization(LinearObservation):
    """A fixed channel combination at every pixel: y[h, w] = sum_c c_c x[c, h, w] (+ noise).

    As score_sde does, x is decoupled at each pixel by an orthogonal C x C matrix Q whose first
    row is c / |c|: the first coordinate (gray / |c|) is observed, the other C - 1 are free.
    ``shape`` = (C, H, W) (or (C, ...)); ``y`` has shape (H, W) (or (1, H, W)).
    """

    def __init__(self, weights, y, shape: Sequence[int], noise_std: float = 0.0) -> None:
        c = torch.as_tensor(weights, dtype=torch.float64).flatten()
        self.shape = tuple(int(n) for n in shape)
        if len(self.shape) < 2 or self.shape[0] != c.numel() or c.numel() < 2:
            raise InvalidArgumentError(
                f"weights has {c.numel()} entries for samples of shape {self.shape}; pass one "
                "weight per channel (at least 2 channels; shape = (C, H, W))"
            )
        norm = float(c.norm())
        if norm == 0 or not math.isfinite(norm):
            raise InvalidArgumentError("weights must be finite and not all zero")
        y = torch.as_tensor(y, dtype=torch.float64)
        pixels = self.shape[1:]
        if tuple(y.shape) == (1, *pixels):
            y = y[0]
        if tuple(y.shape) != pixels:
            raise InvalidArgumentError(f"y has shape {tuple(y.shape)}; pass the gray image of shape {pixels}")
        self.noise_std = _noise_std(noise_std)
        self.weights = c
        self.Q = _orthogonal_with_first_row(c / norm)  # (C, C)
        self.gray = y.flatten()
        self.ybar = self.gray / norm
        self.singular_values = torch.full_like(self.ybar, norm)

    def _coords(self, x):  # (B, C, P) -> Q x per pixel
        return torch.einsum("ij,bjp->bip", self.Q.to(x.dtype), x.reshape(x.shape[0], self.shape[0], -1))

    def split(self, x):
        z = self._coords(x)
        return z[:, 0], z[:, 1:].flatten(1)

    def merge(self, z_obs, z_free):
        C = self.shape[0]
        z = torch.cat([z_obs[:, None], z_free.reshape(z_free.shape[0], C - 1, -1)], dim=1)
        x = torch.einsum("ji,bjp->bip", self.Q.to(z.dtype), z)
        return x.reshape(x.shape[0], *self.shape)

    def matrix(self):
        P = math.prod(self.shape[1:])
        return torch.kron(self.weights[None], torch.eye(P, dtype=torch.float64))

    def y_vector(self):
        return self.gray


def _orthogonal_with_first_row(u: Tensor) -> Tensor:
    """An orthogonal matrix whose first row is the unit vector u (Householder reflection e_1 -> u)."""
    C = u.numel()
    e1 = torch.zeros(C, dtype=u.dtype)
    e1[0] = 1.0
    v = e1 - u
    if float(v.norm()) < 1e-12:
        return torch.eye(C, dtype=u.dtype)
    H = torch.eye(C, dtype=u.dtype) - 2.0 * torch.outer(v, v) / (v @ v)
    return H  # symmetric, H e1 = u, so its first row is u
