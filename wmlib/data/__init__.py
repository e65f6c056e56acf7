"""Robot episodes: RLDS datasets read through tfds, validated, turned into training tuples.

    from wmlib import data
    episodes = data.load("datasets/wmr_maniskill/push_cube/1.0.0", images=False)
    batch = data.transitions(episodes)       # (o_t, a_t, o_t+1), never across episodes

The modules, from the bottom up (each imports only those above it; none imports a simulator,
a model or a planner):

- ``conventions``: the course's proprioception layout, gripper convention, action names, units;
- ``episodes``: ``Episode`` (the step conventions every dataset follows) and ``DatasetError``;
- ``validate``: checks that name the episode, step and field of each fault;
- ``transitions``: (o_t, a_t, o_t+1) and World Action Model tuples, batches for torch;
- ``chunks``: windows of several actions with the frame that follows them, labelled or action-free;
- ``sequences``: episodes end to end, cut into windows of frames, actions and rewards for latent models;
- ``reader``: RLDS folders read through tfds, and where the course data lives;
- ``rlds_builder``: the course dataset's tfds builder (the writing side of the format);
- ``oxe``: other labs' RLDS datasets mapped to the course's common view by per-dataset configs.
"""
from wmlib.data.episodes import DatasetError, Episode
from wmlib.data.chunks import ChunkWindows, chunk_windows, downsample, join, robot_vector
from wmlib.data.sequences import Sequences, sequences
from wmlib.data.reader import dataset_metadata, default_path, load, read_dataset, rlds_transitions, state_layout
from wmlib.data.transitions import Transitions, WamTuples, iterate_batches, transitions, wam_tuples
from wmlib.data.validate import EpisodeSpec, validate_dataset, validate_episode

__all__ = [
    "ChunkWindows", "DatasetError", "Episode", "EpisodeSpec", "Sequences", "Transitions", "WamTuples",
    "chunk_windows", "dataset_metadata", "default_path", "downsample", "iterate_batches", "join", "load",
    "read_dataset", "rlds_transitions", "robot_vector", "sequences", "state_layout", "transitions",
    "validate_dataset", "validate_episode", "wam_tuples",
]
