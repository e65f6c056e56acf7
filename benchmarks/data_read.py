"""Steps/s read from a local RLDS dataset into torch batches, against iterating tfds directly.

- ``wmlib``: ``wmlib.data.load(images=False)`` (whole episodes batched inside tf.data,
  frames left undecoded) -> ``transitions`` -> torch batches of 256.
- ``tfds_direct``: the plain way, ``for episode in ds: for step in episode["steps"]``,
  collecting (state, action) per step into NumPy, then the same torch batches.
- ``rlds_windows``: ``wmlib.data.rlds_transitions`` (RLDS's size-2 windows) iterated as NumPy.

Each is timed from opening the dataset to the last batch, five times in one process;
the first run pays TensorFlow's one-off graph building. Best, median and first are reported.

    python benchmarks/data_read.py [--dataset datasets/wmr_maniskill/push_cube/1.0.0]
"""
import argparse
import pathlib
import statistics
import time

import numpy as np
import tensorflow_datasets as tfds
import torch

from wmlib import data
from common import write

BATCH = 256


def via_wmlib(path) -> int:
    episodes = data.load(path, images=False, validate=False)
    steps = 0
    for batch in data.iterate_batches(data.transitions(episodes), BATCH):
        steps += len(batch["state"])
    return steps


def via_tfds_direct(path) -> int:
    builder = tfds.builder_from_directory(str(path))
    decoders = {"steps": {"observation": {"image": tfds.decode.SkipDecoding()}}}
    parts = []
    for episode in builder.as_dataset(split="train", decoders=decoders):
        states, actions = [], []
        for step in episode["steps"]:
            states.append(step["observation"]["state"].numpy())
            actions.append(step["action"].numpy())
        states, actions = np.stack(states), np.stack(actions)
        parts.append((states[:-1], actions[:-1], states[1:]))
    obs, act, nxt = (torch.as_tensor(np.concatenate(p)) for p in zip(*parts))
    steps = 0
    for idx in torch.randperm(len(obs)).split(BATCH):
        steps += len(obs[idx]) + 0 * len(act[idx]) + 0 * len(nxt[idx])
    return steps


def via_rlds_windows(path) -> int:
    return sum(1 for _ in tfds.as_numpy(data.rlds_transitions(path)))


def best_rate(fn, path, repeats=5):
    rates, steps = [], 0
    for _ in range(repeats):
        start = time.perf_counter()
        steps = fn(path)
        rates.append(steps / (time.perf_counter() - start))
    return {"transitions": steps, "steps_per_s": max(rates), "median_steps_per_s": statistics.median(rates),
            "first_run_steps_per_s": rates[0], "runs_steps_per_s": rates}


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--dataset", default="datasets/wmr_maniskill/push_cube/1.0.0")
    parser.add_argument("--out", default=None)
    args = parser.parse_args()
    path = pathlib.Path(args.dataset)
    if not (path / "dataset_info.json").exists():
        raise SystemExit(f"no dataset at {path}: run `make dataset` first")
    results = {name: best_rate(fn, path) for name, fn in
               [("wmlib", via_wmlib), ("tfds_direct", via_tfds_direct), ("rlds_windows", via_rlds_windows)]}
    assert len({r["transitions"] for r in results.values()}) == 1, "the readers disagree on the transitions"
    write("data_read", {"dataset": str(path), "batch_size": BATCH, "target_steps_per_s": 20_000,
                        "speedup_over_tfds_direct": (results["wmlib"]["steps_per_s"]
                                                     / results["tfds_direct"]["steps_per_s"]),
                        "readers": results}, args.out)


if __name__ == "__main__":
    main()
