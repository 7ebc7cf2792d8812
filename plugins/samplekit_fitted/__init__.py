"""Fitted solvers for ``sk.fit_solver``: AMED-Solver, EPD-Solver, LD3 grids, and the grid optimiser as baseline."""

from __future__ import annotations

from samplekit.hookspecs import Register, hookimpl
from samplekit_fitted.amed import AMED
from samplekit_fitted.epd import EPD
from samplekit_fitted.ld3 import LD3
from samplekit_fitted.optimized_grid import OptimizedGrid

FITTERS = (AMED, EPD, LD3, OptimizedGrid)


@hookimpl
def samplekit_register_fitters(register: Register) -> None:
    for cls in FITTERS:
        register(cls.name, cls)
