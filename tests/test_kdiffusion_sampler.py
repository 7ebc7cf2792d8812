"""``samplekit.kdiffusion.sampler(name)``: samplekit's solvers as k-diffusion sampler functions (issue 22, item 2),
and a k-diffusion denoiser's extra arguments through the ``denoiser`` loader (issue 26 item 3, issue 25 item 4).

1. Every k-diffusion name (read from the registry) is k-diffusion's own sampler, called the same way
   ``fn(model, x, sigmas, extra_args=..., callback=..., disable=True, noise_sampler=...)``: the same output,
   the same callback dicts at every step, the same calls at the network, in float64 on an exact
   Gaussian-mixture denoiser with extra arguments, on k-diffusion's own sigma lists (final 0 included);
   stochastic ones with one k-diffusion ``BrownianTreeNoiseSampler`` (seeded) given to both.
2. Every other fixed-step solver of the registry equals ``sk.sample(model, name, ts=sigmas)`` on the
   same denoiser, x and seed.
3. The denoiser loader binds D's extra arguments with ``model.condition`` under D's names; per-sample ones
   follow their samples through ``batch_size`` chunks and per-sample seeds, equal to k-diffusion's
   sampler given ``extra_args``.
"""

from __future__ import annotations

import inspect

import pytest
import torch

import samplekit as sk
from peers import kdiffusion_sampling
from samplekit.kdiffusion import KDiffusionSamplerError, sampler
from test_kdiffusion_aliases import ALIASES, MIX, SIGMA_MAX, SIGMA_MIN, STEPS, sigma_lists

f64 = torch.float64
N = 6


class CondDenoiser:
    """D(x, sigma, shift, scale=1) = scale E[x0 | x0 + sigma eps = x - shift] + shift, exact, counting calls:
    a denoiser whose extra arguments change its output, one of them per sample."""

    def __init__(self) -> None:
        self.exact, self.calls = MIX.score_model(sk.EDMSDE(SIGMA_MIN, SIGMA_MAX)), 0

    def __call__(self, x, sigma, shift, scale=1.0):
        assert sigma.shape == (x.shape[0],)
        self.calls += 1
        return scale * self.exact.predict(x - shift, sigma[0].to(f64)).x0 + shift


def inputs(n=N):
    g = torch.Generator().manual_seed(7)
    return torch.randn((n, 2), generator=g, dtype=f64), SIGMA_MAX * torch.randn((n, 2), generator=g, dtype=f64)


def brownian(x, seed=11):
    return kdiffusion_sampling().BrownianTreeNoiseSampler(x, SIGMA_MIN, SIGMA_MAX, seed=seed)


def run(fn, x, sigmas, extra, **kwargs):
    net, seen = CondDenoiser(), []
    out = fn(net, x.clone(), sigmas, extra_args=extra, callback=lambda d: seen.append(dict(d)), disable=True, **kwargs)
    return out, seen, net.calls


@pytest.mark.parametrize("alias,solver", ALIASES, ids=[a for a, _ in ALIASES])
def test_kdiffusion_names_are_kdiffusion_samplers(alias, solver):
    peer = getattr(kdiffusion_sampling(), alias)
    shift, x = inputs()
    extra = {"shift": shift, "scale": 1.0}
    for n in (3, 7, 25):
        for schedule, sigmas in sigma_lists(n).items():
            kwargs = {"noise_sampler": brownian(x)} if "noise_sampler" in inspect.signature(peer).parameters else {}
            ours, our_steps, our_calls = run(sampler(alias), x, sigmas, extra, **kwargs)
            if kwargs:
                kwargs = {"noise_sampler": brownian(x)}
            theirs, their_steps, their_calls = run(peer, x, sigmas, extra, **kwargs)
            where = f"{alias}, {schedule}, {n} sigmas"
            tol = 1e-11 * max(1.0, float(theirs.abs().max()), float(x.abs().max()))  # ~1e-9: float64 rounding
            assert float((ours - theirs).abs().max()) <= tol, where
            assert our_calls == their_calls, f"{where}: {our_calls} calls, k-diffusion {their_calls}"
            assert len(our_steps) == len(their_steps) == n, where
            for a, b in zip(our_steps, their_steps):
                assert a["i"] == b["i"] and float(a["sigma"]) == float(b["sigma"]) == float(a["sigma_hat"])
                assert float((a["x"] - b["x"]).abs().max()) <= tol, where
                assert float((a["denoised"] - b["denoised"]).abs().max()) <= tol, where


def test_sample_dpm_fast_runs_from_a_list_as_comfyui_calls_kdiffusions():
    """k-diffusion's sample_dpm_fast(model, x, sigma_min, sigma_max, n) with sigma_min the list's last positive
    sigma, sigma_max its first and n its number of steps (ComfyUI's KSAMPLER), at every n, float64."""
    shift, x = inputs()
    peer = kdiffusion_sampling().sample_dpm_fast
    for n in STEPS:
        for schedule, sigmas in sigma_lists(n).items():
            ours_net, peer_net = CondDenoiser(), CondDenoiser()
            ours = sampler("sample_dpm_fast")(ours_net, x, sigmas, extra_args={"shift": shift}, disable=True)
            default = torch.get_default_dtype()
            torch.set_default_dtype(f64)  # its time grid is built in the default dtype
            try:
                theirs = peer(peer_net, x, sigmas[-2], sigmas[0], n, extra_args={"shift": shift}, disable=True)
            finally:
                torch.set_default_dtype(default)
            assert float((ours - theirs).abs().max()) <= 1e-9, (schedule, n)
            assert ours_net.calls == peer_net.calls == n


FIXED_STEP = [c.name for c in sk.available("solver") if not c.info.get("adaptive")]


@pytest.mark.parametrize("name", FIXED_STEP)
def test_every_fixed_step_solver_is_sk_sample_on_the_same_sigmas(name):
    shift, x = inputs()
    sigmas = sigma_lists(9)["karras"]
    ours, steps, calls = run(sampler(name, seed=3), x, sigmas, {"shift": shift})
    net = CondDenoiser()
    model = sk.load_model(net, loader="denoiser", shape=(2,), sigma_min=SIGMA_MIN, sigma_max=SIGMA_MAX)
    res = sk.sample(model.condition(shift=shift), name, ts=sigmas, x_T=x, seed=3, progress=False)
    assert float((ours - res.samples).abs().max()) <= 1e-12
    assert calls == net.calls == res.nfe and len(steps) == 9


class SeededDenoiser(CondDenoiser):
    """ComfyUI's model takes the run's seed among its extra arguments."""

    def __call__(self, x, sigma, shift, scale=1.0, seed=None):
        return super().__call__(x, sigma, shift, scale)


def test_seed_from_option_extra_args_or_torch_rng():
    shift, x = inputs()
    sigmas = sigma_lists(8)["karras"]

    def draw(fn, extra):
        return fn(SeededDenoiser(), x.clone(), sigmas, extra_args=extra, disable=True)

    fn = sampler("euler_ancestral")
    a = draw(sampler("euler_ancestral", seed=5), {"shift": shift})
    assert torch.equal(a, draw(fn, {"shift": shift, "seed": 5}))
    torch.manual_seed(0)
    c = draw(fn, {"shift": shift})
    torch.manual_seed(0)
    assert torch.equal(c, draw(fn, {"shift": shift})) and not torch.equal(a, c)


def test_disable_turns_the_progress_bar_off(capsys):
    shift, x = inputs()
    sigmas = sigma_lists(5)["karras"]
    sampler("dpmpp_2m")(CondDenoiser(), x, sigmas, extra_args={"shift": shift}, disable=True)
    assert "dpmpp_2m" not in capsys.readouterr().err
    sampler("dpmpp_2m")(CondDenoiser(), x, sigmas, extra_args={"shift": shift}, disable=False)
    assert "dpmpp_2m" in capsys.readouterr().err


def test_refusals_name_the_fix():
    shift, x = inputs()
    sigmas = sigma_lists(5)["karras"]
    with pytest.raises(KDiffusionSamplerError, match="adaptive"):
        sampler("dpm_adaptive")
    with pytest.raises(sk.SamplekitError, match="unknown solver"):
        sampler("sample_nonsense")
    with pytest.raises(sk.SamplekitError, match="no option 'eta'"):
        sampler("dpmpp_2m", eta=1.0)
    with pytest.raises(KDiffusionSamplerError, match="schedule"):
        sampler("dpmpp_2m", schedule="karras")
    with pytest.raises(KDiffusionSamplerError, match="denoise_final"):
        sampler("dpmpp_2m", denoise_final=True)(CondDenoiser(), x, sigmas, extra_args={"shift": shift})
    fn = sampler("dpmpp_2m")
    with pytest.raises(KDiffusionSamplerError, match="no option 'foo'"):
        fn(CondDenoiser(), x, sigmas, extra_args={"shift": shift}, foo=1)
    with pytest.raises(sk.SamplekitError, match="decreasing"):
        fn(CondDenoiser(), x, torch.tensor([80.0, 10.0, 20.0, 0.0], dtype=f64), extra_args={"shift": shift})
    with pytest.raises(sk.SamplekitError, match="positive except a final 0"):
        fn(CondDenoiser(), x, sigmas.flip(0), extra_args={"shift": shift})
    with pytest.raises(sk.SamplekitError, match="1-D"):
        fn(CondDenoiser(), x, sigmas[None], extra_args={"shift": shift})
    # a solver that draws more than once a step cannot read its draws from a one-per-step noise_sampler
    with pytest.raises(KDiffusionSamplerError, match="draws noise 2 times"):
        sampler("pc", seed=0)(
            CondDenoiser(), x, sigmas, extra_args={"shift": shift}, noise_sampler=lambda s, t: torch.randn_like(x)
        )


# --- the denoiser loader's extra arguments (issue 26 item 3, issue 25 item 4) -------------------------------


def test_denoiser_loader_binds_extra_arguments_under_their_own_names():
    model = sk.load_model(CondDenoiser(), loader="denoiser", shape=(2,))
    with pytest.raises(sk.SamplekitError, match="requires input"):
        sk.sample(model, "dpmpp_2m", nfe=4, num_samples=N, progress=False)
    with pytest.raises(sk.SamplekitError, match="no parameter 'cond'; it accepts scale, shift"):
        model.condition(cond=1)


@pytest.mark.parametrize("alias", ["sample_dpmpp_2m", "sample_euler_ancestral", "sample_dpmpp_2m_sde"])
def test_per_sample_extra_arguments_follow_their_samples_through_chunks(alias):
    """sk.sample on the loaded denoiser with per-sample extra arguments equals k-diffusion's sampler given
    them as extra_args, whatever batch_size; with one seed per sample, stochastic runs too."""
    shift, x = inputs()
    sigmas = sigma_lists(10)["karras"]
    model = sk.load_model(CondDenoiser(), loader="denoiser", shape=(2,)).condition(shift=shift, scale=0.8)
    seeds = list(range(100, 100 + N))
    runs = [
        sk.sample(model, alias, ts=sigmas, x_T=x, seed=seeds, batch_size=b, progress=False).samples
        for b in (None, 4, 1)
    ]
    assert torch.equal(runs[0], runs[1]) and torch.equal(runs[0], runs[2])
    if not sk.get_solver(alias).capabilities().stochastic:
        peer = getattr(kdiffusion_sampling(), alias)
        theirs = peer(CondDenoiser(), x.clone(), sigmas, extra_args={"shift": shift, "scale": 0.8}, disable=True)
        assert float((runs[0] - theirs).abs().max()) <= 1e-10


def test_per_sample_extra_arguments_follow_their_samples_through_rank_shards():
    """What a torchrun rank draws (``samplekit.chunks.sample_to_dir``): its ``distributed.shard`` range, on
    ``model.select`` of that range with its seeds; the ranks' sets joined equal one process's set."""
    from samplekit.distributed import shard

    shift, x = inputs()
    sigmas = sigma_lists(10)["karras"]
    model = sk.load_model(CondDenoiser(), loader="denoiser", shape=(2,)).condition(shift=shift, scale=0.8)
    seeds = list(range(100, 100 + N))
    whole = sk.sample(model, "sample_dpmpp_2m_sde", ts=sigmas, x_T=x, seed=seeds, progress=False).samples
    for size in (2, 3):
        parts = []
        for rank in range(size):
            a, b = shard(N, rank, size)
            view = model.select(slice(a, b))
            kwargs = dict(ts=sigmas, x_T=x[a:b], seed=seeds[a:b], progress=False)
            parts.append(sk.sample(view, "sample_dpmpp_2m_sde", batch_size=2, **kwargs).samples)
        assert torch.equal(torch.cat(parts), whole)
