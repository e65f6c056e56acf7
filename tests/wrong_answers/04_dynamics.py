"""Chapter 4: plausible wrong answers that pass the visible tests; the hidden tests must catch each one.

The test cells run after the setup cell (tagged "setup"), so its names (np, torch, ev, models, EnsembleDeltaModel, ...)
are in scope."""

WRONG = {
    "ex1_delta_loss": '''
def delta_loss(predicted_change, state, next_state, delta_mean, delta_std, weight=None):
    # the right number, but it normalises the caller's bootstrap weights in place (to save a copy)
    target = (next_state - state - delta_mean) / delta_std
    error = (predicted_change - target).pow(2).mean(dim=-1)
    if weight is None:
        return error.mean()
    weight = weight.T
    weight /= weight.sum()
    return (weight * error).sum()
''',
    "ex2_rollout": '''
def rollout(model, state, actions):
    # right numbers, but a Python loop over members: E model calls per step instead of one
    E = model.members
    N, H, A = actions.shape
    s = torch.as_tensor(state, dtype=torch.float32).expand(E, N, -1)
    predicted = []
    for t in range(H):
        s = torch.stack([model(s, actions[:, t].expand(E, N, A))[e] for e in range(E)])
        predicted.append(s)
    return torch.stack(predicted, dim=2)
''',
    "ex3_drift": '''
def drift(predicted, actual, scale):
    # scores an ensemble by its members' errors pooled together, not by the error of its mean
    error = (predicted - actual) / scale
    if error.ndim == 4:
        return error.pow(2).mean(dim=(0, 1)).sqrt()
    return error.pow(2).mean(dim=0).sqrt()
''',
    "ex4_disagreement": '''
def disagreement(predictions, scale):
    # the right formula, computed in single precision whatever the predictions' precision
    return (predictions.float().std(dim=0) / scale.float()).mean(dim=-1)
''',
}
