"""The latent world models learned from pixels: their losses, their shapes, and that they learn."""
import pytest
import torch

from wmlib import data
from wmlib.models import pixels, rssm

FIXTURE = "datasets/fixture/wmr_maniskill/push_cube/1.0.0"


@pytest.fixture(scope="module")
def windows():
    seq = data.sequences(data.load(FIXTURE, images=True), frame_size=64)
    starts = seq.starts(length=4)
    return seq, seq.window(starts[:: max(1, len(starts) // 24)][:24], length=4)


def test_the_encoder_and_decoder_keep_leading_axes_and_refuse_a_bad_frame_size():
    enc = pixels.FrameEncoder(embed_dim=32)
    frames = torch.randint(0, 256, (2, 3, 64, 64, 3), dtype=torch.uint8)
    assert enc(frames).shape == (2, 3, 32)
    dec = pixels.FrameDecoder(latent_dim=10)
    with torch.no_grad():
        drawn = dec(torch.zeros(2, 3, 10))
    assert drawn.shape == (2, 3, 3, 64, 64) and 0 <= float(drawn.min()) and float(drawn.max()) <= 1
    with pytest.raises(ValueError, match="halved"):
        pixels.FrameEncoder(image_size=60)


def test_gaussian_kl_agrees_with_torch_distributions():
    g = torch.Generator().manual_seed(0)
    mq, mp = torch.randn(5, 3, generator=g), torch.randn(5, 3, generator=g)
    sq, sp = torch.rand(5, 3, generator=g) + 0.2, torch.rand(5, 3, generator=g) + 0.2
    expected = torch.distributions.kl_divergence(torch.distributions.Normal(mq, sq),
                                                 torch.distributions.Normal(mp, sp)).sum(-1)
    assert torch.allclose(rssm.gaussian_kl(mq, sq, mp, sp), expected, atol=1e-5)


def test_kl_balancing_splits_the_gradient_and_free_nats_floor_it():
    mq, sq = torch.zeros(4, 2, requires_grad=True), torch.ones(4, 2)
    mp, sp = torch.full((4, 2), 3.0, requires_grad=True), torch.ones(4, 2)
    loss = rssm.kl_balanced(mq, sq, mp, sp, balance=0.8, free_nats=0.0)
    assert float(loss.detach()) == pytest.approx(float(rssm.gaussian_kl(mq, sq, mp, sp).mean().detach()), rel=1e-6)
    loss.backward()
    plain_q = -(mp.detach() - mq.detach()) / 4          # d KL.mean() / d mean_q, per entry (4 rows)
    assert torch.allclose(mq.grad, 0.2 * plain_q) and torch.allclose(mp.grad, -0.8 * plain_q)
    close = rssm.kl_balanced(mq, sq, mq.detach() + 0.01, sp, free_nats=1.0)
    assert float(close.detach()) == pytest.approx(1.0), "a KL under the free nats counts as the free nats"


def test_the_rssm_filters_imagines_and_learns(windows):
    seq, batch = windows
    torch.manual_seed(0)
    model = rssm.RSSM(proprio_dim=seq.proprio.shape[1], action_dim=4, deter=32, stoch=8, embed_dim=32, hidden=32)
    model.encoder.proprio_norm.fit(torch.as_tensor(seq.proprio))
    carry = model.filter_step(model.initial(2), torch.zeros(2, 4), batch["frames"][:2, 0], batch["proprio"][:2, 0])
    features, rewards = model.imagine(carry, batch["action"][:2])
    assert features.shape == (2, 4, model.feature_dim) and rewards.shape == (2, 4)
    optimiser = torch.optim.Adam(model.parameters(), lr=3e-3)
    with torch.no_grad():
        first = float(model.loss(**batch))
    for _ in range(40):
        loss = model.loss(**batch)
        optimiser.zero_grad()
        loss.backward()
        optimiser.step()
    with torch.no_grad():
        last = float(model.loss(**batch))
    assert last < 0.7 * first, f"the loss fell from {first:.1f} to {last:.1f} only"
    assert set(model.last_parts) == {"reconstruction", "reward", "kl"}
