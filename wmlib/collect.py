"""Collect ManiSkill episodes as RLDS-shaped dicts, from four sources (the data pyramid).

Sources:
- ``random``: uniformly random actions: broad coverage, almost never successful.
- ``scripted_success``: the scripted controller of ``wmlib.scripted``: narrow and good.
- ``scripted_failure``: the same controller with a plausible mistake (``scripted.MISTAKES``).
- ``recovery``: the good controller, knocked off course mid-episode for a few steps
  (arm shoved, gripper opened), then restarting from what it now sees.

Every episode follows the course's RLDS convention (see ``wmlib.data``): step t holds
observation o_t and the action a_t sent from it, with the reward that action earned;
the episode's last step (``is_last``) holds the final observation, a zero action and
a zero reward, which mean nothing. ``success`` in the metadata is what the simulator
said, whatever the source hoped for.
"""
from __future__ import annotations

import os
import multiprocessing

import numpy as np

from wmlib.data.conventions import SOURCES, proprio_of

INSTRUCTIONS = {
    "PushCube-v1": "push the cube into the goal region",
    "PickCube-v1": "pick up the cube and move it to the goal",
}


class Disturbance:
    """Shoves the arm in one random direction with the gripper open, for a few steps."""

    def __init__(self, rng: np.random.Generator, start: int, length: int):
        self.start, self.stop = start, start + length
        direction = rng.normal(size=3)
        self.action = np.r_[direction / np.linalg.norm(direction), 1.0].astype(np.float32)

    def active(self, t: int) -> bool:
        return self.start <= t < self.stop


def run_episode(env, env_id: str, source: str, seed: int, start=None) -> dict:
    """Play one episode of ``source`` in a CourseEnv made with obs_mode="rgb"; return it as arrays.

    start(env): changes the scene after the reset (e.g. ``tasks.shift_goal``); the first
    observation is then taken again, so the first frame shows the changed scene."""
    from wmlib import scripted

    if source not in SOURCES:
        raise ValueError(f"unknown source {source!r}; have {SOURCES}")
    rng = np.random.default_rng(seed)
    obs, info = env.reset(seed=seed)
    if start is not None:
        from wmlib.envs import flatten_obs

        start(env)
        obs = flatten_obs(env.unwrapped.get_obs(), "rgb")
    state, layout = env.true_state()
    mistake = rng.choice(scripted.MISTAKES[env_id]) if source == "scripted_failure" else None
    controller = scripted.controller_for(env_id, layout, mistake=mistake, rng=rng)
    disturbance = (Disturbance(rng, start=int(rng.integers(4, 10)), length=int(rng.integers(3, 6)))
                   if source == "recovery" else None)

    states, images, actions, rewards = [state[0].numpy()], [obs["rgb"][0].numpy()], [], []
    terminated = truncated = False
    t = 0
    while not (terminated or truncated):
        if source == "random":
            action = rng.uniform(-1, 1, size=4).astype(np.float32)
        elif disturbance is not None and disturbance.active(t):
            action = disturbance.action
            if t + 1 == disturbance.stop:
                controller.restart()  # look again and start over from what is there now
        else:
            action = controller(states[-1])
        obs, reward, term, trunc, info = env.step(action)
        terminated, truncated = bool(term.any()), bool(trunc.any())
        state, _ = env.true_state()
        actions.append(action)
        rewards.append(float(reward[0]))
        states.append(state[0].numpy())
        images.append(obs["rgb"][0].numpy())
        t += 1

    n = len(states)  # T + 1 steps: T actions, then the final observation
    state_arr = np.stack(states).astype(np.float32)
    camera = next(iter(env.camera_params().values()))
    return {
        "steps": {
            "observation": {
                "state": state_arr,
                "image": np.stack(images),
                "proprio": proprio_of(state_arr, layout).astype(np.float32),
            },
            "action": np.concatenate([np.stack(actions), np.zeros((1, 4), np.float32)]),
            "reward": np.r_[rewards, 0.0].astype(np.float32),
            "discount": np.r_[np.ones(n - 1), 0.0 if terminated else 1.0].astype(np.float32),
            "is_first": np.arange(n) == 0,
            "is_last": np.arange(n) == n - 1,
            "is_terminal": (np.arange(n) == n - 1) & terminated,
            "language_instruction": [INSTRUCTIONS[env_id]] * n,
        },
        "episode_metadata": {
            "env_id": env_id,
            "robot": "panda",
            "control_mode": env.unwrapped.control_mode,
            "control_freq": int(env.control_freq),
            "camera_intrinsics": camera["intrinsic_cv"][0].numpy().astype(np.float32),
            "camera_extrinsics": camera["extrinsic_cv"][0].numpy().astype(np.float32),
            "source": source,
            "mistake": str(mistake or ""),
            "success": bool(info["success"].any()),
            "seed": int(seed),
        },
    }


# ---------------------------------------------------------------- parallel collection
#
# Each worker keeps one env per task and plays a fixed share of the episodes (every
# W-th one, in order), so an episode's simulator history, and with it the data, is
# the same on every run with the same number of workers, whatever the scheduling.


def _worker(share: list[tuple[int, tuple]], image_size: int, results) -> None:
    os.environ.setdefault("LP_NUM_THREADS", "1")  # one rendering thread: the workers fill the cores
    try:
        import torch

        from wmlib import envs

        torch.set_num_threads(1)
        made = {}
        for index, (env_id, source, seed) in share:
            if env_id not in made:
                made[env_id] = envs.make(env_id, obs_mode="rgb", image_size=image_size, seed=seed,
                                         sim_backend="cpu", render_backend="cpu")
            results.put((index, run_episode(made[env_id], env_id, source, seed)))
    except BaseException:  # report, never hang the collector
        import traceback

        results.put((-1, traceback.format_exc()))


def collect(jobs: list[tuple[str, str, int]], image_size: int = 128, workers: int | None = None):
    """Yield the episodes of jobs ``(env_id, source, seed)`` in order, collected in parallel processes."""
    import queue as queues

    workers = workers or max(1, min(len(jobs), os.cpu_count() or 1))
    context = multiprocessing.get_context("spawn")  # a clean interpreter: no forked TF/torch state
    results = context.Queue()
    indexed = list(enumerate(jobs))
    processes = [context.Process(target=_worker, args=(indexed[k::workers], image_size, results), daemon=True)
                 for k in range(workers)]
    for process in processes:
        process.start()
    ready, next_index = {}, 0
    try:
        while next_index < len(jobs):
            try:
                index, episode = results.get(timeout=30)
            except queues.Empty:
                if not any(p.is_alive() for p in processes):
                    raise RuntimeError("every collection worker stopped before finishing") from None
                continue
            if index < 0:
                raise RuntimeError(f"a collection worker failed:\n{episode}")
            ready[index] = episode
            while next_index in ready:
                yield ready.pop(next_index)
                next_index += 1
    finally:
        for process in processes:
            process.join(timeout=5)
            if process.is_alive():
                process.terminate()
