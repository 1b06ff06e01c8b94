"""action_rec: recognise what a person in a video is doing.

A frozen per-frame backbone turns frames into features (extracted once into a cache), a 512-d
projection and a 2-layer LSTM classify the sequence.
"""

__version__ = "0.1.0"
