"""``--class K --guidance W`` on a loaded class-conditional network: classifier-free guidance on one network,
``sk.guidance.classifier_free(model.condition(class_labels=K), model.condition(class_labels=null), W)``
(Ho & Salimans 2022: eps = eps_null + W (eps_K - eps_null); one batched call of 2B inputs per evaluation).

The null label is ``--null-class``, else the last row of the network's class-embedding table: diffusers'
DiT keeps its classifier-free row there (``LabelEmbedding``: num_classes + 1 rows), and a UNet2DModel
trained with label dropout to an extra class (``num_class_embeds`` = classes + 1) does the same.
"""

from __future__ import annotations

import click

CLASS_INPUT = "class_labels"  # the class-label argument of diffusers' UNet2DModel and DiT


def class_embedding_rows(model) -> int | None:
    """Rows of the network's class-embedding table (an ``nn.Embedding`` named like ``class_embed*``), or None."""
    import torch

    found = []
    for root in _modules(model.net):
        for name, module in root.named_modules():
            if isinstance(module, torch.nn.Embedding) and "class_embed" in name:
                found.append(module.num_embeddings)
    return found[0] if len(set(found)) == 1 else None


def _modules(obj, depth: int = 0):
    """The torch modules reachable from a (wrapped) network through attributes, a few levels deep."""
    import torch

    if isinstance(obj, torch.nn.Module):
        yield obj
        return
    if depth > 3:
        return
    for value in vars(obj).values() if hasattr(obj, "__dict__") else ():
        if isinstance(value, torch.nn.Module) or hasattr(value, "__dict__") and not isinstance(value, type):
            yield from _modules(value, depth + 1)


def guide_loaded(model, class_label: int, scale: float, null_class: int | None):
    """The CFG model of a loaded class-conditional network (refused, naming the fix, otherwise)."""
    import torch

    from samplekit.errors import SamplekitError
    from samplekit.guidance import classifier_free

    rows = class_embedding_rows(model)
    if null_class is None:
        if rows is None:
            raise click.BadParameter(
                f"cannot tell the unconditional (null) label of {model.name!r}: give "
                "--null-class (the label its training used for 'no class')",
                param_hint="--class",
            )
        null_class = rows - 1
    if rows is not None and not 0 <= class_label < rows:
        raise click.BadParameter(
            f"--class {class_label} is out of range: the network embeds labels 0..{rows - 1}", param_hint="--class"
        )
    if class_label == null_class:
        raise click.BadParameter(
            f"--class {class_label} is the null (unconditional) label; choose a class", param_hint="--class"
        )
    try:
        cond = model.condition(**{CLASS_INPUT: torch.tensor([class_label])})
        uncond = model.condition(**{CLASS_INPUT: torch.tensor([null_class])})
    except SamplekitError as exc:
        raise click.BadParameter(
            f"{model.name!r} takes no class labels ({exc}); --class needs a class-conditional "
            "network, or a shipped model with a classifier",
            param_hint="--class",
        ) from None
    return classifier_free(cond, uncond, scale)
