"""Chapter 8 at scale: what should a world model learned from pixels predict, to be useful to a planner?

    python benchmarks/latent.py [--jobs 2] [--seeds 0 1 2] [--epochs 30] [--episodes 50] [--quick]

For every family of ``wmlib.latent_experiment.FAMILIES`` x training seed, one model is trained
on the course's PushCube episodes (64 x 64 frames and proprioception; whole episodes held out)
with the shared loop (``--epochs`` at most, the best validation epoch kept), then measured with
one yardstick:
- what the latent keeps: a linear probe's R² for the cube's and the goal's position (x, y) on
  held-out episodes, beside the same probe on the proprioception alone (a ``proprio`` cell);
- how it drifts: imagined vs filtered features over 8 steps of the actions really taken, and
  the PSNR of the drawn frames where the model draws any;
- how it ranks: Spearman's correlation between imagined and simulated returns of 16 random
  plans of 8 steps, from ``--ranking`` seeded starts;
- what it does: closed-loop success of MPPI in its latent (``wmlib.latent_control``) on
  ``--episodes`` seeded starts, the same starts for every model (paired), with the time of one
  decision; parameters and training time.
Each finished cell is appended to ``benchmarks/results/latent_cells.jsonl`` at once, so a run
that stops resumes where it was; the summary goes to ``benchmarks/results/latent.json``.
"""
import argparse
import os
import pathlib
import time

import numpy as np

from common import RESULTS, run_cells, write

CELLS = RESULTS / "latent_cells.jsonl"
EVAL_SEED = 700_000        # closed-loop starts, as chapter 6's: no dataset episode starts here
RANK_SEED = 710_000        # ranking starts
# MPPI in the latent; the frame predictor draws and re-reads every imagined frame, so it gets
# fewer candidates to fit the same time budget per decision (the summary says so)
PLANNER = {"horizon": 8, "num_samples": 256, "iterations": 2, "replan_every": 1}
FEWER = {"frame_predictor": {"num_samples": 64, "iterations": 1}}


def cell_key(cell: dict) -> str:
    if cell["kind"] == "proprio":
        return "proprio"
    return f"main|{cell['family']}|{cell['seed']}|{cell['epochs']}|{cell['episodes']}|{cell['ranking']}"


def run_cell(cell: dict) -> dict:
    os.environ.setdefault("LP_NUM_THREADS", "1")
    import torch

    from wmlib import envs, latent_control, latent_experiment as lx
    from wmlib.models import count_parameters

    torch.set_num_threads(1)
    start = time.perf_counter()
    pix = lx.pixel_data()
    if cell["kind"] == "proprio":
        return {**cell, "probe": lx.probe(None, pix), "seconds": time.perf_counter() - start}
    model = lx.build(cell["family"], pix, seed=cell["seed"])
    history = lx.train(model, pix, epochs=cell["epochs"], seed=cell["seed"], progress=False)
    model.eval()
    features = lx.filtered_features(model, pix.seq)
    result = {**cell, "params": count_parameters(model), "train_seconds": history.seconds,
              "epochs_run": history.epochs, "best_epoch": history.best_epoch, "val_loss": history.val_loss,
              "last_parts": model.last_parts, "probe": lx.probe(model, pix, features),
              "drift": lx.drift(model, pix, PLANNER["horizon"], features)}
    env = envs.make("PushCube-v1", obs_mode="rgb", image_size=128, seed=EVAL_SEED)
    try:
        result["spearman"] = latent_control.ranking(model, env, range(RANK_SEED, RANK_SEED + cell["ranking"]),
                                                   horizon=PLANNER["horizon"], seed=cell["seed"])
        settings = {**PLANNER, **FEWER.get(cell["family"], {})}
        runs = []
        for s in range(EVAL_SEED, EVAL_SEED + cell["episodes"]):
            planner = latent_control.LatentPlanner(model, seed=s, **settings)
            runs.append(latent_control.play(env, planner, seed=s))
    finally:
        env.close()
    result["planner"] = settings
    result["per_start"] = [int(r.success) for r in runs]
    result["steps"] = [r.steps for r in runs]
    result["decision_seconds"] = float(np.mean([r.decision_seconds for r in runs]))
    result["seconds"] = time.perf_counter() - start
    return result


def summarise(cells: list[dict]) -> dict:
    """Per family: each measure over seeds (mean, and min and max across seeds), success pooled over
    seeds x starts with a Wilson 95% interval and per seed."""
    from wmlib.eval import success_rate

    table = {}
    proprio = next((c for c in cells if c["kind"] == "proprio"), None)
    if proprio:
        table["proprio_only"] = {"probe": proprio["probe"]}
    families = sorted({c["family"] for c in cells if c["kind"] == "main"})
    spread = lambda xs: {"mean": float(np.mean(xs)), "min": float(np.min(xs)), "max": float(np.max(xs)),  # noqa
                         "seeds": len(xs)}
    for family in families:
        runs = sorted((c for c in cells if c["kind"] == "main" and c["family"] == family), key=lambda c: c["seed"])
        pooled = success_rate([bool(x) for c in runs for x in c["per_start"]])
        row = {
            "seeds": [c["seed"] for c in runs], "params": runs[0]["params"],
            "train_seconds": spread([c["train_seconds"] for c in runs]),
            "probe": {k: spread([c["probe"][k] for c in runs]) for k in runs[0]["probe"]},
            "latent_drift_step1": spread([c["drift"]["latent"][0] for c in runs]),
            "latent_drift_last": spread([c["drift"]["latent"][-1] for c in runs]),
            "ranking_spearman": spread([float(np.nanmean(c["spearman"])) for c in runs]),
            "success": {"successes": pooled.successes, "trials": pooled.trials, "rate": pooled.rate,
                        "ci95": [pooled.low, pooled.high], "per_seed": [float(np.mean(c["per_start"])) for c in runs],
                        "per_start": [c["per_start"] for c in runs]},
            "decision_seconds": spread([c["decision_seconds"] for c in runs]), "planner": runs[0]["planner"],
        }
        if "psnr_db" in runs[0]["drift"]:
            row["psnr_db_step1"] = spread([c["drift"]["psnr_db"][0] for c in runs])
            row["psnr_db_last"] = spread([c["drift"]["psnr_db"][-1] for c in runs])
        table[family] = row
    return table


def main() -> None:
    from wmlib.latent_experiment import FAMILIES

    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--families", nargs="+", default=list(FAMILIES))
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    parser.add_argument("--epochs", type=int, default=30)
    parser.add_argument("--episodes", type=int, default=50, help="closed-loop starts")
    parser.add_argument("--ranking", type=int, default=20, help="ranking starts")
    parser.add_argument("--jobs", type=int, default=max(1, os.cpu_count() or 1))
    parser.add_argument("--quick", action="store_true", help="1 seed, 1 epoch, 2 starts each: a smoke run")
    parser.add_argument("--cells", default=None)
    parser.add_argument("--summarise", action="store_true", help="run nothing: summarise the cells already done")
    parser.add_argument("--out", default=None)
    args = parser.parse_args()
    if args.quick:
        args.seeds, args.epochs, args.episodes, args.ranking = [0], 1, 2, 2
    path = pathlib.Path(args.cells) if args.cells else (RESULTS / "latent_quick_cells.jsonl" if args.quick
                                                         else CELLS)
    common = dict(kind="main", epochs=args.epochs, episodes=args.episodes, ranking=args.ranking)
    plan = [dict(kind="proprio")] + [dict(family=f, seed=s, **common) for s in args.seeds for f in args.families]
    done = run_cells(plan, cell_key, run_cell, path, args.jobs, run=not args.summarise)
    cells = [done[cell_key(c)] for c in plan if cell_key(c) in done]
    write("latent_quick" if args.quick else "latent", {
        "settings": {k: v for k, v in vars(args).items() if k not in ("out", "cells", "summarise")},
        "planner": PLANNER, "fewer_candidates": FEWER,
        "cells_done": len(cells), "cells_planned": len(plan), "complete": len(cells) == len(plan),
        "missing": [cell_key(c) for c in plan if cell_key(c) not in done],
        "table": summarise(cells)}, args.out)


if __name__ == "__main__":
    main()
