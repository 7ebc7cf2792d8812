"""samplekit's side of diffusers: its scheduler conventions reproduced on samplekit's processes and solvers
(``samplekit.diffusers.conventions``).  diffusers itself is imported only inside the functions that need it."""

__all__ = ["SamplekitScheduler"]


def __getattr__(name: str):
    """``SamplekitScheduler`` imported on first use, so ``import samplekit`` never needs diffusers."""
    if name in ("SamplekitScheduler", "SamplekitSchedulerOutput"):
        from samplekit.diffusers import scheduler

        return getattr(scheduler, name)
    raise AttributeError(f"module 'samplekit.diffusers' has no attribute {name!r}")
