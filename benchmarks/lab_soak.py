"""The robot lab under abuse: actor + learner + replay on the twin, with the actor and then the learner
killed mid-run; afterwards every finalised episode must be intact on disk and in replay.

    python benchmarks/lab_soak.py [--minutes 5] [--robot twin]

Timeline (fractions of ``--minutes``): replay and learner start; the actor acts; at 1/3 the actor
is killed with SIGKILL (no clean-up runs) and restarted; at 2/3 the learner is killed with SIGKILL
and restarted; at the end the actor gets SIGTERM (a clean stop) and the rest are stopped. Then:
- the control rate: periods, misses and the rate achieved while acting, per actor process (from
  the per-episode progress lines each actor writes, so the killed actor's count is kept);
- the disk: every episode loads and validates; the killed actor's open episode is recovered as
  truncated (``end: crash``); no episode id is missing;
- replay: every finalised episode is in it, with the same states as on disk (sampled until every
  item has been seen), and how many arrived twice;
- the learner: its error on episodes it had not yet trained on, across its restart, beside the
  error of predicting that the joints stay still.
"""
import argparse
import json
import pathlib
import signal
import sys
import tempfile
import time

import numpy as np

from common import write

REPO = pathlib.Path(__file__).resolve().parents[1]


def replay_contents(address: str, expected: int, tries: int = 5000) -> dict:
    """episode id -> (states, times seen) by sampling a uniform table until every item was seen."""
    sys.path.insert(0, str(REPO))
    from hardware.replay import TABLE, Replay

    replay = Replay(address)
    size = replay.size()
    keys, items = set(), {}
    for _ in range(tries // 50):
        for sample in replay.client.sample(TABLE, num_samples=50):
            info, data = sample[0].info, sample[0].data
            keys.add(int(info.key))
            items.setdefault(int(info.key), (int(data[0]), np.asarray(data[1])))
        if len(keys) >= size:
            break
    by_episode = {}
    for episode_id, states in items.values():
        by_episode.setdefault(episode_id, []).append(states)
    return {"size": size, "items_seen": len(keys), "by_episode": by_episode}


def learner_summary(curve: list[dict]) -> dict:
    """The learner's log -> its updates and its error on episodes it had not trained on (mrad),
    beside the error of predicting that the joints stay still."""
    held = [p for p in curve if "held_out_rmse_rad" in p]
    if not held:
        return {"updates": max((p["update"] for p in curve), default=0), "held_out_episodes": 0}
    last = held[-10:]
    return {"updates": max(p["update"] for p in curve),
            "held_out_episodes": sum(len(p["held_out_episodes"]) for p in held),
            "first_mrad": 1000 * held[0]["held_out_rmse_rad"],
            "last_ten_median_mrad": 1000 * float(np.median([p["held_out_rmse_rad"] for p in last])),
            "still_last_ten_median_mrad": 1000 * float(np.median([p["still_rmse_rad"] for p in last]))}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--minutes", type=float, default=5.0)
    parser.add_argument("--robot", default="twin")
    parser.add_argument("--out", default=None, help="the run's folder (default: a fresh temporary one)")
    parser.add_argument("--json", default=None, help="the result file (default: benchmarks/results/lab_soak.json)")
    args = parser.parse_args()
    sys.path.insert(0, str(REPO))
    from hardware.run import free_port, start
    from hardware.replay import Replay

    out = pathlib.Path(args.out or tempfile.mkdtemp(prefix="lab_soak_"))
    out.mkdir(parents=True, exist_ok=True)
    port = free_port()
    address = f"localhost:{port}"
    total = 60 * args.minutes
    replay = start("hardware.replay", ["--port", str(port), "--root", str(out / "episodes"), "--prefill", "2"],
                   out / "replay.log")
    learner_args = ["hardware.learner", ["--replay", address, "--out", str(out / "learner")]]
    actor_args = ["--robot", args.robot, "--replay", address, "--out", str(out)]
    events, t0 = [], time.monotonic()

    def event(what: str) -> None:
        events.append({"t": round(time.monotonic() - t0, 1), "event": what})
        print(f"[soak] {events[-1]['t']:6.1f} s  {what}", flush=True)

    client = Replay(address)
    while client.size() is None:
        time.sleep(0.5)
    learner = start(*learner_args, out / "learner.log", nice=10)
    event("replay and learner started")
    actor = start("hardware.run", [*actor_args, "--minutes", str(args.minutes)], out / "actor.log")
    event("actor started")
    time.sleep(total / 3)
    actor.send_signal(signal.SIGKILL)
    actor.wait()
    event("actor killed (SIGKILL)")
    actor = start("hardware.run", [*actor_args, "--minutes", str(args.minutes * 2 / 3)], out / "actor.log")
    event("actor restarted")
    time.sleep(total / 3)
    learner.send_signal(signal.SIGKILL)
    learner.wait()
    event("learner killed (SIGKILL)")
    learner = start(*learner_args, out / "learner.log", nice=10)
    event("learner restarted")
    time.sleep(max(0.0, total - (time.monotonic() - t0)))
    actor.send_signal(signal.SIGTERM)
    actor.wait(timeout=60)
    event(f"actor stopped (SIGTERM), exit code {actor.returncode}")
    time.sleep(3)                                         # let the courier's last delivery land

    from wmlib import data
    episodes = data.load(out / "episodes", images=False)  # validates every episode
    ids = sorted(int(e.metadata["episode_id"]) for e in episodes)
    ends = {}
    for e in episodes:
        ends[e.metadata["end"]] = ends.get(e.metadata["end"], 0) + 1
    contents = replay_contents(address, len(episodes))
    learner.send_signal(signal.SIGTERM)
    replay.send_signal(signal.SIGTERM)
    for p in (learner, replay):
        p.wait(timeout=30)
    on_disk = {int(e.metadata["episode_id"]): e.steps["observation/state"].astype(np.float32) for e in episodes}
    missing = sorted(set(on_disk) - set(contents["by_episode"]))
    mismatched = sorted(i for i, copies in contents["by_episode"].items()
                        if i not in on_disk or any(not np.array_equal(c, on_disk[i]) for c in copies))
    twice = sum(len(c) - 1 for c in contents["by_episode"].values())

    progress = [json.loads(line) for line in (out / "actor.jsonl").read_text().splitlines()]
    actors = {}
    for line in progress:
        actors[line["pid"]] = line                         # the last line of each actor process
    rate = {"periods": sum(a["rate"]["periods"] for a in actors.values()),
            "misses": sum(a["rate"]["misses"] for a in actors.values()),
            "worst_overrun_ms": max(a["rate"]["worst_overrun_ms"] for a in actors.values()),
            "per_actor": [a["rate"] for a in actors.values()]}
    rate["miss_rate"] = rate["misses"] / max(1, rate["periods"])
    curve = [json.loads(line) for line in (out / "learner" / "curve.jsonl").read_text().splitlines()]
    write("lab_soak", {
        "settings": vars(args), "folder": str(out), "events": events,
        "control": {"target_hz": 20.0, **rate,
                    "held": rate["miss_rate"] <= 0.05},
        "disk": {"episodes": len(episodes), "ids_contiguous": ids == list(range(len(ids))), "ends": ends,
                 "crash_recovered": ends.get("crash", 0), "reached": int(sum(bool(e.metadata["success"])
                                                                             for e in episodes))},
        "replay": {"size": contents["size"], "items_seen": contents["items_seen"], "missing": missing,
                   "not_matching_disk": mismatched, "delivered_twice": twice,
                   "intact": not missing and not mismatched},
        "learner": learner_summary(curve),
    }, args.json)


if __name__ == "__main__":
    main()
