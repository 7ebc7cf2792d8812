"""The one source of randomness a sampler uses: made from ``seed``, injectable, reproducible.

``seed`` is an int (one ``torch.Generator`` for the whole batch) or one int per sample.  With one seed
per sample each sample has its own stream, so it is the same whatever batch it is drawn in; the streams
are counter-based (``counter_normal``): draw c of sample i, element j is a pure function of
(seed_i, c, shape, j), computed for the whole batch at once in int64 and floating tensor ops on the
output's device (no Python loop over the batch, no generator objects).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import cast

import torch

from samplekit.errors import InvalidArgumentError

Tensor = torch.Tensor


def _int64(value: int) -> int:
    """A 64-bit pattern as the signed int64 torch stores."""
    value &= (1 << 64) - 1
    return value - (1 << 64) if value >= 1 << 63 else value


GOLDEN = _int64(0x9E3779B97F4A7C15)  # 2^64 / golden ratio, splitmix64's increment
MIX1, MIX2 = _int64(0xBF58476D1CE4E5B9), _int64(0x94D049BB133111EB)
LOW32 = (1 << 32) - 1


def _xorshift_(z: Tensor, k: int, tmp: Tensor) -> Tensor:
    """z ^= z >>> k in place (logical shift of the int64 bit patterns; torch's >> is arithmetic, so the
    sign-filled top k bits are masked off), with ``tmp`` (same shape) as scratch."""
    torch.bitwise_right_shift(z, k, out=tmp)
    return z.bitwise_xor_(tmp.bitwise_and_((1 << (64 - k)) - 1))


def mix64_(z: Tensor, tmp: Tensor) -> Tensor:
    """splitmix64's output function (Steele, Lea & Flood 2014, "Fast splittable pseudorandom number
    generators", OOPSLA; Stafford's Mix13 constants, as Java's SplittableRandom), in place on int64:
        z ^= z >>> 30;  z *= 0xBF58476D1CE4E5B9;  z ^= z >>> 27;  z *= 0x94D049BB133111EB;  z ^= z >>> 31
    (products wrap modulo 2^64, as int64 arithmetic does on CPU and CUDA).  ``tmp`` is scratch of z's
    shape: every op writes into an existing tensor (on CPU a fresh 50 MB tensor costs more in page
    faults than the op itself: 130 ms against 5-17 ms at 4096 x 1536)."""
    _xorshift_(z, 30, tmp).mul_(MIX1)
    _xorshift_(z, 27, tmp).mul_(MIX2)
    return _xorshift_(z, 31, tmp)


def mix64(z: Tensor) -> Tensor:
    """``mix64_`` on a copy: z is not modified."""
    out = z.clone()
    return mix64_(out, torch.empty_like(out))


class Scratch:
    """Two int64 (rows, cols) work tensors kept between draws of one shape, so that a draw allocates only
    its output (``NoiseSource`` holds one; memory: 16 bytes per pair of normals, 4x a float32 draw)."""

    def __init__(self) -> None:
        self.bits: Tensor | None = None
        self.tmp: Tensor | None = None

    def get(self, rows: int, cols: int, device) -> tuple[Tensor, Tensor]:
        bits = self.bits
        if bits is None or bits.shape != (rows, cols) or bits.device != torch.device(device):
            self.bits = bits = torch.empty((rows, cols), dtype=torch.int64, device=device)
            self.tmp = torch.empty_like(bits)
        return bits, cast(Tensor, self.tmp)


def counter_bits(keys: Tensor, draw: int, pairs: int, scratch: Scratch | None = None) -> Tensor:
    """64 random bits for pair k of draw ``draw`` of each key: shape (len(keys), pairs), int64.

    Each (key, draw) starts its own splitmix64 sequence at s = mix64(key + (draw + 1) * GOLDEN), derived
    once per row; pair k is that sequence's k-th output, mix64(s + (k + 1) * GOLDEN), the counter added
    last.  With ``scratch`` the result lives in ``scratch.bits`` (overwritten by the next draw)."""
    scratch = scratch if scratch is not None else Scratch()
    bits, tmp = scratch.get(len(keys), pairs, keys.device)
    start = mix64(keys + _int64((draw + 1) * GOLDEN))
    k = torch.arange(1, pairs + 1, dtype=torch.int64, device=keys.device).mul_(GOLDEN)
    torch.add(start[:, None], k, out=bits)
    return mix64_(bits, tmp)


def _work_dtype(dtype: torch.dtype) -> torch.dtype:
    """Box-Muller runs in the output's dtype: float64 for float64, else float32 (half types round after)."""
    return torch.float64 if dtype == torch.float64 else torch.float32


def counter_normal(
    keys: Tensor, draw: int, shape: Sequence[int], dtype: torch.dtype, scratch: Scratch | None = None
) -> Tensor:
    """N(0, 1) of shape (len(keys), *shape) by Box-Muller (Box & Muller 1958) on the two 32-bit halves of
    ``counter_bits``.  With D elements a row and H = ceil(D / 2) pairs, pair k gives elements k and k + H:
        u1 = (hi_k + 1/2) 2^-32,  u2 = (lo_k + 1/2) 2^-32,  r = sqrt(-2 log u1),
        z_k = r cos(2 pi u2),  z_(k+H) = r sin(2 pi u2)      (independent; u1 > 0, so |z| <= 6.7),
    computed in float64 for float64, in float32 otherwise (the same 32-bit integers, so a float32 draw
    is the float64 one to float32 accuracy; float16 / bfloat16 are the float32 draw rounded).  Row i
    depends only on (keys[i], draw, shape), so it does not depend on the other rows or on the batch."""
    shape = tuple(int(n) for n in shape)
    rows, numel = len(keys), math.prod(shape)
    pairs, second = (numel + 1) // 2, numel // 2
    work = _work_dtype(dtype)
    scratch = scratch if scratch is not None else Scratch()
    bits = counter_bits(keys, draw, pairs, scratch)
    tmp = cast(Tensor, scratch.tmp)
    out = torch.empty((rows, numel), dtype=work, device=keys.device)
    cos_half, sin_half = out[:, :pairs], out[:, pairs:]
    scale = 2.0**-32
    # r = sqrt(-2 log u1) into the first half, from the high 32 bits
    torch.bitwise_right_shift(bits, 32, out=tmp).bitwise_and_(LOW32)
    r = cos_half.copy_(tmp).add_(0.5).mul_(scale).log_().mul_(-2).sqrt_()
    # theta = 2 pi u2, from the low 32 bits, in tmp's memory seen as the work dtype
    theta = tmp.view(work)[:, :pairs].copy_(bits.bitwise_and_(LOW32)).add_(0.5).mul_(2 * math.pi * scale)
    torch.sin(theta[:, :second], out=sin_half).mul_(r[:, :second])
    r.mul_(theta.cos_())
    if work != dtype:
        out = out.to(dtype)
    return out.reshape(rows, *shape)


def sample_keys(seeds: Sequence[int], device) -> Tensor:
    """One int64 key per sample seed: mix64 of the seed's 64-bit pattern (so nearby seeds are far apart)."""
    raw = torch.tensor([_int64(int(s)) for s in seeds], dtype=torch.int64, device=device)
    return mix64(raw)
def _generator(seed: int, device) -> torch.Generator:
    g = torch.Generator(device=device if device is not None else "cpu")
    g.manual_seed(int(seed))
    return g


class NoiseSource:
    """Standard normal draws of shape (num_samples, *shape): one seeded ``torch.Generator`` for an int
    seed; per-sample counter-based streams (``counter_normal``) for one seed per sample."""

    def __init__(self, seed: int | Sequence[int] | None, num_samples: int, device=None) -> None:
        self.num_samples = int(num_samples)
        self.device = torch.device(device) if device is not None else torch.device("cpu")
        if seed is None:
            seed = int(torch.seed() % (2**63))
        if isinstance(seed, (int,)) and not isinstance(seed, bool):
            self.per_sample = False
            self.seed: int | list[int] = int(seed)
            self._generator = _generator(seed, self.device)
        else:
            seeds = [int(s) for s in cast(Sequence[int], seed)]
            if len(seeds) != self.num_samples:
                raise InvalidArgumentError(
                    f"seed has {len(seeds)} entries for num_samples={num_samples}; "
                    "pass one int, or exactly one int per sample"
                )
            self.per_sample = True
            self.seed = seeds
            self.keys = sample_keys(seeds, self.device)
            self._scratch = Scratch()  # int64 work tensors reused by every draw of one shape
        self.draws = 0  # draws made so far: the counter of the per-sample streams

    def randn(self, shape: Sequence[int], dtype: torch.dtype = torch.float32) -> Tensor:
        """N(0, I) of shape (num_samples, *shape); row i from sample i's own stream if per-sample."""
        shape = tuple(shape)
        draw, self.draws = self.draws, self.draws + 1
        if not self.per_sample:
            return torch.randn((self.num_samples, *shape), generator=self._generator, dtype=dtype, device=self.device)
        return counter_normal(self.keys, draw, shape, dtype, self._scratch)

    def randn_like(self, x: Tensor) -> Tensor:
        if x.shape[0] != self.num_samples:
            raise InvalidArgumentError(f"x has batch {x.shape[0]}, the noise source {self.num_samples}")
        return self.randn(x.shape[1:], dtype=x.dtype)

    def integer_seed(self) -> int:
        """An int seed for libraries that take one, drawn from this source (int seed only)."""
        if self.per_sample:
            raise InvalidArgumentError(
                "this solver needs one int seed for the whole batch (its random stream is "
                "shared); pass seed=<int> instead of one seed per sample"
            )
        return int(torch.randint(0, 2**31 - 1, (1,), generator=self._generator).item())
