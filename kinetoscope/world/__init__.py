"""The procedural world: clips with captions and a scene script (ground truth), in three families."""

from __future__ import annotations

from kinetoscope.world.clip import FAMILIES, Clip, ClipSpec, sample_spec

__all__ = ["FAMILIES", "Clip", "ClipSpec", "render", "sample_spec"]


def render(spec: ClipSpec) -> Clip:
    """Render one clip; the same spec always gives the same frames, captions and script."""
    if spec.family in ("physics", "directions"):
        from kinetoscope.world.physics import render_physics

        return render_physics(spec)
    if spec.family == "drama":
        from kinetoscope.world.drama import render_drama

        return render_drama(spec)
    from kinetoscope.world.sprites import render_sprites

    return render_sprites(spec)
