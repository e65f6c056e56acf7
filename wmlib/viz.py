"""Looking at episodes: one step as a figure, a scrubber to move through time, action coverage.

``scrubber(episodes)`` shows frame t, the action a_t sent from it and frame t+1 side
by side, above the state and action over the whole episode. It is an ordinary
figure (so it shows in the book and in CI), redrawn in place by the ipywidgets
controls below it when a live Jupyter frontend is there.
"""
from __future__ import annotations

import numpy as np

ACTION_NAMES = ("dx", "dy", "dz", "gripper")


def show_step(episode, t: int, layout: dict | None = None):
    """Figure: frame t | action a_t | frame t+1, then state and actions over time, marked at t."""
    import matplotlib.pyplot as plt

    steps = episode.steps
    last = len(episode) - 2  # the last step holds no action: t+1 must exist
    if not 0 <= t <= last:
        raise IndexError(f"episode {episode.index} has actions at steps 0..{last}, not {t}")
    fig = plt.figure(figsize=(11, 6.2), layout="constrained")
    top, bottom = fig.subfigures(2, 1, height_ratios=[1.15, 1])
    ax_now, ax_act, ax_next = top.subplots(1, 3, width_ratios=[1, 0.8, 1])
    images = steps.get("observation/image")
    for ax, k, title in ((ax_now, t, f"o_t  (step {t})"), (ax_next, t + 1, f"o_t+1  (step {t + 1})")):
        if images is not None:
            ax.imshow(images[k])
        else:
            ax.text(0.5, 0.5, "no image loaded", ha="center", va="center")
        ax.set_title(title)
        ax.axis("off")
    action = steps["action"][t]
    names = ACTION_NAMES if len(action) == len(ACTION_NAMES) else [f"a[{i}]" for i in range(len(action))]
    ax_act.barh(range(len(action)), action, color=["C0"] * (len(action) - 1) + ["C3"])
    ax_act.set_yticks(range(len(action)), names)
    ax_act.set_xlim(-1.05, 1.05)
    ax_act.invert_yaxis()
    ax_act.axvline(0, color="k", lw=0.5)
    ax_act.set_title(f"a_t  (sent at step {t})")

    ax_state, ax_actions = bottom.subplots(1, 2)
    layout = layout or {}  # without one (data.state_layout gives it), the first state numbers are plotted
    state = steps["observation/state"]
    shown = [(name, layout[name]) for name in ("extra/tcp_pose", "extra/obj_pose") if name in layout]
    if shown:
        for name, sl in shown:
            for i, axis in enumerate("xyz"):
                ax_state.plot(state[:, sl.start + i], label=f"{name.split('/')[-1][:-5]} {axis}")
    else:
        ax_state.plot(state[:, : min(6, state.shape[1])])
    ax_state.set_title("state over the episode")
    ax_state.legend(fontsize=7, ncol=2)
    ax_actions.plot(steps["action"][:-1])
    ax_actions.set_title("actions over the episode (last step has none)")
    ax_actions.legend(names, fontsize=7, ncol=2)
    for ax in (ax_state, ax_actions):
        ax.axvline(t, color="k", ls="--", lw=1)
        ax.set_xlabel("step")
    meta = episode.metadata or {}
    fig.suptitle(f"episode {episode.index}: {meta.get('source', '')}, success={meta.get('success')}, "
                 f"{episode.num_actions} actions, {'terminated' if episode.terminated else 'truncated'}")
    return fig


def scrubber(episodes, layout: dict | None = None, episode: int = 0, t: int = 0):
    """Pick an episode and scrub through time; returns the controls (already displayed)."""
    import ipywidgets as widgets
    import matplotlib.pyplot as plt
    from IPython.display import display

    def figure(e, k):
        fig = show_step(episodes[e], k, layout)
        plt.close(fig)  # shown through the display handle, not twice
        return fig

    handle = display(figure(episode, t), display_id=True)
    options = [(f"#{ep.index} {ep.metadata.get('source', '')} "
                f"({'success' if ep.metadata.get('success') else 'fail'})", i)
               for i, ep in enumerate(episodes)]
    pick = widgets.Dropdown(options=options, value=episode, description="episode")
    time = widgets.IntSlider(value=t, min=0, max=len(episodes[episode]) - 2, description="step t",
                             continuous_update=False)

    def redraw(_=None):
        time.max = len(episodes[pick.value]) - 2
        handle.update(figure(pick.value, min(time.value, time.max)))

    pick.observe(redraw, names="value")
    time.observe(redraw, names="value")
    controls = widgets.HBox([pick, time])
    display(controls)
    return controls


def coverage_grid(actions: np.ndarray, bins: int = 10) -> np.ndarray:
    """(N, >=2) actions in [-1, 1] -> (bins, bins) counts over the first two dimensions (dx, dy)."""
    counts, _, _ = np.histogram2d(actions[:, 0], actions[:, 1], bins=bins, range=[[-1, 1], [-1, 1]])
    return counts


def action_coverage(actions_by_source: dict[str, np.ndarray], bins: int = 10):
    """One panel per source: where in the (dx, dy) plane its actions fall."""
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, len(actions_by_source), figsize=(3.2 * len(actions_by_source), 3.4),
                             layout="constrained", squeeze=False)
    for ax, (source, actions) in zip(axes[0], actions_by_source.items()):
        grid = coverage_grid(actions, bins)
        ax.imshow(np.log1p(grid.T), origin="lower", extent=[-1, 1, -1, 1], cmap="viridis")
        ax.set_title(f"{source}\n{(grid > 0).mean():.0%} of cells visited", fontsize=9)
        ax.set_xlabel("dx")
        ax.set_ylabel("dy")
    fig.suptitle("action coverage (log counts of meaningful actions)")
    return fig
