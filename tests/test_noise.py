"""samplekit.noise: per-sample counter-based streams (splitmix64 + Box-Muller) against exact answers.

The splitmix64 output function against a plain-Python reference; the normals' law in float64 and in
float32 (moments, a Kolmogorov-Smirnov test against N(0, 1)); independence across samples, draws (steps)
and elements (correlations, neighbouring seeds, the two normals of one Box-Muller pair); batch invariance
(row i is the same in any batch or chunking, bitwise, odd sizes included, whatever shapes were drawn
before); dtype following (float32 is the float64 draw to float32 accuracy, half types the float32 draw
rounded); the int-seed mode still on torch.Generator.
"""

from __future__ import annotations

import math

import pytest
import torch
from scipy import stats

from samplekit import noise as noise_module
from samplekit.noise import NoiseSource, Scratch, counter_bits, counter_normal, mix64, sample_keys

M64 = (1 << 64) - 1


def splitmix64_reference(x: int) -> int:
    """Vigna's splitmix64.c output step, in Python integers (unsigned 64-bit)."""
    z = x & M64
    z = ((z ^ (z >> 30)) * 0xBF58476D1CE4E5B9) & M64
    z = ((z ^ (z >> 27)) * 0x94D049BB133111EB) & M64
    return z ^ (z >> 31)


def test_mix64_is_splitmix64_bit_for_bit():
    values = [0, 1, 2, 12345, (1 << 63) - 1, 1 << 63, M64, 0x9E3779B97F4A7C15, 0xDEADBEEFCAFEBABE]
    signed = [v - (1 << 64) if v >= 1 << 63 else v for v in values]
    got = mix64(torch.tensor(signed, dtype=torch.int64)).tolist()
    assert [g & M64 for g in got] == [splitmix64_reference(v) for v in values]


def test_counter_normal_is_the_documented_hash_and_box_muller():
    """Against plain Python: key = splitmix64(seed), bits = splitmix64(splitmix64(key + (c + 1) G) +
    (k + 1) G) (mod 2^64), u1 = (lo + 1/2) 2^-32, theta = 2 pi (hi + 1/2) 2^-32 with hi the signed top
    32 bits; element k = r cos theta and element k + H = r sin theta, r = sqrt(-2 log u1); in float64 to
    a few ulps (libm against torch's vector kernels), and D odd (the last pair gives one element)."""
    gold, seeds, draw, d = 0x9E3779B97F4A7C15, [0, 7, 2**40 + 3], 5, 9
    h = (d + 1) // 2
    z = counter_normal(sample_keys(seeds, "cpu"), draw, (d,), torch.float64)
    bits = counter_bits(sample_keys(seeds, "cpu"), draw, h)
    for i, seed in enumerate(seeds):
        start = splitmix64_reference(splitmix64_reference(seed) + (draw + 1) * gold)
        for k in range(h):
            b = splitmix64_reference(start + (k + 1) * gold)
            assert bits[i, k].item() & M64 == b
            lo, hi = b & 0xFFFFFFFF, (b >> 32) - (1 << 32 if b >> 63 else 0)
            r = math.sqrt(-2 * math.log((lo + 0.5) * 2.0**-32))
            theta = 2 * math.pi * (hi + 0.5) * 2.0**-32
            assert z[i, k].item() == pytest.approx(r * math.cos(theta), rel=1e-13, abs=1e-13)
            if k + h < d:
                assert z[i, k + h].item() == pytest.approx(r * math.sin(theta), rel=1e-13, abs=1e-13)


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_tiles_of_rows_do_not_change_a_bit(monkeypatch, dtype):
    """A large draw is hashed in tiles of rows (TILE_PAIRS, for cache): forcing tiles of 1, 2 and 3 rows
    (the last one shorter) gives the one-tile result bit for bit, and so does a tile smaller than a row."""
    keys = sample_keys(list(range(11)), "cpu")
    whole = counter_normal(keys, 3, (2, 5), dtype)
    for tile in (1, 5, 10, 15):  # pairs per tile; a row has 5 pairs
        monkeypatch.setitem(noise_module.TILE_PAIRS, "cpu", tile)
        assert torch.equal(counter_normal(keys, 3, (2, 5), dtype, Scratch()), whole)


@pytest.mark.parametrize("dtype", [torch.float64, torch.float32])
def test_per_sample_normals_have_the_standard_normal_law(dtype):
    """200 samples x 10 draws x 500 elements = 1e6 normals: mean, variance, skew, kurtosis within a few
    standard errors, and a KS test against N(0, 1) that does not reject at 1e-3 (float32 draws run their
    own Box-Muller in float32, so both are tested)."""
    noise = NoiseSource(list(range(200)), 200)
    z = torch.stack([noise.randn((500,), dtype) for _ in range(10)], dim=1).flatten().double()
    n = z.numel()
    assert abs(float(z.mean())) < 5 / math.sqrt(n)
    assert abs(float(z.var()) - 1) < 5 * math.sqrt(2 / n)
    assert abs(float(stats.skew(z.numpy()))) < 5 * math.sqrt(6 / n)
    assert abs(float(stats.kurtosis(z.numpy()))) < 5 * math.sqrt(24 / n)
    assert stats.kstest(z[:200_000].numpy(), "norm").pvalue > 1e-3
    assert float(z.abs().max()) < 6.8  # Box-Muller on 32-bit uniforms bounds |z| by 6.7


def test_streams_are_uncorrelated_across_samples_draws_and_elements():
    """Correlations between rows (samples, including neighbouring seeds), between draws (steps) of one
    sample, and between neighbouring elements all within 5 standard errors of 0."""
    d = 20000
    noise = NoiseSource([0, 1, 2, 3, 1000, 2**40], 6)
    first, second = noise.randn((d,), torch.float64), noise.randn((d,), torch.float64)
    bound = 5 / math.sqrt(d)
    corr = torch.corrcoef(torch.cat([first, second]))
    off = corr - torch.eye(12, dtype=torch.float64)
    assert float(off.abs().max()) < bound, off.abs().max()
    lag = torch.corrcoef(torch.stack([first[0, :-1], first[0, 1:]]))[0, 1]
    assert abs(float(lag)) < bound
    # elements k and k + d/2 come from one hash (r cos theta, r sin theta): uncorrelated, and so are their squares
    half = d // 2
    pair = torch.corrcoef(torch.stack([first[0, :half], first[0, half:]]))[0, 1]
    squares = torch.corrcoef(torch.stack([first[0, :half] ** 2, first[0, half:] ** 2]))[0, 1]
    assert abs(float(pair)) < bound * math.sqrt(2) and abs(float(squares)) < bound * math.sqrt(2)


def test_a_sample_is_the_same_in_any_batch_and_draw_sequence_bitwise():
    seeds = [17, 4, 99, 4096, 5]
    big = NoiseSource(seeds, 5)
    draws = [big.randn((3, 4, 4), torch.float32) for _ in range(3)]
    for i, s in enumerate(seeds):
        alone = NoiseSource([s], 1)
        for k in range(3):
            assert torch.equal(alone.randn((3, 4, 4), torch.float32)[0], draws[k][i])
    again = NoiseSource(seeds, 5)
    assert torch.equal(again.randn((3, 4, 4), torch.float32), draws[0])


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
@pytest.mark.parametrize("shape", [(1,), (3,), (2,), (5, 7), (1, 8, 8)])
def test_rows_are_bitwise_the_same_in_any_chunking_and_after_other_shapes(dtype, shape):
    """37 samples drawn in one batch, in chunks of 8 (the last 5) and one by one, with a draw of another
    shape in between (the scratch memory is reallocated and reused): every row bit for bit the same as
    counter_normal on that sample alone without scratch.  Odd sizes put rows across vector-loop tails."""
    seeds = list(range(1000, 1037))
    whole = NoiseSource(seeds, 37)
    first, _, third = whole.randn(shape, dtype), whole.randn((11,), dtype), whole.randn(shape, dtype)
    chunks = [NoiseSource(seeds[i : i + 8], len(seeds[i : i + 8])) for i in range(0, 37, 8)]
    got = [(c.randn(shape, dtype), c.randn((4, 3), dtype), c.randn(shape, dtype)) for c in chunks]
    assert torch.equal(torch.cat([g[0] for g in got]), first)
    assert torch.equal(torch.cat([g[2] for g in got]), third)
    keys = sample_keys(seeds, "cpu")
    for i in (0, 8, 36):
        assert torch.equal(counter_normal(keys[i : i + 1], 2, shape, dtype)[0], third[i])


@pytest.mark.parametrize("dtype", [torch.float16, torch.bfloat16])
def test_half_types_are_the_float32_draw_rounded(dtype):
    noise32, noise = NoiseSource([3, 8], 2), NoiseSource([3, 8], 2)
    z32, z = noise32.randn((64,), torch.float32), noise.randn((64,), dtype)
    assert z.dtype == dtype and z.shape == (2, 64)
    assert torch.equal(z, z32.to(dtype))


def test_float32_draw_is_the_float64_draw_to_float32_accuracy():
    """Both take u1, u2 from the same 32-bit integers; float32 rounds u1 and theta to 24 bits and its
    log, sqrt, cos, sin to about an ulp, so with r = sqrt(-2 log u1) (the pair's radius, from the float64
    draw): |dz| <= |dr| + r |dtheta| + rounding, |dr| ~ |d log u1| / r, i.e.
        |z32 - z64| <= 2^-22 / r + 2^-19 (1 + r)   (a factor 2 to 4 above the first-order terms)."""
    n, d = 4000, 64
    z64 = NoiseSource(list(range(n)), n).randn((d,), torch.float64)
    z32 = NoiseSource(list(range(n)), n).randn((d,), torch.float32)
    assert z32.dtype == torch.float32
    r = torch.hypot(z64[:, : d // 2], z64[:, d // 2 :]).repeat(1, 2)
    err = (z32.double() - z64).abs()
    assert bool((err <= 2.0**-22 / r + 2.0**-19 * (1 + r)).all()), float((err * r).max())
    assert float(err.median()) < 1e-6  # most elements agree to a few float32 ulps


def test_counter_normal_is_a_pure_function_of_seed_draw_and_element():
    keys = sample_keys([1, 2], "cpu")
    a = counter_normal(keys, 7, (10,), torch.float64)
    assert torch.equal(a, counter_normal(keys, 7, (10,), torch.float64))
    assert torch.equal(counter_normal(keys[1:], 7, (10,), torch.float64)[0], a[1])
    assert torch.equal(counter_normal(keys, 7, (2, 5), torch.float64).flatten(1), a)
    assert not torch.equal(counter_normal(keys, 8, (10,), torch.float64), a)
    assert torch.equal(counter_normal(keys, 7, (10,), torch.float64, Scratch()), a)


def test_int_seed_stays_on_torch_generator():
    noise = NoiseSource(5, 3)
    assert torch.equal(noise.randn((4,)), torch.randn((3, 4), generator=torch.Generator().manual_seed(5)))
    with pytest.raises(ValueError, match="seed has 2 entries for num_samples=3"):
        NoiseSource([1, 2], 3)


def test_drawing_ahead_changes_no_value_and_draws_stay_independent_tensors():
    """Small per-sample draws are made in blocks ahead of need (NoiseSource.DRAW_AHEAD_ELEMENTS): the
    sequence of draws, with shape and dtype changes inside a block, equals counter_normal called draw by
    draw; writing into one draw does not touch the next."""
    seeds = [5, 6, 7]
    keys = sample_keys(seeds, "cpu")
    plan = [((2,), torch.float32)] * 5 + [((3,), torch.float32), ((2,), torch.float64)] + [((2,), torch.float32)] * 70
    noise = NoiseSource(seeds, 3)
    noise.randn((2,), torch.float32)
    assert noise._ahead is None  # one draw of a shape (x_T of an ODE solve) computes only itself
    noise = NoiseSource(seeds, 3)
    for c, (shape, dtype) in enumerate(plan):
        z = noise.randn(shape, dtype)
        assert z.shape == (3, *shape) and z.dtype == dtype
        assert torch.equal(z, counter_normal(keys, c, shape, dtype)), c
        z.zero_()
    assert noise.draws == len(plan)
