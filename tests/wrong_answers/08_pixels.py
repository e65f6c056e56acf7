"""Chapter 8: plausible wrong answers that pass the visible tests; the hidden tests must catch each one.

The test cells run after the setup cell (tagged "setup"), so its names (np, torch, rssm, jepa,
task_latent, latent, ridge_fit, ...) are in scope."""

WRONG = {
    "ex1_kl_balanced": '''
def kl_balanced(post_mean, post_std, prior_mean, prior_std, balance=0.8, free_nats=1.0):
    # the right number, but the detaches are swapped: balance trains the posterior, not the prior
    def kl(mean_q, std_q, mean_p, std_p):
        return (torch.log(std_p / std_q) + (std_q ** 2 + (mean_q - mean_p) ** 2) / (2 * std_p ** 2) - 0.5).sum(-1)

    train_post = kl(post_mean, post_std, prior_mean.detach(), prior_std.detach()).mean()
    train_prior = kl(post_mean.detach(), post_std.detach(), prior_mean, prior_std).mean()
    floor = torch.tensor(free_nats)
    return balance * torch.maximum(train_post, floor) + (1 - balance) * torch.maximum(train_prior, floor)
''',
    "ex2_consistency_loss": '''
def consistency_loss(predicted, target, rho=0.5):
    # the right number, but the target is not detached: the model can move its own target
    if predicted.shape != target.shape or predicted.ndim != 3:
        raise ValueError("predicted and target must both be (B, H, D)")
    weights = rho ** torch.arange(predicted.shape[1], dtype=predicted.dtype)
    per_step = ((predicted - target) ** 2).sum(-1).mean(0)
    return (weights * per_step).sum() / weights.sum()
''',
    "ex3_collapse_guard": '''
def collapse_guard(z, target_std=1.0, covariance_weight=0.04):
    # the 1e-4 added after the square root: the same values, but an infinite gradient on a collapsed batch
    if z.ndim != 2 or len(z) < 2:
        raise ValueError("need (N >= 2, D)")
    std = torch.sqrt(z.var(dim=0)) + 0.01 * (z.var(dim=0) == 0)
    variance = torch.relu(target_std - std).mean()
    centred = z - z.mean(dim=0)
    cov = centred.T @ centred / (len(z) - 1)
    off_diagonal = cov - torch.diag(torch.diag(cov))
    return variance + covariance_weight * (off_diagonal ** 2).sum() / z.shape[1]
''',
    "ex4_linear_probe": '''
def linear_probe(train_x, train_y, test_x, test_y, ridge=1e-3):
    # right, except that the ridge asked for is never passed on
    test_x, test_y = (torch.as_tensor(v, dtype=torch.float64) for v in (test_x, test_y))
    predict = ridge_fit(train_x, torch.as_tensor(train_y, dtype=torch.float64))
    residual = ((predict(test_x) - test_y) ** 2).sum(0)
    total = ((test_y - test_y.mean(0)) ** 2).sum(0).clamp_min(1e-12)
    return 1 - residual / total
''',
    "ex5_n_step_return": '''
def n_step_return(rewards, continues, terminal_value, discount):
    # an ending cuts the terminal value, but the rewards after it still count
    n = rewards.shape[1]
    powers = discount ** torch.arange(n, dtype=rewards.dtype)
    alive = continues.prod(dim=1)
    return (rewards * powers).sum(1) + alive * discount ** n * terminal_value
''',
}
