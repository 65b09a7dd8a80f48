"""Video colorization that stays steady from frame to frame (``segcolor video``).

Sits on top of ``segcolor.pipeline`` (which knows nothing of video): ``io`` reads frames,
``scenes`` finds cuts, ``flow`` estimates motion, ``stabilize`` smooths routing and colors
along it, ``encode`` writes chunks and joins them, ``runner`` drives a resumable run and
``timeline`` plots the routing over time.
"""

from segcolor.video.io import VIDEO_EXTENSIONS, VideoInfo, VideoReader, is_video_path
from segcolor.video.runner import RunOptions, RunSummary, colorize_video
from segcolor.video.stabilize import FrameResult, Stabilizer, StabilizerOptions
from segcolor.video.timeline import Timeline, build_timeline, write_timeline

__all__ = [
    "VIDEO_EXTENSIONS",
    "FrameResult",
    "RunOptions",
    "RunSummary",
    "Stabilizer",
    "StabilizerOptions",
    "Timeline",
    "VideoInfo",
    "VideoReader",
    "build_timeline",
    "colorize_video",
    "is_video_path",
    "write_timeline",
]
