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


#: 0-dim operands made once (a Python scalar is wrapped into a tensor at every op: ~1.5 us each).
_SHIFT = {k: torch.tensor(k) for k in (27, 30, 31, 32)}
_MASK = {k: torch.tensor((1 << (64 - k)) - 1) for k in (27, 30, 31, 32)}
_MIX = (torch.tensor(MIX1), torch.tensor(MIX2))
_LOW32 = torch.tensor(LOW32)
_HALF_ULP = {dt: torch.tensor(2.0**-33, dtype=dt) for dt in (torch.float32, torch.float64)}


def _xorshift_(z: Tensor, k: int, tmp: Tensor) -> Tensor:
    """z ^= z >>> k in place (logical shift of the int64 bit patterns; torch's >> is arithmetic, so the
    sign-filled top k bits are masked off), with ``tmp`` (same shape) as scratch."""
    torch.bitwise_right_shift(z, _SHIFT[k], out=tmp)
    return z.bitwise_xor_(tmp.bitwise_and_(_MASK[k]))


def mix64_(z: Tensor, tmp: Tensor) -> Tensor:
    """splitmix64's output function (Steele, Lea & Flood 2014, "Fast splittable pseudorandom number
    generators", OOPSLA; Stafford's Mix13 constants, as Java's SplittableRandom), in place on int64:
        z ^= z >>> 30;  z *= 0xBF58476D1CE4E5B9;  z ^= z >>> 27;  z *= 0x94D049BB133111EB;  z ^= z >>> 31
    (products wrap modulo 2^64, as int64 arithmetic does on CPU and CUDA).  ``tmp`` is scratch of z's
    shape: every op writes into an existing tensor (on CPU a fresh 50 MB tensor costs more in page
    faults than the op itself: 130 ms against 5-17 ms at 4096 x 1536)."""
    _xorshift_(z, 30, tmp).mul_(_MIX[0])
    _xorshift_(z, 27, tmp).mul_(_MIX[1])
    return _xorshift_(z, 31, tmp)


def mix64(z: Tensor) -> Tensor:
    """``mix64_`` on a copy: z is not modified."""
    out = z.clone()
    return mix64_(out, torch.empty_like(out))


#: Pairs hashed per tile of rows.  On CPU a tile's two int64 buffers (2 x 2 MiB) stay in cache, and the
#: ~25 elementwise passes run there instead of streaming the whole draw through memory once each (about
#: 1.3x faster at 4096 x 3 x 32 x 32); elsewhere a tile only bounds the scratch memory (256 MiB).  The
#: values do not depend on the tiling: every element is a pure function of its (key, draw, pair).
TILE_PAIRS = {"cpu": 1 << 18}
DEFAULT_TILE_PAIRS = 1 << 24


class Scratch:
    """Work memory kept between draws (``NoiseSource`` holds one): two int64 buffers of one tile of
    (rows, pairs), and the pair counters (k + 1) * GOLDEN of the last row length."""

    def __init__(self) -> None:
        self._flat: tuple[Tensor, Tensor] | None = None
        self._views: tuple[tuple[int, int], Tensor, Tensor] | None = None
        self._steps: Tensor | None = None

    def get(self, rows: int, pairs: int, device) -> tuple[Tensor, Tensor]:
        """Two int64 (rows, pairs) tensors (their contents are garbage)."""
        n, flat = rows * pairs, self._flat
        if flat is None or flat[0].numel() < n or flat[0].device != torch.device(device):
            first = torch.empty(n, dtype=torch.int64, device=device)
            flat = self._flat = (first, torch.empty_like(first))
            self._views = None
        if self._views is None or self._views[0] != (rows, pairs):
            self._views = ((rows, pairs), flat[0][:n].view(rows, pairs), flat[1][:n].view(rows, pairs))
        return self._views[1], self._views[2]

    def steps(self, pairs: int, device) -> Tensor:
        """(k + 1) * GOLDEN for k < pairs (wrapping), int64."""
        s = self._steps
        if s is None or s.numel() != pairs or s.device != torch.device(device):
            s = self._steps = torch.arange(1, pairs + 1, dtype=torch.int64, device=device).mul_(GOLDEN)
        return s


def row_starts(keys: Tensor, draw: int, count: int = 1) -> Tensor:
    """Each (key, draw)'s own splitmix64 sequence starts at s = mix64(key + (draw + 1) * GOLDEN), derived
    once per row (not per element): shape (count * len(keys),), draws draw .. draw + count - 1 in turn."""
    if count == 1:
        z = keys + _int64((draw + 1) * GOLDEN)
    else:
        offsets = torch.arange(draw + 1, draw + count + 1, dtype=torch.int64, device=keys.device).mul_(GOLDEN)
        z = (offsets[:, None] + keys).flatten()
    return mix64_(z, torch.empty_like(z))


def _hash_pairs_(starts: Tensor, bits: Tensor, tmp: Tensor, steps: Tensor) -> Tensor:
    """bits[i, k] = mix64(starts[i] + (k + 1) * GOLDEN): pair k is the k-th output of row i's sequence,
    the counter added last."""
    torch.add(starts[:, None], steps, out=bits)
    return mix64_(bits, tmp)


def counter_bits(keys: Tensor, draw: int, pairs: int) -> Tensor:
    """64 random bits for pair k of draw ``draw`` of each key: shape (len(keys), pairs), int64."""
    bits = torch.empty((len(keys), pairs), dtype=torch.int64, device=keys.device)
    steps = Scratch().steps(pairs, keys.device)
    return _hash_pairs_(row_starts(keys, draw), bits, torch.empty_like(bits), steps)


def _box_muller_(bits: Tensor, tmp: Tensor, out: Tensor) -> Tensor:
    """Fill ``out`` (rows, D), contiguous, with the normals of ``bits`` (rows, H = ceil(D / 2)), consuming
    bits and tmp (see ``counter_normal`` for the equations).  Every transcendental runs on a contiguous
    (rows, H) block (on CPU twice as fast as on the strided half-rows of ``out``): r in out's memory, theta
    and cos in bits', sin in tmp's; two copies then place the halves."""
    rows, pairs = bits.shape
    second, work, n = out.shape[1] - pairs, out.dtype, rows * pairs
    torch.bitwise_right_shift(bits, _SHIFT[32], out=tmp)  # hi, signed (the arithmetic shift needs no mask)
    # r = sqrt(-2 log u1), u1 = (lo + 1/2) 2^-32, from the low 32 bits
    r = out.view(-1)[:n].view(rows, pairs)
    torch.add(_HALF_ULP[work], bits.bitwise_and_(_LOW32), alpha=2.0**-32, out=r).log_().mul_(-2).sqrt_()
    # theta = 2 pi u, u = (hi + 1/2) 2^-32 in (-1/2, 1/2)
    theta = bits.view(-1).view(work)[:n].view(rows, pairs)
    torch.add(_HALF_ULP[work], tmp, alpha=2.0**-32, out=theta).mul_(2 * math.pi)
    sin = torch.sin(theta, out=tmp.view(-1).view(work)[:n].view(rows, pairs)).mul_(r)
    cos = theta.cos_().mul_(r)
    out[:, :pairs].copy_(cos)
    out[:, pairs:].copy_(sin[:, :second])
    return out


def _work_dtype(dtype: torch.dtype) -> torch.dtype:
    """Box-Muller runs in the output's dtype: float64 for float64, else float32 (half types round after)."""
    return torch.float64 if dtype == torch.float64 else torch.float32


def counter_normal(
    keys: Tensor, draw: int, shape: Sequence[int], dtype: torch.dtype, scratch: Scratch | None = None
) -> Tensor:
    """N(0, 1) of shape (len(keys), *shape) by Box-Muller (Box & Muller 1958) on the two 32-bit halves of
    the pair hashes.  With D elements a row and H = ceil(D / 2) pairs, pair k gives elements k and k + H:
        bits = mix64(mix64(key + (draw + 1) G) + (k + 1) G)      (G = 0x9E3779B97F4A7C15, modulo 2^64)
        lo = bits mod 2^32,  hi = bits >> 32 (signed, in [-2^31, 2^31)),
        u1 = (lo + 1/2) 2^-32 in (0, 1),  theta = 2 pi (hi + 1/2) 2^-32 in (-pi, pi),  r = sqrt(-2 log u1),
        z_k = r cos theta,  z_(k+H) = r sin theta      (independent; u1 >= 2^-33, so |z| <= 6.7),
    computed in float64 for float64, in float32 otherwise (the same 32-bit integers, so a float32 draw
    is the float64 one to float32 accuracy; float16 / bfloat16 are the float32 draw rounded).  Row i
    depends only on (keys[i], draw, shape), so it does not depend on the other rows, the batch or the
    tiling.  Each affine map int -> float is one op, ``c + 2^-32 * n``: the product is exact (a power of
    2), so it rounds once whether or not the kernel fuses it (vector and scalar loops agree bit for bit).
    Rows are processed in tiles of ``TILE_PAIRS`` pairs (one tile unless the draw is large)."""
    return counter_normals(keys, draw, 1, shape, dtype, scratch)[0]


def counter_normals(
    keys: Tensor, draw: int, count: int, shape: Sequence[int], dtype: torch.dtype, scratch: Scratch | None = None
) -> Tensor:
    """``counter_normal`` for draws draw .. draw + count - 1 at once: shape (count, len(keys), *shape),
    entry c the same bits as ``counter_normal(keys, draw + c, shape, dtype)`` (one set of passes for all)."""
    shape = tuple(int(n) for n in shape)
    rows, numel = count * len(keys), math.prod(shape)
    pairs = (numel + 1) // 2
    scratch = scratch if scratch is not None else Scratch()
    device = keys.device
    out = torch.empty((rows, numel), dtype=_work_dtype(dtype), device=device)
    starts, steps = row_starts(keys, draw, count), scratch.steps(pairs, device)
    tile = max(1, TILE_PAIRS.get(device.type, DEFAULT_TILE_PAIRS) // max(pairs, 1))
    if tile >= rows:  # one pass (the usual case)
        bits, tmp = scratch.get(rows, pairs, device)
        _box_muller_(_hash_pairs_(starts, bits, tmp, steps), tmp, out)
    else:
        for i in range(0, rows, tile):
            bits, tmp = scratch.get(min(tile, rows - i), pairs, device)
            _box_muller_(_hash_pairs_(starts[i : i + tile], bits, tmp, steps), tmp, out[i : i + tile])
    if out.dtype != dtype:
        out = out.to(dtype)
    return out.view(count, len(keys), *shape)


def sample_keys(seeds: Sequence[int], device) -> Tensor:
    """One int64 key per sample seed: mix64 of the seed's 64-bit pattern (so nearby seeds are far apart)."""
    raw = torch.tensor([_int64(int(s)) for s in seeds], dtype=torch.int64, device=device)
    return mix64(raw)


#: Per-sample draws of up to this many elements (all draws together) are made ahead in one block.
DRAW_AHEAD_ELEMENTS = 1 << 18
MAX_DRAW_AHEAD = 64


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
            self._scratch = Scratch()  # int64 work tensors (one tile) reused by every draw
        self.draws = 0  # draws made so far: the counter of the per-sample streams
        # draws made ahead (per-sample, small draws): (first draw, shape, dtype, block of draws)
        self._ahead: tuple[int, tuple[int, ...], torch.dtype, Tensor] | None = None
        self._last: tuple[tuple[int, ...], torch.dtype] | None = None  # the last draw's shape and dtype

    def randn(self, shape: Sequence[int], dtype: torch.dtype = torch.float32) -> Tensor:
        """N(0, I) of shape (num_samples, *shape); row i from sample i's own stream if per-sample.

        Per-sample draws of few elements are made ``DRAW_AHEAD_ELEMENTS // (num_samples * numel)`` draws
        at a time (at most ``MAX_DRAW_AHEAD``): a small draw costs its ~50 op launches, not its arithmetic,
        and the next draws (a sampler's steps) have the same shape; this starts at the second draw in a row
        of one shape and dtype.  Draw c's values are a pure function of (seed, c, shape), so drawing ahead
        changes no value; a draw of another shape or dtype drops the block."""
        shape = tuple(int(n) for n in shape)
        draw, self.draws = self.draws, self.draws + 1
        if not self.per_sample:
            return torch.randn((self.num_samples, *shape), generator=self._generator, dtype=dtype, device=self.device)
        ahead, repeated = self._ahead, self._last == (shape, dtype)
        self._last = (shape, dtype)
        if ahead is not None and ahead[1] == shape and ahead[2] == dtype and 0 <= draw - ahead[0] < len(ahead[3]):
            return ahead[3][draw - ahead[0]]
        per_draw = max(1, self.num_samples * math.prod(shape))
        # ahead only from the second draw of a shape on: a run drawing once (x_T of an ODE solve) draws once
        count = max(1, min(MAX_DRAW_AHEAD, DRAW_AHEAD_ELEMENTS // per_draw)) if repeated else 1
        block = counter_normals(self.keys, draw, count, shape, dtype, self._scratch)
        self._ahead = (draw, shape, dtype, block) if count > 1 else None
        return block[0]

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
