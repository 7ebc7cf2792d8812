"""A diffusers scheduler's inference grid as samplekit times: the conventions live in the core module
``samplekit.diffusers.conventions``; this name is kept for existing imports."""

from samplekit.diffusers.conventions import scheduler_grid, scheduler_solver

__all__ = ["scheduler_grid", "scheduler_solver"]
