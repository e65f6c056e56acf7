"""A toy world for planner tests: a point in the plane that moves by 0.1 * action per step.

Its best plan is known in closed form, so planners can be judged against the optimum and
against chance. An "ensemble" is several gains, one per member.
"""
import torch

from wmlib import planning

A_LOW, A_HIGH = -torch.ones(2), torch.ones(2)
TARGET = torch.tensor([0.25, -0.15])
DEVICES = ["cpu"] + (["cuda"] if torch.cuda.is_available() else [])


class PointModel:
    """s_t+1 = s_t + gain_e * 0.1 * a_t, one gain per ensemble member; counts its rollout calls
    and remembers the candidates of the last one."""

    def __init__(self, gains=(1.0,)):
        self.gains = torch.tensor(gains)
        self.calls, self.last = 0, None

    def rollout(self, state, actions):  # (D,), (N, H, A) -> (E, N, H, D)
        self.calls += 1
        self.last = actions.clone()
        moves = 0.1 * self.gains.to(state.device)[:, None, None, None] * actions[None]
        return state + moves.cumsum(dim=2)


def distance_cost(target):
    def cost(states, actions):  # (E, N, H, D), (N, H, A) -> (E, N, H)
        return (states - target.to(states.device)).norm(dim=-1)
    return cost


def plan_cost(plan, model=None, cost=None, state=torch.zeros(2)):
    """Total cost of one plan (H, A) from `state`."""
    return float(planning.total_cost(model or PointModel(), cost or distance_cost(TARGET), state, plan[None]))


def chance_cost(n=256, horizon=6):
    """The mean total cost of uniformly random plans."""
    random_plans = torch.rand(n, horizon, 2, generator=torch.Generator().manual_seed(1)) * 2 - 1
    return float(planning.total_cost(PointModel(), distance_cost(TARGET), torch.zeros(2), random_plans).mean())


def best_possible_cost(horizon=6):
    """Straight at the target at full speed (0.1 per step per axis), then stay: the optimum."""
    best, position = torch.zeros(horizon, 2), torch.zeros(2)
    for t in range(horizon):
        best[t] = torch.clamp((TARGET - position) / 0.1, -1, 1)
        position = position + 0.1 * best[t]
    return plan_cost(best)
