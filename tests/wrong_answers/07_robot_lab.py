"""Chapter 7: plausible wrong answers that pass the visible tests; the hidden tests must catch each one.

The test cells run after the setup cell (tagged "setup"), so its names (np, os, pathlib, math,
tempfile, LIMITS, ...) are in scope."""

WRONG = {
    "ex1_clamp_target": '''
def clamp_target(proposed, reference, limits, max_step, control_freq):
    # limits the step first, then clips into the range: the same while the reference is inside the
    # range, but an arm that starts past its stop jumps back to the range in one period
    proposed = np.asarray(proposed, dtype=np.float64)
    reference = np.asarray(reference, dtype=np.float64)
    inside = np.clip(proposed, limits.lower, limits.upper)
    step = np.minimum(np.broadcast_to(max_step, proposed.shape), limits.max_velocity / control_freq)
    target = np.clip(reference + np.clip(proposed - reference, -step, step), limits.lower, limits.upper)
    reasons = [f"joint limit: {limits.names[i]}" for i in np.flatnonzero(inside != proposed)]
    reasons += [f"step limit: {limits.names[i]}" for i in np.flatnonzero(np.abs(target - inside) > 1e-12)]
    return target, reasons
''',
    "ex2_workspace_filter": '''
def workspace_filter(target, reference, tool_position, box, iterations=12):
    # a bisection that returns the end it knows to be *outside* the box: a hair past the wall
    target = np.asarray(target, dtype=np.float64)
    reference = np.asarray(reference, dtype=np.float64)
    if box.contains(tool_position(target)):
        return target, []
    if not box.contains(tool_position(reference)):
        if box.distance(tool_position(target)) < box.distance(tool_position(reference)):
            return target, []
        return reference.copy(), ["workspace: outside the box and not coming back: hold"]
    inside, outside = 0.0, 1.0
    for _ in range(iterations):
        middle = (inside + outside) / 2
        if box.contains(tool_position(reference + middle * (target - reference))):
            inside = middle
        else:
            outside = middle
    return reference + outside * (target - reference), ["workspace: shortened to the wall"]
''',
    "ex3_watchdog_state": '''
def watchdog_state(silent, hold_after, off_after, tripped):
    # ">" instead of ">=": at exactly off_after seconds of silence the torque stays on
    if tripped or silent > off_after:
        return "off"
    return "hold" if silent >= hold_after else "run"
''',
    "ex4_write_atomically": '''
def write_atomically(path, data, fsync=True):
    # careful, but the temporary file lives in the system's temporary folder (another file system,
    # often): the rename is then not one step, or fails
    path = pathlib.Path(path)
    fd, name = tempfile.mkstemp(suffix=".tmp")
    temporary = pathlib.Path(name)
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            f.flush()
            if fsync:
                os.fsync(f.fileno())
        os.replace(temporary, path)
        if fsync:
            folder = os.open(path.parent, os.O_RDONLY)
            try:
                os.fsync(folder)
            finally:
                os.close(folder)
    finally:
        temporary.unlink(missing_ok=True)
    return path
''',
    "ex5_next_deadline": '''
def next_deadline(now, deadline, period):
    # after a miss it moves the grid by one period only: right when a period runs a little late, but
    # after a long stall the next deadlines are already past, and the loop bursts through them
    if now <= deadline:
        return deadline + period, False, deadline - now
    tick = deadline + period
    return tick + period, True, max(0.0, tick - now)
''',
}
