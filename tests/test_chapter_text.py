"""What each chapter promises in its text is what its code does: its learning goals name only
methods that one of its code cells runs, and it states its five blanks. Reads the notebooks only
(no kernel), so it is quick."""
import json
import re

import pytest

from conftest import REPO

CHAPTERS = sorted(p.name for p in (REPO / "solutions").iterdir() if p.is_dir() and p.name[:2].isdigit())

# a method a goal may promise -> what a code cell must contain for the chapter to run it
METHODS = {
    r"\bMPPI\b": r"\bmppi\(|LatentPlanner\(",        # chapter 8's latent planner runs planning.mppi
    r"\bCEM\b|cross-entropy method": r"\bcem\(",
    r"random shooting": r"random_shooting\(",
    r"\bensembles?\b": r"[Ee]nsemble",
    r"linear probe": r"probe\(",
    r"confidence intervals?|\bintervals\b": r"success_rate\(|paired_difference\(|results\.rate\(",
    r"paired differences?": r"paired_difference",
    r"RLDS": r"data\.load\(",
    r"inverse-dynamics": r"idm",
    r"LeRobot": r"lerobot",
    r"watchdog": r"[Ww]atchdog",
    # the pixel families: named in code, or all of them trained in one loop over FAMILIES
    r"V-M-C": r"\bvmc\b|in lx\.FAMILIES",
    r"state-space model": r"\brssm\b",
    r"frame predictor": r"frame_predictor",
    r"\bJEPA\b": r"\bjepa\b",
    r"TD-MPC2": r"task_latent",
    r"MuZero": r"value_equivalent",
    r"convolutional encoder": r"ConvEncoder",
    r"model-based loop": r"improve\(",
}


def cells(chapter):
    nb = json.loads((REPO / "solutions" / chapter / f"{chapter}.ipynb").read_text())
    return nb["cells"]


def learning_goals(chapter) -> list[str]:
    """The numbered items after "**Learning goals.**" in the chapter's first cell."""
    intro = "".join(cells(chapter)[0]["source"])
    block = intro.split("**Learning goals.**", 1)
    assert len(block) == 2, f"{chapter}: the first cell has no '**Learning goals.**'"
    items = re.split(r"\n\d+\. ", block[1].split("\n\n", 2)[1] if "\n\n" in block[1] else block[1])
    goals = [re.sub(r"\s+", " ", item) for item in items if item.strip()]
    assert len(goals) >= 3, f"{chapter}: fewer than three learning goals found"
    return goals


@pytest.mark.parametrize("chapter", CHAPTERS)
def test_each_method_a_learning_goal_names_is_run_by_a_code_cell(chapter):
    code = "\n".join("".join(c["source"]) for c in cells(chapter) if c["cell_type"] == "code")
    missing = [(goal[:60], promise) for goal in learning_goals(chapter) for promise, runs in METHODS.items()
               if re.search(promise, goal) and not re.search(runs, code)]
    assert missing == [], f"{chapter}: learning goals promise what no code cell runs: {missing}"


@pytest.mark.parametrize("chapter", CHAPTERS)
def test_each_chapter_states_its_five_blanks(chapter):
    text = "\n".join("".join(c["source"]) for c in cells(chapter) if c["cell_type"] == "markdown")
    for blank in ("input", "condition", "prediction", "consumer", "risk"):
        assert re.search(rf"\*\*{blank}\*\*", text), f"{chapter}: the five blanks do not name **{blank}**"


def test_a_promise_without_its_code_is_caught():
    goal = "plan with the cross-entropy method (CEM) and MPPI on a learned ensemble"
    code = "plan = planning.cem(model, cost, state)\nEnsembleDeltaModel(3, 2)"
    missing = [p for p, runs in METHODS.items() if re.search(p, goal) and not re.search(runs, code)]
    assert missing == [r"\bMPPI\b"]
