"""An exact class-conditional network for the conditioning and guidance tests, counting its own calls.

``ExactConditional(mix, sde)(x, t, class_labels)`` is the exact score of component ``class_labels[i]`` of the
noised mixture for row i, and of the whole mixture for the null label K (the label-dropout convention of
classifier-free guidance), so one network serves as conditional and unconditional model.  ``calls`` and
``rows`` count its invocations and the samples it was evaluated on: the NFE a run spends, counted at the
network itself.
"""

from __future__ import annotations

import torch


class ExactConditional(torch.nn.Module):
    def __init__(self, mix, sde) -> None:
        super().__init__()
        self.mix, self.sde = mix, sde
        self.components = [mix.component(k) for k in range(mix.K)]
        self.null = mix.K
        self.calls = 0
        self.rows = 0

    def forward(self, x, t, class_labels):
        self.calls += 1
        self.rows += x.shape[0]
        alpha, sigma = self.sde.marginal(t)
        scores = [c.noised_score(x, alpha, sigma) for c in self.components] + [self.mix.noised_score(x, alpha, sigma)]
        y = torch.as_tensor(class_labels, device=x.device).long().expand(x.shape[0])
        return torch.stack(scores, 1)[torch.arange(x.shape[0], device=x.device), y]


class CountingNet(torch.nn.Module):
    """Wraps a plain net(x, t), counting calls and rows."""

    def __init__(self, fn) -> None:
        super().__init__()
        self.fn = fn
        self.calls = 0
        self.rows = 0

    def forward(self, x, t):
        self.calls += 1
        self.rows += x.shape[0]
        return self.fn(x, t)
