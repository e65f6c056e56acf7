"""Robot episodes: RLDS datasets read through tfds, validated, turned into training tuples.

    from wmlib import data
    episodes = data.load("datasets/wmr_maniskill/push_cube/1.0.0", images=False)
    batch = data.transitions(episodes)       # (o_t, a_t, o_t+1), never across episodes

The conventions every course dataset follows are in ``wmlib.data.episodes``.
"""
from wmlib.data.episodes import (
    DatasetError, Episode, Transitions, WamTuples, dataset_metadata, default_path, iterate_batches, load,
    read_dataset, rlds_transitions, state_layout, transitions, wam_tuples,
)
from wmlib.data.validate import EpisodeSpec, validate_dataset, validate_episode

__all__ = [
    "DatasetError", "Episode", "EpisodeSpec", "Transitions", "WamTuples", "dataset_metadata", "default_path",
    "iterate_batches", "load", "read_dataset", "rlds_transitions", "state_layout", "transitions",
    "validate_dataset", "validate_episode", "wam_tuples",
]
