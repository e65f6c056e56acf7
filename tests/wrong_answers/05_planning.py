"""Chapter 5: plausible wrong answers that pass the visible tests; the hidden tests must catch each one.

The test cells run after the setup cell (tagged "setup"), so its names (np, torch, planning, same, ...)
are in scope."""

WRONG = {
    "ex1_cem_update": '''
def cem_update(candidates, costs, num_elites):
    # the cheapest by the size of the cost: right while every cost is positive, wrong once a cost is negative
    _, order = torch.topk(costs.abs(), num_elites, largest=False)
    elites = candidates[order]
    return elites.mean(dim=0), elites.std(dim=0, unbiased=False)
''',
    "ex2_mppi_weights": '''
def mppi_weights(costs, temperature):
    # the textbook formula without subtracting the minimum: exp underflows to 0 for large costs, and 0/0 is NaN
    weights = torch.exp(-costs / temperature)
    return weights / weights.sum()
''',
    "ex3_penalised_cost": '''
def disagreement_penalty(cost, weight, scale):
    # averages the raw spreads first and divides by the mean scale: right only when every component has the same scale
    def penalised(states, actions):
        base = cost(states, actions)
        if states.shape[0] < 2:
            return base
        return base + weight * states.std(dim=0).mean(dim=-1) / scale.mean()
    return penalised
''',
    "ex4_receding_horizon": '''
def receding_horizon(plan_fn, step_fn, state, *, replan_every, max_steps):
    # replans on time, but offers the previous plan unshifted as the warm start: its first actions are already done
    states, actions = [state], []
    plan, used = None, 0
    while len(actions) < max_steps:
        if plan is None or used >= min(replan_every, len(plan)):
            plan, used = plan_fn(state, plan), 0
        action = plan[used]
        used += 1
        state, done = step_fn(action)
        states.append(state)
        actions.append(action)
        if done:
            break
    return torch.stack(states), torch.stack(actions)
''',
}
