"""Whole planning calls per second on a learned ensemble, against a per-candidate loop and the matmul roofline.

    python benchmarks/planner.py [--device cpu|cuda] [--threads 1] [--repeats 10] [--out results.json]

One planning call (``wmlib.planning.mppi`` or ``cem`` with ``disagreement_penalty``) samples
candidates, rolls every one out in every ensemble member (``EnsembleDeltaModel.rollout``),
scores them with the penalised cost and refits its sampling distribution, ``iterations`` times.
It is measured at two shapes:

- ``tdmpc2``: TD-MPC2's planner (MPPI, 512 samples, horizon 3, 6 iterations, 64 elites) on an
  ensemble of 5 MLPs with hidden width 512, state 30-D, action 4-D;
- ``course``: what chapter 5 plans with on the CPU (``COURSE``: CEM on PushCube-v1's 35-D state
  with the chapter's ensemble; the same settings as ``benchmarks/control.py``).

In the same run: the same planner whose model rolls out one candidate at a time (a Python loop
over candidates; members stay batched), the same again with a loop over members too (as
``benchmarks/rollouts.py``'s loop), and a 2048 x 2048 fp32 matmul, this machine's practical
FLOP/s (measured before and after; fractions are of the faster). FLOPs count the ensemble's
linear layers only (2 * in * out per member, row and layer, for E * N * H rows per iteration),
so the fraction of the matmul's FLOP/s says how much of the machine a whole planning call
(sampling, sorting, cost and all) turns into model evaluations. The loops' own fractions bound
any speed-up over them: a planner at 100% of the matmul is 1 / (loop's fraction) times the loop.
Timings are the best of several repeats; the load average is recorded with them.
"""
import argparse
import os
import time

import torch

from common import write

from wmlib import planning
from wmlib.models.ensemble import EnsembleDeltaModel, EnsembleLinear

# chapter 5's CPU planner on PushCube-v1 (benchmarks/control.py plans with these)
COURSE = {"members": 5, "hidden": (256, 256), "state_dim": 35, "action_dim": 4, "method": "cem",
          "horizon": 6, "num_samples": 256, "num_elites": 32, "iterations": 4}
TDMPC2 = {"members": 5, "hidden": (512, 512), "state_dim": 30, "action_dim": 4, "method": "mppi",
          "horizon": 3, "num_samples": 512, "num_elites": 64, "iterations": 6, "temperature": 0.5}


def sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize()


def best_time(fn, repeats: int, device: torch.device, inner: int = 1) -> float:
    """The fastest of ``repeats`` timings of ``inner`` calls, per call (after one warm-up call)."""
    fn()
    sync(device)
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        for _ in range(inner):
            fn()
        sync(device)
        times.append((time.perf_counter() - start) / inner)
    return min(times)


def matmul_flops(device: torch.device, n: int = 2048, repeats: int = 10) -> float:
    """FLOP/s of an n x n fp32 matrix product (2 n^3 FLOPs)."""
    a, b = torch.randn(n, n, device=device), torch.randn(n, n, device=device)
    inner = 20 if device.type == "cuda" else 1
    return 2 * n ** 3 / best_time(lambda: a @ b, repeats, device, inner)


def linear_flops_per_row(model: EnsembleDeltaModel) -> int:
    """FLOPs of one member's linear layers for one state and action: sum of 2 * in * out."""
    return sum(2 * m.weight.shape[1] * m.weight.shape[2] for m in model.net if isinstance(m, EnsembleLinear))


class OneAtATime:
    """The same model, asked about one candidate at a time: a Python loop over candidates."""

    def __init__(self, model):
        self.model = model

    def rollout(self, state, actions):  # (D,), (N, H, A) -> (E, N, H, D)
        return torch.cat([self.model.rollout(state, actions[i:i + 1]) for i in range(actions.shape[0])], dim=1)


class OneMemberAtATime:
    """The same ensemble as E separate one-member models, asked about one candidate at a time."""

    def __init__(self, model: EnsembleDeltaModel):
        self.members = []
        for e in range(model.members):
            one = EnsembleDeltaModel(model.state_dim, model.action_dim, members=1,
                                     hidden=tuple(m.weight.shape[2] for m in model.net
                                                  if isinstance(m, EnsembleLinear))[:-1])
            one.load_state_dict({k: (v[e:e + 1] if k.startswith("net.") else v) for k, v in model.state_dict().items()})
            self.members.append(one.to(model.device))

    def rollout(self, state, actions):  # (D,), (N, H, A) -> (E, N, H, D)
        return torch.cat([torch.cat([m.rollout(state, actions[i:i + 1]) for i in range(actions.shape[0])], dim=1)
                          for m in self.members], dim=0)


def quadratic_cost(goal: torch.Tensor):
    """A task-free stand-in for a task cost: squared distance of each predicted state to ``goal``."""
    def cost(states, actions):  # (E, N, H, D), (N, H, A) -> (E, N, H)
        return (states - goal).pow(2).sum(dim=-1)
    return cost


def build(shape: dict, device: torch.device):
    """A seeded ensemble with fitted normalisers, a start state, a penalised cost and a planning call."""
    torch.manual_seed(0)
    d, a = shape["state_dim"], shape["action_dim"]
    model = EnsembleDeltaModel(d, a, members=shape["members"], hidden=tuple(shape["hidden"]))
    g = torch.Generator().manual_seed(0)
    s, u = torch.randn(2000, d, generator=g), torch.rand(2000, a, generator=g) * 2 - 1
    model.fit_normalisers(s, u, s + 0.05 * torch.randn(2000, d, generator=g))
    model = model.to(device)
    state = torch.randn(d, generator=g).to(device)
    cost = planning.disagreement_penalty(quadratic_cost(torch.randn(d, generator=g).to(device)), weight=1.0)
    low, high = -torch.ones(a, device=device), torch.ones(a, device=device)
    settings = {k: shape[k] for k in ("horizon", "num_samples", "num_elites", "iterations")}
    if shape["method"] == "mppi":
        settings["temperature"] = shape["temperature"]
    planner = getattr(planning, shape["method"])
    generator = torch.Generator(device=device).manual_seed(0)

    def plan(m):
        return planner(m, cost, state, low=low, high=high, generator=generator, **settings)

    return model, plan


def measure(name: str, shape: dict, device: torch.device, repeats: int, matmul: float) -> dict:
    model, plan = build(shape, device)
    e, n, h, it = shape["members"], shape["num_samples"], shape["horizon"], shape["iterations"]
    model_steps = e * n * h * it  # (member, candidate, step) evaluations per planning call
    flops = linear_flops_per_row(model) * model_steps
    batched = best_time(lambda: plan(model), repeats, device, inner=3)
    rollout_only = best_time(lambda: model.rollout(torch.zeros(shape["state_dim"], device=device),
                                                   torch.zeros(n, h, shape["action_dim"], device=device)),
                             repeats, device, inner=3) * it
    loop = best_time(lambda: plan(OneAtATime(model)), 1, device)  # slow: one timed call after a warm-up
    alone = OneMemberAtATime(model)
    assert torch.allclose(alone.rollout(torch.zeros(shape["state_dim"], device=device),
                                        torch.zeros(2, h, shape["action_dim"], device=device)),
                          model.rollout(torch.zeros(shape["state_dim"], device=device),
                                        torch.zeros(2, h, shape["action_dim"], device=device)), atol=1e-4)
    start = time.perf_counter()
    plan(alone)  # slower still: one timed call
    sync(device)
    member_loop = time.perf_counter() - start

    def entry(seconds: float) -> dict:
        return {"seconds_per_plan": seconds, "plans_per_s": 1 / seconds, "model_steps_per_s": model_steps / seconds,
                "gflop_per_s": flops / seconds / 1e9, "fraction_of_matmul": flops / seconds / matmul}

    result = {"shape": shape, "model_steps_per_plan": model_steps, "gflop_per_plan": flops / 1e9,
              "batched_planner": entry(batched), "per_candidate_loop_planner": entry(loop),
              "per_member_and_candidate_loop_planner": entry(member_loop),
              "speedup_over_loop": loop / batched, "speedup_over_member_and_candidate_loop": member_loop / batched,
              "rollouts_alone_fraction_of_plan_time": rollout_only / batched}
    print(f"{name}: {1 / batched:.1f} plans/s, {flops / batched / 1e9:.1f} GFLOP/s = "
          f"{flops / batched / matmul:.0%} of the first matmul measurement, "
          f"{loop / batched:.0f}x the per-candidate loop, "
          f"{member_loop / batched:.0f}x the per-(member, candidate) loop")
    return result


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--device", default="cpu", help="cpu or cuda (default cpu)")
    parser.add_argument("--threads", type=int, default=1,
                        help="torch CPU threads (default 1: on a shared 2-core machine two threads wait for each "
                             "other, and the course's notebooks plan on one; 0 = torch's own choice)")
    parser.add_argument("--repeats", type=int, default=10)
    parser.add_argument("--out", default=None)
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    device = torch.device(args.device)
    load_before = os.getloadavg()
    with torch.no_grad():
        matmul = matmul_flops(device)
        shapes = {"tdmpc2": measure("tdmpc2", TDMPC2, device, args.repeats, matmul),
                  "course": measure("course", COURSE, device, args.repeats, matmul)}
        matmul_after = matmul_flops(device)
    # the fractions are taken of the faster of the two matmul measurements (the conservative one)
    roofline = max(matmul, matmul_after)
    for name, result in shapes.items():
        for entry in result.values():
            if isinstance(entry, dict) and "gflop_per_s" in entry:
                entry["fraction_of_matmul"] = entry["gflop_per_s"] * 1e9 / roofline
        # a planner running at the matmul's full FLOP/s would be this many times the loop: the most any could gain
        for loop in ("per_candidate_loop_planner", "per_member_and_candidate_loop_planner"):
            result[f"ceiling_over_{loop}"] = 1 / result[loop]["fraction_of_matmul"]
        print(f"{name}: {result['batched_planner']['fraction_of_matmul']:.0%} of the faster matmul measurement; "
              f"a planner at 100% would be {result['ceiling_over_per_candidate_loop_planner']:.0f}x the per-candidate "
              f"loop, {result['ceiling_over_per_member_and_candidate_loop_planner']:.0f}x "
              "the per-(member, candidate) loop")
    write("planner" if device.type == "cpu" else f"planner_{device.type}", {
        "device": str(device),
        "matmul_2048_fp32_gflop_per_s": matmul / 1e9,
        "matmul_2048_fp32_gflop_per_s_after": matmul_after / 1e9,
        "shapes": shapes,
        "load_average_before": load_before,
        "load_average_after": os.getloadavg(),
        "notes": "a plan = one whole planner call (sampling, rollouts, disagreement-penalised cost, elites, refit); "
                 "model steps = members x candidates x horizon x iterations; FLOPs count the linear layers only; "
                 "the per-candidate loop is the same planner with the model asked about one candidate at a time",
    }, args.out)


if __name__ == "__main__":
    main()
