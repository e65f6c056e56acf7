"""wmlib: the shared library of the course *World Models for Robots*.

Submodules are imported on demand, so ``import wmlib`` stays fast and does not
load TensorFlow or the simulator until a notebook asks for them:

- ``wmlib.envs``  ManiSkill environments that work on CPU and GPU.
"""
from __future__ import annotations

import importlib
import os

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")  # TensorFlow: errors only, no start-up chatter

__version__ = "0.1.0"
__all__ = ["device", "envs"]


def device():
    """The torch device the course computes on: CUDA when present, else CPU."""
    import torch

    return torch.device("cuda" if torch.cuda.is_available() else "cpu")


def __getattr__(name):  # lazy submodules: wmlib.envs, ...
    if name in {"envs"}:
        return importlib.import_module(f"wmlib.{name}")
    raise AttributeError(f"module 'wmlib' has no attribute {name!r}")
