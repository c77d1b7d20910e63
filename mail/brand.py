"""A portal account's brand colour: a #rrggbb that white button text stays readable on (WCAG
contrast of at least 4.5:1), and the darker shade the stylesheet pairs with it."""

import re

DEFAULT_ACCENT = "#1d4ed8"
MINIMUM_CONTRAST = 4.5
_HEX = re.compile(r"#[0-9a-fA-F]{6}")


def _channels(color):
    return [int(color[i : i + 2], 16) for i in (1, 3, 5)]


def _luminance(color):
    def linear(value):
        value /= 255
        return value / 12.92 if value <= 0.04045 else ((value + 0.055) / 1.055) ** 2.4

    red, green, blue = (linear(value) for value in _channels(color))
    return 0.2126 * red + 0.7152 * green + 0.0722 * blue


def contrast_with_white(color):
    return 1.05 / (_luminance(color) + 0.05)


def problem(color):
    """Why `color` cannot be the brand colour, or ""."""
    if not _HEX.fullmatch(color):
        return "Write the colour as # and six hex digits, e.g. #1d4ed8."
    contrast = contrast_with_white(color)
    if contrast < MINIMUM_CONTRAST:
        return (
            f"Too light for white text on buttons: contrast {contrast:.1f}:1, it needs "
            f"{MINIMUM_CONTRAST}:1. Pick a darker shade."
        )
    return ""


def darker(color, factor=0.6):
    return "#" + "".join(f"{int(value * factor):02x}" for value in _channels(color))
