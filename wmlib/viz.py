"""Looking at episodes and predictions: one step as a figure, a scrubber to move through time, action
coverage, an ensemble's open-loop rollouts against what was recorded, step by step, an encoder's
keypoints over the frame it read, and a planner's candidate plans at each decision of an episode.

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


def keypoint_figure(frame, maps, title: str = "", channel: int | None = None):
    """A frame with an encoder's soft-argmax keypoints over it (chapter 3), beside one keypoint's map.

    frame: (S, S, 3) uint8 or (3, S, S) in [0, 1], as the encoder saw it; maps: (C, h, w) the last
    convolution's feature maps for that frame (logits). Keypoint c sits at the expected position of
    softmax(maps[c]), x from -1 (left) to 1 (right), y from -1 (top) to 1 (bottom), drawn in frame pixels.
    channel: the keypoint whose softmax is shown on the right (default: the most peaked one).
    Returns (figure, keypoints (C, 2) in frame pixels, the channel shown)."""
    import matplotlib.pyplot as plt
    import torch

    from wmlib.models.encoder import soft_argmax

    image = np.asarray(frame)
    if image.ndim == 3 and image.shape[0] == 3 and image.shape[-1] != 3:
        image = image.transpose(1, 2, 0)                                    # (3, S, S) -> (S, S, 3)
    image = image / 255.0 if image.dtype == np.uint8 else np.clip(image, 0, 1)
    maps = torch.as_tensor(maps, dtype=torch.float32)
    if maps.ndim != 3:
        raise ValueError(f"maps must be (C, h, w) for one frame, got shape {tuple(maps.shape)}")
    size = image.shape[0]
    points = (soft_argmax(maps[None])[0].numpy() + 1) / 2 * (size - 1)      # (C, 2) pixels of the frame
    heat = maps.flatten(1).softmax(-1).reshape(maps.shape)                  # (C, h, w)
    if channel is None:
        channel = int(heat.flatten(1).max(-1).values.argmax())
    if not 0 <= channel < len(maps):
        raise IndexError(f"there are {len(maps)} keypoints, not a keypoint {channel}")
    fig, (left, right) = plt.subplots(1, 2, figsize=(8, 4), layout="constrained")
    left.imshow(image)
    left.scatter(points[:, 0], points[:, 1], s=18, c=np.arange(len(points)), cmap="tab20", edgecolors="k", lw=0.5)
    left.scatter(*points[channel], s=120, facecolors="none", edgecolors="r", lw=2)
    left.set_title(title or f"{len(points)} keypoints (circled: {channel})", fontsize=9)
    right.imshow(image)
    right.imshow(heat[channel].numpy(), extent=(-0.5, size - 0.5, size - 0.5, -0.5), alpha=0.6, cmap="magma")
    right.set_title(f"keypoint {channel}: where its softmax puts the weight", fontsize=9)
    for ax in (left, right):
        ax.axis("off")
    return fig, points, channel


def keypoint_explorer(frames, maps, choices: dict):
    """Pick a frame and a keypoint: ``keypoint_figure`` redrawn in place. frames (N, ...) as the encoder saw
    them, maps (N, C, h, w); choices: label -> frame index. Returns the controls (already displayed);
    ``controls.shown`` holds the frame, the channel and the keypoints of the figure on screen."""
    import ipywidgets as widgets
    import matplotlib.pyplot as plt
    from IPython.display import display

    labels = list(choices)

    def figure(label, channel):
        i = choices[label]
        fig, points, shown = keypoint_figure(frames[i], maps[i], title=label, channel=channel)
        plt.close(fig)
        controls.shown = {"frame": i, "channel": shown, "keypoints": points}
        return fig

    pick = widgets.Dropdown(options=labels, value=labels[0], description="frame")
    channel = widgets.IntSlider(value=0, min=0, max=len(maps[0]) - 1, description="keypoint", continuous_update=False)
    controls = widgets.HBox([pick, channel])
    handle = display(figure(pick.value, channel.value), display_id=True)

    def redraw(_=None):
        fig = figure(pick.value, channel.value)
        if handle is not None:
            handle.update(fig)

    pick.observe(redraw, names="value")
    channel.observe(redraw, names="value")
    display(controls)
    return controls


def plan_figure(decision: dict, layout: dict, title: str = ""):
    """One planning decision seen from above (chapter 5): the gripper paths the model predicts for the
    candidate plans, coloured by their predicted cost, the chosen plan's path in red, the cube, the
    goal disc and where the gripper is now.

    decision: {"state" (D,), "paths" (N, H, 2) predicted gripper x, y of each candidate (members' mean),
    "costs" (N,), "chosen" (H, 2) the chosen plan's predicted gripper path, optionally "step"}.
    Returns (figure, index of the cheapest candidate shown)."""
    import matplotlib.pyplot as plt

    state = np.asarray(decision["state"], dtype=float)
    paths, costs = np.asarray(decision["paths"], dtype=float), np.asarray(decision["costs"], dtype=float)
    if paths.ndim != 3 or paths.shape[-1] != 2 or len(paths) != len(costs):
        raise ValueError(f"paths must be (N, H, 2) with one cost each, got {paths.shape} and {costs.shape}")
    tcp, cube, goal = (state[layout[k]][:2] for k in ("extra/tcp_pose", "extra/obj_pose", "extra/goal_pos"))
    fig, ax = plt.subplots(figsize=(5.5, 5), layout="constrained")
    span = np.ptp(costs) or 1.0
    colours = plt.cm.viridis((costs - costs.min()) / span)
    for n in np.argsort(-costs):                                    # the cheapest drawn last, on top
        ax.plot(*np.vstack([tcp, paths[n]]).T, "-", color=colours[n], lw=0.8, alpha=0.7)
    ax.plot(*np.vstack([tcp, np.asarray(decision["chosen"], dtype=float)]).T, "r-o", ms=3, lw=2.5, label="chosen plan")
    ax.add_patch(plt.Circle(goal.tolist(), 0.1, color="tab:red", alpha=0.08))
    ax.plot(*goal, "+", color="tab:red", ms=12, label="goal")
    ax.plot(*cube, "s", color="k", ms=8, mfc="none", label="cube")
    ax.plot(*tcp, "o", color="k", ms=6, label="gripper now")
    ax.set_aspect("equal")
    ax.set(xlabel="x (m)", ylabel="y (m)")
    step = f"step {decision['step']}: " if "step" in decision else ""
    ax.set_title(title or f"{step}{len(costs)} candidates (yellow: costly, purple: cheap) and the plan sent",
                 fontsize=9)
    ax.legend(fontsize=7, loc="best")
    return fig, int(np.argmin(costs))


def plan_explorer(decisions: list[dict], layout: dict):
    """Step through an episode's planning decisions: ``plan_figure`` redrawn in place by a slider.
    Returns the controls (already displayed); ``controls.shown`` holds the decision on screen."""
    import ipywidgets as widgets
    import matplotlib.pyplot as plt
    from IPython.display import display

    if not decisions:
        raise ValueError("no decisions to show")

    def figure(i):
        fig, cheapest = plan_figure(decisions[i], layout)
        plt.close(fig)
        controls.shown = {"decision": i, "cheapest": cheapest}
        return fig

    pick = widgets.IntSlider(value=0, min=0, max=len(decisions) - 1, description="decision",
                             continuous_update=False)
    controls = widgets.HBox([pick])
    handle = display(figure(0), display_id=True)

    def redraw(_=None):
        fig = figure(pick.value)
        if handle is not None:
            handle.update(fig)

    pick.observe(redraw, names="value")
    display(controls)
    return controls
