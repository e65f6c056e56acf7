"""wmlib.eval: success rates with Wilson intervals agree with SciPy, also at 0/n and n/n; one-step error."""
import math

import pytest
import torch
from scipy.stats import binomtest

from wmlib.eval import one_step_error, success_rate


@pytest.mark.parametrize("k, n", [(0, 1), (0, 10), (3, 10), (7, 13), (10, 10), (1, 50), (49, 50), (500, 1000)])
@pytest.mark.parametrize("confidence", [0.9, 0.95, 0.99])
def test_wilson_interval_matches_scipy(k, n, confidence):
    rate = success_rate([True] * k + [False] * (n - k), confidence=confidence)
    reference = binomtest(k, n).proportion_ci(confidence_level=confidence, method="wilson")
    assert (rate.successes, rate.trials, rate.confidence) == (k, n, confidence)
    assert rate.rate == pytest.approx(k / n)
    assert rate.low == pytest.approx(reference.low, abs=1e-9)
    assert rate.high == pytest.approx(reference.high, abs=1e-9)


def test_all_failures_and_all_successes_keep_a_real_width():
    none, every = success_rate([False] * 20), success_rate([True] * 20)
    assert none.low == 0.0 and 0.1 < none.high < 0.2  # 0/20 does not prove a 0% rate
    assert every.high == 1.0 and 0.8 < every.low < 0.9
    assert every.low == pytest.approx(1 - none.high)  # the interval is symmetric under k -> n - k


def test_more_trials_narrow_the_interval_and_it_holds_the_rate():
    small, large = success_rate([1, 0] * 5), success_rate([1, 0] * 500)
    assert large.high - large.low < (small.high - small.low) / 5
    for r in (small, large):
        assert r.low < r.rate < r.high


def test_outcomes_may_be_any_truthy_values_and_the_text_says_the_counts():
    rate = success_rate(torch.tensor([1, 0, 1, 1]))
    assert (rate.successes, rate.trials) == (3, 4)
    assert str(rate).startswith("75% (3/4, 95% CI ")


def test_no_trials_is_an_error():
    with pytest.raises(ValueError, match="at least one trial"):
        success_rate([])
    assert math.isnan(type(success_rate([True]))(0, 0, 0.0, 1.0).rate)


def test_one_step_error_is_a_per_component_rms_and_checks_shapes():
    actual = torch.zeros(4, 2)
    predicted = torch.tensor([[1.0, 0.0], [-1.0, 0.0], [1.0, 2.0], [-1.0, -2.0]])
    assert torch.allclose(one_step_error(predicted, actual), torch.tensor([1.0, math.sqrt(2.0)]))
    assert torch.allclose(one_step_error(predicted, actual, scale=torch.tensor([2.0, 1.0])),
                          torch.tensor([0.5, math.sqrt(2.0)]))
    with pytest.raises(ValueError, match="predicted"):
        one_step_error(predicted, torch.zeros(4, 3))
