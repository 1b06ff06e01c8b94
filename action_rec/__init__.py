"""action_rec: recognise what a person in a video is doing.

A frozen per-frame backbone turns frames into features (extracted once into a cache), a 512-d
projection and a 2-layer LSTM classify the sequence.

One subpackage per pipeline stage, in the order data flows:

    video/      files, cameras, streams -> RGB frames sampled by timestamp (and drawing onto frames)
    backbones/  frames -> one frozen feature vector per frame (PyTorch or ONNX Runtime, fp32 or int8)
    features/   videos -> cached (frames, D) feature arrays; person features (detector, tracker, crop)
    data/       labelled video lists and splits -> the training DataModule's windows
    model/      windows of features -> class logits (ActionLSTM inside the LightningModule)
    decision/   window probabilities -> clip label, fall events, alerts; the rule's operating point
    inference/  checkpoint + video -> prediction (batch, streaming, per tracked person)
    training/   config -> checkpoint (LightningCLI, cross-validation)
    labeling/   `action-rec label`: folders of footage -> labels.csv, timeline, annotated copies
    live/       `action-rec live`: camera or stream -> display, JSON lines, alerts, recording
    evaluation/ `action-rec evaluate`: checkpoint + labelled data -> metrics, plots, report
    export/     `action-rec export`: checkpoint -> torch-free ONNX bundle, and its runtime
    synth/      `action-rec synth`: the rendered synthetic dataset
    utils/      atomic writes, errors, argument types, output path checks

cli.py is the `action-rec` command. Package __init__s import nothing heavy: each lists its exports, imported on
first use.
"""

__version__ = "0.1.0"

import os as _os

# Torch's OpenMP threads spin while waiting; on a 2-core laptop that stalls them whenever the video
# decoding thread (or anything else) holds a core, up to 5x slower. Must be set before torch loads.
_os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")
