"""Time `make dataset` from scratch: the default plan, built into a fresh folder, then validated.

    python benchmarks/dataset_build.py            # about 3-4 minutes on a 2-core CPU
"""
import argparse
import collections
import pathlib
import tempfile
import time

from wmlib import data
from wmlib import build_dataset as build
from common import write


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", default=None)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        start = time.perf_counter()
        folders = build.build(tmp)
        seconds = time.perf_counter() - start
        tasks = {}
        for folder in folders:
            episodes = data.load(folder, images=False)  # validates every episode
            sources = collections.Counter(ep.metadata["source"] for ep in episodes)
            successes = collections.Counter(ep.metadata["source"] for ep in episodes if ep.metadata["success"])
            tasks[folder.parent.name] = {
                "episodes": len(episodes), "steps": sum(len(ep) for ep in episodes),
                "transitions": sum(ep.num_actions for ep in episodes),
                "megabytes": sum(f.stat().st_size for f in pathlib.Path(folder).iterdir()) / 1e6,
                "episodes_per_source": dict(sources),
                "success_rate_per_source": {s: successes[s] / n for s, n in sources.items()},
            }
    write("dataset_build", {"plan": build.DEFAULT_EPISODES, "seconds": seconds, "limit_seconds": 300,
                            "validated": True, "tasks": tasks}, args.out)


if __name__ == "__main__":
    main()
