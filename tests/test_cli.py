"""The command line's own contract: flags are checked before anything heavy loads."""

from __future__ import annotations

import pytest

from segcolor.cli import main


@pytest.mark.parametrize(
    ("flags", "message"),
    [
        (["--port", "0"], "--port must be 1-65535, got 0"),
        (["--workers", "0"], "--workers must be positive, got 0"),
        (["--max-upload-mb", "-1"], "--max-upload-mb must be positive, got -1.0"),
        (["--max-pixels", "0"], "--max-pixels must be positive, got 0"),  # was: the default
        (["--working-size", "8"], "--working-size must be at least 16, got 8"),
    ],
)
def test_serve_flags_are_checked_first(flags, message, capsys):
    """Without the studio extra too: a wrong flag is named, not a missing package."""
    assert main(["serve", *flags]) == 2
    assert capsys.readouterr().err == f"segcolor: error: {message}\n"
