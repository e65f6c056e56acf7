"""Learned models: a convolutional encoder from frames to state, a one-step dynamics model, their training,
and a tiny World Action Model (``wmlib.models.wam``: policy, world model and both, on one backbone).

    from wmlib import models
    encoder = models.ConvEncoder(out_dim=6)               # frames -> gripper and cube position
    dynamics = models.DeltaModel(state_dim=6, action_dim=4)  # (s_t, a_t) -> s_t+1
    ensemble = models.EnsembleDeltaModel(6, 4, members=5)  # 5 of them as one tensor program
    history = models.fit(dynamics, train={...}, val={...}, seed=0)

World models learned from pixels, one module per family, all behind one contract
(``wmlib.models.latent``: filter observations into a latent, imagine under actions, plan with
chapter 5's planners through ``LatentPlanningModel``): ``vmc`` (World Models: VAE, mixture
memory, a controller found inside the model), ``rssm`` (PlaNet/Dreamer), ``frame_predictor``
(UniSim-style frames), ``jepa`` (next-embedding prediction), ``task_latent`` (TD-MPC2) and
``value_equivalent`` (MuZero); ``pixels`` holds the frame encoder and decoder they share.

Everything here takes tensors on any device; build models under ``torch.manual_seed``
and pass ``seed=`` to ``fit`` for runs that repeat exactly.
"""
from wmlib.models.dynamics import MLP, DeltaModel
from wmlib.models.ensemble import EnsembleDeltaModel, delta_loss, disagreement
from wmlib.models.encoder import ConvEncoder, encoder_loss, preprocess, soft_argmax
from wmlib.models.normaliser import Normaliser
from wmlib.models.train import History, count_parameters, episode_split, fit

__all__ = ["ConvEncoder", "DeltaModel", "EnsembleDeltaModel", "delta_loss", "disagreement", "History", "MLP",
           "Normaliser", "count_parameters", "encoder_loss", "episode_split", "fit", "preprocess", "soft_argmax"]
