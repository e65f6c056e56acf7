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
  decision; parameters and training time;
- the shortcut: PushCube puts its goal at a fixed offset from the cube's start, so a latent can
  find the cube through the (much larger) goal marker. A linear read-out of the cube, fitted on
  the course data, is scored in millimetres on the test episodes and on 40 episodes whose goal
  was moved after the reset (``moved_goal_episodes``): a latent fooled by the marker misplaces
  the cube there. The V-M-C model's own controller, searched inside
  the model, runs on the same starts; the recurrent state-space model's errors are split into
  observation model, reward model and horizon (``rssm_error_sources``).
Beside them, per seed, chapter 5's planner on the true state (an ensemble trained on the same
training episodes' states, CEM with the task's cost: ``wmlib.model_based``) on the same starts,
with the cube's drift in millimetres measured the same way (the latents' by a linear read-out).
When every main cell is done, the state planner and the pixel family with the highest success
(ties: the better ranking) are run again over planning horizons (4, 8, 16; replanning every
step) and replanning intervals (1, 2, 4 steps; horizon 8): the state-versus-pixels switch.
Each finished cell is appended to ``benchmarks/results/latent_cells.jsonl`` at once, so a run
that stops resumes where it was; the summary goes to ``benchmarks/results/latent.json``.
"""
import argparse
import os
import pathlib
import tempfile
import time

import numpy as np

from common import RESULTS, run_cells, write

CELLS = RESULTS / "latent_cells.jsonl"
MODELS = pathlib.Path(tempfile.gettempdir()) / "wmr_latent_models"     # trained models, reused by the sweeps
MOVED = pathlib.Path(tempfile.gettempdir()) / "wmr_moved_goal"          # PushCube with its goal moved, built once
EVAL_SEED = 700_000        # closed-loop starts, as chapter 6's: no dataset episode starts here
RANK_SEED = 710_000        # ranking starts
# MPPI in the latent; the frame predictor draws and re-reads every imagined frame, so it gets
# fewer candidates to fit the same time budget per decision (the summary says so)
PLANNER = {"horizon": 8, "num_samples": 256, "iterations": 2, "replan_every": 1}
FEWER = {"frame_predictor": {"num_samples": 64, "iterations": 1}}
SWEEP = [(4, 1), (16, 1), (8, 2), (8, 4)]          # (horizon, replan every) beside the main (8, 1)
CHAPTER5 = (6, 2)                                  # chapter 5's state planner as it is (CEM, horizon 6, every 2)


def cell_key(cell: dict) -> str:
    if cell["kind"] == "proprio":
        return "proprio"
    if cell["kind"] == "state":
        return f"state|{cell['seed']}|{cell['horizon']}|{cell['replan']}|{cell['episodes']}"
    head = f"{cell['kind']}|{cell['family']}|{cell['seed']}|{cell['epochs']}|{cell['episodes']}"
    return head + (f"|{cell['ranking']}" if cell["kind"] == "main" else f"|{cell['horizon']}|{cell['replan']}")


def trained(family: str, seed: int, epochs: int, pix):
    """The family's model of this seed, trained for ``epochs`` (kept on disk for the sweeps) and its history."""
    import torch

    from wmlib import latent_experiment as lx

    model = lx.build(family, pix, seed=seed)
    path = MODELS / f"{family}_{seed}_{epochs}.pt"
    if path.exists():
        model.load_state_dict(torch.load(path, weights_only=True))
        return model.eval(), None
    history = lx.train(model, pix, epochs=epochs, seed=seed, progress=False)
    MODELS.mkdir(parents=True, exist_ok=True)
    torch.save(model.state_dict(), path)
    return model.eval(), history


def state_cell(cell: dict, pix) -> dict:
    """Chapter 5's state planner, trained on the training episodes' states, on the closed-loop starts."""
    from wmlib import envs, latent_experiment as lx, model_based, tasks

    rows = lx.state_rows(pix, "train")
    model, seconds = model_based.train_ensemble(rows, seed=cell["seed"])
    env = envs.make("PushCube-v1", obs_mode="state", seed=EVAL_SEED)
    try:
        env.reset(seed=EVAL_SEED)
        cost = model_based.penalised(tasks.cost_for("PushCube-v1", env.state_layout, learned_model=True), rows)
        played = model_based.play(env, model, cost, range(EVAL_SEED, EVAL_SEED + cell["episodes"]), progress=False,
                                  horizon=cell["horizon"], replan_every=cell["replan"])
    finally:
        env.close()
    return {"train_seconds": seconds, "cube_drift_mm": lx.state_cube_drift_mm(model, pix, PLANNER["horizon"]),
            "per_start": [int(o.success) for o in played.outcomes], "steps": [o.steps for o in played.outcomes],
            "decision_seconds": played.planning_seconds / max(played.decisions, 1)}


def play_starts(policy_for, episodes: int) -> list:
    """One episode from each closed-loop start, the policy made for its seed: policy_for(seed) -> policy."""
    from wmlib import envs, latent_control

    env = envs.make("PushCube-v1", obs_mode="rgb", image_size=128, seed=EVAL_SEED)
    try:
        return [latent_control.play(env, policy_for(s), seed=s) for s in range(EVAL_SEED, EVAL_SEED + episodes)]
    finally:
        env.close()


def closed_loop(model, settings: dict, episodes: int) -> dict:
    """MPPI in the model's latent on the closed-loop starts."""
    from wmlib import latent_control

    runs = play_starts(lambda s: latent_control.LatentPlanner(model, seed=s, **settings), episodes)
    return {"planner": settings, "per_start": [int(r.success) for r in runs], "steps": [r.steps for r in runs],
            "decision_seconds": float(np.mean([r.decision_seconds for r in runs]))}


def run_cell(cell: dict) -> dict:
    os.environ.setdefault("LP_NUM_THREADS", "1")
    import torch

    from wmlib import data, envs, latent_control, latent_experiment as lx
    from wmlib.models import count_parameters

    torch.set_num_threads(1)
    start = time.perf_counter()
    pix = lx.pixel_data()
    moved = data.sequences(data.load(lx.moved_goal_episodes(MOVED), images=True))
    if cell["kind"] == "proprio":
        return {**cell, "probe": lx.probe(None, pix), "shortcut": lx.shortcut(None, pix, moved),
                "seconds": time.perf_counter() - start}
    if cell["kind"] == "state":
        return {**cell, **state_cell(cell, pix), "seconds": time.perf_counter() - start}
    model, history = trained(cell["family"], cell["seed"], cell["epochs"], pix)
    settings = {**PLANNER, **FEWER.get(cell["family"], {})}
    if cell["kind"] == "sweep":
        settings.update(horizon=cell["horizon"], replan_every=cell["replan"])
        return {**cell, **closed_loop(model, settings, cell["episodes"]),
                "seconds": time.perf_counter() - start}
    features = lx.filtered_features(model, pix.seq)
    result = {**cell, "params": count_parameters(model), "train_seconds": history.seconds if history else None,
              "val_loss": history.val_loss if history else None, "last_parts": model.last_parts,
              "probe": lx.probe(model, pix, features), "drift": lx.drift(model, pix, PLANNER["horizon"], features),
              "cube_drift_mm": lx.cube_drift_mm(model, pix, PLANNER["horizon"], features),
              "shortcut": lx.shortcut(model, pix, moved, features)}
    env = envs.make("PushCube-v1", obs_mode="rgb", image_size=128, seed=EVAL_SEED)
    try:
        result["spearman"] = latent_control.ranking(model, env, range(RANK_SEED, RANK_SEED + cell["ranking"]),
                                                    horizon=PLANNER["horizon"], seed=cell["seed"])
    finally:
        env.close()
    if cell["family"] == "rssm":
        result["error_sources"] = lx.rssm_error_sources(model, pix, PLANNER["horizon"], features)
    if cell["family"] == "vmc":
        result["controller"] = controller_cell(model, pix, features, cell)
    return {**result, **closed_loop(model, settings, cell["episodes"]),
            "seconds": time.perf_counter() - start}


def controller_cell(model, pix, features, cell: dict) -> dict:
    """World Models' C: a linear controller searched inside the model (from 256 training rows' filtered
    states, 20 imagined steps), then run on the closed-loop starts."""
    from wmlib import latent_control
    from wmlib.models import vmc

    rows = np.random.default_rng(cell["seed"]).choice(np.flatnonzero(pix.split["train"]), 256, replace=False)
    start = time.perf_counter()
    controller, best = vmc.train_controller(model, model.carry_of(features[rows]), horizon=20, seed=cell["seed"])
    seconds = time.perf_counter() - start
    runs = play_starts(lambda s: latent_control.ControllerPolicy(model, controller), cell["episodes"])
    return {"search_seconds": seconds, "imagined_return_by_generation": best,
            "per_start": [int(r.success) for r in runs], "steps": [r.steps for r in runs]}


def pooled(runs: list[dict]) -> dict:
    """Success pooled over seeds x starts (Wilson 95%), and per seed."""
    from wmlib.eval import success_rate

    rate = success_rate([bool(x) for c in runs for x in c["per_start"]])
    return {"successes": rate.successes, "trials": rate.trials, "rate": rate.rate, "ci95": [rate.low, rate.high],
            "seeds": [c["seed"] for c in runs], "per_seed": [float(np.mean(c["per_start"])) for c in runs],
            "per_start": [c["per_start"] for c in runs]}


def spread(values) -> dict:
    return {"mean": float(np.mean(values)), "min": float(np.min(values)), "max": float(np.max(values)),
            "seeds": len(values)}


def best_family(cells: list[dict]) -> str | None:
    """The pixel family with the highest mean success over its main cells (ties: the higher mean ranking)."""
    main = [c for c in cells if c["kind"] == "main"]
    if not main:
        return None
    score = {f: (np.mean([np.mean(c["per_start"]) for c in main if c["family"] == f]),
                 np.mean([np.nanmean(c["spearman"]) for c in main if c["family"] == f]))
             for f in sorted({c["family"] for c in main})}
    return max(score, key=score.get)


def summarise(cells: list[dict]) -> dict:
    """Per family: each measure over seeds (mean, min and max across seeds) and success pooled over seeds x
    starts; the state planner likewise; the horizon and replanning sweeps with paired verdicts."""
    from wmlib.eval import paired_verdict

    table = {}
    proprio = next((c for c in cells if c["kind"] == "proprio"), None)
    if proprio:
        table["proprio_only"] = {"probe": proprio["probe"], "shortcut": proprio["shortcut"]}
    for family in sorted({c["family"] for c in cells if c["kind"] == "main"}):
        runs = sorted((c for c in cells if c["kind"] == "main" and c["family"] == family), key=lambda c: c["seed"])
        row = {
            "params": runs[0]["params"], "planner": runs[0]["planner"],
            "train_seconds": spread([c["train_seconds"] for c in runs if c["train_seconds"] is not None] or [np.nan]),
            "probe": {k: spread([c["probe"][k] for c in runs]) for k in runs[0]["probe"]},
            "latent_drift": {"step1": spread([c["drift"]["latent"][0] for c in runs]),
                             "last": spread([c["drift"]["latent"][-1] for c in runs])},
            "cube_drift_mm": {"now": spread([c["cube_drift_mm"][0] for c in runs]),
                              "last": spread([c["cube_drift_mm"][-1] for c in runs])},
            "ranking_spearman": spread([float(np.nanmean(c["spearman"])) for c in runs]),
            "shortcut_cube_mm": {where: spread([c["shortcut"][where]["cube"] for c in runs])
                                 for where in ("test_mm", "moved_goal_mm")},
            "success": pooled(runs), "decision_seconds": spread([c["decision_seconds"] for c in runs]),
        }
        if "error_sources" in runs[0]:
            sources = [c["error_sources"] for c in runs]
            row["error_sources"] = {
                "observation_psnr_db": spread([e["observation_psnr_db"] for e in sources]),
                **{name: [spread([e[name][k] for e in sources]) for k in range(len(sources[0][name]))]
                   for name in ("reward_rmse_filtered", "reward_rmse_imagined")}}
        if "controller" in runs[0]:
            row["controller"] = pooled([{"seed": c["seed"], "per_start": c["controller"]["per_start"]} for c in runs])
        if "psnr_db" in runs[0]["drift"]:
            row["psnr_db"] = {"step1": spread([c["drift"]["psnr_db"][0] for c in runs]),
                              "last": spread([c["drift"]["psnr_db"][-1] for c in runs])}
        table[family] = row
    states = [c for c in cells if c["kind"] == "state"]
    settings = sorted({(c["horizon"], c["replan"]) for c in states})
    if states:
        chapter5 = sorted((c for c in states if (c["horizon"], c["replan"]) == CHAPTER5), key=lambda c: c["seed"])
        table["state_planner"] = {
            "settings": {"horizon": CHAPTER5[0], "replan_every": CHAPTER5[1], "planner": "CEM, chapter 5's"},
            "success": pooled(chapter5) if chapter5 else None,
            "cube_drift_mm": {"last": spread([c["cube_drift_mm"][-1] for c in chapter5])} if chapter5 else None}
    best = best_family(cells)
    sweeps = [c for c in cells if c["kind"] == "sweep"]
    if sweeps or len(settings) > 1:
        rows = []
        for horizon, replan in [(8, 1)] + SWEEP:
            state = sorted((c for c in states if (c["horizon"], c["replan"]) == (horizon, replan)),
                           key=lambda c: c["seed"])
            pixels = sorted((c for c in cells if c.get("family") == best and (
                (c["kind"] == "sweep" and (c["horizon"], c["replan"]) == (horizon, replan))
                or (c["kind"] == "main" and (horizon, replan) == (8, 1)))), key=lambda c: c["seed"])
            row = {"horizon": horizon, "replan_every": replan,
                   "state": pooled(state) if state else None, best: pooled(pixels) if pixels else None}
            paired = [s for s in {c["seed"] for c in state} & {c["seed"] for c in pixels}]
            if len(paired) >= 2:
                by = lambda runs: [next(c["per_start"] for c in runs if c["seed"] == s) for s in sorted(paired)]  # noqa
                row["pixels_vs_state"] = paired_verdict(by(pixels), by(state), name="the state planner")
            rows.append(row)
        table["state_vs_pixels"] = {"pixel_family": best, "rows": rows}
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
    main_cells = [dict(kind="main", family=f, seed=s, epochs=args.epochs, episodes=args.episodes,
                       ranking=args.ranking) for s in args.seeds for f in args.families]
    plan = [dict(kind="proprio")] + main_cells + [
        dict(kind="state", seed=s, horizon=h, replan=r, episodes=args.episodes)
        for s in args.seeds for h, r in [CHAPTER5, (8, 1)] + SWEEP]
    if not args.summarise:
        from wmlib.latent_experiment import moved_goal_episodes

        moved_goal_episodes(MOVED)                      # once, before the cells read it
    done = run_cells(plan, cell_key, run_cell, path, args.jobs, run=not args.summarise)
    best = best_family([done[cell_key(c)] for c in main_cells if cell_key(c) in done])
    if best is not None and all(cell_key(c) in done for c in main_cells):        # the sweeps need every main cell
        plan += [dict(kind="sweep", family=best, seed=s, epochs=args.epochs, episodes=args.episodes, horizon=h,
                      replan=r) for s in args.seeds for h, r in SWEEP]
        done = run_cells(plan, cell_key, run_cell, path, args.jobs, run=not args.summarise)
    cells = [done[cell_key(c)] for c in plan if cell_key(c) in done]
    write("latent_quick" if args.quick else "latent", {
        "settings": {k: v for k, v in vars(args).items() if k not in ("out", "cells", "summarise")},
        "planner": PLANNER, "fewer_candidates": FEWER, "sweep": SWEEP, "chapter5": CHAPTER5,
        "cells_done": len(cells), "cells_planned": len(plan), "complete": len(cells) == len(plan) and best is not None
        and any(c["kind"] == "sweep" for c in plan),
        "missing": [cell_key(c) for c in plan if cell_key(c) not in done],
        "table": summarise(cells)}, args.out)


if __name__ == "__main__":
    main()
