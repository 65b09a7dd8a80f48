"""Archive batches: the manifest, resume, --jobs, kill -9, Ray, and `segcolor manifest`."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest
from PIL import Image

from segcolor.batch.manifest import MANIFEST_NAME, Manifest, latest_photos, read_rows
from segcolor.cli import main
from segcolor.experts import create_expert, save_expert

from .conftest import color_image
from .test_images import make_bad_files

VOLATILE = ("seconds", "time", "worker")  # what differs between two runs of the same photo


@pytest.fixture(scope="module")
def expert_path(tmp_path_factory) -> Path:
    path = tmp_path_factory.mktemp("expert") / "tiny.safetensors"
    return save_expert(create_expert(decoder_channels=[32, 16, 8]), path, {"name": "tiny"})


def make_folder(root: Path, good: int = 6) -> dict[str, tuple[Path, str]]:
    """``good`` small photos of mixed sizes (one in a sub-folder) and the usual bad files."""
    (root / "sub").mkdir(parents=True)
    for i in range(good):
        folder = root / "sub" if i == 0 else root
        image = Image.fromarray(color_image(20 + 3 * i, 28 + 5 * i, seed=i))
        image.save(folder / f"p{i}.{'jpg' if i % 2 else 'png'}")
    return make_bad_files(root)


def colorize(src: Path, out: Path, expert: Path, *flags: object) -> int:
    return main(["colorize", str(src), "-o", str(out), "--expert", str(expert), *map(str, flags)])


def stable_rows(out: Path) -> dict[str, dict]:
    rows = latest_photos(read_rows(out / MANIFEST_NAME))
    return {k: {f: v for f, v in r.items() if f not in VOLATILE} for k, r in rows.items()}


def outputs(out: Path) -> dict[str, bytes]:
    return {
        p.relative_to(out).as_posix(): p.read_bytes()
        for p in sorted(out.rglob("*"))
        if p.is_file() and p.name != MANIFEST_NAME
    }


def test_manifest_records_every_photo_and_a_rerun_skips_done_ones(tmp_path, expert_path, capsys):
    bad = make_folder(tmp_path / "in")
    out = tmp_path / "out"
    assert colorize(tmp_path / "in", out, expert_path) == 1
    rows = stable_rows(out)
    assert len(rows) == 6 + len(bad)
    done = {k: r for k, r in rows.items() if r["status"] == "done"}
    assert sorted(done) == sorted(outputs(out)) and "sub/p0.png" in done
    row = done["p1.jpg"]
    assert row["input"] == "p1.jpg" and row["size"] == (tmp_path / "in" / "p1.jpg").stat().st_size
    assert len(row["sha256"]) == 64 and row["routing"] is None  # one expert: no routing
    for path, fragment in bad.values():
        (failed,) = [r for r in rows.values() if r["input"] == path.name]
        assert failed["status"] == "error" and fragment in failed["error"]
        assert "\n" not in failed["error"]
    first = outputs(out)
    mtimes = {p: p.stat().st_mtime_ns for p in out.rglob("*.png")}
    capsys.readouterr()

    # rerun: done photos are skipped, failed ones retried (and fail again, once each)
    assert colorize(tmp_path / "in", out, expert_path) == 1
    err = capsys.readouterr().err
    assert f"6 of {6 + len(bad)} images already done" in err
    assert f"colorized 6 of {6 + len(bad)} images; {len(bad)} failed" in err
    for path, _ in bad.values():
        assert sum(str(path) in line for line in err.splitlines()) == 1
    assert {p: p.stat().st_mtime_ns for p in out.rglob("*.png")} == mtimes
    assert outputs(out) == first
    # the manifest is compacted: one row per photo, whatever the reruns
    photo_rows = [r for r in read_rows(out / MANIFEST_NAME) if "status" in r]
    assert len(photo_rows) == 6 + len(bad)

    # a changed source is redone; a touched but identical one is not (same sha256)
    os.utime(tmp_path / "in" / "p2.png", ns=(1, 1))
    Image.fromarray(color_image(30, 30, seed=9)).save(tmp_path / "in" / "p3.jpg")
    assert colorize(tmp_path / "in", out, expert_path) == 1
    assert f"5 of {6 + len(bad)} images already done" in capsys.readouterr().err  # p3 redone
    assert outputs(out)["p2.png"] == first["p2.png"]

    # --overwrite redoes everything
    assert colorize(tmp_path / "in", out, expert_path, "--overwrite") == 1
    assert "already done" not in capsys.readouterr().err


def test_torn_last_line_is_ignored_and_the_next_row_starts_fresh(tmp_path, expert_path):
    for i in range(2):
        Image.fromarray(color_image(16, 16, seed=i)).save(tmp_path / f"{i}.png")
    (tmp_path / "in").mkdir()
    for i in range(2):
        (tmp_path / f"{i}.png").rename(tmp_path / "in" / f"{i}.png")
    out = tmp_path / "out"
    assert colorize(tmp_path / "in", out, expert_path) == 0
    manifest = out / MANIFEST_NAME
    rows = read_rows(manifest)
    text = manifest.read_text()
    last_photo = json.dumps([r for r in rows if "status" in r][-1], separators=(",", ":"))
    # as if killed while writing the last row: half of it on disk
    manifest.write_text(text[: text.index(last_photo) + len(last_photo) // 2])
    assert len([r for r in read_rows(manifest) if "status" in r]) == 1
    assert colorize(tmp_path / "in", out, expert_path) == 0
    assert all(r["status"] == "done" for r in stable_rows(out).values())
    assert len(stable_rows(out)) == 2


def test_jobs_2_writes_the_bytes_of_jobs_1(tmp_path, expert_path):
    make_folder(tmp_path / "in", good=8)
    assert colorize(tmp_path / "in", tmp_path / "one", expert_path) == 1
    assert colorize(tmp_path / "in", tmp_path / "two", expert_path, "--jobs", "2") == 1
    assert outputs(tmp_path / "two") == outputs(tmp_path / "one")
    assert stable_rows(tmp_path / "two") == stable_rows(tmp_path / "one")
    workers = {r["worker"] for r in read_rows(tmp_path / "two" / MANIFEST_NAME) if "worker" in r}
    assert workers and os.getpid() not in workers  # colorized in worker processes


def test_a_second_batch_into_the_same_folder_is_refused(tmp_path, expert_path, capsys):
    Image.fromarray(color_image(16, 16)).save(tmp_path / "a.png")
    out = tmp_path / "out"
    held = Manifest.of(out)
    held.open()
    try:
        assert colorize(tmp_path / "a.png", out / "x", expert_path) == 0  # another folder: fine
        assert colorize(tmp_path / "a.png", out, expert_path) == 2
        assert "another segcolor colorize is writing" in capsys.readouterr().err
    finally:
        held.close()


@pytest.mark.skipif(not hasattr(os, "fork"), reason="POSIX signals")
def test_kill_9_midway_then_rerun_finishes_every_photo_once(tmp_path, expert_path):
    bad = make_folder(tmp_path / "in", good=40)
    out = tmp_path / "out"
    command = [
        sys.executable,
        "-m",
        "segcolor",
        "colorize",
        str(tmp_path / "in"),
        "-o",
        str(out),
        "--expert",
        str(expert_path),
        "--jobs",
        "2",
    ]
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    with subprocess.Popen(command, stderr=subprocess.DEVNULL, env=env) as proc:
        deadline = time.monotonic() + 120
        while proc.poll() is None:
            done = [r for r in read_rows(out / MANIFEST_NAME) if r.get("status") == "done"]
            if len(done) >= 5:
                break
            assert time.monotonic() < deadline, "no progress after 120 s"
            time.sleep(0.05)
        proc.kill()
        proc.wait()
    before = [r for r in read_rows(out / MANIFEST_NAME) if r.get("status") == "done"]
    assert 5 <= len(before) < 40, "the batch was not killed midway"

    assert subprocess.run(command, env=env, capture_output=True).returncode == 1
    rows = [r for r in read_rows(out / MANIFEST_NAME) if "status" in r]
    by_output = latest_photos(rows)
    assert len(by_output) == 40 + len(bad) == len(rows)  # each photo listed once
    assert sum(r["status"] == "done" for r in by_output.values()) == 40
    assert not list(out.rglob(".*.tmp"))
    # what the killed run finished was not redone
    again = {r["output"]: r for r in rows}
    assert all(again[r["output"]]["time"] == r["time"] for r in before)
    # and the result is what an uninterrupted run writes
    assert colorize(tmp_path / "in", tmp_path / "straight", expert_path) == 1
    assert outputs(out) == outputs(tmp_path / "straight")


def test_manifest_command_summarizes(tmp_path, expert_path, capsys):
    bad = make_folder(tmp_path / "in", good=3)
    out = tmp_path / "out"
    colorize(tmp_path / "in", out, expert_path)
    capsys.readouterr()
    assert main(["manifest", str(out)]) == 0
    text = capsys.readouterr().out
    assert f"{3 + len(bad)} photos: 3 done, {len(bad)} failed" in text
    assert "photos/s" in text and "no routing recorded" in text
    for path, fragment in bad.values():
        assert any(path.name in line and fragment in line for line in text.splitlines())
    assert main(["manifest", str(tmp_path / "in")]) == 2  # no manifest: one line
    assert "no batch manifest" in capsys.readouterr().err
    assert main(["manifest", str(out / MANIFEST_NAME)]) == 0  # the file names its folder
    assert capsys.readouterr().out == text
    assert main(["manifest", str(tmp_path / "nope")]) == 2
    assert "nope: no such folder" in capsys.readouterr().err
    (tmp_path / "junk").mkdir()
    (tmp_path / "junk" / MANIFEST_NAME).write_text("not json\n")
    assert main(["manifest", str(tmp_path / "junk")]) == 2
    assert "not a readable batch manifest" in capsys.readouterr().err


def test_manifest_counts_photos_per_category(tmp_path, capsys):
    out = tmp_path / "out"
    out.mkdir()
    rows = [
        {"event": "start", "time": 100.0},
        *[
            {
                "input": f"{i}.jpg",
                "output": f"{i}.jpg",
                "status": "done",
                "seconds": 1.0,
                "time": 101.0 + i,
                "routing": {
                    "shares": {"people": 40.0, "places": 60.0} if i < 3 else {"places": 100.0},
                    "profiles": {"places": "gray"},
                },
            }
            for i in range(4)
        ],
    ]
    (out / MANIFEST_NAME).write_text("".join(json.dumps(r) + "\n" for r in rows))
    assert main(["manifest", str(out)]) == 0
    text = capsys.readouterr().out
    assert "3 photos with people" in text and "4 photos with places" in text
    assert "4 photos in 4.0 s of runs (1.00 photos/s)" in text
    assert "4 photos: places gray" in text


def test_ray_engine_gives_the_local_rows_and_bytes(tmp_path, expert_path):
    pytest.importorskip(
        "ray.data", reason="the 'ray' extra is not installed (pip install -e .[ray])"
    )
    make_folder(tmp_path / "in", good=4)
    assert colorize(tmp_path / "in", tmp_path / "local", expert_path) == 1
    ray = tmp_path / "ray"
    sigterm = signal.getsignal(signal.SIGTERM)
    assert colorize(tmp_path / "in", ray, expert_path, "--engine", "ray", "--jobs", "2") == 1
    assert signal.getsignal(signal.SIGTERM) is sigterm  # Ray's handler does not outlive the run
    assert outputs(ray) == outputs(tmp_path / "local")
    assert stable_rows(ray) == stable_rows(tmp_path / "local")
    # the same resume rule: a rerun has only the failed files to do
    assert colorize(tmp_path / "in", ray, expert_path, "--engine", "ray") == 1
    starts = [r for r in read_rows(ray / MANIFEST_NAME) if r.get("event") == "start"]
    assert starts[-1]["engine"] == "ray" and starts[-1]["todo"] == len(stable_rows(ray)) - 4


def test_bad_flags_are_one_line_errors(tmp_path, expert_path, capsys):
    Image.fromarray(color_image(16, 16)).save(tmp_path / "a.png")
    assert colorize(tmp_path / "a.png", tmp_path / "o", expert_path, "--jobs", "0") == 2
    assert colorize(tmp_path / "a.png", tmp_path / "o", expert_path, "--threads", "0") == 2
    assert colorize(tmp_path / "a.png", tmp_path / "o", expert_path, "--working-size", "8") == 2
    assert colorize(tmp_path / "a.png", tmp_path / "o", expert_path, "--address", "auto") == 2
    assert capsys.readouterr().err.splitlines() == [
        "segcolor: error: --jobs must be at least 1, got 0",
        "segcolor: error: --threads must be at least 1, got 0",
        "segcolor: error: --working-size must be at least 16, got 8",
        "segcolor: error: --address needs --engine ray",
    ]


RAY_DATA_FETCHERS = ("iter_threaded", "StreamingExecutor")  # Ray Data's thread names


@pytest.mark.parametrize("engine", ["local", "ray"])
def test_a_missing_model_is_one_line_error_from_the_workers(tmp_path, capsys, engine, monkeypatch):
    running_at_shutdown: list[str] = []
    if engine == "ray":
        pytest.importorskip("ray.data", reason="the 'ray' extra is not installed")
        import ray

        shutdown = ray.shutdown

        def watched_shutdown(*args, **kwargs):
            running_at_shutdown.extend(
                t.name for t in threading.enumerate() if t.name.startswith(RAY_DATA_FETCHERS)
            )
            return shutdown(*args, **kwargs)

        monkeypatch.setattr(ray, "shutdown", watched_shutdown)
    make_folder(tmp_path / "in", good=2)
    missing = tmp_path / "nowhere.safetensors"
    code = colorize(tmp_path / "in", tmp_path / "out", missing, "--jobs", "2", "--engine", engine)
    err = capsys.readouterr().err
    assert code == 2 and "nowhere.safetensors" in err and "Traceback" not in err
    assert sum("segcolor: error" in line for line in err.splitlines()) == 1
    # Ray Data's threads that fetch blocks are stopped before ray.shutdown(): one left running
    # touches the shut-down core worker and Ray ends the whole process (status 1, no output:
    # how CI died silently, issue 25). Without closing the iterator, two were still running.
    assert running_at_shutdown == []


def test_manifest_into_a_closed_pipe_is_quiet(tmp_path, expert_path):
    """`segcolor manifest OUT | head`: the reader leaves early; no traceback, exit status 1.
    (A subprocess: other tests' libraries, e.g. Ray, may change this process's SIGPIPE.)"""
    make_folder(tmp_path / "in", good=2)
    out = tmp_path / "out"
    colorize(tmp_path / "in", out, expert_path)
    proc = subprocess.Popen(
        [sys.executable, "-m", "segcolor", "manifest", str(out)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    proc.stdout.close()  # the reader is gone before the first line is written
    err = proc.stderr.read().decode()
    assert proc.wait(timeout=120) == 1
    assert "Traceback" not in err and "BrokenPipe" not in err


def test_a_rerun_with_other_settings_is_refused_until_overwrite(tmp_path, expert_path, capsys):
    (tmp_path / "in").mkdir()
    Image.fromarray(color_image(40, 48)).save(tmp_path / "in" / "a.png")
    out = tmp_path / "out"
    assert colorize(tmp_path / "in", out, expert_path) == 0
    first = outputs(out)
    capsys.readouterr()
    # another working size would mix two kinds of output in one folder: refused, nothing redone
    assert colorize(tmp_path / "in", out, expert_path, "--working-size", 16) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "other settings (working_size None -> 16)" in err
    assert outputs(out) == first
    # --overwrite redoes the photos with the new settings, which a plain rerun then keeps
    assert colorize(tmp_path / "in", out, expert_path, "--working-size", 16, "--overwrite") == 0
    assert outputs(out) != first
    assert colorize(tmp_path / "in", out, expert_path, "--working-size", 16) == 0
    assert "1 of 1 images already done" in capsys.readouterr().err
    # so is another vividness: the same photos in other colors
    flags = ("--working-size", 16, "--vividness", 1.5)
    assert colorize(tmp_path / "in", out, expert_path, *flags) == 2
    assert "other settings (vividness None -> 1.5)" in capsys.readouterr().err
    # and another style (faithful | vivid)
    flags = ("--working-size", 16, "--style", "vivid")
    assert colorize(tmp_path / "in", out, expert_path, *flags) == 2
    assert "other settings (style None -> vivid)" in capsys.readouterr().err
