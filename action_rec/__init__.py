"""action_rec: recognise what a person in a video is doing.

A frozen per-frame backbone turns frames into features (extracted once into a cache), a 512-d
projection and a 2-layer LSTM classify the sequence.
"""

__version__ = "0.1.0"

import os as _os

# Torch's OpenMP threads spin while waiting; on a 2-core laptop that stalls them whenever the video
# decoding thread (or anything else) holds a core, up to 5x slower. Must be set before torch loads.
_os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")
