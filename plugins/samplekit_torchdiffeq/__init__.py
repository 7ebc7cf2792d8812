"""Adaptive black-box ODE solvers on the probability-flow ODE, through torchdiffeq."""
