"""The DiT and its parts: patchify round trip, rotary positions, any size and aspect, per-frame noise levels, text."""

from __future__ import annotations

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from kinetoscope.errors import SizeError
from kinetoscope.models.attention import apply_rope, rope_3d, rope_split
from kinetoscope.models.dit import PRESETS, DiT, patchify, unpatchify
from kinetoscope.models.text import MAX_TOKENS, PromptError, TextEmbedding, TextEncoder, check_prompt


def _txt(batch: int, length: int = 5, dim: int = 384) -> TextEmbedding:
    g = torch.Generator().manual_seed(1)
    return TextEmbedding(torch.randn(batch, length, dim, generator=g), torch.ones(batch, length, dtype=torch.bool),
                         torch.randn(batch, dim, generator=g))  # fmt: skip


@pytest.fixture(scope="module")
def dit() -> DiT:
    torch.manual_seed(0)
    model = DiT(PRESETS["tiny"]).eval()
    with torch.no_grad():  # leave the zero init, so outputs depend on the inputs
        for p in model.parameters():
            p.add_(torch.randn_like(p) * 0.05)
    return model


@settings(max_examples=25, deadline=None)
@given(st.integers(1, 3), st.integers(1, 3), st.integers(1, 4), st.integers(1, 2))
def test_patchify_round_trip(t, h, w, pt):
    p = (pt, 2, 2)
    z = torch.randn(2, 4, t * pt, h * 2, w * 2)
    x = patchify(z, p)
    assert x.shape == (2, t * h * w, 4 * pt * 4)
    torch.testing.assert_close(unpatchify(x, p, (t, h, w)), z, rtol=0, atol=0)


def test_rope_depends_only_on_offsets():
    """q·k after rotation depends on the positions' difference: shifting both in time changes nothing."""
    d = 16
    q, k = torch.randn(1, 1, 1, d), torch.randn(1, 1, 1, d)
    a0 = rope_3d((6, 2, 3), d)
    a1 = rope_3d((6, 2, 3), d, t_offset=3)
    n = 2 * 3  # tokens per frame
    s0 = (apply_rope(q, a0[None, 0 * n : 0 * n + 1][0]) * apply_rope(k, a0[None, 2 * n : 2 * n + 1][0])).sum()
    s1 = (apply_rope(q, a1[None, 1 * n : 1 * n + 1][0]) * apply_rope(k, a1[None, 3 * n : 3 * n + 1][0])).sum()
    torch.testing.assert_close(s0, s1, rtol=1e-4, atol=1e-4)
    assert sum(rope_split(64)) == 64 and all(x % 2 == 0 for x in rope_split(64))


@pytest.mark.parametrize("shape", [(1, 4, 4), (3, 4, 4), (5, 4, 7 * 2), (2, 14, 8), (9, 8, 14)])
def test_any_frames_and_aspect(dit, shape):
    x = torch.randn(2, dit.cfg.latent, *shape)
    with torch.no_grad():
        v = dit(x, torch.rand(2, shape[0]), _txt(2))
    assert v.shape == x.shape and torch.isfinite(v).all()


def test_zero_init_predicts_zero():
    model = DiT(PRESETS["tiny"])
    with torch.no_grad():
        v = model(torch.randn(1, model.cfg.latent, 3, 4, 4), torch.rand(1, 3), _txt(1))
    assert v.abs().max() == 0


def test_noise_level_is_per_frame(dit):
    """Each latent frame carries its own noise level: changing only the last frame's changes the output."""
    x = torch.randn(1, dit.cfg.latent, 3, 4, 4)
    t = torch.tensor([[0.0, 0.5, 0.5]])
    with torch.no_grad():
        a = dit(x, t, _txt(1))
        b = dit(x, torch.tensor([[0.0, 0.5, 0.9]]), _txt(1))
    assert not torch.allclose(a, b)


def test_text_changes_the_output(dit):
    x = torch.randn(2, dit.cfg.latent, 3, 4, 4)
    t = torch.full((2, 3), 0.5)
    txt = _txt(2)
    other = TextEmbedding(txt.tokens.flip(0), txt.mask, txt.pooled.flip(0))
    with torch.no_grad():
        assert not torch.allclose(dit(x, t, txt), dit(x, t, other))


def test_padding_tokens_are_ignored(dit):
    x = torch.randn(1, dit.cfg.latent, 1, 4, 4)
    t = torch.full((1, 1), 0.3)
    txt = _txt(1, length=4)
    padded = TextEmbedding(torch.cat([txt.tokens, torch.randn(1, 3, 384)], 1),
                           torch.cat([txt.mask, torch.zeros(1, 3, dtype=torch.bool)], 1), txt.pooled)  # fmt: skip
    with torch.no_grad():
        torch.testing.assert_close(dit(x, t, txt), dit(x, t, padded), rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("shape,message", [((2, 4, 3, 4, 4), "latent must be"), ((1, 8, 3, 5, 4), "not divisible")])
def test_bad_latent_is_a_clear_error(dit, shape, message):
    with pytest.raises(SizeError, match=message):
        dit(torch.zeros(shape), torch.zeros(shape[0], shape[2]), _txt(shape[0]))


@pytest.fixture(scope="module")
def text() -> TextEncoder:
    return TextEncoder()


def test_text_encoder(text):
    emb = text(["a red ball bounces on a gray floor", "a cat"])
    assert emb.tokens.shape[0] == 2 and emb.tokens.shape[2] == 384
    assert emb.mask[1].sum() < emb.mask[0].sum()  # shorter prompt, padded
    torch.testing.assert_close(emb.pooled.norm(dim=-1), torch.ones(2))
    assert (emb.tokens[1][~emb.mask[1]] == 0).all()


def test_long_prompt_is_truncated_with_a_warning(text):
    with pytest.warns(UserWarning, match="truncated"):
        emb = text(["word " * (MAX_TOKENS + 20)])
    assert emb.tokens.shape[1] == MAX_TOKENS


@pytest.mark.parametrize("prompt", ["", "   \n", "x" * 5000])
def test_bad_prompts_are_refused(prompt):
    with pytest.raises(PromptError):
        check_prompt(prompt)
