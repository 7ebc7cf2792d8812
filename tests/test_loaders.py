"""Model loaders against exact answers: an exact Gaussian-mixture score dressed as a diffusers (eps / x0 / v)
network or a k-diffusion denoiser comes back exact; the discrete-time process; safe checkpoint reading."""

from __future__ import annotations

import math

import pytest
import torch

import samplekit as sk
from samplekit.discrete import DiscreteVPSDE, discrete_timesteps
from samplekit.loading import UnsafeCheckpointError, read_tensors, save_model
from samplekit.targets import GaussianMixture
from samplekit.training.nets import TimeMLP

diffusers = pytest.importorskip("diffusers")
f64 = dict(dtype=torch.float64)


def mixture() -> GaussianMixture:
    return GaussianMixture(
        torch.tensor([0.3, 0.7], **f64),
        torch.tensor([[-1.0, 0.5], [1.5, -0.5]], **f64),
        torch.tensor([[0.2, 0.4], [0.5, 0.1]], **f64),
    )


def ddpm_scheduler(**kw):
    return diffusers.DDPMScheduler(num_train_timesteps=1000, beta_schedule="linear", **kw)


class ExactDiffusersNet(torch.nn.Module):
    """The exact mixture score in diffusers' own convention: forward(x, timestep) at an integer training
    timestep n uses abar_n of the scheduler (alpha = sqrt(abar_n), sigma = sqrt(1 - abar_n)) and returns
    eps, x0 or v as ``prediction_type`` says.  It records the timesteps it was called with."""

    def __init__(self, gm, alphas_cumprod, prediction_type):
        super().__init__()
        self.gm, self.abar, self.prediction_type = gm, alphas_cumprod.to(torch.float64), prediction_type
        self.seen = []

    def forward(self, x, timestep):
        self.seen.append(timestep.detach().clone())
        n = timestep.to(torch.float64)
        assert torch.equal(n, n.round()), "called between training timesteps"
        abar = self.abar[n.long()].reshape(-1, 1)
        alpha, sigma = abar.sqrt(), (1 - abar).sqrt()
        score = self.gm.noised_score(x, alpha, sigma)
        eps = -sigma * score
        x0 = (x + sigma**2 * score) / alpha
        out = {"epsilon": eps, "sample": x0, "v_prediction": alpha * eps - sigma * x0}[self.prediction_type]
        from diffusers.models.unets.unet_2d import UNet2DOutput

        return UNet2DOutput(sample=out)


@pytest.mark.parametrize("prediction_type", ["epsilon", "sample", "v_prediction"])
def test_an_exact_score_in_diffusers_convention_comes_back_exact_at_grid_times(prediction_type):
    gm, scheduler = mixture(), ddpm_scheduler(prediction_type=prediction_type)
    net = ExactDiffusersNet(gm, scheduler.alphas_cumprod, prediction_type)
    model = sk.load_model(net, loader="diffusers", scheduler=scheduler.config, shape=(2,))
    assert (
        isinstance(model.sde, DiscreteVPSDE)
        and model.parametrization == {"epsilon": "eps", "sample": "x0", "v_prediction": "v"}[prediction_type]
    )
    x = gm.sample(64, generator=torch.Generator().manual_seed(0)) * 1.3
    for n in (0, 1, 17, 500, 998, 999):
        t = model.sde.time_of(torch.tensor(float(n), **f64))
        abar = scheduler.alphas_cumprod[n].double()
        exact = gm.noised_score(x, abar.sqrt(), (1 - abar).sqrt())
        got = model(x, t)
        assert torch.allclose(got, exact, rtol=1e-9, atol=1e-9 * (1 / (1 - abar)).item())
        assert torch.equal(net.seen[-1], torch.full((64,), float(n), **f64))


def test_the_discrete_schedule_lands_on_training_timesteps_and_sampling_meets_the_net_only_there():
    gm, scheduler = mixture(), ddpm_scheduler()
    net = ExactDiffusersNet(gm, scheduler.alphas_cumprod, "epsilon")
    model = sk.load_model(net, loader="diffusers", scheduler=scheduler, shape=(2,))
    ts = discrete_timesteps(model.sde, 10)
    assert ts[0] == model.sde.T and ts[-1] == model.sde.t_min
    steps = model.sde.timestep(ts)
    assert torch.equal(steps, steps.round()) and steps[0] == 999 and steps[-1] == 0
    alpha, _ = model.sde.marginal(ts)
    assert torch.allclose(alpha**2, scheduler.alphas_cumprod.double()[steps.long()], rtol=1e-13, atol=0)
    res = sk.sample(model, "euler_maruyama", nfe=10, num_samples=32, seed=0, progress=False, schedule="discrete")
    assert res.nfe == 10 and torch.isfinite(res.samples).all()  # the net's assert: integer timesteps only
    assert sorted({float(s[0]) for s in net.seen}) == sorted(float(s) for s in steps[:-1])
    with pytest.raises(ValueError, match="continuous"):
        discrete_timesteps(sk.VPSDE(), 10)
    with pytest.raises(ValueError, match="nfe"):
        discrete_timesteps(model.sde, 1000)


def test_discrete_vp_interpolates_a_continuous_vp_between_grid_points_and_inverts_its_log_snr():
    vp = sk.VPSDE()
    sde = DiscreteVPSDE.from_vp(vp, 1000)
    assert sde.t_min == pytest.approx(1e-3) and sde.T == 1.0
    grid = (torch.arange(1000, **f64) + 1) / 1000
    assert torch.allclose(sde.marginal(grid)[0], vp.marginal(grid)[0], rtol=1e-12)  # exact on the grid
    mid = grid[:-1] + 0.5e-3
    B = sde.B(mid)
    assert torch.allclose(B, 0.5 * (sde.B(grid[:-1]) + sde.B(grid[1:])), rtol=1e-12)  # linear in t between
    # B'' h^2 / 8 = (beta_max - beta_min) / (8 N^2): the interpolation is O(1/N^2) from the VP
    assert torch.allclose(sde.marginal(mid)[0], vp.marginal(mid)[0], rtol=(20 - 0.1) / 8e6)
    # alpha' = -beta alpha / 2 inside a segment, and sigma^2 = 1 - alpha^2
    t, h = torch.tensor([0.3004, 0.7771], **f64), 1e-7
    dlog = (torch.log(sde.marginal(t + h)[0]) - torch.log(sde.marginal(t - h)[0])) / (2 * h)
    assert torch.allclose(dlog, sde.drift_coef(t), rtol=1e-6)
    a, s = sde.marginal(t)
    assert torch.allclose(a**2 + s**2, torch.ones_like(t))
    assert torch.allclose(sde.diffusion(t) ** 2, -2 * sde.drift_coef(t))
    tt = torch.linspace(sde.t_min, 1.0, 301, **f64)
    assert torch.allclose(sde.t_from_log_snr(sde.log_snr(tt)), tt, atol=1e-10)
    with pytest.raises(ValueError, match="alphas_cumprod"):
        DiscreteVPSDE(torch.tensor([0.5, 0.7]))


@pytest.mark.parametrize("sde", [sk.EDMSDE(), sk.VPSDE()], ids=["edm", "vp"])
def test_an_exact_denoiser_in_k_diffusion_convention_comes_back_exact(sde):
    gm = mixture()

    def denoiser(x, sigma):  # E[x0 | x0 + sigma eps = x], sigma one per sample
        s = sigma.reshape(-1, 1)
        return x + s**2 * gm.noised_score(x, torch.ones_like(s), s)

    model = sk.load_model(denoiser, loader="denoiser", shape=(2,), sde=sde)
    exact = gm.score_model(sde)
    x = gm.sample(64, generator=torch.Generator().manual_seed(1))
    for t in (sde.t_min * 3, 0.05, 0.5, sde.T):
        xt = x * sde.marginal(torch.tensor(t, **f64))[0] + 0.5
        assert torch.allclose(model(xt, t), exact(xt, t), rtol=1e-8, atol=1e-8)
    with pytest.raises(ValueError, match="shape"):
        sk.load_model(denoiser, loader="denoiser", shape=None)


def test_the_torch_loader_takes_a_module_a_torchscript_file_or_weights_into_a_module(tmp_path):
    sde = sk.VPSDE()
    torch.manual_seed(0)
    net = TimeMLP(2, hidden=16, depth=1).double()
    x, t = torch.randn(8, 2, **f64), torch.full((8,), 0.4, **f64)
    alpha, sigma = sde.marginal(t[0])
    expected = -net(x, t) / sigma  # eps parametrisation -> score
    direct = sk.load_model(net, loader="torch", parametrization="eps", shape=(2,), sde="vp")
    assert torch.allclose(direct(x, t), expected)
    torch.jit.script(net).save(str(tmp_path / "net.ts"))
    scripted = sk.load_model(
        tmp_path / "net.ts", loader="torch", parametrization="eps", shape=(2,), sde=sde, trust_code=True
    )
    assert torch.allclose(scripted(x, t), expected)
    from safetensors.torch import save_file

    save_file(net.state_dict(), str(tmp_path / "w.safetensors"))
    torch.save(net.state_dict(), tmp_path / "w.pt")
    for file in ("w.safetensors", "w.pt"):
        fresh = TimeMLP(2, hidden=16, depth=1).double()
        loaded = sk.load_model(tmp_path / file, loader="torch", module=fresh, parametrization="eps", shape=(2,))
        assert torch.allclose(loaded(x, t), expected)
    with pytest.raises(ValueError, match="parametrization"):
        sk.load_model(net, loader="torch", parametrization="noise", shape=(2,))


class Payload:
    """Unpickling this runs code: exactly what samplekit must never do."""

    def __reduce__(self):
        return (exec, ("import pathlib; pathlib.Path('PWNED').write_text('x')",))


def test_pickle_bearing_checkpoints_are_refused_with_a_clear_error_and_nothing_runs(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    torch.save({"weight": torch.zeros(2), "evil": Payload()}, tmp_path / "evil.pt")
    torch.save(TimeMLP(2, hidden=4, depth=1), tmp_path / "module.pt")  # a pickled module
    for name in ("evil.pt", "module.pt"):
        with pytest.raises(UnsafeCheckpointError, match="unpickle"):
            read_tensors(tmp_path / name)
        with pytest.raises(UnsafeCheckpointError, match="safetensors"):
            sk.load_model(tmp_path / name, loader="torch", parametrization="eps", shape=(2,))
    # the same inside a diffusers directory (.bin weights) and a native one
    net = tiny.unet2d(size=4, width=4, groups=2)
    net.save_pretrained(tmp_path / "unet", safe_serialization=False)
    ddpm_scheduler().save_pretrained(tmp_path / "unet")
    torch.save({"evil": Payload()}, tmp_path / "unet" / "diffusion_pytorch_model.bin")
    with pytest.raises(UnsafeCheckpointError, match="unpickle"):
        sk.load_model(tmp_path / "unet")
    assert not (tmp_path / "PWNED").exists()
    with pytest.raises(FileNotFoundError, match="does not exist"):
        read_tensors(tmp_path / "missing.pt")


def test_the_native_format_round_trips_and_is_guessed(tmp_path):
    torch.manual_seed(3)
    net, sde = TimeMLP(2, hidden=8, depth=2), sk.VPSDE(beta_max=15.0)
    save_model(tmp_path / "m", net, "mlp", {"dim": 2, "hidden": 8, "depth": 2}, "eps", sde, (2,))
    model = sk.load_model(tmp_path / "m")  # guessed from samplekit.json
    assert model.sde.params() == sde.params() and model.shape == (2,) and model.parametrization == "eps"
    x, t = torch.randn(5, 2), torch.full((5,), 0.3)
    assert torch.allclose(model.eps(x, t), net(x, t))
    with pytest.raises(ValueError, match="loader="):
        sk.load_model(tmp_path)
    with pytest.raises(sk.UnknownComponentError):
        sk.load_model(tmp_path / "m", loader="onnx")


def test_a_saved_unet_loads_with_its_scheduler_and_converts_its_prediction_type(tmp_path):
    net = tiny.unet2d(seed=0)
    net.save_pretrained(tmp_path / "unet")
    ddpm_scheduler(prediction_type="v_prediction").save_pretrained(tmp_path / "scheduler")  # pipeline layout
    model = sk.load_model(tmp_path / "unet")
    assert model.shape == (1, 8, 8) and model.parametrization == "v" and model.sde.num_timesteps == 1000
    x = torch.randn(3, 1, 8, 8, **f64)
    t = model.sde.time_of(torch.tensor(250.0, **f64))
    with torch.no_grad():
        v = net(x.float(), torch.full((3,), 250.0)).sample.double()
    alpha, sigma = model.sde.marginal(t)
    assert torch.allclose(model.predict(x, t).x0, alpha * x - sigma * v, atol=1e-5)  # x0 = alpha x - sigma v
    assert model.predict(x, t).x0.dtype == torch.float64
    with pytest.raises(ValueError, match="scheduler"):
        sk.load_model(net, loader="diffusers")
    assert math.isfinite(float(model(x, model.sde.T).abs().max()))


def test_a_loaded_network_still_differentiates_for_the_likelihood_but_sampling_builds_no_graph():
    gm, sde = mixture(), sk.VPSDE()
    exact = gm.score_model(sde)

    def eps_net(x, t):
        return -sde.marginal(t)[1].reshape(-1, 1) * exact.net(x, t)

    model = sk.load_model(eps_net, loader="torch", parametrization="eps", shape=(2,), sde=sde)
    x = gm.sample(6, generator=torch.Generator().manual_seed(2))
    ll = sk.log_likelihood(model, x, estimator="exact", rtol=1e-6, atol=1e-6)
    same = sk.log_likelihood(exact, x, estimator="exact", rtol=1e-6, atol=1e-6)
    assert torch.allclose(ll.log_prob, same.log_prob, atol=1e-6)
    alpha, sigma = sde.marginal(torch.tensor(sde.t_min, **f64))
    assert torch.allclose(ll.log_prob, gm.noised_log_prob(x, alpha, sigma), atol=1e-2)
    assert model(x, 0.5).grad_fn is None


# --- conditional diffusers models, flow matching, pipelines, config bounds -----------------------------
import diffusers_tiny as tiny  # noqa: E402  (tests/ is on sys.path under pytest)
from samplekit_loaders.diffusers_grid import scheduler_grid  # noqa: E402


class Counting(torch.nn.Module):
    """Counts calls of the raw diffusers network."""

    def __init__(self, module):
        super().__init__()
        self.module, self.calls = module, 0

    def forward(self, *args, **kwargs):
        self.calls += 1
        return self.module(*args, **kwargs)


def test_a_class_conditional_unet_takes_class_labels_under_its_own_name_per_sample(tmp_path):
    net = tiny.class_unet()
    net.save_pretrained(tmp_path / "unet")
    ddpm_scheduler().save_pretrained(tmp_path / "scheduler")
    model = sk.load_model(tmp_path / "unet")
    counter = Counting(model.net.module)
    model.net.module = counter
    with pytest.raises(TypeError, match="class_labels"):  # required, refused before any call
        sk.sample(model, "ddim", nfe=2, num_samples=3, progress=False)
    with pytest.raises(TypeError, match="class_labels"):  # a name the network does not take
        model.condition(labels=torch.tensor([1, 2, 3]))
    assert counter.calls == 0
    labels = torch.tensor([1, 5, 9])
    cond = model.condition(class_labels=labels)
    x = torch.randn(3, 1, 8, 8, **f64)
    t = model.sde.time_of(torch.tensor(300.0, **f64))
    with torch.no_grad():
        eps = net(x.float(), torch.full((3,), 300.0), class_labels=labels).sample.double()
        other = net(x.float(), torch.full((3,), 300.0), class_labels=labels.flip(0)).sample.double()
    assert torch.allclose(cond.predict(x, t).eps, eps, atol=1e-6) and not torch.allclose(eps, other, atol=1e-3)
    res = sk.sample(cond, "ddim", nfe=3, num_samples=3, progress=False)
    assert counter.calls == 4 and res.nfe == 3 and res.decoded is None  # one direct call + 3 steps; no VAE
    with pytest.raises(ValueError, match="num_samples"):
        sk.sample(cond, "ddim", nfe=3, num_samples=4, progress=False)


def test_an_sd3_transformer_needs_its_pooled_projections_before_any_call():
    from diffusers import FlowMatchEulerDiscreteScheduler

    model = sk.load_model(tiny.sd3_transformer(), loader="diffusers", scheduler=FlowMatchEulerDiscreteScheduler())
    counter = Counting(model.net.module)
    model.net.module = counter
    half = model.condition(encoder_hidden_states=torch.randn(1, 5, 32))
    with pytest.raises(TypeError, match="pooled_projections"):
        sk.sample(half, "ode_euler", nfe=2, num_samples=2, progress=False)
    assert counter.calls == 0


class ExactFlowNet(torch.nn.Module):
    """The exact mixture velocity in diffusers' flow convention: forward(x, timestep) with sigma = timestep / N,
    x = (1 - sigma) x0 + sigma eps, returns u = eps - x0 (E over the posterior).  Records its timesteps."""

    def __init__(self, gm, n_train=1000):
        super().__init__()
        self.gm, self.n_train, self.seen = gm, n_train, []

    def forward(self, x, timestep):
        self.seen.append(timestep.detach().clone())
        s = (timestep.to(torch.float64) / self.n_train).reshape(-1, 1)
        score = self.gm.noised_score(x, 1 - s, s)
        eps, x0 = -s * score, (x + s**2 * score) / (1 - s)
        return eps - x0


@pytest.mark.parametrize("shift", [1.0, 3.0])
def test_a_flow_matching_scheduler_gives_an_exact_rectified_flow_model_with_its_shift_and_grid(shift):
    from diffusers import FlowMatchEulerDiscreteScheduler

    gm, scheduler = mixture(), FlowMatchEulerDiscreteScheduler(shift=shift)
    net = ExactFlowNet(gm)
    model = sk.load_model(net, loader="diffusers", scheduler=scheduler.config, shape=(2,))
    assert model.sde.name == "rectified_flow" and model.parametrization == "flow"
    assert model.schedule_options == ({"shift": shift} if shift != 1.0 else {})
    scheduler.set_timesteps(7)
    assert model.sde.t_min == float(scheduler.sigmas[-2]) > 0  # its last sigma before 0, any step count
    ts, options = scheduler_grid(scheduler, model.sde)
    assert options == {"denoise_final": True} and ts[0] == 1.0 and ts[-1] == model.sde.t_min
    x = gm.sample(32, generator=torch.Generator().manual_seed(0))
    for t in (float(ts[3]), 0.5, model.sde.t_min):
        s = torch.tensor(t, **f64)
        xt = (1 - s) * x + s * torch.randn(x.shape, generator=torch.Generator().manual_seed(1), **f64)
        exact = gm.noised_score(xt, 1 - s, s)
        assert torch.allclose(model(xt, t), exact, rtol=1e-9, atol=1e-9 / t)
        assert torch.allclose(net.seen[-1], torch.full((32,), t * 1000, **f64))  # timestep = N sigma


def test_scheduler_grid_refuses_what_samplekit_would_compute_differently_and_maps_the_rest():
    from diffusers import DDIMScheduler, DPMSolverMultistepScheduler

    gm = mixture()
    scheduler = ddpm_scheduler()
    model = sk.load_model(
        ExactDiffusersNet(gm, scheduler.alphas_cumprod, "epsilon"), loader="diffusers", scheduler=scheduler, shape=(2,)
    )
    with pytest.raises(ValueError, match="set_timesteps"):
        scheduler_grid(DDIMScheduler(), model.sde)
    clipped = DDIMScheduler(clip_sample=True)
    clipped.set_timesteps(4)
    with pytest.raises(ValueError, match="clip_sample"):
        scheduler_grid(clipped, model.sde)
    zero = DPMSolverMultistepScheduler(final_sigmas_type="zero")  # diffusers' x0 at timestep 250: its convention
    zero.set_timesteps(4)
    ts, options = scheduler_grid(zero, model.sde)
    assert options == {"denoise_final": True} and torch.equal(
        model.sde.timestep(ts), torch.tensor([999.0, 749, 500, 250], **f64)
    )
    ddim = DDIMScheduler(clip_sample=False, set_alpha_to_one=False, steps_offset=1)
    ddim.set_timesteps(4)
    ts, options = scheduler_grid(ddim, model.sde)
    assert options == {} and torch.equal(model.sde.timestep(ts), torch.tensor([751.0, 501, 251, 1, 0], **f64))


def test_a_pipeline_object_or_directory_loads_with_its_vae_as_the_decoder(tmp_path):
    from diffusers import DDIMScheduler, DiTPipeline, FlowMatchEulerDiscreteScheduler

    vae = tiny.sd3_vae()  # SD3's scaling and shift factors
    z = torch.randn(2, 4, 8, 8)
    with torch.no_grad():
        want = vae.decode(z / 1.5035 + 0.0609).sample
    model = sk.load_model(
        tiny.sd3_transformer(), loader="diffusers", scheduler=FlowMatchEulerDiscreteScheduler(), vae=vae
    )
    assert torch.allclose(model.decoder(z), want, atol=1e-6)
    cond = model.condition(encoder_hidden_states=torch.randn(1, 5, 32), pooled_projections=torch.randn(1, 64))
    res = sk.sample(cond, "ode_euler", nfe=3, num_samples=2, progress=False)
    assert res.decoded.shape == (2, 3, 8, 8) and torch.allclose(res.decoded, model.decoder(res.samples))
    pipe = DiTPipeline(transformer=tiny.dit_transformer(), vae=vae, scheduler=DDIMScheduler(clip_sample=False))
    for source in (pipe, tmp_path / "dit"):  # the object, then its save_pretrained dir
        pipe.save_pretrained(tmp_path / "dit")
        loaded = sk.load_model(source)
        assert loaded.shape == (4, 8, 8) and torch.allclose(loaded.decoder(z), want, atol=1e-6)
    alone = sk.load_model(tmp_path / "dit" / "transformer")  # a component: ../scheduler, no decoder
    assert alone.decoder is None and alone.sde.num_timesteps == 1000
    x, labels = torch.randn(2, 4, 8, 8), torch.tensor([1, 2])
    t = alone.sde.time_of(torch.tensor(400.0))
    with torch.no_grad():
        eps = pipe.transformer(x, timestep=torch.full((2,), 400.0), class_labels=labels).sample[
            :, :4
        ]  # learned sigma cut
    assert torch.allclose(alone.condition(class_labels=labels).predict(x, t).eps, eps, atol=1e-6)


def test_configs_that_ask_for_too_much_are_refused_before_anything_is_allocated(tmp_path):
    import json
    import time

    net = tiny.class_unet()
    net.save_pretrained(tmp_path / "unet")
    ddpm_scheduler().save_pretrained(tmp_path / "unet")
    with pytest.raises(ValueError, match="max_params"):
        sk.load_model(tmp_path / "unet", max_params=1000)
    assert sk.load_model(tmp_path / "unet", max_params=1e6).shape == (1, 8, 8)
    config_path = tmp_path / "unet" / "config.json"
    config = json.loads(config_path.read_text())
    config_path.write_text(json.dumps({**config, "block_out_channels": [200_000, 200_000]}))  # ~3e12 parameters
    start = time.perf_counter()
    with pytest.raises(ValueError, match=r"parameters .* above max_params"):
        sk.load_model(tmp_path / "unet")
    assert time.perf_counter() - start < 20  # counted on the meta device, not built
    config_path.write_text(json.dumps({**config, "sample_size": 100_000}))
    with pytest.raises(ValueError, match="max_sample_numel"):
        sk.load_model(tmp_path / "unet")
    config_path.write_text(json.dumps(config))
    sched_path = tmp_path / "unet" / "scheduler_config.json"
    sched_path.write_text(json.dumps({**json.loads(sched_path.read_text()), "num_train_timesteps": 10**10}))
    with pytest.raises(ValueError, match="max_train_timesteps"):
        sk.load_model(tmp_path / "unet")
