"""SDE solvers on the reverse SDE, through torchsde."""
