"""Chapter 1: plausible wrong answers that pass the visible tests; the hidden tests must catch each one.

The test cells run after the setup cell (tagged "setup"), so its names (np, data, push, ...) are in scope."""

WRONG = {
    "ex1_validator": '''
REQUIRED = ("observation/state", "action", "reward", "is_first", "is_last")
def find_problem(steps, action_low, action_high):
    # judges the last step's action too, though it means nothing
    for name in REQUIRED:
        if name not in steps:
            return (None, name, "missing")
    n = len(steps["is_last"])
    for name in REQUIRED:
        if len(steps[name]) != n:
            return (min(len(steps[name]), n), name, "length")
    for flag, at in (("is_first", 0), ("is_last", n - 1)):
        wrong = np.flatnonzero(np.asarray(steps[flag], bool) != (np.arange(n) == at))
        if len(wrong):
            return (int(wrong[0]), flag, flag)
    for name in ("observation/state", "action", "reward"):
        values = np.asarray(steps[name], float).reshape(n, -1)
        bad = np.flatnonzero(~np.isfinite(values).all(axis=1))
        if len(bad):
            return (int(bad[0]), name, "nonfinite")
    actions = np.asarray(steps["action"], float)
    outside = np.flatnonzero(((actions < action_low) | (actions > action_high)).any(axis=1))
    return (int(outside[0]), "action", "range") if len(outside) else None
''',
    "ex2_transitions": '''
def transitions(episodes, key="observation/state"):
    # right, except that it ignores `key`: it always reads the state
    parts = {name: [] for name in ("state", "action", "next_state", "reward", "terminal", "episode", "step")}
    for e in episodes:
        obs, T = e.steps["observation/state"], e.num_actions
        parts["state"].append(obs[:-1]); parts["next_state"].append(obs[1:])
        parts["action"].append(e.steps["action"][:-1]); parts["reward"].append(e.steps["reward"][:-1])
        parts["terminal"].append(e.steps["is_terminal"][1:])
        parts["episode"].append(np.full(T, e.index)); parts["step"].append(np.arange(T))
    return data.Transitions(**{name: np.concatenate(values) for name, values in parts.items()})
''',
    "ex3_wam": '''
def wam_tuples(episodes, key="observation/state"):
    # stores an empty instruction as the task "" instead of "unlabelled"
    parts = {name: [] for name in ("state", "language", "action", "next_state", "next_action", "episode", "step")}
    for e in episodes:
        k = e.num_actions - 1
        if k <= 0:
            continue
        s, a = e.steps[key], e.steps["action"]
        parts["state"].append(s[:k]); parts["action"].append(a[:k])
        parts["next_state"].append(s[1:k + 1]); parts["next_action"].append(a[1:k + 1])
        parts["language"].append(np.array([e.steps["language_instruction"][0]] * k, dtype=object))
        parts["episode"].append(np.full(k, e.index)); parts["step"].append(np.arange(k))
    return data.WamTuples(**{name: np.concatenate(values) for name, values in parts.items()})
''',
    "ex4_pyramid": '''
def pyramid_table(episodes):
    # counts the meaningless last-step action in the coverage
    table = {}
    for source in dict.fromkeys(e.metadata["source"] for e in episodes):
        mine = [e for e in episodes if e.metadata["source"] == source]
        actions = np.concatenate([e.steps["action"][:, :3] for e in mine])
        bins = np.minimum(((np.clip(actions, -1, 1) + 1) / 2 * 10).astype(int), 9)
        table[source] = {"episodes": len(mine),
                         "success_rate": float(np.mean([bool(e.metadata["success"]) for e in mine])),
                         "mean_length": float(np.mean([e.num_actions for e in mine])),
                         "coverage": len(np.unique(bins, axis=0)) / 1000}
    return table
''',
}
