"""Fast high-order solvers: DPM-Solver++, UniPC, EDM Heun."""
