"""Training score models by score matching: denoising (DSM) and sliced (SSM), and a small trainer.

Both losses estimate, up to a constant that does not depend on the network, the weighted explicit
score-matching loss  E_t lambda(t) E|s_theta(x_t, t) - grad log p_t(x_t)|^2  with t ~ U[t_min, T]:

  DSM   lambda(t) |s_theta(x_t, t) + eps / sigma_t|^2,       x_t = alpha_t x0 + sigma_t eps
        (= |eps_theta - eps|^2 for the ``eps`` weighting lambda = sigma^2)
  SSM   lambda(t) [2 v^T (ds_theta/dx) v + (v^T s_theta)^2],  v Gaussian or Rademacher (E v v^T = I)

and DSM - SSM = E_t lambda(t) d / sigma_t^2 exactly (d the data dimension).  Weightings lambda(t):
``eps`` sigma^2 (Ho et al.; Song's default), ``likelihood`` g(t)^2 (Song et al. 2021),
``x0`` sigma^4 / alpha^2 (|x0_theta - x0|^2), ``v`` sigma^2 (alpha^2 + sigma^2)^2 / alpha^2 (|v_theta - v|^2).

``Trainer`` runs Adam on one of them with a tqdm bar, writes checkpoints (safetensors: weights,
optimizer state, step and random state) and resumes from them bit for bit.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

import torch
from tqdm.auto import tqdm

from samplekit.checks import positive_int
from samplekit.errors import InvalidArgumentError
from samplekit.loading import input_grad_only
from samplekit.score import ScoreModel, _check_parametrization, to_eps_x0, to_score
from samplekit.sde import SDE, broadcast_to_batch

Tensor = torch.Tensor
WEIGHTINGS = ("eps", "likelihood", "x0", "v")
PROJECTIONS = ("gaussian", "rademacher")


def weight(sde: SDE, t: Tensor, weighting: str) -> Tensor:
    """lambda(t) of a named weighting."""
    alpha, sigma = sde.marginal(t)
    if weighting == "eps":
        return sigma**2
    if weighting == "likelihood":
        return sde.diffusion(t) ** 2
    if weighting == "x0":
        return sigma**4 / alpha**2
    if weighting == "v":
        return sigma**2 * (alpha**2 + sigma**2) ** 2 / alpha**2
    raise InvalidArgumentError(f"weighting={weighting!r} is unknown; use one of {', '.join(WEIGHTINGS)}")


def sample_times(sde: SDE, n: int, generator: torch.Generator | None, dtype, device=None) -> Tensor:
    """t ~ U[t_min, T]."""
    u = torch.rand(n, generator=generator, dtype=dtype)
    return (sde.t_min + (sde.T - sde.t_min) * u).to(device)


def _noised(sde, x0, t, generator):
    alpha, sigma = sde.marginal(t)
    alpha, sigma = broadcast_to_batch(alpha, x0), broadcast_to_batch(sigma, x0)
    eps = torch.randn(x0.shape, generator=generator, dtype=x0.dtype).to(x0.device)
    return alpha * x0 + sigma * eps, eps, alpha, sigma


def dsm_loss(
    net: Callable,
    sde: SDE,
    x0: Tensor,
    parametrization: str = "eps",
    weighting: str = "eps",
    t: Tensor | None = None,
    generator: torch.Generator | None = None,
    reduce: bool = True,
) -> Tensor:
    """Denoising score matching: lambda(t) |s_theta(x_t, t) + eps / sigma_t|^2 (summed over dimensions)."""
    _check_parametrization(parametrization)
    t = sample_times(sde, x0.shape[0], generator, x0.dtype, x0.device) if t is None else t.expand(x0.shape[0])
    xt, eps, alpha, sigma = _noised(sde, x0, t, generator)
    eps_hat, _ = to_eps_x0(parametrization, net(xt, t), xt, alpha, sigma)
    per = (eps_hat - eps).pow(2).flatten(1).sum(1) * (weight(sde, t, weighting) / sde.marginal(t)[1] ** 2)
    return per.mean() if reduce else per


def ssm_loss(
    net: Callable,
    sde: SDE,
    x0: Tensor,
    parametrization: str = "eps",
    weighting: str = "eps",
    projection: str = "rademacher",
    n_projections: int = 1,
    t: Tensor | None = None,
    generator: torch.Generator | None = None,
    reduce: bool = True,
) -> Tensor:
    """Sliced score matching on x_t: lambda(t) [2 v^T (ds/dx) v + (v^T s)^2], averaged over projections v."""
    _check_parametrization(parametrization)
    if projection not in PROJECTIONS:
        raise InvalidArgumentError(f"projection={projection!r} is unknown; use 'gaussian' or 'rademacher'")
    n_projections = positive_int(n_projections, "n_projections")
    t = sample_times(sde, x0.shape[0], generator, x0.dtype, x0.device) if t is None else t.expand(x0.shape[0])
    xt, _, alpha, sigma = _noised(sde, x0, t, generator)
    xt = xt.detach().requires_grad_(True)
    score = to_score(parametrization, net(xt, t), xt, alpha, sigma)
    total = 0.0
    for _ in range(int(n_projections)):
        v = torch.randn(xt.shape, generator=generator, dtype=xt.dtype).to(xt.device)
        if projection == "rademacher":
            v = v.sign()
        vs = (v * score).flatten(1).sum(1)
        (grad,) = torch.autograd.grad(vs.sum(), xt, create_graph=True)
        total = total + 2 * (v * grad).flatten(1).sum(1) + vs**2
    per = total / int(n_projections) * weight(sde, t, weighting)
    return per.mean() if reduce else per


LOSSES: dict[str, Callable[..., Tensor]] = {"dsm": dsm_loss, "ssm": ssm_loss}


class Trainer:
    """Adam on a score-matching loss over a data tensor; checkpoints and resume in safetensors.

    ``data`` is a tensor (n, *shape) of training samples.  ``fit(steps)`` trains up to that total step
    count (a resumed trainer continues where its checkpoint stopped).
    """

    def __init__(
        self,
        net: torch.nn.Module,
        sde: SDE,
        data: Tensor,
        parametrization: str = "eps",
        loss: str = "dsm",
        weighting: str = "eps",
        batch_size: int = 256,
        lr: float = 1e-3,
        seed: int = 0,
        loss_options: dict | None = None,
        checkpoint: str | Path | None = None,
        checkpoint_every: int = 500,
        progress: bool = True,
    ) -> None:
        _check_parametrization(parametrization)
        if loss not in LOSSES:
            raise InvalidArgumentError(f"loss={loss!r} is unknown; use 'dsm' or 'ssm'")
        weight(sde, torch.tensor([sde.T], dtype=torch.float64), weighting)  # validates the name
        if not isinstance(data, Tensor) or data.ndim < 2 or data.shape[0] < 2:
            raise InvalidArgumentError("data must be a tensor of training samples, shape (n >= 2, *sample_shape)")
        batch_size = positive_int(batch_size, "batch_size")
        self.net, self.sde, self.data = net, sde, data
        self.parametrization, self.loss_name, self.weighting = parametrization, loss, weighting
        self.batch_size, self.loss_options = int(batch_size), dict(loss_options or {})
        self.optimizer = torch.optim.Adam(net.parameters(), lr=lr)
        self.generator = torch.Generator().manual_seed(seed)
        self.checkpoint = Path(checkpoint) if checkpoint is not None else None
        self.checkpoint_every, self.progress = int(checkpoint_every), progress
        self.step = 0
        self.history: list[float] = []

    def train_step(self) -> float:
        idx = torch.randint(0, self.data.shape[0], (self.batch_size,), generator=self.generator)
        x0 = self.data[idx]
        loss = LOSSES[self.loss_name](
            self.net, self.sde, x0, self.parametrization, self.weighting, generator=self.generator, **self.loss_options
        )
        self.optimizer.zero_grad(set_to_none=True)
        loss.backward()
        self.optimizer.step()
        self.step += 1
        return float(loss.detach())

    def fit(self, steps: int) -> list[float]:
        """Train until ``self.step == steps``; checkpoint every ``checkpoint_every`` steps and at the end."""
        bar = tqdm(range(self.step, int(steps)), desc=f"train {self.loss_name}", disable=not self.progress)
        for _ in bar:
            value = self.train_step()
            self.history.append(value)
            if self.step % 50 == 0:
                bar.set_postfix(loss=f"{sum(self.history[-50:]) / len(self.history[-50:]):.4g}")
            if self.checkpoint is not None and self.step % self.checkpoint_every == 0:
                self.save_checkpoint(self.checkpoint)
        if self.checkpoint is not None:
            self.save_checkpoint(self.checkpoint)
        return self.history

    def score_model(self, name: str = "trained") -> ScoreModel:
        """The network as a ScoreModel (in its own dtype, output in x's; no graph unless x requires grad)."""
        net = self.net
        dtype = next(net.parameters()).dtype

        def call(x, t):
            with input_grad_only(x):
                return net(x.to(dtype), t.to(dtype)).to(x.dtype)

        return ScoreModel(call, self.sde, tuple(self.data.shape[1:]), self.parametrization, name=name)

    # --- checkpoints ----------------------------------------------------------------------------
    def save_checkpoint(self, path: str | Path) -> Path:
        """Weights, Adam state, step, loss history and the random state in one safetensors file."""
        from safetensors.torch import save

        from samplekit.atomic import atomic_write

        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        tensors = {f"model.{k}": v.detach().contiguous().cpu() for k, v in self.net.state_dict().items()}
        opt = self.optimizer.state_dict()
        for pid, state in opt["state"].items():
            for key, value in state.items():
                tensors[f"optim.{pid}.{key}"] = torch.as_tensor(value).detach().contiguous().cpu()
        tensors["rng"] = self.generator.get_state()
        meta = {
            "step": self.step,
            "param_groups": opt["param_groups"],
            "history": self.history,
            "loss": self.loss_name,
            "weighting": self.weighting,
            "parametrization": self.parametrization,
            "sde": repr(self.sde),
        }
        blob = save(tensors, metadata={"samplekit_trainer": json.dumps(meta)})
        return atomic_write(path, lambda f: f.write(blob), replace=True)

    def resume(self, path: str | Path) -> Trainer:
        """Restore a checkpoint written by ``save_checkpoint`` (same network and optimizer layout)."""
        from safetensors import safe_open
        from safetensors.torch import load_file

        from samplekit.errors import CheckpointError, loading_errors

        path = Path(path)
        with loading_errors(f"checkpoint {str(path)!r}", "pass the --checkpoint a previous train run wrote"):
            with safe_open(str(path), framework="pt") as f:
                meta = json.loads((f.metadata() or {}).get("samplekit_trainer", "null"))
            if meta is None:
                raise InvalidArgumentError(f"{str(path)!r} is not a samplekit trainer checkpoint")
            tensors = load_file(str(path))
        # what the network's output means must match; the loss and its weighting may change (a fine-tune)
        now = {"parametrization": self.parametrization, "sde": repr(self.sde)}
        changed = [f"{k} ({meta[k]} there, {v} now)" for k, v in now.items() if k in meta and meta[k] != v]
        if changed:
            raise CheckpointError(
                f"checkpoint {str(path)!r} was trained with another {'; '.join(changed)}; resume with the "
                "checkpoint's settings, or start over with --force"
            )
        weights = {k[6:]: v for k, v in tensors.items() if k.startswith("model.")}
        mine = {k: tuple(v.shape) for k, v in self.net.state_dict().items()}
        if {k: tuple(v.shape) for k, v in weights.items()} != mine:
            raise CheckpointError(
                f"checkpoint {str(path)!r} holds another network (other --hidden/--depth or data dimension); "
                "resume with the checkpoint's architecture, or start over with --force"
            )
        self.net.load_state_dict(weights)
        state: dict = {}
        for key, value in tensors.items():
            if key.startswith("optim."):
                _, pid, name = key.split(".", 2)
                state.setdefault(int(pid), {})[name] = value
        self.optimizer.load_state_dict({"state": state, "param_groups": meta["param_groups"]})
        self.generator.set_state(tensors["rng"])
        self.step, self.history = int(meta["step"]), list(meta["history"])
        return self
