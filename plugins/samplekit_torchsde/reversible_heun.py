"""Reversible Heun (Kidger et al. 2021), torchsde ``reversible_heun``, on the reverse SDE in SNR time.

With a second state z and the drift F_0 = F(z_0) carried from the previous step, a step of size h
with Brownian increment dW of dy = F dtau + G dW is

    z_1 = 2 y_0 - z_0 + F_0 h + G_0 dW,
    y_1 = y_0 + (F_0 + F(z_1, tau_1)) h / 2 + (G_0 + G_1) dW / 2,

one network call a step (plus one at the start, for F at x_T).  The method is algebraically
reversible: on dy = lambda y dtau its step matrix has determinant -1, so besides the principal root
~ e^{lambda h} it has a parasitic root ~ -e^{-lambda h}, which grows wherever solutions contract.
The reverse SDE in s = T - t contracts hard (noise of scale sigma_T is removed down to the data's
width: amplification ~e^9 on the ring).  So this solver
integrates the same SDE in SNR time (``snr_time``): tau = alpha^2 / sigma^2, y = alpha x / sigma^2,

    dy = D(x, t) dtau + dW_tau,

which never contracts (dD/dy = Cov[X_0 | x] >= 0); torchsde solves it as Stratonovich, equal to Ito
for this unit additive noise.  The default grid is uniform in log-SNR (geometric in tau).

The carried (F, G, z) is the step state: each grid step is one sdeint call handed that state
(``extra_solver_state``), so the multistep structure survives and the core loop still drives it.
"""

from __future__ import annotations

from dataclasses import replace

from samplekit.solver import Plan, Solver
from samplekit_torchsde.reverse_sde import StepBrownian, sdeint_step
from samplekit_torchsde.snr_time import SNRTimeSDE, scale, snr


class ReversibleHeun(Solver):
    """Reversible Heun on the reverse SDE in SNR time (strong order 1 for additive noise); one call a step."""

    name = "sde_reversible_heun"
    order = 1.0
    stochastic = True
    nfe_per_step = 1
    default_schedule = "logsnr"

    def plan(self, nfe: int, calls_per_eval: int = 1) -> Plan:
        """One call a step, plus the first drift evaluation at x_T."""
        evals = nfe // calls_per_eval
        if evals < 2 + (1 if self.denoise_final else 0):
            self.refuse_budget(nfe, calls_per_eval, 2 + (1 if self.denoise_final else 0), "1 at the start + 1 per step")
        steps = super().plan((evals - 1) * calls_per_eval, calls_per_eval).n_steps
        return Plan(steps, nfe, calls_per_eval)

    def plan_for_grid(self, n_steps: int, calls_per_eval: int = 1) -> Plan:
        """A given grid of n steps needs n + 1 evaluations (the first drift at x_T)."""
        plan = super().plan_for_grid(n_steps, calls_per_eval)
        return replace(plan, nfe=plan.nfe + calls_per_eval)

    def init(self, model, x, ts, noise, plan):
        ts = ts.to(device="cpu", dtype=ts.dtype)
        tau = snr(model.sde, ts)
        y0 = (x * scale(model.sde, ts[0], x)).reshape(x.shape[0], -1)
        sde = SNRTimeSDE(model, x.shape[1:])
        bm = StepBrownian(tau, noise, y0)
        return sde, bm, tau, (sde.f(tau[0], y0), sde.g(tau[0], y0), y0)

    def step(self, model, i, t0, t1, x, state, noise, plan):
        sde, bm, tau, carried = state
        y0 = (x * scale(model.sde, t0, x)).reshape(x.shape[0], -1)
        sde.shape_probe_at = y0  # reversible Heun never needs F(y0): it carries F(z0)
        ys, carried = sdeint_step(sde, y0, tau, i, bm, "reversible_heun", extra=True, extra_solver_state=carried)
        sde.shape_probe_at = None
        return ys[-1].reshape(x.shape) / scale(model.sde, t1, x), (sde, bm, tau, carried), None
