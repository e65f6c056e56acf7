"""Chapter 2: plausible wrong answers that pass the visible tests; the hidden tests must catch each one.

The test cells run after the setup cell (tagged "setup"), so its names (torch, env, layout, tasks,
control, scripted, snapshot, restore, current_state, ...) are in scope."""

# The checks run in the chapter's kernel after the whole notebook; the simulator remembers contacts
# across resets, so each check gets a world as fresh as the set-up cell's.
FRESH = '''
env.close()
env = envs.make(ENV_ID, obs_mode="state", seed=0)
env.reset()
layout = env.state_layout
'''

WRONG = {
    "ex1_cost": '''
def push_cost(states, layout, reach_weight=0.5, behind=0.04):
    # PushCube's goal starts in +x of the cube, so this always pushes from -x
    tcp = states[..., layout["extra/tcp_pose"]][..., :3]
    cube = states[..., layout["extra/obj_pose"]][..., :3]
    goal = states[..., layout["extra/goal_pos"]][..., :3]
    to_goal = (cube[..., :2] - goal[..., :2]).norm(dim=-1)
    point = torch.stack([cube[..., 0] - behind, cube[..., 1], torch.full_like(cube[..., 0], tasks.CUBE_HALF)], dim=-1)
    return to_goal + reach_weight * (tcp - point).norm(dim=-1)
''',
    "ex2_plan_step": '''
def plan_step(env, candidates, cost):
    # forgets the candidate axis: hands the cost states (1, H, D) and actions (H, A), which a cost
    # that reads only the last axis forgives and the planner's contract (1, n, H, D) does not
    saved = snapshot(env)
    totals = []
    for sequence in candidates:
        restore(env, saved)
        states = []
        for action in sequence:
            env.step(action)
            states.append(current_state(env))
        totals.append(cost(torch.stack(states)[None], sequence).sum())
    restore(env, saved)
    totals = torch.stack(totals)
    return candidates[int(totals.argmin())], totals
''',
    "ex3_loops": '''
RECORDED = {}


def open_vs_closed(env, seed, offset):
    # records the scripted controller once and reuses that recording for every seed after
    if "actions" not in RECORDED:
        RECORDED["actions"] = control.run_episode(env, scripted.controller_for(ENV_ID, layout), seed=seed).actions
    shifted = lambda e: tasks.shift_cube(e, offset)
    replayed = control.run_episode(env, control.replay(RECORDED["actions"]), seed=seed, start=shifted)
    closed = control.run_episode(env, scripted.controller_for(ENV_ID, layout), seed=seed,
                                 start=lambda e: tasks.shift_cube(e, offset))
    return (replayed.success, closed.success)
''',
}
