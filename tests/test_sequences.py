"""Windows of frames, actions and rewards for latent models: never across an episode, terminal steps marked."""
import numpy as np
import pytest

from wmlib import data

FIXTURE = "datasets/fixture/wmr_maniskill/push_cube/1.0.0"


@pytest.fixture(scope="module")
def episodes():
    return data.load(FIXTURE, images=True)


def test_windows_hold_consecutive_rows_of_one_episode(episodes):
    seq = data.sequences(episodes, frame_size=32)
    assert len(seq) == sum(len(ep) for ep in episodes) and seq.num_episodes == len(episodes)
    starts = seq.starts(length=5)
    assert len(starts) == sum(max(0, ep.num_actions - 5 + 1) for ep in episodes)
    batch = seq.window(starts, length=5)
    assert batch["frames"].shape == (len(starts), 6, 32, 32, 3) and batch["frames"].dtype.is_floating_point is False
    assert batch["action"].shape == (len(starts), 5, 4) and batch["reward"].shape == (len(starts), 5)
    for i, start in enumerate(starts):
        ep = episodes[seq.episode[start]]
        t = seq.step[start]
        assert np.allclose(batch["action"][i].numpy(), ep.steps["action"][t:t + 5]), "actions a_t .. a_t+4 in order"
        assert np.allclose(batch["state"][i].numpy(), ep.steps["observation/state"][t:t + 6]), "o_t .. o_t+5"
        assert np.allclose(batch["reward"][i].numpy(), ep.steps["reward"][t:t + 5])


def test_a_terminated_episode_marks_its_last_action_and_nothing_else(episodes):
    seq = data.sequences(episodes, frame_size=32)
    for position, ep in enumerate(episodes):
        c = seq.continues[seq.episode == position]
        assert c[-1] == 0 and (c[:-2] == 1).all()
        assert c[-2] == (0 if ep.terminated else 1), f"episode {ep.index}: terminated={ep.terminated}"
    assert any(ep.terminated for ep in episodes), "the fixture should hold a terminated episode"


def test_a_window_across_an_episode_end_is_refused_with_where(episodes):
    seq = data.sequences(episodes, frame_size=32)
    end_of_first = int(np.flatnonzero(seq.last)[0])
    with pytest.raises(data.DatasetError, match="crosses the end of its episode"):
        seq.window([end_of_first - 2], length=5)
    with pytest.raises(data.DatasetError, match="crosses"):
        seq.window([len(seq) - 1], length=1)
    assert end_of_first not in seq.starts(1) and end_of_first - 1 in seq.starts(1)


def test_episodes_without_frames_or_with_bad_actions_are_named(episodes):
    no_frames = data.load(FIXTURE, images=False)
    with pytest.raises(data.DatasetError, match="images=True"):
        data.sequences(no_frames)
    broken = data.Episode({k: v.copy() for k, v in episodes[0].steps.items()}, episodes[0].metadata, index=7,
                          dataset="push")
    broken.steps["action"][3, 1] = np.nan
    with pytest.raises(data.DatasetError, match=r"episode 7, step 3.*action is not finite"):
        data.sequences([broken])
