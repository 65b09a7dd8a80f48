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
        (["--vividness", "-1"], "--vividness must be a number above 0 and at most 3, got -1.0"),
        (["--style", "loud"], "--style must be one of faithful, vivid, got 'loud'"),
    ],
)
def test_serve_flags_are_checked_first(flags, message, capsys):
    """Without the studio extra too: a wrong flag is named, not a missing package."""
    assert main(["serve", *flags]) == 2
    assert capsys.readouterr().err == f"segcolor: error: {message}\n"


@pytest.mark.parametrize("command", ["colorize", "video", "inspect", "evaluate"])
@pytest.mark.parametrize("value", ["0", "4", "nan"])
def test_vividness_out_of_range_is_one_line_before_any_work(command, value, tmp_path, capsys):
    """Checked before the input is even looked at (it does not exist here)."""
    assert main([command, str(tmp_path / "missing.png"), "-o", str(tmp_path / "o"),
                 "--vividness", value]) == 2  # fmt: skip
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "--vividness must be a number above 0 and at most 3" in err


@pytest.mark.parametrize("command", ["colorize", "video", "inspect"])
def test_unknown_style_is_one_line_before_any_work(command, tmp_path, capsys):
    """Like a bad vividness: one line naming the choices, not an argparse usage dump."""
    assert main([command, str(tmp_path / "missing.png"), "-o", str(tmp_path / "o"),
                 "--style", "Vivid"]) == 2  # fmt: skip
    assert capsys.readouterr().err == (
        "segcolor: error: --style must be one of faithful, vivid, got 'Vivid'\n"
    )
