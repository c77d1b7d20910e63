"""The shared import sample files (see shared/samples/README.md). They live beside the repository,
not in it: CI clones the repo with `shared/` next to it, so from the repo root they are at
`../shared/samples`. Locally the tests that need them skip when the folder is missing; in CI
(CI=true) they fail instead, so a broken checkout cannot pass by skipping."""

import os
from pathlib import Path

import pytest

SAMPLES_DIR = Path(__file__).resolve().parents[2] / "shared" / "samples"
IN_CI = os.environ.get("CI", "").lower() in ("1", "true", "yes")


def samples_dir():
    if not SAMPLES_DIR.is_dir():
        missing = f"The shared sample folder {SAMPLES_DIR} is missing"
        if IN_CI:
            pytest.fail(f"{missing}; CI clones shared/ beside the repository.", pytrace=False)
        pytest.skip(f"{missing} (runs in CI)")
    return SAMPLES_DIR


def sample_path(name):
    """A sample file; a file missing from a folder that exists is always a failure."""
    path = samples_dir() / name
    if not path.is_file():
        pytest.fail(f"The sample file {name} is missing from {SAMPLES_DIR}", pytrace=False)
    return path
