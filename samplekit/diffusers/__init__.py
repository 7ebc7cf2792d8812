"""samplekit's side of diffusers: its scheduler conventions reproduced on samplekit's processes and solvers
(``samplekit.diffusers.conventions``).  diffusers itself is imported only inside the functions that need it."""
