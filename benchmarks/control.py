"""Model-based control with a learned ensemble: train, plan, act, add the episodes, retrain.

    python benchmarks/control.py [--env PushCube-v1] [--iterations 3] [--episodes 10] [--eval 50] [--out ...]

The loop (one script, every step in the open):
1. start from the course dataset of the task (or from nothing but random episodes, ``--from-scratch``);
2. train an ensemble of delta models (``EnsembleDeltaModel``, bootstrap weights, early stopping);
3. plan with CEM on the ensemble (``wmlib.planning``) with the task's cost (``wmlib.tasks``) plus
   a disagreement penalty, replanning every 2 steps (``RecedingHorizon``), and act in ManiSkill;
4. add the episodes' transitions to the data and go back to 2, ``--iterations`` times.

It reports the success of each iteration's episodes, then the final model's success over
``--eval`` seeded evaluation episodes (seeds 5000.., which no dataset episode starts from) with a
Wilson 95% interval, and beside it the chapter-2 oracle (the simulator itself as the model,
random shooting H=4, N=12, replan every 2: ``benchmarks/oracle.py``) on the same seeds.
"""
import argparse
import time

import numpy as np
import torch
from tqdm import tqdm

from common import write
from oracle import planner_runs
from planner import COURSE

from wmlib import control, data, envs, planning, tasks
from wmlib.eval import success_rate
from wmlib.models.ensemble import EnsembleDeltaModel
from wmlib.models.train import fit
from wmlib.sim_model import ORACLE, SimulatorModel

DATASETS = {"PushCube-v1": "push_cube", "PickCube-v1": "pick_cube"}
EVAL_SEED, COLLECT_SEED = 5000, 2000
PENALTY = 0.01          # cost units per unit of disagreement (each component in units of its spread in the data)
REPLAN_EVERY = 2
TRAINING = dict(epochs=40, patience=40, lr=3e-3, batch_size=256)


def dataset_rows(env_id: str) -> tuple[dict, dict]:
    """The task's dataset as transition rows {state, action, next_state, episode} and its state layout."""
    path = data.default_path(DATASETS[env_id])
    steps = data.transitions(data.load(path, images=False))
    rows = {"state": torch.as_tensor(steps.obs), "action": torch.as_tensor(steps.action),
            "next_state": torch.as_tensor(steps.next_obs), "episode": torch.as_tensor(steps.episode)}
    return rows, data.state_layout(path)


def episode_rows(outcome, episode_id: int) -> dict:
    t = outcome.steps
    return {"state": outcome.states[:-1].float(), "action": outcome.actions.float(),
            "next_state": outcome.states[1:].float(), "episode": torch.full((t,), episode_id)}


def join(a: dict | None, b: dict) -> dict:
    return b if a is None else {k: torch.cat([a[k], b[k]]) for k in a}


def train(rows: dict, seed: int, members: int, hidden) -> tuple[EnsembleDeltaModel, float]:
    """An ensemble trained on every row for a fixed number of epochs (``TRAINING``).

    No early stopping on held-out episodes: with a few hundred episodes, which ones are held out
    decides when it stops, and one unlucky split (an odd random episode) stopped it after one
    epoch, a model that then failed every episode. ``fit`` is given a fixed fifth of the training
    rows as its "validation" set, so it keeps the weights that fit the data best.
    """
    rows = {k: rows[k] for k in ("state", "action", "next_state")}
    check = torch.randperm(len(rows["state"]), generator=torch.Generator().manual_seed(seed))[: len(rows["state"]) // 5]
    torch.manual_seed(seed)
    model = EnsembleDeltaModel(rows["state"].shape[1], rows["action"].shape[1], members=members, hidden=hidden)
    model.fit_normalisers(**rows)
    weighted = {**rows, "weight": model.bootstrap_weights(len(rows["state"]), seed=seed)}
    history = fit(model, weighted, {k: v[check] for k, v in rows.items()}, seed=seed, progress=False, **TRAINING)
    model.eval()
    return model, history.seconds


def planner(model, cost, low, high, settings: dict, seed: int):
    settings = {k: settings[k] for k in ("horizon", "num_samples", "num_elites", "iterations")}
    generator = torch.Generator().manual_seed(seed)

    def plan(state, warm):
        return planning.cem(model, cost, state.float(), low=low, high=high, mean=warm, generator=generator, **settings)

    return planning.RecedingHorizon(plan, replan_every=REPLAN_EVERY)


def play(env, model, cost, low, high, seeds, desc: str):
    outcomes, seconds, decisions = [], 0.0, 0
    for seed in tqdm(seeds, desc=desc, leave=False):
        controller = planner(model, cost, low, high, COURSE, seed)
        outcomes.append(control.run_episode(env, controller, seed=seed))
        seconds += controller.seconds
        decisions += controller.decisions
    return outcomes, {"decisions_per_second": decisions / max(seconds, 1e-9)}


def interval(successes, seeds) -> dict:
    r = success_rate(successes)
    return {"successes": r.successes, "trials": r.trials, "rate": r.rate, "ci95": [r.low, r.high],
            "failed_seeds": [s for s, ok in zip(seeds, successes) if not ok]}


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--env", default="PushCube-v1")
    parser.add_argument("--iterations", type=int, default=3, help="train / act / add rounds before the evaluation")
    parser.add_argument("--episodes", type=int, default=10, help="episodes played per round")
    parser.add_argument("--eval", type=int, default=50, help="evaluation episodes (seeds 5000..)")
    parser.add_argument("--penalty", type=float, default=PENALTY, help="disagreement weight (0 = none)")
    parser.add_argument("--from-scratch", action="store_true",
                        help="start from random episodes, not the dataset (always, for a task with no dataset)")
    parser.add_argument("--no-oracle", action="store_true", help="skip rerunning the simulator-as-model planner")
    parser.add_argument("--out", default=None)
    args = parser.parse_args()
    torch.set_num_threads(1)   # small models: one thread beats two that wait for each other
    start = time.perf_counter()

    env = envs.make(args.env, obs_mode="state", seed=0)
    env.reset(seed=0)
    layout = env.state_layout
    space = env.unwrapped.single_action_space
    low, high = torch.as_tensor(space.low), torch.as_tensor(space.high)
    if args.from_scratch or args.env not in DATASETS:
        rows, next_id = None, 0
        random_policy = lambda s: torch.as_tensor(space.sample())  # noqa: E731
        for i in range(args.episodes * 2):
            rows = join(rows, episode_rows(control.run_episode(env, random_policy, seed=COLLECT_SEED - 1 - i), i))
        next_id = args.episodes * 2
        source = f"{args.episodes * 2} random episodes"
    else:
        rows, data_layout = dataset_rows(args.env)
        if data_layout != layout:
            raise RuntimeError(f"the dataset's state layout {data_layout} differs from the env's {layout}")
        next_id = int(rows["episode"].max()) + 1
        source = f"the course dataset ({len(rows['state'])} transitions)"
    # every component in units of its spread in the data (at least 1e-3): the penalty's scale
    scale = rows["next_state"].std(dim=0).clamp_min(1e-3)
    task_cost = tasks.cost_for(args.env, layout)
    cost = planning.disagreement_penalty(task_cost, args.penalty, scale=scale) if args.penalty > 0 else task_cost

    rounds, train_seconds = [], 0.0
    for i in range(args.iterations + 1):
        model, seconds = train(rows, seed=i, members=COURSE["members"], hidden=COURSE["hidden"])
        train_seconds += seconds
        if i == args.iterations:
            break
        seeds = list(range(COLLECT_SEED + i * args.episodes, COLLECT_SEED + (i + 1) * args.episodes))
        outcomes, speed = play(env, model, cost, low, high, seeds, f"round {i}")
        for outcome in outcomes:
            rows = join(rows, episode_rows(outcome, next_id))
            next_id += 1
        rounds.append({"round": i, "transitions_trained_on": int(len(rows["state"]) - sum(o.steps for o in outcomes)),
                       "train_seconds": seconds, "success": interval([o.success for o in outcomes], seeds), **speed})
        print(f"round {i}: {rounds[-1]['success']['successes']}/{len(seeds)} successes after {seconds:.0f} s training")

    eval_seeds = list(range(EVAL_SEED, EVAL_SEED + args.eval))
    outcomes, speed = play(env, model, cost, low, high, eval_seeds, "evaluation")
    final = {"success": interval([o.success for o in outcomes], eval_seeds),
             "mean_episode_steps": float(np.mean([o.steps for o in outcomes])), **speed,
             "transitions_trained_on": int(len(rows["state"])), "train_seconds_last": seconds}
    print(f"learned ensemble: {final['success']['successes']}/{args.eval}")
    result = {"env_id": args.env, "start": source, "planner": COURSE, "replan_every": REPLAN_EVERY,
              "disagreement_penalty": args.penalty, "training": TRAINING, "eval_seeds": f"{eval_seeds[0]}-{eval_seeds[-1]}",
              "rounds": rounds, "learned_model": final, "train_seconds_total": train_seconds}
    if not args.no_oracle and args.env == "PushCube-v1":  # oracle.planner_runs plans with the PushCube cost
        sim = SimulatorModel(env)
        result["oracle"] = planner_runs(env, sim, "random_shooting", ORACLE, eval_seeds)
        print(f"oracle: {result['oracle']['success']['successes']}/{args.eval}")
    result["seconds"] = time.perf_counter() - start
    name = "control" if args.env == "PushCube-v1" else f"control_{args.env.split('-')[0].lower()}"
    write(name, result, args.out)


if __name__ == "__main__":
    main()
