"""wmlib: the shared library of the course *World Models for Robots*.

Submodules are imported on demand, so ``import wmlib`` stays fast and does not
load TensorFlow or the simulator until a notebook asks for them:

- ``wmlib.data``       RLDS episodes: loading, validation, transitions, Open X-Embodiment configs
- ``wmlib.envs``       ManiSkill environments that work on CPU and GPU
- ``wmlib.scripted``   scripted controllers (successes, deliberate mistakes, recoveries)
- ``wmlib.collect``    episode collection from the simulator (the data pyramid's four sources)
- ``wmlib.build_dataset`` the course dataset: collect, write as RLDS (``make dataset``)
- ``wmlib.models``     encoders, dynamics models, ensembles, the training loop
- ``wmlib.planning``   random shooting, CEM and MPPI over any model with a ``rollout``
- ``wmlib.sim_model``  the simulator used as a perfect model, behind the same ``rollout``
- ``wmlib.tasks``      task costs written on the state
- ``wmlib.control``    running a policy for an episode
- ``wmlib.model_based`` learn a model, plan with it, act, keep the episodes, learn again
- ``wmlib.wam_control``  closed-loop runs of a chunking pixel policy (shove, repaint, instruction swap)
- ``wmlib.wam_experiment`` chapter 6: the World Action Model variants, both evaluation axes
- ``wmlib.eval``       one-step error, drift, calibration, success rates with intervals
- ``wmlib.viz``        figures and interactive widgets
- ``wmlib.camera``     projecting the world into the camera image
- ``wmlib.results``    the benchmarks' committed reference results, as the chapters quote them
- ``wmlib.selfcheck``  the notebooks' "check your work" cell
- ``wmlib.grading``    sandboxed autograding (instructors)
"""
from __future__ import annotations

import importlib
import os

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")  # TensorFlow: errors only, no start-up chatter

__version__ = "0.1.0"
SUBMODULES = ("data", "envs", "scripted", "collect", "build_dataset", "models", "planning", "sim_model", "tasks",
              "control", "model_based", "wam_control", "wam_experiment", "eval", "viz", "camera", "results",
              "selfcheck", "grading")
__all__ = ["device", *SUBMODULES]


def device():
    """The torch device the course computes on: CUDA when present, else CPU."""
    import torch

    return torch.device("cuda" if torch.cuda.is_available() else "cpu")


def __getattr__(name):  # lazy submodules: wmlib.envs, wmlib.models, ...
    if name in SUBMODULES:
        return importlib.import_module(f"wmlib.{name}")
    raise AttributeError(f"module 'wmlib' has no attribute {name!r}")
