"""Guidance: conditional sampling as score-model wrappers, so every registered solver can use it.

    import samplekit as sk
    guided = sk.guidance.classifier(model, classifier, y=7, scale=2.0)   # s + w grad log p_t(y|x)
    guided = sk.guidance.classifier_free(cond_model, uncond_model, scale=3.0)  # s_u + w (s_c - s_u)
    sk.sample(guided, solver="euler_maruyama", nfe=200)

A wrapper is a ``ScoreModel``; no solver changes.  Its ``nfe`` counts every underlying network
call (both networks for classifier and classifier-free guidance: 2 per evaluation; classifier-free
guidance on two ``condition()``-ed views of one network makes them ONE batched call on 2B inputs,
still counted 2).  ``nfe_per_eval`` is derived from what a wrapper wraps, so nested wrappers keep
``sk.sample``'s budget.  Guidance
methods are components of kind ``"guidance"`` registered through the ``samplekit_register_guidance``
hook, so a plugin adds one the same way: ``register("my_guidance", factory)`` with
``factory(model, ...) -> ScoreModel``; ``sk.guidance.get(name)`` returns the factory.
"""

from __future__ import annotations

from samplekit.guidance.classifier import ClassifierGuidance, classifier
from samplekit.guidance.classifier_free import ClassifierFreeGuidance, classifier_free
from samplekit.guidance.exact import mixture_classifier
from samplekit.guidance.wrapper import WrappedModel

__all__ = [
    "classifier",
    "classifier_free",
    "ClassifierGuidance",
    "ClassifierFreeGuidance",
    "WrappedModel",
    "mixture_classifier",
    "get",
    "available",
]


def get(name: str):
    """The factory of a registered guidance method: ``sk.guidance.get("classifier")(model, clf, y, scale=2)``."""
    from samplekit.plugins import get_registry

    return get_registry().get("guidance", name).factory


def available():
    """The registered guidance methods (ComponentInfo, with the plugin that gave each)."""
    from samplekit.plugins import get_registry

    return get_registry().available("guidance")
