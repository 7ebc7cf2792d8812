"""Training score networks (kept apart from the sampler core).

``samplekit.training.train``: the score-matching losses (DSM, SSM) and the ``Trainer``;
``samplekit.training.nets``: the small networks of the native format, by architecture name.
Nothing here is imported by ``import samplekit``.
"""
