"""Looking at episodes and predictions: one step as a figure, a scrubber to move through time, action
coverage, and an ensemble's open-loop rollouts against what was recorded, step by step.

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
    if shown:
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
        fig = figure(pick.value, min(time.value, time.max))
        if handle is not None:                        # None outside a notebook: nothing to redraw in place
            handle.update(fig)

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


def rollout_figure(start, future, predicted, parts: dict, k: int, title: str = ""):
    """One window of open-loop predictions against what was recorded, on the table seen from above, to step k.

    start (D,), future (H, D): the recorded state at the window's start and after each of its H actions;
    predicted (E, H, D): each ensemble member's prediction; parts: name -> slice of the state whose first
    two numbers are an (x, y) position in metres (e.g. the gripper's and the cube's). Recorded paths are
    solid, each member's thin and dashed, their mean thick and dashed. Returns (figure, the mean's
    distance from the recorded position after k steps in millimetres, per part).
    """
    import matplotlib.pyplot as plt

    start, future, predicted = (np.asarray(x, dtype=np.float64) for x in (start, future, predicted))
    horizon = future.shape[0]
    if not 1 <= k <= horizon:
        raise ValueError(f"k must be between 1 and the window's {horizon} steps, got {k}")
    if predicted.shape[1:] != future.shape:
        raise ValueError(f"predicted must be (E, H, D) = (E, {future.shape}), got {predicted.shape}")
    recorded = np.concatenate([start[None], future])                                   # (H + 1, D)
    members = np.concatenate([np.broadcast_to(start, (len(predicted), 1, start.size)), predicted], axis=1)
    mean = members.mean(axis=0)
    fig, ax = plt.subplots(figsize=(6.2, 5), layout="constrained")
    errors = {}
    for colour, (name, where) in zip(("tab:blue", "tab:orange", "tab:green", "tab:red"), parts.items()):
        xy = lambda path: path[..., where][..., :2]                                      # noqa: E731
        ax.plot(*xy(recorded)[: k + 1].T, "-o", ms=3, color=colour, label=f"{name}: recorded")
        for member in members:
            ax.plot(*xy(member)[: k + 1].T, "--", lw=0.7, alpha=0.5, color=colour)
        ax.plot(*xy(mean)[: k + 1].T, "--x", lw=2, ms=4, color=colour, label=f"{name}: members' mean")
        errors[name] = float(1000 * np.linalg.norm(xy(mean)[k] - xy(recorded)[k]))
    ax.set_xlabel("x (m)")
    ax.set_ylabel("y (m)")
    ax.axis("equal")
    ax.legend(fontsize=8)
    ax.set_title((f"{title}\n" if title else "") + f"after {k} of {horizon} steps: " +
                 ", ".join(f"{name} off by {mm:.0f} mm" for name, mm in errors.items()), fontsize=9)
    return fig, errors


def rollout_explorer(start, future, predicted, parts: dict, choices: dict, k: int | None = None):
    """Pick a window, slide the horizon: ``rollout_figure`` redrawn in place. start (W, D), future (W, H, D),
    predicted (E, W, H, D); choices: label -> window index. Returns the controls (already displayed);
    ``controls.shown`` holds the window, k and errors of the figure on screen."""
    import ipywidgets as widgets
    import matplotlib.pyplot as plt
    from IPython.display import display

    horizon = np.asarray(future).shape[1]
    labels = list(choices)

    def figure(label, steps):
        w = choices[label]
        fig, errors = rollout_figure(start[w], future[w], predicted[:, w], parts, steps, title=label)
        plt.close(fig)                                  # shown through the display handle, not twice
        controls.shown = {"window": w, "k": steps, "errors_mm": errors}
        return fig

    pick = widgets.Dropdown(options=labels, value=labels[0], description="window")
    steps = widgets.IntSlider(value=k or horizon, min=1, max=horizon, description="steps k", continuous_update=False)
    controls = widgets.HBox([pick, steps])
    handle = display(figure(pick.value, steps.value), display_id=True)

    def redraw(_=None):
        fig = figure(pick.value, steps.value)
        if handle is not None:
            handle.update(fig)

    pick.observe(redraw, names="value")
    steps.observe(redraw, names="value")
    display(controls)
    return controls


def imagined_frames(real, drawn, every: int = 1, title: str = ""):
    """Real frames above the frames a model drew for the same steps, with each drawn frame's PSNR (dB).

    real: (H, S, S, 3) uint8 or (H, 3, S, S) in [0, 1]; drawn: (H, 3, S, S) in [0, 1] (a decoder's output);
    every: show every n-th step. A sharp drawing is not the same as a right one: compare the cube, not the
    texture of the table."""
    import matplotlib.pyplot as plt
    import torch

    from wmlib.models.frame_predictor import psnr
    from wmlib.models.pixels import as_pixels

    drawn = torch.as_tensor(drawn, dtype=torch.float32)
    truth, _ = as_pixels(real, drawn.shape[-1])
    if truth.shape != drawn.shape:
        raise ValueError(f"real and drawn frames must match: {tuple(truth.shape)} against {tuple(drawn.shape)}")
    scores = psnr(drawn, truth).tolist()
    shown = list(range(0, len(drawn), every))
    fig, axes = plt.subplots(2, len(shown), figsize=(1.6 * len(shown), 3.6), squeeze=False, layout="constrained")
    for column, k in enumerate(shown):
        for row, frames in enumerate((truth, drawn)):
            axes[row, column].imshow(frames[k].permute(1, 2, 0).clamp(0, 1).numpy())
            axes[row, column].axis("off")
        axes[0, column].set_title(f"step {k + 1}", fontsize=8)
        axes[1, column].set_title(f"{scores[k]:.1f} dB", fontsize=8)
    fig.suptitle(title or "recorded (top) and imagined (bottom)", fontsize=10)
    return fig, scores
