"""A k-diffusion name selects k-diffusion's conventions (issue 25, item 1).

``sk.sample(model, "sample_<name>", ts=sigmas)`` on a k-diffusion denoiser, with k-diffusion's own sigma
list (``get_sigmas_karras`` / ``get_sigmas_exponential`` in float64, final 0 included), is k-diffusion's
sampler of that name step by step, at every step count 3..30, in float64, on an exact Gaussian-mixture
denoiser: the same x after every step (max abs difference <= 1e-9; |x| reaches ~240) and the same number
of calls counted at the network.  Stochastic samplers get samplekit's own draws replayed as their
``noise_sampler`` (``dpmpp_sde``'s as the Brownian increments k-diffusion asks for).  The aliases are read
from the registry, so a solver that gains a k-diffusion alias is tested here without a hand-kept list.
"""

from __future__ import annotations

import inspect

import pytest
import torch

import samplekit as sk
import samplekit.sampling
from peers import kdiffusion_sampling
from samplekit.schedules import karras
from test_peer_equivalence_stochastic import Recording, brownian_replay, replay

f64 = torch.float64
MIX = sk.GaussianMixture([0.3, 0.7], [[-1.5, 0.5], [1.0, -0.5]], [[[0.4, 0.1], [0.1, 0.3]], [[0.6, -0.2], [-0.2, 0.5]]])
SIGMA_MIN, SIGMA_MAX = 0.002, 80.0
STEPS = range(3, 31)
# x reaches |x| ~ 240 at sigma = 80 and the 3-sigma lists step over 5 e-folds at once: 1e-9 is ~4e-12 relative
TOL = 1e-9


class Denoiser:
    """The mixture's exact denoiser D(x, sigma) = E[x0 | x0 + sigma eps = x], counting its calls."""

    def __init__(self) -> None:
        self.exact, self.calls = MIX.score_model(sk.EDMSDE(SIGMA_MIN, SIGMA_MAX)), 0

    def __call__(self, x, sigma):
        self.calls += 1
        return self.exact.predict(x, sigma.reshape(-1)[0].to(f64)).x0


def sigma_lists(n):
    """k-diffusion's own karras and exponential lists of n sigmas + the final 0, computed in float64."""
    k = kdiffusion_sampling()
    default = torch.get_default_dtype()
    torch.set_default_dtype(f64)
    try:
        return {
            "karras": k.get_sigmas_karras(n, SIGMA_MIN, SIGMA_MAX),
            "exponential": k.get_sigmas_exponential(n, SIGMA_MIN, SIGMA_MAX),
        }
    finally:
        torch.set_default_dtype(default)


def kdiffusion_aliases():
    """(alias, solver name) for every registered alias that is a sigma-list sampler of k-diffusion."""
    k = kdiffusion_sampling()
    found = []
    for info in sk.available("solver"):
        for alias in info.info.get("aliases", ()):
            peer = getattr(k, alias, None) if alias.startswith("sample_") else None
            if peer is not None and "sigmas" in inspect.signature(peer).parameters:
                found.append((alias, info.name))
    return found


ALIASES = kdiffusion_aliases()


def test_the_registry_names_every_kdiffusion_sampler():
    names = {alias for alias, _ in ALIASES}
    assert names >= {
        "sample_euler",
        "sample_euler_ancestral",
        "sample_heun",
        "sample_dpm_2",
        "sample_dpm_2_ancestral",
        "sample_lms",
        "sample_dpmpp_2s_ancestral",
        "sample_dpmpp_sde",
        "sample_dpmpp_2m",
        "sample_dpmpp_2m_sde",
        "sample_dpmpp_3m_sde",
    }


def run_both(alias, sigmas, x_T, monkeypatch):
    """(our trajectory, its nfe, our network calls), (k-diffusion's trajectory, its network calls)."""
    ours, theirs = Denoiser(), Denoiser()
    model = sk.load_model(ours, loader="denoiser", shape=(2,), sigma_min=SIGMA_MIN, sigma_max=SIGMA_MAX)
    recorders: list[Recording] = []

    def recording(*args, **kwargs):
        recorders.append(Recording(*args, **kwargs))
        return recorders[-1]

    monkeypatch.setattr(samplekit.sampling, "NoiseSource", recording)
    traj: list[torch.Tensor] = []
    res = sk.sample(model, alias, ts=sigmas, x_T=x_T, progress=False, callback=lambda info: traj.append(info.x))
    assert traj[-1] is res.samples or torch.equal(traj[-1], res.samples)
    peer = getattr(kdiffusion_sampling(), alias)
    options = {}
    if "noise_sampler" in inspect.signature(peer).parameters:
        draws = recorders[0].recorded
        options["noise_sampler"] = (brownian_replay if alias == "sample_dpmpp_sde" else replay)(draws)
    seen: list[torch.Tensor] = []
    y = peer(theirs, x_T.clone(), sigmas, disable=True, callback=lambda d: seen.append(d["x"].clone()), **options)
    return (traj, res.nfe, ours.calls), (seen[1:] + [y], theirs.calls)


@pytest.mark.parametrize("alias,solver", ALIASES, ids=[a for a, _ in ALIASES])
def test_kdiffusion_name_is_kdiffusion_at_every_step_count(alias, solver, monkeypatch):
    x_T = SIGMA_MAX * torch.randn((8, 2), generator=torch.Generator().manual_seed(1), dtype=f64)
    worst = 0.0
    for n in STEPS:
        for schedule, sigmas in sigma_lists(n).items():
            (traj, nfe, calls), (peer_traj, peer_calls) = run_both(alias, sigmas, x_T, monkeypatch)
            assert len(traj) == len(peer_traj) == n, (alias, schedule, n)
            diff = max(float((a - b).abs().max()) for a, b in zip(traj, peer_traj))
            assert diff <= TOL, f"{alias} ({solver}), {schedule}, {n} sigmas: max difference {diff:.2e}"
            assert calls == peer_calls == nfe, f"{alias}, {schedule}, {n}: {calls} calls (nfe {nfe}), peer {peer_calls}"
            worst = max(worst, diff)
    assert worst > 0 or alias == "sample_euler"  # the peer really ran its own arithmetic


def test_the_unaliased_name_keeps_samplekits_conventions():
    """Where samplekit's default differs, the alias selects the peer's and the solver's name keeps samplekit's;
    an option the caller gives wins over both."""
    assert sk.get_solver("dpmpp_2m").lower_order_final is True
    assert sk.get_solver("sample_dpmpp_2m").lower_order_final is False
    assert sk.get_solver("sample_dpmpp_2m", lower_order_final=True).lower_order_final is True
    assert (
        sk.get_solver("dpmpp_2m_sde").lower_order_final and not sk.get_solver("sample_dpmpp_2m_sde").lower_order_final
    )
    assert (
        sk.get_solver("dpmpp_3m_sde").lower_order_final and not sk.get_solver("sample_dpmpp_3m_sde").lower_order_final
    )
    assert sk.get_solver("edm_heun").final_euler and not sk.get_solver("sample_heun").final_euler
    listed = {c.name: c.info for c in sk.available("solver")}
    assert listed["dpmpp_2m"]["alias_options"]["sample_dpmpp_2m"] == {"lower_order_final": False}


def test_the_unaliased_name_differs_where_documented(monkeypatch):
    """dpmpp_2m (lower_order_final) and sample_dpmpp_2m differ on a 10-sigma list: the alias is not a no-op."""
    sigmas = sigma_lists(10)["karras"]
    x_T = SIGMA_MAX * torch.randn((8, 2), generator=torch.Generator().manual_seed(1), dtype=f64)
    model = sk.load_model(Denoiser(), loader="denoiser", shape=(2,))
    ours = sk.sample(model, "dpmpp_2m", ts=sigmas, x_T=x_T, progress=False).samples
    peer = sk.sample(model, "sample_dpmpp_2m", ts=sigmas, x_T=x_T, progress=False).samples
    assert float((ours - peer).abs().max()) > 1e-3


def test_heun_on_a_grid_without_zero_is_heun_onto_sigma_min():
    """k-diffusion's sample_heun on a list without the final 0 takes a Heun step onto its last sigma (2 n calls);
    samplekit's edm_heun takes Euler there (2 n - 1 calls)."""
    sigmas = sigma_lists(10)["karras"][:-1]
    x_T = SIGMA_MAX * torch.randn((8, 2), generator=torch.Generator().manual_seed(1), dtype=f64)
    peer_net = Denoiser()
    theirs = kdiffusion_sampling().sample_heun(peer_net, x_T.clone(), sigmas, disable=True)
    model = sk.load_model(Denoiser(), loader="denoiser", shape=(2,))
    alias = sk.sample(model, "sample_heun", ts=sigmas, x_T=x_T, progress=False)
    own = sk.sample(model, "edm_heun", ts=sigmas, x_T=x_T, progress=False)
    assert float((alias.samples - theirs).abs().max()) <= 1e-10 and alias.nfe == peer_net.calls == 18
    assert own.nfe == 17
    assert sk.get_solver("sample_heun").plan(18).n_steps == 9 and sk.get_solver("edm_heun").plan(18).n_steps == 9


def test_karras_schedule_is_get_sigmas_karras():
    """schedule="karras" on the denoiser's SDE is k-diffusion's list (float64) bit for bit, except the last
    point, pinned to t_min exactly (k-diffusion's (sigma_min^(1/7))^7 is a few ulp off it)."""
    sde = sk.EDMSDE(SIGMA_MIN, SIGMA_MAX)
    for n in range(1, 41):
        ours, theirs = karras(sde, n), sigma_lists(n + 1)["karras"][:-1]
        assert torch.equal(ours[:-1], theirs[:-1]), n
        assert float(ours[-1]) == SIGMA_MIN and abs(float(theirs[-1]) - SIGMA_MIN) <= 1e-14 * SIGMA_MIN


def test_final_zero_budget_and_refusals():
    model = sk.load_model(Denoiser(), loader="denoiser", shape=(2,))
    sigmas = sigma_lists(6)["karras"]
    res = sk.sample(model, "dpm_2", ts=sigmas, num_samples=4, dtype=f64, progress=False)
    assert res.nfe == 2 * 5 + 1 and res.n_steps == 6 and torch.equal(res.ts, sigmas)
    with pytest.raises(sk.SolverError, match="raise nfe to 11"):
        sk.sample(model, "dpm_2", ts=sigmas, nfe=10, num_samples=4, progress=False)
    with pytest.raises(sk.SamplekitError, match="adaptive"):
        sk.sample(model, "sample_dpm_adaptive", ts=sigmas, num_samples=4, progress=False)
    with pytest.raises(sk.SamplekitError, match="outside"):  # a 0 inside the list is not a final 0
        sk.sample(model, "dpm_2", ts=torch.tensor([80.0, 0.0, -1.0], dtype=f64), num_samples=4, progress=False)


def test_sample_refuses_denoise_final_past_a_final_zero():
    model = sk.load_model(Denoiser(), loader="denoiser", shape=(2,))
    with pytest.raises(sk.SolverError, match="denoise_final"):
        sk.sample(model, "dpmpp_2m", ts=sigma_lists(5)["karras"], num_samples=2, denoise_final=True, progress=False)


def test_alias_options_must_name_an_alias_and_declared_options(fresh_registry):
    """A solver whose alias_options name a non-alias or an undeclared option fails to register, with the reason."""
    from samplekit.hookspecs import hookimpl
    from samplekit_fast.dpmpp_2m import DPMSolverPP2M

    class NotAnAlias(DPMSolverPP2M):
        name, aliases = "bad_alias_key", ("bad_alias",)
        alias_options = {"elsewhere": {"lower_order_final": False}}

    class UnknownOption(DPMSolverPP2M):
        name, aliases = "bad_alias_option", ("bad_option",)
        alias_options = {"bad_option": {"eta": 1.0}}

    def plugin(cls):
        class Plugin:
            @hookimpl
            def samplekit_register_solvers(self, register):
                register(cls)

        return Plugin()

    reg = fresh_registry(plugin(NotAnAlias), plugin(UnknownOption))
    errors = " ".join(f.error for f in reg.failures)
    assert "'elsewhere', which is not one of its aliases" in errors and "no option 'eta'" in errors
