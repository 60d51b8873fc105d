"""Flow matching against closed forms: parameterization round trips, the exact velocity field of Gaussian data,
orders of accuracy, schedules and shifts, given-frame masks, the masked loss, and guidance."""

from __future__ import annotations

import math

import pytest
import torch
from hypothesis import given as hypothesis_given
from hypothesis import settings
from hypothesis import strategies as st

from kinetoscope.diffusion import (
    MASK_KINDS,
    SAMPLERS,
    classifier_free,
    contrast_loss,
    data_from_velocity,
    edit_mask,
    flow_edit,
    flow_loss,
    frame_t,
    given_frames,
    interpolate,
    motion_weights,
    noise_from_velocity,
    per_frame_t,
    resolution_shift,
    sample_given,
    sample_t,
    schedule,
    shift_t,
    temporal_loss,
    training_example,
    velocity_target,
    video_noise,
)

M, S = 0.7, 0.4  # the 1-D data distribution N(M, S^2)
FAST = settings(max_examples=40, deadline=None)


def gaussian_velocity(m: float, s: float):
    """The exact marginal velocity of rectified flow from N(m, s^2) data to N(0, 1) noise.

    x_t = (1-t) x0 + t e is N(mu, var) with mu = (1-t) m, var = (1-t)^2 s^2 + t^2; Cov(x0, x_t) = (1-t) s^2 and
    Cov(e, x_t) = t, so E[e - x0 | x_t] = -m + (t - (1-t) s^2) / var * (x_t - mu). Its flow sends z at t = 1 to m + s z.
    """

    def velocity(x: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
        var = (1 - t) ** 2 * s**2 + t**2
        return -m + (t - (1 - t) * s**2) / var * (x - (1 - t) * m)

    return velocity


def gen(seed: int) -> torch.Generator:
    return torch.Generator().manual_seed(seed)


# --- the path -------------------------------------------------------------------------------------------------------


@FAST
@hypothesis_given(
    shape=st.tuples(*[st.integers(1, 3)] * 5), seed=st.integers(0, 2**16), endpoint=st.sampled_from([None, 0.0, 1.0])
)
def test_parameterizations_round_trip(shape, seed, endpoint):
    g = gen(seed)
    x0, noise = torch.randn(shape, generator=g), torch.randn(shape, generator=g)
    b, _, frames, _, _ = shape
    t = torch.rand(b, frames, generator=g) if endpoint is None else torch.full((b, frames), endpoint)
    x_t, v = interpolate(x0, noise, t), velocity_target(x0, noise)
    torch.testing.assert_close(data_from_velocity(x_t, v, t), x0)
    torch.testing.assert_close(noise_from_velocity(x_t, v, t), noise)
    if endpoint is not None:
        assert torch.equal(x_t, x0 if endpoint == 0.0 else noise)


def test_each_frame_has_its_own_t():
    x0, noise = torch.zeros(1, 2, 3, 2, 2), torch.ones(1, 2, 3, 2, 2)
    x_t = interpolate(x0, noise, torch.tensor([[0.0, 0.25, 1.0]]))
    assert x_t[0, :, 0].eq(0).all() and x_t[0, :, 1].eq(0.25).all() and x_t[0, :, 2].eq(1).all()


# --- the samplers on the exact field of Gaussian data ---------------------------------------------------------------


@pytest.mark.parametrize("name", sorted(SAMPLERS))
def test_samplers_carry_noise_to_the_data_distribution(name):
    z = torch.randn(20_000, 1, 1, 1, 1, generator=gen(0))
    x = SAMPLERS[name](gaussian_velocity(M, S), z, schedule(64, shift=2.0))
    assert abs(x.mean().item() - M) < 0.02 and abs(x.std().item() - S) < 0.02
    grid = SAMPLERS[name](gaussian_velocity(M, S), torch.linspace(-4, 4, 401).reshape(-1, 1, 1, 1, 1), schedule(64))
    assert (grid.flatten().diff() > 0).all(), "the deterministic map must be monotone"


@pytest.mark.parametrize("name,min_ratio", [("euler", 1.6), ("heun", 3.0), ("ab2", 3.0)])
def test_orders_of_accuracy(name, min_ratio):
    """Doubling the steps divides the error by 2 for a first-order sampler and by 4 for a second-order one. The
    reference is the exact solution m + s z; 16 -> 32 steps, where all three are in their asymptotic regime."""
    z = torch.linspace(-3, 3, 61, dtype=torch.float64).reshape(-1, 1, 1, 1, 1)
    errors = [
        (SAMPLERS[name](gaussian_velocity(M, S), z, schedule(steps).double()) - (M + S * z)).abs().max().item()
        for steps in (16, 32)
    ]
    assert errors[0] / errors[1] > min_ratio, errors


@pytest.mark.parametrize("name", sorted(SAMPLERS))
def test_samplers_call_back_after_each_step(name):
    seen = []
    x = SAMPLERS[name](gaussian_velocity(M, S), torch.zeros(2, 1, 1, 1, 1), schedule(5), lambda i, x: seen.append(i))
    assert seen == [0, 1, 2, 3, 4] and not x.requires_grad


# --- schedules, shifts and timesteps --------------------------------------------------------------------------------


@pytest.mark.parametrize("shift", [1.0, 3.0, 0.5])
def test_schedule_runs_from_noise_to_data(shift):
    ts = schedule(10, shift)
    assert ts.dtype == torch.float32 and ts.shape == (11,)
    assert ts[0].item() == 1.0 and ts[-1].item() == 0.0
    assert (ts.diff() < 0).all()


def test_schedule_refuses_no_steps():
    with pytest.raises(ValueError, match="steps"):
        schedule(0)


def test_shift_keeps_the_ends_and_raises_t():
    for shift in (0.5, 1.0, 3.0):
        assert shift_t(0.0, shift) == 0.0 and shift_t(1.0, shift) == 1.0
    t = torch.linspace(0.01, 0.99, 50)
    assert torch.equal(shift_t(t, 1.0), t)
    assert (shift_t(t, 3.0) > t).all() and (shift_t(t, 0.5) < t).all()
    assert shift_t(0.5, 3.0) == pytest.approx(0.75)


def test_resolution_shift_is_log_linear_and_clamped():
    assert resolution_shift(256) == pytest.approx(1.0) and resolution_shift(4096) == pytest.approx(3.0)
    assert resolution_shift(1) == resolution_shift(256) and resolution_shift(10**6) == resolution_shift(4096)
    assert resolution_shift((256 + 4096) // 2) == pytest.approx(math.sqrt(3.0))
    shifts = [resolution_shift(n) for n in range(0, 5000, 100)]
    assert shifts == sorted(shifts)


def test_sample_t_is_logit_normal():
    t = sample_t(20_000, gen(1))
    assert t.shape == (20_000,) and ((t > 0) & (t < 1)).all()
    assert abs(t.mean().item() - 0.5) < 0.01
    assert abs(sample_t(20_000, gen(1), mean=1.0).median().item() - torch.sigmoid(torch.tensor(1.0)).item()) < 0.01
    assert torch.equal(sample_t(64, gen(7)), sample_t(64, gen(7)))


# --- given frames ---------------------------------------------------------------------------------------------------


@FAST
@hypothesis_given(
    batch=st.integers(1, 16),
    frames=st.integers(1, 12),
    seed=st.integers(0, 2**16),
    weights=st.one_of(st.none(), st.dictionaries(st.sampled_from(MASK_KINDS), st.floats(0.01, 1.0), min_size=1)),
)
def test_some_frame_of_every_row_is_generated(batch, frames, seed, weights):
    given = sample_given(batch, frames, gen(seed), weights)
    assert given.shape == (batch, frames) and given.dtype == torch.bool
    assert (~given).any(dim=1).all()
    assert torch.equal(given, sample_given(batch, frames, gen(seed), weights))


def test_an_image_is_never_given():
    assert not sample_given(256, 1, gen(0), {"first": 1.0, "first_last": 1.0}).any()


def test_default_weights_are_honored():
    given = sample_given(20_000, 8, gen(2))
    assert abs((~given).all(dim=1).float().mean().item() - 0.5) < 0.02  # only "none" gives nothing
    assert abs(given[:, 0].float().mean().item() - 0.4) < 0.02  # first, prefix, first_last
    assert abs(given[:, -1].float().mean().item() - 0.2) < 0.02  # suffix, first_last


def test_each_kind_draws_its_pattern():
    frames = 6
    f = torch.arange(frames)
    draw = {kind: sample_given(500, frames, gen(3), {kind: 1.0}) for kind in MASK_KINDS}
    assert not draw["none"].any()
    assert (draw["first"] == (f == 0)).all()
    assert (draw["first_last"] == ((f == 0) | (f == frames - 1))).all()
    prefix, suffix = draw["prefix"].sum(1), draw["suffix"].sum(1)
    assert torch.equal(draw["prefix"], f < prefix[:, None])
    assert torch.equal(draw["suffix"], f >= frames - suffix[:, None])
    assert set(prefix.tolist()) == set(suffix.tolist()) == set(range(1, frames))


def test_first_last_falls_back_to_first_on_two_frames():
    assert (sample_given(64, 2, gen(4), {"first_last": 1.0}) == torch.tensor([True, False])).all()


def test_unknown_mask_kind_is_refused():
    with pytest.raises(ValueError, match="last"):
        sample_given(4, 4, gen(0), {"last": 1.0})


def test_frame_t_puts_given_frames_at_zero():
    given = torch.tensor([[True, False, False], [False, False, True]])
    assert torch.equal(frame_t(torch.tensor([0.3, 0.9]), given), torch.tensor([[0.0, 0.3, 0.3], [0.9, 0.9, 0.0]]))


@pytest.mark.parametrize("dtype", [torch.float32, torch.bfloat16])
def test_training_example_keeps_given_frames_clean(dtype):
    x0 = torch.randn(8, 4, 5, 3, 3, generator=gen(5)).to(dtype)
    given = sample_given(8, 5, gen(6), {"prefix": 1.0, "first_last": 1.0})
    ex = training_example(x0, gen(7), given=given, shift=3.0)
    assert ex.x_t.dtype == dtype and ex.t_frames.shape == (8, 5) and torch.equal(ex.given, given)
    assert torch.equal(ex.x_t.transpose(1, 2)[given], x0.transpose(1, 2)[given])
    assert ex.t_frames[given].eq(0).all() and ex.t_frames[~given].gt(0).all()
    assert not torch.equal(ex.x_t.transpose(1, 2)[~given], x0.transpose(1, 2)[~given])
    x0_back = data_from_velocity(ex.x_t.float(), ex.target.float(), ex.t_frames)
    torch.testing.assert_close(x0_back, x0.float(), atol=0.05 if dtype == torch.bfloat16 else 1e-5, rtol=0)
    again = training_example(x0, gen(7), given=given, shift=3.0)
    assert torch.equal(ex.x_t, again.x_t) and torch.equal(ex.t_frames, again.t_frames)


def test_training_example_defaults_to_nothing_given_and_takes_t():
    ex = training_example(torch.zeros(3, 2, 4, 2, 2), gen(0), t=torch.tensor([0.1, 0.5, 1.0]))
    assert not ex.given.any() and torch.equal(ex.t_frames, torch.tensor([0.1, 0.5, 1.0])[:, None].expand(3, 4))


def test_video_noise_shares_a_part_across_frames():
    """At 0 it is exactly the plain draw (old seeds keep their videos); at 0.5 every element still has unit variance
    and any two frames correlate by 0.5; outside [0, 1) it is refused."""
    shape = (16, 4, 9, 8, 8)
    assert torch.equal(video_noise(shape, gen(3)), torch.randn(shape, generator=gen(3)))
    n = video_noise(shape, gen(3), shared=0.5)  # (B, C, T, H, W)
    assert abs(n.var().item() - 1) < 0.05
    for a, b in ((0, 1), (0, 8), (4, 5)):
        r = torch.corrcoef(torch.stack([n[:, :, a].flatten(), n[:, :, b].flatten()]))[0, 1].item()
        assert abs(r - 0.5) < 0.05, (a, b, r)
    ex = training_example(torch.zeros(shape), gen(3), t=torch.ones(16), shared=0.5)
    torch.testing.assert_close(ex.target, n)  # the target at x0 = 0 is the noise itself
    for bad in (-0.1, 1.0):
        with pytest.raises(ValueError, match="shared noise"):
            video_noise(shape, gen(3), shared=bad)


def test_flow_loss_averages_each_samples_generated_frames():
    given = torch.tensor([[True, True, True, False], [True, False, False, False]])
    target = torch.zeros(2, 3, 4, 2, 2)
    v = torch.ones_like(target)
    v[1] *= math.sqrt(3)  # sample 0: error 1 on one frame; sample 1: error 3 on three frames
    assert flow_loss(v, target, given).item() == pytest.approx(2.0)


def test_flow_loss_ignores_given_frames():
    given = sample_given(6, 5, gen(8), {"prefix": 1.0, "suffix": 1.0})
    v, target = torch.randn(6, 2, 5, 2, 2, generator=gen(9)), torch.randn(6, 2, 5, 2, 2, generator=gen(10))
    moved = v.clone()
    moved.transpose(1, 2)[given] += 100.0
    assert torch.equal(flow_loss(moved, target, given), flow_loss(v, target, given))
    moved.transpose(1, 2)[~given] += 1.0
    assert not torch.equal(flow_loss(moved, target, given), flow_loss(v, target, given))
    v_pred = v.to(torch.bfloat16).requires_grad_()
    loss = flow_loss(v_pred, target, given)
    loss.backward()
    assert loss.dtype == torch.float32 and v_pred.grad.transpose(1, 2)[given].eq(0).all()


def test_motion_weights_sit_on_what_moves_and_keep_the_loss_scale():
    still = torch.randn(2, 4, 1, 6, 6, generator=gen(11)).expand(2, 4, 5, 6, 6)  # (B, C, T, H, W): nothing moves
    assert torch.equal(motion_weights(still, 4.0), torch.ones(2, 1, 5, 6, 6))
    assert torch.equal(motion_weights(still[:, :, :1], 4.0), torch.ones(2, 1, 1, 6, 6))  # an image
    clip = still.clone()
    for f in range(5):
        clip[:, :, f, 2, f] += 3.0  # a bright latent pixel walks right along row 2
    w = motion_weights(clip, 4.0)
    assert w.mean(dim=(2, 3, 4)).sub(1).abs().max() < 1e-5  # mean 1 per sample: the same lr fits
    assert w[:, 0, 1, 2, 1].min() > 5 * w[:, 0, 1, 5, 5].max()  # on the walker, not on the background
    assert torch.equal(motion_weights(clip, 0.0), torch.ones(2, 1, 5, 6, 6))


def test_flow_loss_weighs_each_latent_pixel():
    given = torch.zeros(2, 3, dtype=torch.bool)
    v, target = torch.randn(2, 4, 3, 2, 2, generator=gen(12)), torch.zeros(2, 4, 3, 2, 2)
    assert torch.equal(flow_loss(v, target, given, torch.ones(2, 1, 3, 2, 2)), flow_loss(v, target, given))
    w = torch.zeros(2, 1, 3, 2, 2)
    w[..., 0, 0] = 4.0  # one pixel of four carries the whole weight
    expected = (v[..., 0, 0].square() * 4.0).sum(dim=(1, 2)) / (4 * 3 * 4)
    assert flow_loss(v, target, given, w).item() == pytest.approx(expected.mean().item(), rel=1e-5)


def test_contrast_loss_is_a_two_way_classifier_on_the_loss_gap():
    none = torch.zeros(3, 2, dtype=torch.bool)
    target = torch.zeros(3, 4, 2, 2, 2)
    v = torch.ones_like(target)  # every sample's loss is 1
    assert contrast_loss(v, v, target, none).tolist() == pytest.approx([math.log(2)] * 3)  # the word unread: log 2
    swapped = v * math.sqrt(1.05)  # the swap costs 5% of the loss: logit 1 at scale 0.05
    assert contrast_loss(v, swapped, target, none).mean().item() == pytest.approx(math.log1p(math.exp(-1.0)), rel=1e-5)
    assert contrast_loss(v, v * 2, target, none).max().item() < 1e-20  # read: nothing left to push
    v_pred, v_swapped = v.clone().requires_grad_(), v.clone().requires_grad_()
    contrast_loss(v_pred, v_swapped, target, none).sum().backward()
    assert v_pred.grad.gt(0).all() and v_swapped.grad.lt(0).all()  # descent: the caption's v to the target, the swap's off
    first = torch.tensor([[True, False]] * 3)
    moved = v_swapped.detach().clone()
    moved[:, :, 0] += 100.0  # a given frame's error counts for neither caption
    assert contrast_loss(v, moved, target, first).tolist() == pytest.approx([math.log(2)] * 3)


def test_temporal_loss_charges_error_that_changes_between_frames():
    none = torch.zeros(2, 4, dtype=torch.bool)
    target = torch.randn(2, 3, 4, 2, 2, generator=gen(13))
    shared = torch.randn(2, 3, 1, 2, 2, generator=gen(14))
    assert temporal_loss(target + shared, target, none).item() < 1e-12  # the same error in every frame: no flicker
    flicker = torch.tensor([1.0, -1.0, 1.0, -1.0])[None, None, :, None, None]  # (1, 1, T, 1, 1): +-1 frame to frame
    assert temporal_loss(target + flicker, target, none).item() == pytest.approx(4.0)
    assert temporal_loss(target[:, :, :1] + 1, target[:, :, :1], none[:, :1]).item() == 0.0  # an image adds 0
    first = torch.tensor([[True, False, False, False]] * 2)  # a given first frame: its error counts as 0
    moved = target + 1
    moved[:, :, 0] += 100.0
    assert temporal_loss(moved, target, first).item() == pytest.approx(1 / 3)  # the seam pair pays 1, the others 0


@pytest.mark.parametrize("name", sorted(SAMPLERS))
def test_given_frames_stay_bit_identical_through_sampling(name):
    given = torch.tensor([[True, False, False, True], [False, False, True, True]])
    times = []

    def network(x: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
        t_frames = per_frame_t(t, given)  # (B, T), what a DiT would be told
        times.append(t_frames)
        return torch.sin(x) + 1 + t_frames[:, None, :, None, None]

    x = torch.randn(2, 3, 4, 5, 5, generator=gen(11))
    out = SAMPLERS[name](given_frames(network, given), x, schedule(6, shift=3.0))
    assert torch.equal(out.transpose(1, 2)[given], x.transpose(1, 2)[given])
    assert not torch.isclose(out.transpose(1, 2)[~given], x.transpose(1, 2)[~given]).any()
    assert all(t_frames[given].eq(0).all() and t_frames.shape == (2, 4) for t_frames in times)


# --- guidance -------------------------------------------------------------------------------------------------------


def test_classifier_free_guidance_is_one_doubled_forward():
    calls = []

    def batched(x2: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
        calls.append(x2.shape[0])
        half = x2.shape[0] // 2
        return x2 * torch.tensor([2.0] * half + [-1.0] * half).reshape(-1, 1, 1, 1, 1) + t

    x, t = torch.randn(3, 2, 2, 2, 2, generator=gen(12)), torch.tensor(0.5)
    torch.testing.assert_close(classifier_free(batched, 4.0)(x, t), (-x + t) + 4.0 * ((2 * x + t) - (-x + t)))
    torch.testing.assert_close(classifier_free(batched, 1.0)(x, t), 2 * x + t)
    assert calls == [6, 6]


def _toward(x1: torch.Tensor):
    """The exact flow velocity of a data distribution that is the one point x1: v(z, t) = (z - x1) / t."""
    return lambda z, t: (z - x1) / t


@hypothesis_given(st.integers(0, 2**16), st.sampled_from([0.5, 0.8, 1.0]), st.integers(1, 12))
@settings(max_examples=20, deadline=None)
def test_flow_edit_carries_one_point_to_the_other_exactly(seed, t_max, steps):
    """Source and target prompts that each mean one clip: FlowEdit's path is the straight line between them, which
    Euler walks exactly, whatever the noise; unmasked pixels keep the source."""
    g = torch.Generator().manual_seed(seed)
    x0, x1 = torch.randn(1, 2, 3, 4, 4, generator=g), torch.randn(1, 2, 3, 4, 4, generator=g)
    noise = lambda: torch.randn(x0.shape, generator=g)  # noqa: E731
    ts = schedule(steps, 2.0, start=t_max)
    torch.testing.assert_close(flow_edit(_toward(x0), _toward(x1), x0, ts, noise), x1, rtol=1e-4, atol=1e-4)
    mask = (torch.arange(4) < 2).float().view(1, 1, 1, 1, 4).expand(1, 1, 3, 4, 4)
    out = flow_edit(_toward(x0), _toward(x1), x0, ts, noise, mask)
    torch.testing.assert_close(out[..., :2], x1[..., :2], rtol=1e-4, atol=1e-4)
    assert torch.equal(out[..., 2:], x0[..., 2:])


def test_flow_edit_with_prompts_that_agree_changes_nothing():
    x = torch.randn(1, 2, 3, 4, 4)
    same = lambda z, t: z * t + 1  # noqa: E731
    assert torch.equal(flow_edit(same, same, x, schedule(5), lambda: torch.randn(x.shape)), x)


def test_edit_mask_marks_where_the_prompts_disagree_in_each_frame():
    x = torch.zeros(1, 2, 3, 4, 5)
    bump = torch.zeros_like(x)
    bump[:, :, 0, 1, 2], bump[:, :, 1, 3, 0], bump[:, :, 2, 0, 4] = 5.0, 0.5, 0.01  # a faint frame still gets its pixel
    source = lambda z, t: z  # noqa: E731
    target = lambda z, t: z + bump  # noqa: E731
    mask = edit_mask(source, target, x, lambda: torch.randn(x.shape), threshold=0.5)
    assert mask.shape == (1, 1, 3, 4, 5)
    assert mask.sum() == 3 and mask[0, 0, 0, 1, 2] == mask[0, 0, 1, 3, 0] == mask[0, 0, 2, 0, 4] == 1
