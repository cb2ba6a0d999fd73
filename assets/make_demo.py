"""Rebuild ``assets/demo.mp4`` from ``assets/astronaut.jpg`` (see ``assets/README.md``).

    python -m emolens.assets.make_demo
"""

from __future__ import annotations

import sys

from emolens.bench.media import DEMO, write_video


def main() -> int:
    write_video(DEMO, (640, 480), faces=2, seconds=6.0, fps=20.0)
    print(f"wrote {DEMO} ({DEMO.stat().st_size:,} bytes)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
