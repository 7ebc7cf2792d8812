"""samplekit's own loop driven by a pipeline that calls the network itself: a solver run in a worker thread.

A diffusers pipeline owns the network call and hands its output to ``scheduler.step``.  samplekit's solvers
own their loop (``samplekit.sampling.integrate``), which calls the network.  ``SolverThread`` joins the two:
the loop runs in a worker thread on a ``ScoreModel`` whose network is a rendezvous.  When the solver asks for
the network at (x, t), the worker posts x to the pipeline's thread and waits; ``advance(output, sample)``
(called by ``step``) gives the worker the pipeline's output and returns the next x the solver asks for, or
the final x when the run ends.  So the pipeline evaluates exactly where the solver would, and every solver
of the registry (multi-stage, multistep, stochastic) runs unchanged, through the core loop.

Latents the pipeline changed between calls (inpainting blends the known region back in):

* at a step boundary (x is the solver's state between two grid steps, as at every call of a solver with
  one network call a step) the changed latents REPLACE the solver's x: they are written into the loop's
  state before the solver uses it, so the step continues from them;
* at an intermediate stage of a multi-stage step (Heun's corrector point, a 2S/3S stage, a restart jump)
  the changed latents are only where that stage's network output was computed; the solver's state is
  kept, and the change is taken up at the next step boundary, where the pipeline blends again.

Torch's grad and inference modes are thread-local: the worker runs in the modes of the thread that started
it.  An exception in the worker reaches the caller of ``advance`` (a samplekit error as it is, any other
wrapped in ``SolverRunError``).  ``close`` stops a waiting worker (``set_timesteps`` and garbage collection of
the scheduler call it), so no thread outlives its run.
"""

from __future__ import annotations

import queue
import threading
from dataclasses import dataclass

import torch

from samplekit.diffusers.evaluations import walk
from samplekit.errors import SamplekitError
from samplekit.noise import NoiseSource
from samplekit.score import ScoreModel
from samplekit.sde import SDE
from samplekit.solver import Solver

Tensor = torch.Tensor


class SolverRunError(SamplekitError, RuntimeError):
    """The solver failed inside a pipeline's denoising loop."""


class _Stop(BaseException):
    """Raised inside the worker's network call to unwind a run that is closed (not an Exception, so a
    solver's own ``except Exception`` cannot swallow it)."""


_STOP = object()


@dataclass
class _Boundary:
    """The loop's state tensor between two grid steps, and the time it is at."""

    x: Tensor
    t: float


class _Channel:
    """The two hand-over queues, and the boundary the worker last reported (all the worker shares)."""

    def __init__(self) -> None:
        self.to_main: queue.Queue = queue.Queue(maxsize=1)
        self.to_worker: queue.Queue = queue.Queue(maxsize=1)
        self.boundary: _Boundary | None = None
        self.replaced = 0  # how many times the pipeline's latents replaced the solver's state

    def network(self, x: Tensor, t: Tensor, **inputs) -> Tensor:
        """The worker's network: post (x, t), wait for (output, sample the pipeline evaluated at)."""
        self.to_main.put(("eval", x, t))
        message = self.to_worker.get()
        if message is _STOP:
            raise _Stop
        out, sample = message
        if not _same(sample, x):
            here = self.boundary
            if here is not None and abs(float(t.reshape(-1)[0]) - here.t) <= 1e-6 and _same(here.x, x):
                here.x.copy_(sample)  # the pipeline's latents replace the solver's state (see the module doc)
                self.replaced += 1
        return out

    def at_boundary(self, info) -> None:
        self.boundary = _Boundary(info.x, float(info.t_next))


def _same(a: Tensor, b: Tensor) -> bool:
    """Equal up to rounding (a solver may evaluate at alpha (x / alpha) rather than at x itself)."""
    return a.shape == b.shape and torch.allclose(a, b.to(a.dtype), rtol=1e-5, atol=1e-6)


def _work(channel: _Channel, solver: Solver, model: ScoreModel, x: Tensor, ts: Tensor, noise, modes) -> None:
    grad, inference = modes
    try:
        with torch.inference_mode(inference), torch.set_grad_enabled(grad):
            x = walk(solver, model, x, ts, noise, channel.at_boundary)
        channel.to_main.put(("done", x, None))
    except _Stop:
        return
    except BaseException as exc:  # noqa: BLE001  (handed to the caller's thread, raised there)
        channel.to_main.put(("error", exc, None))


class GeneratorNoise(NoiseSource):
    """The solver's random draws from the pipeline's ``generator`` (one, a list of one per sample, or None
    for torch's global generator), drawn as diffusers' ``randn_tensor`` draws them; ``generator`` is set by
    every ``step`` call before the solver continues."""

    def __init__(self, num_samples: int, device) -> None:
        super().__init__(0, num_samples, device)
        self.generator = None

    def randn(self, shape, dtype: torch.dtype = torch.float32) -> Tensor:
        from diffusers.utils.torch_utils import randn_tensor

        self.draws += 1
        full = (self.num_samples, *(int(n) for n in shape))
        return randn_tensor(full, generator=self.generator, device=self.device, dtype=dtype)

    def integer_seed(self) -> int:
        g = self.generator[0] if isinstance(self.generator, list) else self.generator
        return int(torch.randint(0, 2**31 - 1, (1,), generator=g).item())


class SolverThread:
    """One solver run on grid ``ts`` from ``x`` (cloned), its network calls answered by ``advance``."""

    def __init__(self, solver: Solver, sde: SDE, parametrization: str, x: Tensor, ts: Tensor, generator=None) -> None:
        self.channel = _Channel()
        self.noise = GeneratorNoise(x.shape[0], x.device)
        self.noise.generator = generator  # draws before the first call (churn) come from the first step's generator
        model = ScoreModel(self.channel.network, sde, tuple(x.shape[1:]), parametrization, name="pipeline")
        x = x.clone()
        self.channel.boundary = _Boundary(x, float(ts[0]))
        modes = (torch.is_grad_enabled(), torch.is_inference_mode_enabled())
        self.thread = threading.Thread(
            target=_work,
            args=(self.channel, solver, model, x, ts, self.noise, modes),
            name=f"samplekit-{solver.name}",
            daemon=True,
        )
        self.solver_name = solver.name
        self.pending: tuple[Tensor, Tensor] | None = None  # (x, t) of the call the worker waits on
        self.finished = False
        self.thread.start()
        self.pending = self._next()

    @property
    def replaced(self) -> int:
        return self.channel.replaced

    def _next(self) -> tuple[Tensor, Tensor] | None:
        kind, value, t = self.channel.to_main.get()
        if kind == "eval":
            return value, t
        self.thread.join()
        self.finished = True
        if kind == "error":
            if isinstance(value, SamplekitError):
                raise value
            raise SolverRunError(
                f"solver {self.solver_name!r} failed inside the pipeline's loop: {type(value).__name__}: {value}"
            ) from value
        self.final = value
        return None

    def advance(self, output: Tensor, sample: Tensor, generator=None) -> Tensor:
        """Hand the network's ``output`` at ``sample`` to the solver; the next x it asks for (a copy), or
        the final x after its last call."""
        assert self.pending is not None, "advance() after the run ended"
        self.noise.generator = generator
        self.channel.to_worker.put((output, sample))
        self.pending = self._next()
        return (self.pending[0] if self.pending is not None else self.final).clone()

    def close(self) -> None:
        """Stop a worker that waits for an output (nothing if it has ended)."""
        close_channel(self.channel, self.thread)


def close_channel(channel: _Channel, thread: threading.Thread) -> None:
    """Unwind the worker of ``channel`` if it still waits, and join it (for ``weakref.finalize``)."""
    if thread.is_alive():
        try:
            channel.to_worker.put_nowait(_STOP)
        except queue.Full:
            pass
        thread.join(timeout=10)
