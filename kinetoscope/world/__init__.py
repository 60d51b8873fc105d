"""The procedural world: clips with captions and a scene script (ground truth), in three families."""

from __future__ import annotations

from kinetoscope.world.clip import DRILLS, FAMILIES, Clip, ClipSpec, sample_spec

__all__ = ["FAMILIES", "Clip", "ClipSpec", "render", "sample_spec"]


def render(spec: ClipSpec) -> Clip:
    """Render one clip; the same spec always gives the same frames, captions and script."""
    family = DRILLS.get(spec.family, spec.family)
    if family == "physics":
        from kinetoscope.world.physics import render_physics

        return render_physics(spec)
    if family == "drama":
        from kinetoscope.world.drama import render_drama

        return render_drama(spec)
    from kinetoscope.world.sprites import render_sprites

    return render_sprites(spec)
