"""Model-based control with a learned ensemble: train, plan, act, add the episodes, retrain.

    python benchmarks/control.py [--env PushCube-v1] [--rounds 3] [--episodes 10] [--eval 50] [--out ...]

The loop is ``wmlib.model_based.improve``, every step in the open:
1. start from the course dataset of the task (or, ``--from-scratch`` and for a task with no
   dataset, from random episodes only);
2. train an ensemble of delta models (``EnsembleDeltaModel``, bootstrap weights);
3. plan with CEM on the ensemble (``wmlib.planning``) with the task's cost (``wmlib.tasks``) plus
   a disagreement penalty, replanning every 2 steps (``RecedingHorizon``), and act in ManiSkill;
4. add the episodes' transitions to the data and go back to 2, ``--rounds`` times.

It reports each round's success, then the final model's success over ``--eval`` seeded
evaluation episodes (seeds 5000.., which no dataset or training episode starts from) with a
Wilson 95% interval and the CPU seconds spent training. The whole loop is repeated for each
training seed (``--seeds``): one lucky model proves little, so every run is reported and pooled.
Beside them, the chapter-2 oracle (the simulator itself as the model, random shooting H=4,
N=12, replan every 2: ``benchmarks/oracle.py``) on the same seeds with the same cost.

The task cost is ``tasks.cost_for(env, layout, learned_model=True)``: on PushCube it leads the
gripper to the push point with weight 3 (``tasks.LEARNED_MODEL_WEIGHTS``), six times chapter 2's
0.5: the model predicts the gripper's own motion well and the cube's motion poorly away from
contact, and a cost that leans on the cube term invites the planner to chase pushes the model
only imagines (a gripper passing above the cube "moves" it). ``--reach-weight`` overrides it.
"""
import argparse
import time

import torch

from common import write
from oracle import planner_runs

from wmlib import data, envs, model_based, tasks
from wmlib.eval import success_rate
from wmlib.sim_model import ORACLE, SimulatorModel

DATASETS = {"PushCube-v1": "push_cube", "PickCube-v1": "pick_cube"}
EVAL_SEED, COLLECT_SEED, RANDOM_SEED = 5000, 2000, 1000


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--env", default="PushCube-v1")
    parser.add_argument("--rounds", type=int, default=3, help="train / act / add rounds before the evaluation")
    parser.add_argument("--episodes", type=int, default=10, help="episodes played per round")
    parser.add_argument("--random-episodes", type=int, default=20, help="random episodes to start from (from scratch)")
    parser.add_argument("--eval", type=int, default=50, help="evaluation episodes (seeds 5000..)")
    parser.add_argument("--penalty", type=float, default=model_based.PENALTY, help="disagreement weight (0 = none)")
    parser.add_argument("--reach-weight", type=float, default=None,
                        help="weight of the gripper's distance to where it should push, in the task cost "
                             "(default: tasks.LEARNED_MODEL_WEIGHTS, else the cost's own)")
    parser.add_argument("--epochs", type=int, default=model_based.TRAINING["epochs"])
    parser.add_argument("--replan-every", type=int, default=model_based.REPLAN_EVERY)
    parser.add_argument("--seeds", default="0,10,20",
                        help="training seeds, one whole loop each (round i of seed s trains with seed s + i)")
    parser.add_argument("--from-scratch", action="store_true", help="start from random episodes, not the dataset")
    parser.add_argument("--no-oracle", action="store_true", help="skip rerunning the simulator-as-model planner")
    parser.add_argument("--out", default=None)
    args = parser.parse_args()
    torch.set_num_threads(1)   # small models: one thread beats two that wait for each other
    start = time.perf_counter()

    env = envs.make(args.env, obs_mode="state", seed=0)
    env.reset(seed=0)
    layout = env.state_layout
    if args.from_scratch or args.env not in DATASETS:
        seeds = range(RANDOM_SEED, RANDOM_SEED + args.random_episodes)
        rows = model_based.random_rows(env, seeds)
        source = f"{args.random_episodes} random episodes ({len(rows['state'])} transitions)"
    else:
        rows = model_based.dataset_rows(data.default_path(DATASETS[args.env]), layout)
        source = f"the course dataset ({len(rows['state'])} transitions)"
    weights = {} if args.reach_weight is None else {"reach_weight": args.reach_weight}
    cost = tasks.cost_for(args.env, layout, learned_model=True, **weights)
    training = {"epochs": args.epochs}
    settings = {"replan_every": args.replan_every}

    eval_seeds = list(range(EVAL_SEED, EVAL_SEED + args.eval))
    runs, successes = [], []
    for seed in [int(x) for x in args.seeds.split(",")]:
        improved = model_based.improve(env, cost, rows, rounds=args.rounds, episodes=args.episodes,
                                       first_seed=COLLECT_SEED, penalty=args.penalty, seed=seed,
                                       training=training, **settings)
        for r in improved.rounds:
            print(f"seed {seed}, round {r['round']}: {r['successes']}/{r['trials']} after {r['train_seconds']:.0f} s "
                  f"training on {r['transitions_trained_on']} transitions")
        played = model_based.play(env, improved.model, model_based.penalised(cost, improved.rows, args.penalty),
                                  eval_seeds, desc=f"evaluation, seed {seed}", **settings)
        final = {**played.summary(), "transitions_trained_on": len(improved.rows["state"])}
        print(f"seed {seed}: learned ensemble {final['successes']}/{args.eval} = {final['rate']:.0%}, "
              f"{improved.train_seconds:.0f} s of training in all")
        runs.append({"training_seed": seed, "rounds": improved.rounds, "learned_model": final,
                     "train_seconds_total": improved.train_seconds})
        successes += played.successes
    pooled = success_rate(successes)
    print(f"all seeds: {pooled}")
    result = {"env_id": args.env, "start": source, "planner": {**model_based.PLANNER, **settings},
              "disagreement_penalty": args.penalty,
              "cost_weights": {**tasks.LEARNED_MODEL_WEIGHTS.get(args.env, {}), **weights},
              "training": {**model_based.TRAINING, **training}, "eval_seeds": f"{eval_seeds[0]}-{eval_seeds[-1]}",
              "runs": runs, "pooled": {"successes": pooled.successes, "trials": pooled.trials, "rate": pooled.rate,
                                       "ci95": [pooled.low, pooled.high]},
              "worst_run_rate": min(r["learned_model"]["rate"] for r in runs),
              "max_train_seconds": max(r["train_seconds_total"] for r in runs)}
    if not args.no_oracle:
        result["oracle"] = planner_runs(env, SimulatorModel(env), "random_shooting", ORACLE, eval_seeds, cost=cost)
        print(f"oracle: {result['oracle']['success']['successes']}/{args.eval}")
    result["seconds"] = time.perf_counter() - start
    name = "control" if args.env == "PushCube-v1" else f"control_{args.env.split('-')[0].lower()}"
    write(name, result, args.out)


if __name__ == "__main__":
    main()
