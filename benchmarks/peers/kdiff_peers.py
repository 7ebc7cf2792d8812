"""k-diffusion's samplers on the exact denoiser, with Karras sigmas.

``k_diffusion/__init__.py`` imports torchvision (through its image utilities), which does not import
beside this CPU torch, so ``sampling.py`` is loaded on its own: a stub ``k_diffusion`` package with a
``utils`` module that provides the one helper sampling.py uses (``append_dims``).

Convention (VE / EDM): x = x0 + sigma eps, alpha = 1, and the exact denoiser of the mixture is
D(x, sigma) = x + sigma^2 grad log p_sigma(x).  Sigmas: get_sigmas_karras(n, sigma_min, sigma_max, rho=7)
followed by 0, the k-diffusion default; every sampler's last step goes to sigma = 0, which for these
samplers is x <- D(x, sigma_min) (a Tweedie denoise at sigma_min).  Two sigma ranges are tried:
EDM's (0.002, 80) and the VP SDE's noise-level range sigma_t / alpha_t over [t_min, T] (0.0100, 152.4).
"""

from __future__ import annotations

import importlib.util
import math
import sys
import types
from pathlib import Path

import torch
from common import Counter, Problem, Record, timed_run

# (name, network calls for n sigmas before the final 0, stochastic)
SAMPLERS = {
    "sample_euler": (lambda n: n, False),
    "sample_heun": (lambda n: 2 * n - 1, False),
    "sample_dpm_2": (lambda n: 2 * n - 1, False),
    "sample_lms": (lambda n: n, False),
    "sample_dpmpp_2m": (lambda n: n, False),
    "sample_dpmpp_2m_sde": (lambda n: n, True),
    "sample_dpmpp_3m_sde": (lambda n: n, True),
    "sample_dpmpp_2s_ancestral": (lambda n: 2 * n - 1, True),
    "sample_euler_ancestral": (lambda n: n, True),
}
SIGMA_RANGES = {"edm": (0.002, 80.0), "vp": None}  # None: computed from samplekit's VPSDE
ADAPTIVE_RTOLS = (0.05, 0.01)


def load_sampling():
    """k_diffusion.sampling without the package __init__ (see the module docstring)."""
    if "k_diffusion.sampling" in sys.modules:
        return sys.modules["k_diffusion.sampling"]
    spec = importlib.util.find_spec("k_diffusion")
    if spec is None or not spec.submodule_search_locations:
        raise ImportError(
            "k-diffusion is not installed: pip install --no-deps k-diffusion (see benchmarks/peers/README.md)"
        )
    root = Path(list(spec.submodule_search_locations)[0])
    package = types.ModuleType("k_diffusion")
    package.__path__ = [str(root)]
    utils = types.ModuleType("k_diffusion.utils")

    def append_dims(x, target_dims):
        return x[(...,) + (None,) * (target_dims - x.ndim)]

    utils.append_dims = append_dims
    package.utils = utils
    sys.modules.update({"k_diffusion": package, "k_diffusion.utils": utils})
    sampling_spec = importlib.util.spec_from_file_location("k_diffusion.sampling", root / "sampling.py")
    module = importlib.util.module_from_spec(sampling_spec)
    sys.modules["k_diffusion.sampling"] = module
    sampling_spec.loader.exec_module(module)
    package.sampling = module
    return module


def vp_sigma_range() -> tuple[float, float]:
    import samplekit as sk

    sde = sk.VPSDE()
    lo, hi = (math.exp(-float(sde.log_snr(torch.tensor(t, dtype=torch.float64)))) for t in (sde.t_min, sde.T))
    return lo, hi


def denoiser(score):
    def D(x, sigma):
        s = sigma.to(x.dtype)
        return x + (s * s)[:, None] * score(x, 1.0, s)

    return D


def steps_for(name: str, budget: int) -> int:
    calls, _ = SAMPLERS[name]
    n = budget
    while n > 1 and calls(n) > budget:
        n -= 1
    return n


def karras_sigmas(K, n: int, lo: float, hi: float) -> torch.Tensor:
    default = torch.get_default_dtype()
    torch.set_default_dtype(torch.float64)  # get_sigmas_karras builds its ramp in the default dtype
    try:
        return K.get_sigmas_karras(n, lo, hi).to(torch.float64)
    finally:
        torch.set_default_dtype(default)


def runs(problem: Problem, budgets):
    """Yield one Record per (sampler, sigma range, budget), plus the adaptive DPM-Solver at a few rtols."""
    K = load_sampling()
    ranges = {k: (v or vp_sigma_range()) for k, v in SIGMA_RANGES.items()}
    for name, (_, stochastic) in SAMPLERS.items():
        for range_name, (lo, hi) in ranges.items():
            for budget in budgets:
                n = steps_for(name, budget)
                setting = f"karras rho=7, sigma {lo:.3g}..{hi:.3g} ({range_name}), n={n}"
                record = Record(
                    "k-diffusion",
                    name,
                    f"karras-{range_name}",
                    problem.name,
                    budget,
                    problem.seed,
                    problem.n,
                    extra={"detail": setting, "n_sigmas": n},
                )
                yield timed_run(problem, record, lambda: _sample(K, name, stochastic, problem, n, lo, hi))
    for rtol in ADAPTIVE_RTOLS:
        lo, hi = ranges["edm"]
        record = Record(
            "k-diffusion",
            "sample_dpm_adaptive",
            f"rtol={rtol}-edm",
            problem.name,
            None,
            problem.seed,
            problem.n,
            extra={"detail": f"order 3, rtol={rtol}, atol=0.0078, sigma {lo}..{hi}"},
        )
        yield timed_run(problem, record, lambda: _adaptive(K, problem, rtol, lo, hi))


def _start(problem: Problem, hi: float) -> tuple[torch.Generator, torch.Tensor]:
    return problem.generator(), hi * problem.z


def _sample(K, name, stochastic, problem, n, lo, hi):
    g, x = _start(problem, hi)
    model = Counter(denoiser(problem.score))
    sigmas = karras_sigmas(K, n, lo, hi)
    kwargs = {"disable": True}
    if stochastic:
        kwargs["noise_sampler"] = lambda s, s_next: torch.randn(x.shape, generator=g, dtype=x.dtype)
    with torch.no_grad():
        out = getattr(K, name)(model, x, sigmas, **kwargs)
    return out, model.calls


def _adaptive(K, problem, rtol, lo, hi):
    _, x = _start(problem, hi)
    model = Counter(denoiser(problem.score))
    with torch.no_grad():
        out = K.sample_dpm_adaptive(model, x, lo, hi, rtol=rtol, disable=True)
    return out, model.calls
