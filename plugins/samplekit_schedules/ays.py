"""``ays``: Align Your Steps, Sabour, Fidler & Kreis (2024), "Align Your Steps: optimizing sampling
schedules in diffusion models" (arXiv:2404.14507).

The published 10-step schedules, in the noise level sigma (= s = sigma_t / alpha_t of a VP model, the
EDM sigma of an EDM model), from the authors' how-to page
(research.nvidia.com/labs/toronto-ai/AlignYourSteps/howto.html), as ComfyUI's AlignYourStepsScheduler
ships them:

    SD1.5: 14.6146412293 6.4745760956 3.8636745985 2.6946151520 1.8841921177 1.3943805092
           0.9642583904 0.6523686016 0.3977456272 0.1515232662 0.0291671582
    SDXL:  14.6146412293 6.3184485287 3.7681790315 2.1811480769 1.3405244945 0.8620721141
           0.5550693289 0.3798540708 0.2332364134 0.1114188177 0.0291671582
    SVD:   700 54.5 15.886 7.977 4.248 1.789 0.981 0.403 0.173 0.034 0.002

Other step counts: log-linear interpolation, as the authors' page and ComfyUI do: with the table
s_0 > ... > s_10 placed at x_k = k/10, log s is interpolated linearly at x_i = i/n, i = 0..n.

On an SDE whose noise range [s_min, s_max] differs from the model the table was made for:
``fit="clip"`` (default) keeps the table's interior levels (clipped into [s_min, s_max]) and puts its two
end levels at the SDE's s_max and s_min before interpolating, so the grid starts at T and ends at t_min and
its first and last intervals shrink as n grows (at n = 10 the interior levels are the published ones);
``fit="rescale"`` maps log s affinely so the table's range becomes [log s_min, log s_max] (the shape of the
schedule kept, for a model unlike SD / SVD).
"""

from __future__ import annotations

import math

import torch

from samplekit.errors import InvalidArgumentError
from samplekit.sde import SDE
from samplekit_schedules._noise import noise_range, steps, times_from_noise

TABLES: dict[str, tuple[float, ...]] = {
    "sd15": (
        14.6146412293,
        6.4745760956,
        3.8636745985,
        2.6946151520,
        1.8841921177,
        1.3943805092,
        0.9642583904,
        0.6523686016,
        0.3977456272,
        0.1515232662,
        0.0291671582,
    ),
    "sdxl": (
        14.6146412293,
        6.3184485287,
        3.7681790315,
        2.1811480769,
        1.3405244945,
        0.8620721141,
        0.5550693289,
        0.3798540708,
        0.2332364134,
        0.1114188177,
        0.0291671582,
    ),
    "svd": (700.00, 54.5, 15.886, 7.977, 4.248, 1.789, 0.981, 0.403, 0.173, 0.034, 0.002),
}


def ays_levels(model_type: str, n_steps: int, table: torch.Tensor | None = None) -> torch.Tensor:
    """The table for ``model_type`` (or ``table``) log-linearly interpolated to n_steps + 1 decreasing levels."""
    if model_type not in TABLES:
        raise InvalidArgumentError(
            f"schedule option model_type={model_type!r} is not one of {sorted(TABLES)} (the published AYS tables)"
        )
    n = steps(n_steps)
    table = torch.tensor(TABLES[model_type], dtype=torch.float64) if table is None else table
    if n + 1 == len(table):
        return table
    xs = torch.linspace(0.0, 1.0, len(table), dtype=torch.float64)
    new_xs = torch.linspace(0.0, 1.0, n + 1, dtype=torch.float64)
    k = torch.searchsorted(xs, new_xs, right=True).clamp(1, len(table) - 1)
    w = (new_xs - xs[k - 1]) / (xs[k] - xs[k - 1])
    logs = table.log()
    return torch.exp(logs[k - 1] + w * (logs[k] - logs[k - 1]))


def ays(sde: SDE, n_steps: int, model_type: str = "sd15", fit: str = "clip") -> torch.Tensor:
    s = ays_levels(model_type, n_steps)
    s_min, s_max = noise_range(sde)
    if fit == "rescale":
        lo, hi = math.log(float(s[-1])), math.log(float(s[0]))
        top = math.log(s_max) if math.isfinite(s_max) else hi
        s = torch.exp(math.log(s_min) + (s.log() - lo) * (top - math.log(s_min)) / (hi - lo))
    elif fit == "clip":
        table = torch.tensor(TABLES[model_type], dtype=torch.float64)
        table[0], table[-1] = min(s_max, 1e300), s_min  # the table's ends become the SDE's: the first and
        s = ays_levels(model_type, n_steps, table).clamp(s_min, s_max)  # last intervals shrink as n grows
        inner = s[1:-1]
        if len(inner) and (
            bool((inner[1:] >= inner[:-1]).any()) or float(inner[0]) >= s_max or float(inner[-1]) <= s_min
        ):
            raise InvalidArgumentError(
                f"the AYS {model_type} levels clipped to this SDE's noise range [{s_min:.3g}, "
                f"{s_max:.3g}] repeat a point with {steps(n_steps)} steps; pass "
                "schedule_options={'fit': 'rescale'} or fewer steps"
            )
    else:
        raise InvalidArgumentError(f"schedule option fit={fit!r} must be 'clip' or 'rescale'")
    return times_from_noise(sde, s)
