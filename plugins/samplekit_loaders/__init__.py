"""Model loaders: diffusers, k-diffusion-style denoisers, plain torch modules, samplekit's native format."""
