"""Replay between the actor and the learner, through dm-reverb; the disk stays the record.

    python -m hardware.replay --root lab_runs/episodes --port 8000     # the server, its own process
    replay = Replay("localhost:8000")                                   # a client, in actor or learner
    replay.insert(episode)          # False (not an exception) when the server cannot be reached
    replay.sample(32)               # 32 episodes, uniformly, as dicts of arrays

One item is one *finalised* episode: the actor inserts an episode only after the recorder has
written it to disk, so replay never holds half an episode. The server runs in its own process,
so killing the actor or the learner loses nothing in it; when the server itself restarts it
refills from the episodes on disk, which are the lasting record (replay is a cache of them).
The actor keeps an *outbox* (``Outbox``): the ids of the episodes on disk that replay has
acknowledged; a ``Courier`` thread sends each new episode, and at start, and whenever replay is
back, the ones still missing.
"""
from __future__ import annotations

import argparse
import os
import pathlib
import queue
import threading
import time

import numpy as np

TABLE = "episodes"
# the order of an item's arrays (reverb stores a flat list)
FIELDS = ("episode_id", "state", "action", "action_proposed", "reward", "success")


def item_of(episode) -> list[np.ndarray]:
    """A ``wmlib.data.Episode`` (from the recorder's folder) -> the flat item replay stores."""
    s = episode.steps
    return [np.int64(episode.metadata["episode_id"]), s["observation/state"].astype(np.float32),
            s["action"][:-1].astype(np.float32), s["action_proposed"][:-1].astype(np.float32),
            s["reward"][:-1].astype(np.float32), np.bool_(episode.metadata.get("success", False))]


def serve(port: int = 0, root=None, max_episodes: int = 10_000, prefill: int = 1):
    """Start a reverb server on ``port`` (0: any free port) and refill it from ``root``.

    ``prefill``: a learner's sample blocks until this many episodes are in. Returns the server."""
    import reverb

    table = reverb.Table(TABLE, sampler=reverb.selectors.Uniform(), remover=reverb.selectors.Fifo(),
                         max_size=max_episodes, rate_limiter=reverb.rate_limiters.MinSize(prefill))
    server = reverb.Server(tables=[table], port=port or None)
    if root is not None and (pathlib.Path(root) / "dataset_info.json").exists():
        client = Replay(f"localhost:{server.port}")
        for episode in on_disk(root):
            client.insert(episode)
    return server


def on_disk(root) -> list:
    """Every finalised episode in the recorder's folder (none yet: an empty list)."""
    from hardware.recorder import episode_files
    from wmlib import data

    return data.load(root, images=False) if episode_files(pathlib.Path(root)) else []


class Replay:
    """A reverb client that says False instead of raising when the server is down."""

    def __init__(self, address: str, timeout: int = 2):
        self.address, self.timeout = address, int(timeout)       # whole seconds: reverb takes an int
        self._client = None
        self.last_error = ""

    @property
    def client(self):
        import reverb

        if self._client is None:
            self._client = reverb.Client(self.address)
        return self._client

    def size(self) -> int | None:
        """Episodes in replay, or None when the server does not answer."""
        try:
            return int(self.client.server_info(timeout=self.timeout)[TABLE].current_size)
        except Exception as err:    # reverb raises grpc, tf and runtime errors alike when down
            self._client, self.last_error = None, f"{type(err).__name__}: {err}"
            return None

    def insert(self, episode) -> bool:
        if self.size() is None:
            return False
        try:
            self.client.insert(item_of(episode), priorities={TABLE: 1.0})
            return True
        except Exception as err:
            self._client, self.last_error = None, f"{type(err).__name__}: {err}"
            return False

    def sample(self, n: int) -> list[dict]:
        """n episodes drawn uniformly (blocks until the server's prefill is reached)."""
        out = []
        for sample in self.client.sample(TABLE, num_samples=n):
            out.append(dict(zip(FIELDS, sample[0].data)))
        return out


class Outbox:
    """Which finalised episodes replay has acknowledged: one id per line, appended and flushed."""

    def __init__(self, path):
        self.path = pathlib.Path(path)
        self.sent = {int(x) for x in self.path.read_text().split()} if self.path.exists() else set()

    def mark(self, episode_id: int) -> None:
        with self.path.open("a") as f:
            f.write(f"{episode_id}\n")
            f.flush()
            os.fsync(f.fileno())
        self.sent.add(int(episode_id))

    def send_pending(self, replay: Replay, root) -> int:
        """Send every episode on disk that replay has not acknowledged; return how many went."""
        if not (pathlib.Path(root) / "dataset_info.json").exists() or replay.size() is None:
            return 0
        sent = 0
        for episode in on_disk(root):
            i = int(episode.metadata["episode_id"])
            if i not in self.sent and replay.insert(episode):
                self.mark(i)
                sent += 1
        return sent


class Courier:
    """Carries finalised episodes to replay from its own thread: the control loop never waits on the
    network. An episode replay did not take is retried, from disk, every ``retry_every`` seconds."""

    def __init__(self, replay: Replay, outbox: Outbox, root, retry_every: float = 2.0):
        self.replay, self.outbox, self.root, self.retry_every = replay, outbox, root, retry_every
        self.queue: queue.Queue = queue.Queue()
        self.behind = True                      # episodes on disk may be missing from replay
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="replay-courier", daemon=True)
        self._thread.start()

    def post(self, episode) -> None:
        self.queue.put(episode)

    def _run(self) -> None:
        while not (self._stop.is_set() and self.queue.empty()):
            try:
                episode = self.queue.get(timeout=self.retry_every)
                if self.replay.insert(episode):
                    self.outbox.mark(int(episode.metadata["episode_id"]))
                else:
                    self.behind = True
            except queue.Empty:
                pass
            if self.behind and self.queue.empty() and self.replay.size() is not None:
                self.outbox.send_pending(self.replay, self.root)
                self.behind = False

    def close(self, timeout: float = 10.0) -> None:
        """Deliver what is queued (up to ``timeout`` seconds), then whatever else on disk replay lacks
        (an episode cut short by the stop itself), then stop."""
        self._stop.set()
        self._thread.join(timeout)
        if not self._thread.is_alive():
            self.outbox.send_pending(self.replay, self.root)


def main() -> None:
    parser = argparse.ArgumentParser(description="the robot lab's replay server (dm-reverb)")
    parser.add_argument("--port", type=int, default=8000)
    parser.add_argument("--root", default=None, help="the recorder's folder, to refill from at start")
    parser.add_argument("--prefill", type=int, default=4, help="episodes before a learner may sample")
    args = parser.parse_args()
    server = serve(args.port, args.root, prefill=args.prefill)
    print(f"[replay] serving on localhost:{server.port} ({Replay(f'localhost:{server.port}').size()} episodes "
          f"refilled from {args.root})", flush=True)
    while True:
        time.sleep(3600)


if __name__ == "__main__":
    main()
