"""Conditioning on a linear observation y = A x (+ Gaussian noise): inpainting, colorization, general A.

    obs = sk.conditioning.Inpainting(mask, y)                         # known pixels
    obs = sk.conditioning.Colorization([0.299, 0.587, 0.114], gray, shape=(3, H, W))
    obs = sk.conditioning.DenseObservation(A, y, noise_std=0.1)       # any A
    sk.sample(model, solver=sk.conditioning.replacement("euler_maruyama", obs), nfe=200)
    sk.sample(model, solver=sk.conditioning.resample("euler_maruyama", obs, jumps=4), nfe=800)
    sk.sample(sk.conditioning.observed_score(model, obs), solver=<any solver>, nfe=200)

How this works for every solver: all methods act in the orthonormal basis of the observation
(the SVD of A; identity for inpainting, a per-pixel channel rotation for colorization), where y
observes some coordinates z_o (with noise std tau_i) and says nothing of the others z_u.
Two mechanisms, chosen by what a method must do:

* a **score wrapper** (``observed_score``): a ScoreModel, so *every* registered solver — fixed
  step, multistep, stochastic, adaptive — runs it unchanged; it is replacement written as a
  vector field (the observed coordinates get the exact score of their noised law);
* **step hooks** (``replacement``, ``resample``): a Solver wrapping any *fixed-step* solver, for
  the methods that re-noise x between steps (score_sde's fresh replacement each step, RePaint's
  forward jumps), which no vector field can express.  Adaptive solvers get a clear error
  pointing to ``observed_score``.

The exact posterior of a Gaussian-mixture prior under such an observation is in
``samplekit.posterior``; benchmarks/conditioning measures every method's distance to it.
"""

from __future__ import annotations

from samplekit.conditioning.noising import forward_jump, observed_law, replace_observed
from samplekit.conditioning.observation import Colorization, DenseObservation, Inpainting, LinearObservation
from samplekit.conditioning.score import ObservedScore, observed_score
from samplekit.conditioning.step_hooks import ConditionedSolver, Resampling, replacement, resample

__all__ = [
    "LinearObservation",
    "DenseObservation",
    "Inpainting",
    "Colorization",
    "observed_score",
    "ObservedScore",
    "replacement",
    "resample",
    "ConditionedSolver",
    "Resampling",
    "observed_law",
    "replace_observed",
    "forward_jump",
]
