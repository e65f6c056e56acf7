"""Chapter 6: plausible wrong answers that pass the visible tests; the hidden tests must catch each one.

The test cells run after the setup cell (tagged "setup"), so its names (np, torch, wam, wx, ...)
are in scope."""

WRONG = {
    "ex1_joint_loss": '''
def joint_loss(action_error, future_error, labelled, weight):
    # the right formula, but it masks the caller's tensor in place (to save a copy)
    labelled = labelled.float()
    action_error *= labelled
    return action_error.sum() / labelled.sum().clamp_min(1.0) + weight * future_error.mean()
''',
    "ex2_recoverability": '''
def recoverability(error_imagined, error_true, error_blind):
    # clips at 0 but not at 1: a lucky imagined future "recovers more than the truth"
    if error_blind <= error_true:
        raise ValueError("the judge recovers nothing from true futures")
    return float(max(0.0, (error_blind - error_imagined) / (error_blind - error_true)))
''',
    "ex3_rank_chunks": '''
def rank_chunks(model, frames, robot, instructions, candidates=16, noise=0.3, seed=0):
    # right ranking, but it tracks gradients through every imagined future
    h = model.encode(frames, robot, instructions)
    proposal = model.act_chunk(h)
    jitter = torch.randn((candidates - 1, *proposal.shape[1:]), generator=torch.Generator().manual_seed(seed))
    chunks = torch.cat([proposal, proposal + noise * jitter]).clamp(-1, 1)
    imagined = model.imagine(h.expand(candidates, -1), chunks)
    return chunks[int(torch.argmax(imagined.reward))][None]
''',
    "ex4_paired_difference": '''
def paired_difference(a, b, confidence=0.95):
    # Student's t with n - 1 degrees of freedom, but always at 95%, whatever confidence is asked for
    from scipy.stats import t as student_t

    a, b = np.asarray(a, dtype=float).reshape(-1), np.asarray(b, dtype=float).reshape(-1)
    if len(a) != len(b) or len(a) < 2:
        raise ValueError("need at least 2 pairs of equal length")
    d = a - b
    mean = float(d.mean())
    half = float(student_t.ppf(0.975, len(d) - 1) * d.std(ddof=1) / np.sqrt(len(d)))
    return {"mean": mean, "low": mean - half, "high": mean + half, "n": len(d), "confidence": confidence,
            "within_noise": bool(mean - half <= 0 <= mean + half)}
''',
}
