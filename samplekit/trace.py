"""Trace (divergence) estimators for the probability-flow ODE likelihood.

The likelihood integrates div F(x_t, t) = tr(dF/dx) along the ODE, F = f - g^2 s / 2.
An estimator receives F already computed from x (ONE network call, counted in model.nfe)
and returns P estimates of the divergence per sample, shape (B, P), using vector-Jacobian
products (VJPs: one backward pass each, counted in ``estimator.n_vjp``):

    exact                  tr(J) = sum_i e_i^T J e_i: d VJPs per call, P = 1, no variance;
    hutchinson_gaussian    v^T J v with v ~ N(0, I):            Var = ||J||_F^2 + tr(J J);
    hutchinson_rademacher  v^T J v with v_i = +-1 (prob. 1/2):  Var = that - 2 sum_i J_ii^2,
each Hutchinson variant taking one VJP per probe.  The probes are drawn once per trajectory
(``draw_probes``) and held fixed along it, so each probe gives an unbiased estimate of the
whole integral and the P estimates are independent: their spread gives a standard error.

A third-party estimator subclasses ``TraceEstimator`` (or implements the same three members,
``stochastic``, ``draw_probes`` and ``estimate``; ``check`` is optional) and registers the
class with the ``samplekit_register_trace_estimators`` hook:
``register("my_estimator", MyEstimator, stochastic=True)``.
"""

from __future__ import annotations

import torch

from samplekit.checks import positive_int
from samplekit.errors import InvalidArgumentError
from samplekit.noise import NoiseSource

Tensor = torch.Tensor


class TraceEstimator:
    """Base class: estimate tr(dF/dx) per sample from F(x) and x (x requires grad)."""

    name = "trace"
    #: True if ``estimate`` is random (then several probes give a standard error)
    stochastic = True

    def __init__(self) -> None:
        self.n_vjp = 0

    def check(self, d: int, n_probes: int) -> None:
        """Raise a clear error before any work if this estimator cannot handle d dimensions or n_probes."""

    def draw_probes(self, noise: NoiseSource, x: Tensor, n_probes: int) -> Tensor | None:
        """Probes held fixed along one trajectory, shape (n_probes, B, *shape), or None."""
        return None

    def estimate(self, out: Tensor, x: Tensor, probes: Tensor | None, create_graph: bool = False) -> Tensor:
        """Divergence estimates of shape (B, P) for out = F(x) (x requires grad).

        ``create_graph=True``: the estimates stay differentiable (in x and in whatever F depends on), for
        ``log_likelihood(method="hermite_pec")``, which differentiates them along the trajectory.
        """
        raise NotImplementedError

    def vjp(self, out: Tensor, x: Tensor, v: Tensor, retain: bool, create_graph: bool = False) -> Tensor:
        """v^T dF/dx (one backward pass, counted)."""
        self.n_vjp += 1
        (grad,) = torch.autograd.grad(
            out, x, grad_outputs=v, retain_graph=retain or create_graph, create_graph=create_graph
        )
        return grad

    def __repr__(self) -> str:
        return f"{type(self).__name__}()"


class ExactTrace(TraceEstimator):
    """Exact divergence: d vector-Jacobian products per evaluation (for small d)."""

    name = "exact"
    stochastic = False

    def __init__(self, *, max_dim: int = 1024) -> None:
        super().__init__()
        self.max_dim = positive_int(max_dim, "max_dim")

    def check(self, d: int, n_probes: int) -> None:
        if d > self.max_dim:
            raise InvalidArgumentError(
                f"estimator='exact' takes d={d} backward passes per ODE evaluation, above max_dim={self.max_dim}; "
                "use estimator='hutchinson_rademacher' (one backward pass per probe), or raise the limit with "
                "estimator=sk.get_trace_estimator('exact', max_dim=...)"
            )
        if n_probes != 1:
            raise InvalidArgumentError(
                f"n_probes={n_probes} has no effect with estimator='exact' (it has no probes); pass n_probes=1"
            )

    def estimate(self, out: Tensor, x: Tensor, probes: Tensor | None, create_graph: bool = False) -> Tensor:
        flat_out = out.flatten(1)
        d = flat_out.shape[1]
        total = torch.zeros(x.shape[0], dtype=x.dtype, device=x.device)
        basis = torch.zeros_like(flat_out)
        for i in range(d):  # a loop over dimensions, never over samples
            basis.zero_()
            basis[:, i] = 1
            v = basis.view_as(out)
            v = v.clone() if create_graph else v  # a kept graph holds v: basis is reused in place
            grad = self.vjp(out, x, v, retain=i < d - 1, create_graph=create_graph)
            total = total + grad.flatten(1)[:, i]
        return total[:, None]


class Hutchinson(TraceEstimator):
    """Hutchinson's estimator v^T (dF/dx) v, one backward pass per probe."""

    def check(self, d: int, n_probes: int) -> None:
        positive_int(n_probes, "n_probes", "a positive integer (use 2 or more for a standard error)")

    def draw_probes(self, noise: NoiseSource, x: Tensor, n_probes: int) -> Tensor:
        gauss = noise.randn((n_probes, *x.shape[1:]), dtype=x.dtype)  # (B, P, *shape)
        return self.transform(gauss.transpose(0, 1).contiguous())

    def transform(self, gauss: Tensor) -> Tensor:
        return gauss

    def estimate(self, out: Tensor, x: Tensor, probes: Tensor | None, create_graph: bool = False) -> Tensor:
        if probes is None:
            raise TypeError(f"{type(self).__name__}.estimate needs probes (from draw_probes)")
        n = probes.shape[0]
        ests = [
            (self.vjp(out, x, v, retain=p < n - 1, create_graph=create_graph) * v).flatten(1).sum(1)
            for p, v in enumerate(probes)
        ]
        return torch.stack(ests, dim=1)


class HutchinsonGaussian(Hutchinson):
    """Hutchinson trace estimator with Gaussian probes v ~ N(0, I)."""

    name = "hutchinson_gaussian"


class HutchinsonRademacher(Hutchinson):
    """Hutchinson trace estimator with Rademacher probes v_i = +-1 (lower variance than Gaussian)."""

    name = "hutchinson_rademacher"

    def transform(self, gauss: Tensor) -> Tensor:
        # the sign of a standard normal is a Rademacher variable
        return torch.where(gauss >= 0, torch.ones_like(gauss), -torch.ones_like(gauss))


ESTIMATORS = (ExactTrace, HutchinsonGaussian, HutchinsonRademacher)
