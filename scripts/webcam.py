#!/usr/bin/env python
"""Live action recognition from a webcam, a video file or a stream: a thin wrapper over `action-rec live`.

    python scripts/webcam.py --ckpt runs/quickstart/best.ckpt                # camera 0, window
    python scripts/webcam.py --ckpt best.ckpt --source clip.mp4 --headless  # JSON lines on stdout
    python scripts/webcam.py --help                                          # all options
"""

import sys

from action_rec.live import main

if __name__ == "__main__":
    sys.exit(main())
