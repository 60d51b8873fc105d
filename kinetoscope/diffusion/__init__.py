"""Flow matching apart from the network: the interpolant and its target, timesteps and shift, given-frame masks,
samplers and guidance. The time convention is stated once, at the top of ``flow.py``."""

from kinetoscope.diffusion.flow import (
    MASK_KINDS,
    TrainingExample,
    data_from_velocity,
    flow_loss,
    frame_t,
    interpolate,
    motion_weights,
    noise_from_velocity,
    resolution_shift,
    sample_given,
    sample_t,
    schedule,
    shift_t,
    training_example,
    velocity_target,
)
from kinetoscope.diffusion.guidance import classifier_free
from kinetoscope.diffusion.samplers import SAMPLERS, Velocity, ab2, euler, given_frames, heun, per_frame_t

__all__ = [
    "MASK_KINDS",
    "SAMPLERS",
    "TrainingExample",
    "Velocity",
    "ab2",
    "classifier_free",
    "data_from_velocity",
    "euler",
    "flow_loss",
    "frame_t",
    "given_frames",
    "heun",
    "interpolate",
    "motion_weights",
    "noise_from_velocity",
    "per_frame_t",
    "resolution_shift",
    "sample_given",
    "sample_t",
    "schedule",
    "shift_t",
    "training_example",
    "velocity_target",
]
