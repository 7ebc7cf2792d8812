"""Overhead of samplekit's ``sample()`` against a bare hand-written loop making the same network calls.

Both run Euler-Maruyama on the VP reverse SDE with the same 3-layer MLP eps-network (batch 4096, the
same grid, the same noise), so the difference is the cost of samplekit's machinery: input checks,
parametrisation conversion, finiteness flags (kept on the device, read once a run), NFE counting.
Median of repeats, interleaved.

    python benchmarks/overhead.py            # prints the table
    python benchmarks/overhead.py --write    # also writes benchmarks/overhead.md
"""

from __future__ import annotations

import argparse
import platform
import statistics
import time
from pathlib import Path

import torch

import samplekit as sk


class MLP(torch.nn.Module):
    """eps(x, t): three linear layers on [x, t]."""

    def __init__(self, d: int = 2, hidden: int = 256) -> None:
        super().__init__()
        self.net = torch.nn.Sequential(
            torch.nn.Linear(d + 1, hidden),
            torch.nn.SiLU(),
            torch.nn.Linear(hidden, hidden),
            torch.nn.SiLU(),
            torch.nn.Linear(hidden, d),
        )

    def forward(self, x, t):
        return self.net(torch.cat([x, t.reshape(-1, 1).to(x.dtype)], dim=1))


def bare_loop(net, sde, x, ts, gen):
    """Euler-Maruyama written by hand: x <- x - h (f - g^2 s) + g sqrt(h) z, s = -eps / sigma."""
    for i in range(len(ts) - 1):
        t0, t1 = ts[i], ts[i + 1]
        h = t0 - t1
        tb = t0.expand(x.shape[0])
        _, sigma = sde.marginal(t0)
        score = -net(x, tb) / sigma
        g = sde.diffusion(t0)
        x = (
            x
            - h * (sde.drift(x, t0) - g * g * score)
            + g * h.sqrt() * torch.randn(x.shape, generator=gen, dtype=x.dtype)
        )
    return x


def measure(nfe: int, batch: int, repeats: int) -> dict:
    torch.manual_seed(0)
    sde, net = sk.VPSDE(), MLP().eval()
    model = sk.ScoreModel.from_eps(net, sde, shape=(2,))
    ts = sk.get_schedule("uniform")(sde, nfe)
    calls = {"n": 0}
    net.register_forward_hook(lambda *a: calls.__setitem__("n", calls["n"] + 1))

    def run_sample():
        res = sk.sample(model, solver="euler_maruyama", nfe=nfe, num_samples=batch, seed=0, progress=False)
        return res.samples

    def run_bare():
        gen = torch.Generator().manual_seed(0)
        x = sde.prior_std * torch.randn(batch, 2, generator=gen)
        return bare_loop(net, sde, x, ts, gen)

    times = {"samplekit sample()": [], "bare loop": []}
    cpu = {"samplekit sample()": [], "bare loop": []}  # CPU seconds: less sensitive to other jobs
    with torch.no_grad():
        a, b = run_sample(), run_bare()  # warm-up, and the two agree
        assert torch.allclose(a, b, atol=1e-4), float((a - b).abs().max())
        for _ in range(repeats):
            for name, fn in (("samplekit sample()", run_sample), ("bare loop", run_bare)):
                calls["n"] = 0
                start, start_cpu = time.perf_counter(), time.process_time()
                fn()
                times[name].append(time.perf_counter() - start)
                cpu[name].append(time.process_time() - start_cpu)
                assert calls["n"] == nfe, (name, calls["n"])
        grad_on = []
        for _ in range(repeats):
            with torch.enable_grad():  # as a user calls it, outside no_grad
                start = time.perf_counter()
                run_sample()
                grad_on.append(time.perf_counter() - start)
    med = {k: statistics.median(v) for k, v in times.items()}
    med["sample() with autograd on"] = statistics.median(grad_on)
    return {
        "nfe": nfe,
        "batch": batch,
        "repeats": repeats,
        **med,
        "ratio": med["samplekit sample()"] / med["bare loop"],
        "cpu ratio": statistics.median(cpu["samplekit sample()"]) / statistics.median(cpu["bare loop"]),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--nfe", type=int, nargs="+", default=[20, 100])
    parser.add_argument("--batch", type=int, default=4096)
    parser.add_argument("--repeats", type=int, default=7)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--record", "--write", dest="write", action="store_true", help="write benchmarks/overhead.md")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    rows = [measure(n, args.batch, args.repeats) for n in args.nfe]
    lines = [
        "| NFE | batch | samplekit `sample()` (s) | bare loop (s) | ratio (wall) | ratio (CPU time) | "
        "`sample()` outside no_grad (s) |",
        "|---|---|---|---|---|---|---|",
    ]
    for r in rows:
        lines.append(
            f"| {r['nfe']} | {r['batch']} | {r['samplekit sample()']:.4f} | {r['bare loop']:.4f} | "
            f"{r['ratio']:.3f} | {r['cpu ratio']:.3f} | {r['sample() with autograd on']:.4f} |"
        )
    table = "\n".join(lines)
    print(table)
    if args.write:
        env = (
            f"torch {torch.__version__}, {args.threads} thread(s), Python {platform.python_version()}, "
            f"{platform.machine()} CPU (shared, 2 cores); median of {args.repeats} interleaved repeats"
        )
        text = (
            f"# Overhead of `sample()`\n\n{__doc__.strip()}\n\nMeasured: {env}.\n\n{table}\n\n"
            "The ratios are samplekit's wall time (and CPU time of the one-thread process, less disturbed by "
            "other jobs on a shared machine) over the bare loop's for identical network calls "
            "(checked with a forward hook) and identical samples (checked to 1e-4), both under "
            "`torch.no_grad()`. The last column calls `sample()` from a context with autograd on, as a user "
            "would outside `no_grad`: `sample()` records no graph unless `grad=True`, so it costs the same.\n"
        )
        Path(__file__).with_name("overhead.md").write_text(text)


if __name__ == "__main__":
    main()
