"""Chapter 6 at scale: does predicting the future help a small pixel policy choose its actions?

    python benchmarks/wam.py [--jobs 2] [--seeds 0 1 2] [--demos 10 20 40] [--episodes 50] [--quick]

For every variant of ``wmlib.wam_experiment.VARIANTS`` x demonstration count (per task) x
training seed, one model is trained for the same number of gradient steps and measured on
both axes:
- world-model quality, offline, on held-out demonstrations: action error, future error, and
  recoverability (an inverse-dynamics judge, the ``idm_true`` model of the same seed and
  demonstrations, reads the imagined change);
- policy quality, closed loop in ManiSkill: success on ``--episodes`` seeded starts per task
  (the same starts for every model, so differences are paired), with Wilson 95% intervals.
At the largest demonstration count, every variant is also run (in cells of their own, after the
main table) after a shove, with the cube repainted green, and with the other task's
instruction; the joint model also acts by ranking 16 candidate chunks by their imagined reward
(the WAM as evaluator), and the time of one
decision is measured with the future skipped and used.

Each finished cell is appended to ``benchmarks/results/wam_cells.jsonl`` at once, so a run that
stops resumes where it was (the cells already there are skipped); the summary table, with
per-seed paired differences against the policy, goes to ``benchmarks/results/wam.json``.
``idm_true`` acts from the true future, which only an oracle knows, so it is measured offline only.
"""
import argparse
import os
import pathlib
import tempfile
import time

import numpy as np

from common import RESULTS, run_cells, write

CELLS = RESULTS / "wam_cells.jsonl"
JUDGES = pathlib.Path(tempfile.gettempdir()) / "wmr_wam_judges"     # trained idm_true judges, reused
CLOSED_LOOP = ("policy", "joint", "joint_w0.1", "joint_no_clips", "recon", "cascade")


def cell_key(cell: dict) -> str:
    kind = "stress" if cell.get("stress") else "main"
    return (f"{kind}|{cell['variant']}|{cell['demos']}|{cell['seed']}|{cell['chunk']}|{cell['steps']}|"
            f"{cell['episodes']}")


def run_cell(cell: dict) -> dict:
    """Train one model and measure it; the judge is the idm_true model of the same seed and demos.

    A main cell measures both axes (offline, and success on the starts); a stress cell retrains the
    same model (same seed, so the same weights) and runs the stress tests on the same starts.
    """
    os.environ.setdefault("LP_NUM_THREADS", "1")
    import torch

    from wmlib import envs, wam_experiment as wx

    torch.set_num_threads(1)
    start = time.perf_counter()
    split = wx.demonstrations(chunk=cell["chunk"], demos=cell["demos"])
    judge = trained_judge(split, cell, wx, torch)
    model, log = (judge, None) if cell["variant"] == "idm_true" else \
        wx.train_variant(cell["variant"], split, seed=cell["seed"], steps=cell["steps"])
    trained = time.perf_counter() - start
    other = {split.instructions[a]: split.instructions[b] for a, b in zip(wx.TASKS, reversed(list(wx.TASKS)))}
    out = {**cell, "final_loss": log.parts[-1] if log else None, "train_seconds": trained}
    stress = bool(cell.get("stress"))
    if not stress:
        out["offline"] = wx.offline(model, split.test, judge, robot_layout=split.robot_layout)
        out["instruction_effect"] = wx.instruction_effect(model, split.test, other)
    if cell["variant"] in CLOSED_LOOP:
        seeds = range(wx.EVAL_SEED, wx.EVAL_SEED + cell["episodes"])
        for env_id in wx.TASKS:
            env = envs.make(env_id, obs_mode="rgb", image_size=128, seed=wx.EVAL_SEED)
            text = split.instructions[env_id]
            runs = {}
            if not stress:
                runs["success"] = wx.closed_loop(model.act, env_id, text, seeds, env=env)
            else:
                from wmlib.wam_control import Shove

                runs["shoved"] = [wx.closed_loop(model.act, env_id, text, [s], env=env, shove=Shove.random(s))[0]
                                  for s in seeds]
                runs["repainted"] = wx.closed_loop(model.act, env_id, text, seeds, env=env, colour=wx.REPAINT)
                runs["wrong_instruction"] = wx.closed_loop(model.act, env_id, other[text], seeds, env=env)
                if cell["variant"] == "joint":
                    ranked = lambda f, r, i: wx.rank_chunks(model, f, r, i)  # noqa: E731
                    runs["ranked"] = wx.closed_loop(ranked, env_id, text, seeds, env=env)
                    out["latency_ms"] = wx.latency(model, split.test, repeats=50)
            env.close()
            out[env_id] = {k: [bool(x) for x in v] for k, v in runs.items()}
    out["seconds"] = time.perf_counter() - start
    return out


def trained_judge(split, cell: dict, wx, torch):
    """The idm_true model of this cell's seed, demonstrations and settings: trained once, then reused
    by the other variants' cells from a file (training is deterministic, so a copy equals a retrain)."""
    JUDGES.mkdir(parents=True, exist_ok=True)
    file = JUDGES / f"idm_true_seed{cell['seed']}_demos{cell['demos']}_chunk{cell['chunk']}_steps{cell['steps']}.pt"
    judge = wx.build_variant("idm_true", split, seed=cell["seed"])
    if file.exists():
        judge.load_state_dict(torch.load(file, map_location=judge.device))
        return judge.eval()
    judge, _ = wx.train_variant("idm_true", split, seed=cell["seed"], steps=cell["steps"])
    partial = file.with_suffix(f".{os.getpid()}.tmp")
    torch.save(judge.state_dict(), partial)
    os.replace(partial, file)        # atomic: another process never reads half a file
    return judge


def summarise(cells: list[dict]) -> dict:
    """Per variant x demos: offline metrics (mean over seeds); per task and test, success pooled over
    seeds with a Wilson interval, the per-seed rates, and the paired difference to the policy."""
    from wmlib.eval import success_rate
    from wmlib.wam_experiment import TASKS

    # runs[variant][demos][env_id][test][seed] = outcomes, from main and stress cells alike
    runs, offline, latency_ms = {}, {}, {}
    for c in cells:
        key = (c["variant"], str(c["demos"]))
        if "offline" in c:
            offline.setdefault(key, []).append(c)
        if "latency_ms" in c:
            latency_ms.setdefault(key, []).append(c["latency_ms"])
        for env_id in TASKS:
            for test, outcomes in c.get(env_id, {}).items():
                runs.setdefault(key, {}).setdefault(env_id, {}).setdefault(test, {})[c["seed"]] = outcomes
    summary = {}
    for key in sorted(set(offline) | set(runs)):
        variant, demos = key
        row = {}
        if key in offline:
            group = offline[key]
            row["seeds"] = sorted(c["seed"] for c in group)
            row["offline"] = {k: float(np.mean([c["offline"][k] for c in group if k in c["offline"]]))
                              for k in group[0]["offline"]}
            row["instruction_effect"] = float(np.mean([c["instruction_effect"] for c in group]))
        for env_id, tests in runs.get(key, {}).items():
            for test, by_seed in tests.items():
                seeds = sorted(by_seed)
                rate = success_rate([x for s in seeds for x in by_seed[s]])
                entry = {"successes": rate.successes, "trials": rate.trials, "rate": rate.rate,
                         "ci95": [rate.low, rate.high], "seeds": seeds,
                         "per_seed": [float(np.mean(by_seed[s])) for s in seeds],
                         "per_start": [[int(x) for x in by_seed[s]] for s in seeds]}
                base = runs.get(("policy", demos), {}).get(env_id, {}).get(test, {})
                paired = [s for s in seeds if s in base]
                if variant != "policy" and len(paired) >= 2:
                    entry.update(versus_policy([by_seed[s] for s in paired], [base[s] for s in paired]))
                row.setdefault(env_id, {})[test] = entry
        if key in latency_ms:
            row["latency_ms"] = {k: float(np.mean([t[k] for t in latency_ms[key]])) for k in latency_ms[key][0]}
        summary.setdefault(variant, {})[demos] = row
    return summary


def versus_policy(variant: list, policy: list, min_seeds: int = 3) -> dict:
    """A variant against the policy, per seed the outcomes (0/1) on the same starts: the verdict
    rule is ``wmlib.eval.paired_verdict`` (both paired intervals on one side, at least 3 seeds)."""
    from wmlib.eval import paired_verdict

    paired = paired_verdict(variant, policy, name="the policy", min_seeds=min_seeds)
    return {"minus_policy": paired["by_seed"], "minus_policy_by_start": paired["by_start"],
            "verdict": paired["verdict"]}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    parser.add_argument("--demos", type=int, nargs="+", default=[10, 20, 40])
    parser.add_argument("--variants", nargs="+", default=list(CLOSED_LOOP) + ["idm_true"])
    parser.add_argument("--episodes", type=int, default=50, help="closed-loop starts per task")
    parser.add_argument("--chunk", type=int, default=4)
    parser.add_argument("--steps", type=int, default=1500, help="gradient steps, the same for every variant")
    parser.add_argument("--jobs", type=int, default=max(1, (os.cpu_count() or 1)))
    parser.add_argument("--quick", action="store_true", help="1 seed, 10 demos, 5 starts, 200 steps: a smoke run")
    parser.add_argument("--cells", default=str(CELLS))
    parser.add_argument("--summarise", action="store_true",
                        help="run nothing: summarise the cells already done (a partial table says so)")
    parser.add_argument("--out", default=None)
    args = parser.parse_args()
    if args.quick:
        args.seeds, args.demos, args.episodes, args.steps = [0], [10], 5, 200
    largest = max(args.demos)
    common = dict(chunk=args.chunk, steps=args.steps, episodes=args.episodes)
    # the main table first (both axes, every seed), then the stress tests at the largest demo count
    plan = [dict(variant=v, demos=d, seed=s, stress=False, **common)
            for s in args.seeds for d in sorted(args.demos, reverse=True) for v in args.variants]
    plan += [dict(variant=v, demos=largest, seed=s, stress=True, **common)
             for s in args.seeds for v in args.variants if v in CLOSED_LOOP]
    path = pathlib.Path(args.cells)
    done = run_cells(plan, cell_key, run_cell, path, args.jobs, run=not args.summarise)
    cells = [done[cell_key(c)] for c in plan if cell_key(c) in done]
    write("wam_quick" if args.quick else "wam", {
        "settings": {k: v for k, v in vars(args).items() if k not in ("out", "cells", "summarise")},
        "cells_done": len(cells), "cells_planned": len(plan), "complete": len(cells) == len(plan),
        "missing": [cell_key(c) for c in plan if cell_key(c) not in done],
        "cells_file": str(path.relative_to(RESULTS.parent.parent)) if path.is_relative_to(RESULTS.parent.parent)
        else str(path),
        "table": summarise(cells)}, args.out)


if __name__ == "__main__":
    main()
