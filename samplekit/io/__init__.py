"""Reading and writing files that are not models: image grids (``samplekit.io.images``)."""
