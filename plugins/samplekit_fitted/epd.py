"""EPD-Solver (Zhu, Wang, Zhao, Zhang & Zhang 2025, "Distilling parallel gradients for fast ODE solvers
of diffusion models"): K parallel gradient evaluations per step, their levels r_ik, simplex weights
w_ik and a step scale c_i fitted to a teacher (the vector mean-value theorem: the step's mean direction
as a convex mix of K directions inside the step).

Parameters and fit as ``amed.AMED`` with K = ``directions`` (default 2): the K evaluations of a step
depend only on x_i and eps_i, so they can run in one batched call, which is how the paper counts its
latency; samplekit counts network evaluations per sample, so a step costs 1 + K here (EPD at "5 NFE"
in the paper spends more evaluations than 5 in this count).  Departure: the intermediate points are the
DDIM points from (x_i, eps_i) on the fitted levels (EPD's plugin variant on iPNDM is not built), the loss
is the end-point error (the paper matches the teacher at each step), and the grid is learned too unless
``learn_grid=False``.
"""

from __future__ import annotations

from samplekit_fitted.amed import AMED


class EPD(AMED):
    """EPD-Solver: K parallel directions per step with fitted levels, weights and scale."""

    name = "epd"

    def __init__(
        self, directions: int = 2, learn_grid: bool = True, iters: int = 300, lr: float = 0.05, batch: int = 128
    ) -> None:
        super().__init__(learn_grid, iters, lr, batch)
        if isinstance(directions, bool) or not isinstance(directions, int) or directions < 1:
            raise TypeError(f"directions={directions!r} must be an integer >= 1")
        self.directions = directions
