"""Sizes in words for messages a person reads: '2.5 MB', '40 KB', '1000 bytes'."""

import math


def size_text(size, rounding=math.floor):
    """`rounding` goes up for a file and down for a limit, so an over-limit file never reads
    as the same size as the limit."""
    for unit, scale in (("MB", 1024 * 1024), ("KB", 1024)):
        if size >= scale:
            value = rounding(size * 10 / scale) / 10
            return f"{value:.1f}".removesuffix(".0") + f" {unit}"
    return f"{size} bytes"
