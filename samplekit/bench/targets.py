"""What the harness asks of a benchmark target, and the target made from a user's own model.

A target (registry kind "target"; ``factory()`` builds it) has
    shape                   one sample's shape
    exact                   True if ``log_prob`` is the exact target log-density
    model(sde) -> ScoreModel
    reference(n, seed)      n reference samples (exact, or drawn from a data file)
and may have
    fixed_sde               an SDE instance the model was trained with: the target runs with it only
    sde_names               the SDE names it runs with (a subset of the suite's ``sdes`` is used)
    log_prob(x)             the exact log-density (exact targets)
    data                    the kind of data it draws (e.g. "digits"): metrics registered with the same
                            ``data`` apply to it; a user's model has none, so it gets no such metric
    floor_reference(n, seed)  a second reference set independent of ``reference`` for the noise
                            floor (defaults to ``reference(n, seed + FLOOR_SEED_OFFSET)``)
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch

from samplekit.arrays import ArrayChoiceError, read_array
from samplekit.bench.suite import SuiteError
from samplekit.score import ScoreModel

REFERENCE_SEED_OFFSET = 10_000
FLOOR_SEED_OFFSET = 20_000


def target_sdes(target, suite_sdes) -> list[str]:
    """The SDE names a target runs with under a suite: its fixed SDE, else the suite's (restricted)."""
    fixed = getattr(target, "fixed_sde", None)
    if fixed is not None:
        return [fixed.name]
    allowed = getattr(target, "sde_names", None)
    return [s for s in suite_sdes if allowed is None or s in allowed]


def reference_set(target, n: int, seed: int) -> torch.Tensor:
    return target.reference(n, REFERENCE_SEED_OFFSET + seed)


def floor_set(target, n: int, seed: int) -> torch.Tensor:
    floor = getattr(target, "floor_reference", None)
    if floor is not None:
        return floor(n, seed)
    return target.reference(n, FLOOR_SEED_OFFSET + seed)


def load_reference_file(path: str | Path) -> torch.Tensor:
    """Reference samples from an .npz (array ``samples``, or its only array) or .npy file, one per row."""
    path = Path(path)
    if not path.is_file():
        raise SuiteError(f"--data {str(path)!r} does not exist; pass an .npz/.npy file of samples of the model's data")
    try:
        array = read_array(path, "samples")
    except ArrayChoiceError as exc:
        raise SuiteError(f"--data {str(path)!r} holds arrays {exc.names}; name the data array 'samples'") from None
    except Exception as exc:
        raise SuiteError(f"--data {str(path)!r} could not be read as .npz/.npy: {exc}") from None
    ref = torch.as_tensor(np.asarray(array, dtype=np.float64))
    if ref.ndim < 2 or ref.shape[0] < 4 or not torch.isfinite(ref).all():
        raise SuiteError(
            f"--data {str(path)!r} must hold finite samples of shape (n >= 4, ...); got {tuple(ref.shape)}"
        )
    return ref


class UserModelTarget:
    """A user's score model (loaded by a registered model loader) with a file of reference samples.

    The reference file is split in two fixed halves: ``reference`` draws from the first, the noise
    floor from the second, so the floor compares independent sets.
    """

    exact = False
    log_prob = None

    def __init__(self, name: str, model: ScoreModel, reference: torch.Tensor) -> None:
        if not isinstance(model, ScoreModel):
            raise SuiteError(f"the model loader returned {type(model).__name__}, not a samplekit ScoreModel")
        if tuple(reference.shape[1:]) != model.shape:
            raise SuiteError(
                f"reference samples have shape {tuple(reference.shape[1:])} per sample, the model "
                f"{model.shape}; pass a reference file of the model's data"
            )
        self.name, self._model, self.shape = name, model, model.shape
        self.fixed_sde = model.sde
        perm = torch.randperm(reference.shape[0], generator=torch.Generator().manual_seed(0))
        half = reference.shape[0] // 2
        self._halves = (reference[perm[:half]], reference[perm[half : 2 * half]])

    @property
    def max_samples(self) -> int:
        return self._halves[0].shape[0]

    def model(self, sde=None) -> ScoreModel:
        return self._model

    def _draw(self, half: int, n: int, seed: int) -> torch.Tensor:
        pool = self._halves[half]
        if n > pool.shape[0]:
            raise SuiteError(
                f"num_samples={n} is more than half the reference file ({pool.shape[0]}); "
                f"lower --num-samples or give more reference samples"
            )
        idx = torch.randperm(pool.shape[0], generator=torch.Generator().manual_seed(seed))[:n]
        return pool[idx]

    def reference(self, n: int, seed: int = 0) -> torch.Tensor:
        return self._draw(0, n, seed)

    def floor_reference(self, n: int, seed: int = 0) -> torch.Tensor:
        return self._draw(1, n, seed)


def user_model_target(name: str, model: ScoreModel, data_path: str) -> UserModelTarget:
    """--model ... --data data.npz: the model (built by ``ModelFlags.build``) with the user's data as reference."""
    return UserModelTarget(name, model, load_reference_file(data_path))


class ReferenceFreeTarget:
    """A user's score model benchmarked against its own dynamics (no reference samples needed).

    Deterministic solvers are measured by their distance to a tight ``ode_dopri5`` solve from the same
    x_T (the harness does that for every target); the headline metric compares every solver with a
    large set drawn by ``solver`` on a fine grid of ``nfe`` steps of the model's reverse SDE
    (``reference``), and the noise floor with a second such set (``floor_reference``).  Both measure
    the solver's error, not the model's.
    """

    exact = False
    log_prob = None
    needs_sde_reference = True

    def __init__(
        self,
        name: str,
        model: ScoreModel,
        registry,
        solver: str = "euler_maruyama",
        nfe: int = 1000,
        dtype: torch.dtype = torch.float32,
    ) -> None:
        if not isinstance(model, ScoreModel):
            raise SuiteError(f"the model loader returned {type(model).__name__}, not a samplekit ScoreModel")
        self.name, self._model, self.shape, self.fixed_sde = name, model, model.shape, model.sde
        self.registry, self.solver, self.nfe, self.dtype = registry, solver, int(nfe), dtype

    def model(self, sde=None) -> ScoreModel:
        return self._model

    def reference(self, n: int, seed: int = 0) -> torch.Tensor:
        from samplekit.bench.flow import sde_reference

        return sde_reference(self.registry, self._model, self.solver, self.nfe, n, seed, self.dtype)

    @property
    def bench_note(self) -> str:
        return (
            f"**No reference samples: `{self.name}` is measured against its own dynamics. This is the solver's "
            f"error, not the model's** (it says nothing about how close the model is to its data): "
            f"deterministic solvers by their distance to an ode_dopri5 solve of the same ODE from the same x_T, "
            f"every solver's headline metric against samples of `{self.solver}` on {self.nfe} steps of the "
            f"model's reverse SDE (the noise floor: a second such set)."
        )


def reference_free_target(registry, name: str, model: ScoreModel, suite) -> ReferenceFreeTarget:
    """--model ... without --data: measured against the model's own dynamics."""
    registry.get("solver", suite.reference_sde_solver)
    return ReferenceFreeTarget(
        name,
        model,
        registry,
        suite.reference_sde_solver,
        suite.reference_sde_nfe,
        getattr(torch, suite.dtype),
    )
