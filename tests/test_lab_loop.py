"""Actor, learner and replay on the fake arm: episodes survive a replay that is down, a learner
checkpoint reaches the actor, and replay refills from the disk after a restart."""
import logging
import threading
import time

import numpy as np
import pytest

from hardware import actor, learner, replay as rp
from hardware.fake import fake_so100
from hardware.run import free_port
from hardware.safety import Box, Config
from wmlib import data

CONFIG = Config(workspace=Box((-0.3, -0.45, 0.02), (0.3, -0.05, 0.35)))


@pytest.fixture(autouse=True)
def quiet():
    logging.disable(logging.WARNING)
    yield
    logging.disable(logging.NOTSET)


def test_episodes_wait_in_the_outbox_while_replay_is_down_then_all_arrive(tmp_path):
    port = free_port()
    arm, _, _ = fake_so100(clock=time.monotonic)
    report = actor.run(arm, CONFIG, tmp_path / "episodes", rp.Replay(f"localhost:{port}", timeout=1),
                       tmp_path / "learner", minutes=0.08, max_steps=20, log=lambda *_: None)
    on_disk = data.load(tmp_path / "episodes", images=False)
    assert len(on_disk) == len(report["episodes"]) >= 2
    assert report["unsent_at_end"] == len(on_disk), "nothing was acknowledged while replay was down"
    for ep in on_disk:
        assert np.isfinite(ep.steps["action"][:-1]).all() and ep.metadata["end"] in ("timeout", "success")
        assert np.abs(np.diff(ep.steps["action"][:-1], axis=0)).max() <= 0.05 + 1e-6, "executed = clamped"
        state, target = ep.steps["observation/state"], ep.steps["action"][:-1]
        moved = np.abs(state[:-1] - target).max(axis=1) > 1e-3              # steps whose target asked to move
        after = np.median(np.abs(state[1:] - target).max(axis=1)[moved])
        before = np.median(np.abs(state[:-1] - target).max(axis=1)[moved])
        assert after < 0.2 * before, (f"episode {ep.metadata['episode_id']}: the state recorded after a target is "
                                      f"typically {after:.4f} rad from it, the state before {before:.4f}: the next "
                                      "state must be read a control period after the target was sent (the fake "
                                      "servos reach it within one; a missed period here and there is allowed)")
    server = rp.serve(port, prefill=1)
    replay = rp.Replay(f"localhost:{port}")
    outbox = rp.Outbox(tmp_path / "episodes" / "replayed.txt")
    assert outbox.send_pending(replay, tmp_path / "episodes") == len(on_disk)
    assert replay.size() == len(on_disk)
    assert outbox.send_pending(replay, tmp_path / "episodes") == 0, "sent once, not twice"
    sampled = replay.sample(20)
    by_id = {int(ep.metadata["episode_id"]): ep for ep in on_disk}
    for item in sampled:
        ep = by_id[int(item["episode_id"])]
        assert np.array_equal(item["state"], ep.steps["observation/state"].astype(np.float32)), "intact in replay"
    server.stop()
    refilled = rp.serve(0, root=tmp_path / "episodes")                      # a restarted server: from disk
    assert rp.Replay(f"localhost:{refilled.port}").size() == len(on_disk)
    refilled.stop()


def test_the_learner_publishes_checkpoints_that_the_actor_picks_up(tmp_path):
    server = rp.serve(0, prefill=2)
    address = f"localhost:{server.port}"
    arm, _, _ = fake_so100(clock=time.monotonic)
    curve = []
    thread = threading.Thread(target=lambda: curve.extend(
        learner.run(rp.Replay(address), tmp_path / "learner", joints=6, seconds=15, publish_every=10)), daemon=True)
    thread.start()
    report = actor.run(arm, CONFIG, tmp_path / "episodes", rp.Replay(address), tmp_path / "learner",
                       minutes=0.25, max_steps=30, reload_every=1.0, log=lambda *_: None)
    thread.join(timeout=120)
    assert report["reloads"] >= 1 and any(e["model_version"] > 0 for e in report["episodes"])
    assert report["unsent_at_end"] == 0 and rp.Replay(address).size() == len(report["episodes"])
    held_out = [p for p in curve if "held_out_rmse_rad" in p]
    measured = [i for p in held_out for i in p["held_out_episodes"]]
    assert len(measured) == len(set(measured)), "each episode is held out once, before the learner trains on it"
    later = [p for p in held_out if p["update"] > 100]                 # measured by a model that has trained
    assert later, f"the learner measured no unseen episode after update 100 ({len(held_out)} in all)"
    model, still = np.mean([p["held_out_rmse_rad"] for p in later]), np.mean([p["still_rmse_rad"] for p in later])
    assert model < 0.75 * still, (f"on {len(later)} unseen episode batches the world model's error is {model:.4f} rad, "
                                  f"predicting that the joints stay still {still:.4f} rad")
    assert learner.load(tmp_path / "learner")[1] == curve[-1]["update"]
    assert learner.load(tmp_path / "learner", with_seen=True)[2] >= set(measured)
    (tmp_path / "learner" / learner.CHECKPOINT).write_bytes(b"half a file")
    assert learner.load(tmp_path / "learner") is None, "an unreadable checkpoint is no model (the actor keeps its own)"
    server.stop()


def test_with_the_learner_down_the_actor_keeps_acting_with_its_last_good_model(tmp_path):
    import torch

    server = rp.serve(0, prefill=1)
    torch.manual_seed(0)
    learner.save(learner.JointDynamics(6), 7, tmp_path / "learner")       # the learner published update 7, then died
    broken = threading.Timer(4.0, lambda: (tmp_path / "learner" / learner.CHECKPOINT).write_bytes(b"half a fi"))
    broken.start()                                                          # ... and left half a checkpoint behind
    arm, _, _ = fake_so100(clock=time.monotonic)
    report = actor.run(arm, CONFIG, tmp_path / "episodes", rp.Replay(f"localhost:{server.port}"),
                       tmp_path / "learner", minutes=0.15, max_steps=20, reload_every=0.5, log=lambda *_: None)
    broken.join()
    late = [e for e in report["episodes"] if e["time"] > report["episodes"][0]["time"] + 5]
    assert late and all(e["model_version"] == 7 for e in late), "after the checkpoint broke, still update 7"
    assert report["reloads"] == 1 and report["unsent_at_end"] == 0
    server.stop()


def test_a_recorded_run_exports_as_a_lerobot_dataset_with_the_published_layout(tmp_path):
    import pyarrow.parquet as pq

    from hardware import lerobot_export

    arm, _, _ = fake_so100(clock=time.monotonic)
    actor.run(arm, CONFIG, tmp_path / "episodes", rp.Replay("localhost:1", timeout=1), tmp_path / "learner",
              minutes=0.05, max_steps=15, log=lambda *_: None)
    episodes = data.load(tmp_path / "episodes", images=False)
    out = lerobot_export.export(episodes, tmp_path / "lerobot", fps=arm.control_freq, robot_type="so100",
                                image_keys={}, state_names=list(arm.limits.names), action_names=list(arm.limits.names))
    assert lerobot_export.check_layout(out) == []
    frames = pq.read_table(out / "data" / "chunk-000" / "file-000.parquet")
    assert frames.num_rows == sum(e.num_actions for e in episodes)
    executed = np.concatenate([e.steps["action"][:-1] for e in episodes])
    assert np.allclose(np.stack(frames.column("action").to_numpy(zero_copy_only=False)), executed, atol=1e-6), \
        "the export carries the executed (clamped) targets"
