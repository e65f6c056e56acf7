"""The course's ceiling: the simulator itself as the world model of a planner, on PushCube-v1.

Measures, over more seeds than chapter 2's notebook can afford:
- the success rate of random shooting and of CEM planning with ``wmlib.sim_model.SimulatorModel``
  (``pd_ee_delta_pos``, receding horizon), with Wilson 95% intervals, decisions per second
  (time spent planning only) and simulator steps per decision;
- the scripted closed-loop controller against an open-loop replay of its own successful
  actions, from starts whose cube is shifted by 0-6 cm in a seeded random direction.

    python benchmarks/oracle.py [--seeds 50] [--out results.json]
"""
import argparse
import time

import torch
from tqdm import tqdm

from common import write
from wmlib import control, envs, planning, scripted, tasks
from wmlib.eval import success_rate
from wmlib.sim_model import ORACLE, SimulatorModel

ENV_ID = "PushCube-v1"
OFFSETS_CM = (0, 2, 4, 6)
CEM = {"horizon": 4, "num_samples": 12, "num_elites": 3, "iterations": 2, "replan_every": 2}


def interval(outcomes, seeds) -> dict:
    r = success_rate(outcomes)
    return {"successes": r.successes, "trials": r.trials, "rate": r.rate, "ci95": [r.low, r.high],
            "failed_seeds": [s for s, ok in zip(seeds, outcomes) if not ok]}


def planner_runs(env, sim, method: str, settings: dict, seeds, cost=None) -> dict:
    """The simulator-as-model planner on each seed; ``cost`` defaults to the env's task cost."""
    cost = cost or tasks.cost_for(env.unwrapped.spec.id, env.state_layout)
    space = env.unwrapped.single_action_space
    low, high = torch.as_tensor(space.low), torch.as_tensor(space.high)
    settings = dict(settings)
    replan_every = settings.pop("replan_every")
    outcomes, lengths, decisions, seconds, steps, wall = [], [], 0, 0.0, 0, 0.0
    for seed in tqdm(seeds, desc=method):
        generator = torch.Generator().manual_seed(seed)
        if method == "random_shooting":
            plan = lambda s, warm: planning.random_shooting(sim, cost, s, low=low, high=high, mean=warm,  # noqa: E731
                                                           generator=generator, **settings)
        else:
            plan = lambda s, warm: planning.cem(sim, cost, s, low=low, high=high, mean=warm,  # noqa: E731
                                                generator=generator, **settings)
        controller = planning.RecedingHorizon(plan, replan_every=replan_every)
        before, start = sim.steps, time.perf_counter()
        outcome = control.run_episode(env, controller, seed=seed)
        wall += time.perf_counter() - start
        outcomes.append(outcome.success)
        lengths.append(outcome.steps)
        decisions += controller.decisions
        seconds += controller.seconds
        steps += sim.steps - before
    return {"settings": {**settings, "replan_every": replan_every}, "success": interval(outcomes, seeds),
            "decisions_per_second": decisions / seconds, "sim_steps_per_decision": steps / decisions,
            "sim_steps_per_second_while_planning": steps / seconds,
            "mean_episode_steps": sum(lengths) / len(lengths), "seconds_per_episode": wall / len(seeds)}


def open_vs_closed(env, seed: int, offset) -> tuple[bool, bool]:
    """Replay a successful closed-loop episode's actions from a shifted start, and run the controller there."""
    layout = env.state_layout
    recorded = control.run_episode(env, scripted.controller_for(ENV_ID, layout), seed=seed)
    assert recorded.success, f"the scripted controller failed on seed {seed}"
    shifted = lambda e: tasks.shift_cube(e, offset)  # noqa: E731
    replayed = control.run_episode(env, control.replay(recorded.actions), seed=seed, start=shifted)
    closed = control.run_episode(env, scripted.controller_for(ENV_ID, layout), seed=seed, start=shifted)
    return replayed.success, closed.success


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, default=50, help="episodes per measurement: seeds 0..N-1")
    parser.add_argument("--out", default=None)
    args = parser.parse_args()
    torch.set_num_threads(1)
    seeds = list(range(args.seeds))
    env = envs.make(ENV_ID, obs_mode="state", seed=0)
    env.reset()
    sim = SimulatorModel(env)
    start = time.perf_counter()
    loops = {}
    for cm in OFFSETS_CM:
        results = [open_vs_closed(env, s, tasks.random_offset(cm / 100, s)) for s in tqdm(seeds, desc=f"loops {cm} cm")]
        loops[f"{cm}cm"] = {"open_loop": interval([o for o, _ in results], seeds),
                            "closed_loop": interval([c for _, c in results], seeds)}
    oracle = {
        "random_shooting": planner_runs(env, sim, "random_shooting", ORACLE, seeds),
        "cem": planner_runs(env, sim, "cem", CEM, seeds),
    }
    write("oracle", {
        "env_id": ENV_ID, "control_mode": "pd_ee_delta_pos", "seeds": f"0-{args.seeds - 1}",
        "cost": "tasks.push_cube_cost (reach_weight 0.5, push point 4 cm behind the cube)",
        "oracle_planner": oracle,
        "open_vs_closed_loop": {"cube_shift": "seeded random direction (tasks.random_offset)", "results": loops},
        "seconds": time.perf_counter() - start,
    }, args.out)


if __name__ == "__main__":
    main()
