"""Steps/s of a raw ManiSkill env against wmlib.envs.make for the same env, state and RGB.

Both envs live in one process and are timed in alternating blocks (who goes first
alternates too), so drift of the
machine (other load, CPU clocks) hits both alike; the median block rate is reported.
Reset time is excluded: only env.step is timed.

    python benchmarks/env_step.py [--env PushCube-v1] [--out results.json]
"""
import argparse
import statistics
import time

import gymnasium as gym
import torch

import wmlib.envs as E
from common import write

SETTINGS = {"state": dict(block=200, rounds=7), "rgb": dict(block=25, rounds=5)}


def make_raw(env_id, obs_mode, sim_backend, render_backend):
    import mani_skill.envs  # noqa: F401

    kwargs = dict(sensor_configs=dict(width=128, height=128)) if obs_mode == "rgb" else {}
    return gym.make(env_id, obs_mode=obs_mode, control_mode="pd_ee_delta_pos", num_envs=1,
                    sim_backend=sim_backend, render_backend=render_backend, **kwargs)


def timed_block(env, actions) -> float:
    """Steps/s over a block of actions, resetting (untimed) when an episode ends."""
    elapsed = 0.0
    for action in actions:
        start = time.perf_counter()
        _, _, terminated, truncated, _ = env.step(action)
        elapsed += time.perf_counter() - start
        if bool(terminated.any() or truncated.any()):
            env.reset()
    return len(actions) / elapsed


def measure(env_id, obs_mode):
    sim, render = E.pick_backends()
    ours = E.make(env_id, obs_mode=obs_mode, seed=0)
    raw = make_raw(env_id, obs_mode, sim, render)
    raw.reset(seed=0)
    ours.reset()
    gen = torch.Generator().manual_seed(0)
    block, rounds = SETTINGS[obs_mode]["block"], SETTINGS[obs_mode]["rounds"]
    rates = {"raw": [], "wmlib": []}
    timed_block(raw, torch.rand(5, 4, generator=gen) * 2 - 1)  # warm-up
    timed_block(ours, torch.rand(5, 4, generator=gen) * 2 - 1)
    for r in range(rounds):
        actions = torch.rand(block, 4, generator=gen) * 2 - 1
        order = [("raw", raw), ("wmlib", ours)]
        for name, env in order if r % 2 == 0 else order[::-1]:  # alternate who goes first
            rates[name].append(timed_block(env, actions))
    raw.close(), ours.close()
    raw_rate, our_rate = statistics.median(rates["raw"]), statistics.median(rates["wmlib"])
    return {
        "sim_backend": sim, "render_backend": render, "steps_per_block": block, "rounds": rounds,
        "raw_steps_per_s": raw_rate, "wmlib_steps_per_s": our_rate,
        "overhead_fraction": 1 - our_rate / raw_rate,
        "raw_blocks": rates["raw"], "wmlib_blocks": rates["wmlib"],
    }


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--env", default="PushCube-v1")
    parser.add_argument("--out", default=None)
    args = parser.parse_args()
    results = {mode: measure(args.env, mode) for mode in ("state", "rgb")}
    write("env_step", {"env_id": args.env, "limit_overhead_fraction": 0.10, "modes": results}, args.out)


if __name__ == "__main__":
    main()
