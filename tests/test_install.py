"""The pinned stack is what is installed, it imports in one process, and the two install files agree."""
import importlib.metadata as md
import re
import tomllib

import yaml
from packaging.requirements import Requirement

from conftest import REPO, run_python

PYPROJECT = tomllib.loads((REPO / "pyproject.toml").read_text())
PROJECT = PYPROJECT["project"]

# distribution name -> the module it installs
MODULES = {
    "torch": "torch", "mani-skill": "mani_skill", "sapien": "sapien", "gymnasium": "gymnasium",
    "tensorflow-cpu": "tensorflow", "dm-reverb": "reverb", "rlds": "rlds",
    "tensorflow-datasets": "tensorflow_datasets", "tensorflow-metadata": "tensorflow_metadata",
    "numpy": "numpy", "matplotlib": "matplotlib", "ipywidgets": "ipywidgets",
    "jupyterlab": "jupyterlab", "nbgrader": "nbgrader", "tqdm": "tqdm",
    "pytest": "pytest", "pytest-xdist": "xdist", "ruff": "ruff",
    "scipy": "scipy",
    "feetech-servo-sdk": "scservo_sdk", "dynamixel-sdk": "dynamixel_sdk", "xarm-python-sdk": "xarm",
    "pyarrow": "pyarrow",
    "jupyter-book": "jupyter_book",
}


def all_requirements() -> list[Requirement]:
    reqs = [Requirement(r) for r in PROJECT["dependencies"]]
    for extra in PROJECT["optional-dependencies"].values():
        reqs += [Requirement(r) for r in extra]
    return reqs


def test_every_requirement_has_a_module_to_import():
    assert {r.name for r in all_requirements()} == set(MODULES)


def test_installed_versions_match_the_pins():
    wrong = []
    for req in all_requirements():
        have = md.version(req.name)
        if not req.specifier.contains(have, prereleases=True):
            wrong.append(f"{req.name}: pinned {req.specifier}, installed {have}")
    assert not wrong, "run `make setup` again:\n" + "\n".join(wrong)


def test_torch_is_the_pinned_release_whatever_its_build():
    # 2.13.0+cpu and 2.13.0+cu12x are both the pinned release
    assert re.fullmatch(r"2\.13\.0(\+\w+)?", md.version("torch"))


def test_every_package_imports_in_one_process():
    mods = sorted(set(MODULES.values()))
    code = ("import importlib\n" + "".join(f"importlib.import_module({m!r})\n" for m in mods)
            + "print('imported', len(%r))" % mods)
    result = run_python(code)
    assert result.returncode == 0, result.stderr[-3000:]
    assert f"imported {len(mods)}" in result.stdout


def test_environment_yml_installs_the_same_package_and_python():
    env = yaml.safe_load((REPO / "environment.yml").read_text())
    deps = env["dependencies"]
    python = [d for d in deps if isinstance(d, str) and d.startswith("python")]
    assert python == ["python=3.11"]
    assert PROJECT["requires-python"] == "==3.11.*"
    pip_section = next(d["pip"] for d in deps if isinstance(d, dict) and "pip" in d)
    # nothing pinned twice: the pip section is the package itself with every extra
    assert len(pip_section) == 1, f"environment.yml pins packages of its own: {pip_section}"
    match = re.fullmatch(r"-e \.\[([\w,-]+)\]", pip_section[0])
    assert match, pip_section[0]
    assert set(match.group(1).split(",")) == set(PROJECT["optional-dependencies"])


def test_makefile_installs_every_extra():
    makefile = (REPO / "Makefile").read_text()
    extras = re.search(r"-e '\.\[([\w,-]+)\]'", makefile).group(1)
    assert set(extras.split(",")) == set(PROJECT["optional-dependencies"])
