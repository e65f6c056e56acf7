"""Build the course's RLDS datasets from ManiSkill: ``make dataset`` runs this.

    python -m wmlib.build_dataset                      # the default dataset, under datasets/
    python -m wmlib.build_dataset --out datasets/fixture \\
        --episodes random=1,scripted_success=1,scripted_failure=1,recovery=1

Idempotent: a dataset already built with the same plan (tasks, episode counts,
seed, image size) is kept; a different plan rebuilds it.
"""
from __future__ import annotations

import argparse
import itertools
import json
import pathlib
import shutil
import time

from tqdm.auto import tqdm

from wmlib.collect import SOURCES, collect

DEFAULT_TASKS = ("PushCube-v1", "PickCube-v1")
DEFAULT_EPISODES = {"random": 20, "scripted_success": 50, "scripted_failure": 25, "recovery": 25}


def plan_jobs(env_id: str, episodes: dict[str, int], seed: int) -> list[tuple[str, str, int]]:
    """(env_id, source, seed) per episode; seeds differ across sources and tasks."""
    task_offset = DEFAULT_TASKS.index(env_id) * 100_000 if env_id in DEFAULT_TASKS else 900_000
    return [(env_id, source, seed + task_offset + 10_000 * SOURCES.index(source) + i)
            for source in SOURCES for i in range(episodes.get(source, 0))]


def task_layout(env_id: str) -> dict:
    from wmlib import envs

    env = envs.make(env_id, obs_mode="state", sim_backend="cpu", render_backend="cpu")
    env.reset()
    layout = env.state_layout
    env.close()
    return layout


def existing_plan(folder: pathlib.Path) -> dict | None:
    meta = folder / "metadata.json"
    if meta.exists() and (folder / "dataset_info.json").exists():
        return json.loads(meta.read_text()).get("plan")
    return None


def build(out="datasets", tasks=DEFAULT_TASKS, episodes=None, seed=0, image_size=128,
          workers=None) -> list[pathlib.Path]:
    import tensorflow_datasets as tfds

    from wmlib.data import rlds_builder

    tfds.disable_progress_bar()  # one progress bar: episodes collected

    episodes = dict(DEFAULT_EPISODES if episodes is None else episodes)
    out = pathlib.Path(out)
    todo, folders = [], []
    for env_id in tasks:
        plan = {"env_id": env_id, "episodes": episodes, "seed": seed, "image_size": image_size}
        folder = out / rlds_builder.NAME / rlds_builder.config_for(env_id).name / "1.0.0"
        folders.append(folder)
        if existing_plan(folder) == plan:
            print(f"[dataset] {folder} is up to date")
            continue
        if folder.exists():
            print(f"[dataset] {folder} was built with another plan: rebuilding")
            shutil.rmtree(folder)
        todo.append((env_id, plan))
    if not todo:
        return folders

    jobs = {env_id: plan_jobs(env_id, episodes, seed) for env_id, _ in todo}
    total = sum(len(j) for j in jobs.values())
    start = time.monotonic()
    print(f"[dataset] collecting {total} episodes of {', '.join(jobs)} into {out}/")
    bar = tqdm(total=total, desc="episodes", unit="ep")
    stream = counted(collect([j for js in jobs.values() for j in js], image_size, workers), bar)
    for env_id, plan in todo:
        layout = task_layout(env_id)
        task_episodes = itertools.islice(stream, len(jobs[env_id]))
        folder = rlds_builder.write(env_id, task_episodes, layout, out, image_size, plan=plan)
        bar.write(f"[dataset] wrote {folder}")
    bar.close()
    print(f"[dataset] done in {time.monotonic() - start:.0f} s")
    return folders


def counted(items, bar):
    """Yield items, counting each on the progress bar as it arrives."""
    for item in items:
        bar.update(1)
        yield item


def parse_episodes(text: str) -> dict[str, int]:
    counts = {}
    for part in text.split(","):
        source, _, n = part.partition("=")
        if source not in SOURCES or not n.isdigit():
            raise argparse.ArgumentTypeError(f"expected SOURCE=N with SOURCE in {SOURCES}, got {part!r}")
        counts[source] = int(n)
    return counts


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", default="datasets")
    parser.add_argument("--tasks", nargs="+", default=list(DEFAULT_TASKS))
    parser.add_argument("--episodes", type=parse_episodes, default=None,
                        help="e.g. random=20,scripted_success=50,scripted_failure=25,recovery=25")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--image-size", type=int, default=128)
    parser.add_argument("--workers", type=int, default=None)
    args = parser.parse_args(argv)
    build(args.out, args.tasks, args.episodes, args.seed, args.image_size, args.workers)


if __name__ == "__main__":
    main()
