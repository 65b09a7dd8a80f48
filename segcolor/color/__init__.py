"""Color spaces and ab quantisation (shared by experts, training and evaluation)."""

from segcolor.color.lab import (
    AB_SCALE,
    L_SCALE,
    denormalize_ab,
    denormalize_l,
    lab_to_rgb,
    normalize_ab,
    normalize_l,
    rgb_to_lab,
)

__all__ = [
    "AB_SCALE",
    "L_SCALE",
    "denormalize_ab",
    "denormalize_l",
    "lab_to_rgb",
    "normalize_ab",
    "normalize_l",
    "rgb_to_lab",
]
