"""The process's one OpenVINO Core, shared by every network that runs in OpenVINO (the person detector, the pose
network). OpenVINO asks for one Core per process: with a Core per detector, live's Ctrl-C crashed the process."""

from __future__ import annotations

import importlib.util

_CORE = None


def openvino_available() -> bool:
    return importlib.util.find_spec("openvino") is not None


def core():
    global _CORE
    if _CORE is None:
        import openvino as ov

        _CORE = ov.Core()
    return _CORE


def cpu_config(threads: int) -> dict:
    """Compile settings shared by our OpenVINO networks. fp32 asked for explicitly: on CPUs with bf16 OpenVINO's
    default precision moved detector boxes by up to 4 px, so features would depend on the CPU. No pinning: batch runs a
    network per process, and pinned threads would share a core."""
    return {"INFERENCE_PRECISION_HINT": "f32", "INFERENCE_NUM_THREADS": int(threads),
            "ENABLE_CPU_PINNING": False, "PERFORMANCE_HINT": "LATENCY"}
