"""Batched ensemble rollouts per second, against a Python loop and against this machine's matmul.

    python benchmarks/rollouts.py [--members 5 --candidates 256 --horizon 10 --hidden 256 256]

One ``EnsembleDeltaModel.rollout`` evaluates E members x N candidate action sequences x H steps
as one tensor program (a loop over the horizon only). In the same run it measures

- the same rollout as a Python loop over members and candidates (one state at a time, the same
  weights and arithmetic), and the rollout as H plain calls of the model (normalising at each step);
- a 2048 x 2048 fp32 matrix product, this machine's practical FLOP/s for dense linear algebra.

Achieved FLOP/s counts the linear layers only (2 * in * out per row and layer), so the fraction
of the matmul's FLOP/s says how much of the machine the rollout uses. Each run interleaves the
rollouts with the matmul, at one thread count, so that both see the same conditions; rates use
the best of the repeats (the least disturbed by other processes), and the medians and the load
average are recorded beside them. By default it measures torch's own thread count and one thread.
"""
import argparse
import os
import statistics
import time

import torch

from common import write

from wmlib.models.ensemble import EnsembleDeltaModel, EnsembleLinear

STATE_DIM, ACTION_DIM = 35, 4  # PushCube-v1 state and pd_ee_delta_pos action, as in the course dataset


def once(fn, inner: int = 1) -> float:
    """Seconds per call of `inner` back-to-back calls."""
    start = time.perf_counter()
    for _ in range(inner):
        fn()
    return (time.perf_counter() - start) / inner


def summary(times: list[float]) -> dict:
    return {"best_s": min(times), "median_s": statistics.median(times), "repeats": len(times)}


def linear_flops_per_row(model: EnsembleDeltaModel) -> int:
    """FLOPs of one member's linear layers for one state and action: sum of 2 * in * out."""
    return sum(2 * m.weight.shape[1] * m.weight.shape[2] for m in model.net if isinstance(m, EnsembleLinear))


@torch.no_grad()
def loop_rollout(model: EnsembleDeltaModel, state: torch.Tensor, actions: torch.Tensor) -> torch.Tensor:
    """The rollout written as Python loops over members and candidates: one state at a time."""
    linear = [(m.weight, m.bias) for m in model.net if isinstance(m, EnsembleLinear)]
    mean_in, std_in = model.input_norm.mean, model.input_norm.std
    mean_d, std_d = model.delta_norm.mean, model.delta_norm.std
    n, horizon, _ = actions.shape
    out = torch.empty(model.members, n, horizon, model.state_dim)
    for e in range(model.members):
        for c in range(n):
            s = state[c]
            for t in range(horizon):
                x = (torch.cat([s, actions[c, t]]) - mean_in) / std_in
                for i, (w, b) in enumerate(linear):
                    x = x @ w[e] + b[e, 0]
                    if i < len(linear) - 1:
                        x = torch.nn.functional.silu(x)
                s = s + x * std_d + mean_d
                out[e, c, t] = s
    return out


@torch.no_grad()
def stepwise_rollout(model: EnsembleDeltaModel, state: torch.Tensor, actions: torch.Tensor) -> torch.Tensor:
    """The rollout as H calls of the model on all members and candidates (normalising every step)."""
    s, out = state, []
    for t in range(actions.shape[1]):
        s = model(s, actions[:, t].expand(model.members, -1, -1))
        out.append(s)
    return torch.stack(out, dim=2)


def measure(hidden: tuple[int, ...], E: int, N: int, H: int, repeats: int, loops: int) -> dict:
    """Batched, stepwise and looped rollouts of one model, each interleaved with the 2048 matmul."""
    torch.manual_seed(0)
    model = EnsembleDeltaModel(STATE_DIM, ACTION_DIM, members=E, hidden=hidden)
    g = torch.Generator().manual_seed(0)
    s, a = torch.randn(1000, STATE_DIM, generator=g), torch.rand(1000, ACTION_DIM, generator=g) * 2 - 1
    model.fit_normalisers(s, a, s + 0.05 * torch.randn(1000, STATE_DIM, generator=g))
    state = torch.randn(N, STATE_DIM, generator=g)
    actions = torch.rand(N, H, ACTION_DIM, generator=g) * 2 - 1
    m1, m2 = torch.randn(2048, 2048, generator=g), torch.randn(2048, 2048, generator=g)
    jobs = {"matmul": (lambda: m1 @ m2, 1), "batched": (lambda: model.rollout(state, actions), 3),
            "stepwise": (lambda: stepwise_rollout(model, state, actions), 3)}
    times = {name: [] for name in [*jobs, "loop"]}
    for fn, _ in jobs.values():                                      # warm up
        fn()
    loop_at = set(range(0, repeats, max(1, repeats // loops)))
    for r in range(repeats):                                         # interleaved: each sees the same conditions
        for name, (fn, inner) in jobs.items():
            times[name].append(once(fn, inner))
        if r in loop_at:
            times["loop"].append(once(lambda: loop_rollout(model, state, actions)))
    agree = float((model.rollout(state, actions) - loop_rollout(model, state, actions)).abs().max())

    flops = linear_flops_per_row(model) * E * N * H
    matmul = 2 * 2048 ** 3 / min(times["matmul"])

    def entry(name: str) -> dict:
        best = min(times[name])
        return {**summary(times[name]), "rollouts_per_s": E * N / best, "candidates_per_s": N / best,
                "gflop_per_s": flops / best / 1e9, "fraction_of_matmul": flops / best / matmul}

    return {
        "shape": {"members": E, "candidates": N, "horizon": H, "state_dim": STATE_DIM, "action_dim": ACTION_DIM,
                  "hidden": list(hidden)},
        "flops_per_rollout_call": flops,
        "matmul_2048_fp32": {**summary(times["matmul"]), "gflop_per_s": matmul / 1e9},
        "batched": entry("batched"),
        "stepwise_model_calls": entry("stepwise"),
        "python_loop_over_members_and_candidates": entry("loop"),
        "speedup_over_loop": min(times["loop"]) / min(times["batched"]),
        "speedup_over_stepwise": min(times["stepwise"]) / min(times["batched"]),
        "max_abs_difference_batched_vs_loop": agree,
    }


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--members", type=int, default=5)
    parser.add_argument("--candidates", type=int, default=256)
    parser.add_argument("--horizon", type=int, default=10)
    parser.add_argument("--hidden", type=int, nargs="+", default=[256, 256],
                        help="hidden widths of the benchmarked model (default: EnsembleDeltaModel's)")
    parser.add_argument("--also-hidden", type=int, nargs="*", default=[128, 128],
                        help="a second model measured the same way (default: the chapter 4 notebook's width)")
    parser.add_argument("--threads", type=int, nargs="+", default=None,
                        help="torch thread counts to measure, each in turn (default: torch's own choice, then 1)")
    parser.add_argument("--repeats", type=int, default=30)
    parser.add_argument("--loops", type=int, default=3, help="timings of the (slow) Python loop")
    parser.add_argument("--out", default=None)
    args = parser.parse_args()
    threads = args.threads or sorted({torch.get_num_threads(), 1}, reverse=True)
    E, N, H = args.members, args.candidates, args.horizon
    runs = []
    for n_threads in threads:
        torch.set_num_threads(n_threads)
        for hidden in [args.hidden] + ([args.also_hidden] if args.also_hidden else []):
            load = os.getloadavg()
            runs.append({"threads": n_threads, "load_average_before": load,
                         **measure(tuple(hidden), E, N, H, args.repeats, args.loops)})
    write("rollouts", {
        "runs": runs,
        "notes": ("rollouts = (member, candidate) pairs rolled out H steps; FLOPs count the linear layers only; "
                  "the matmul is measured with the same thread count, interleaved with the rollouts; rates and "
                  "fractions use the best of the repeats (the least disturbed by other processes), medians are "
                  "recorded beside them. On a shared 2-core machine, two threads suffer most from other processes."),
    }, args.out)
    print(f"\n{'threads':>7s} {'hidden':>10s} {'rollouts/s':>11s} {'GFLOP/s':>8s} {'matmul GFLOP/s':>15s} "
          f"{'of matmul':>10s} {'x loop':>7s} {'load':>5s}")
    for r in runs:
        b = r["batched"]
        print(f"{r['threads']:7d} {str(r['shape']['hidden']):>10s} {b['rollouts_per_s']:11.0f} {b['gflop_per_s']:8.1f} "
              f"{r['matmul_2048_fp32']['gflop_per_s']:15.1f} {b['fraction_of_matmul']:10.0%} "
              f"{r['speedup_over_loop']:7.0f} {r['load_average_before'][0]:5.2f}")


if __name__ == "__main__":
    main()
