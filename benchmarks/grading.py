"""Grading a class: notebooks graded per hour at JOBS=1 and JOBS=2, and the same class graded whole and
as two shards merged, whose gradebooks must be identical.

    python benchmarks/grading.py [--students 10] [--out benchmarks/results/grading.json]

The class is chapter 1 (``01_episodes``), submitted by: honest students (the instructors' answers,
typed in), partly wrong ones (one answer replaced by a plausible wrong answer from
tests/wrong_answers/01_episodes.py, which the hidden tests catch), and two hostile ones (an answer
cell that ends the kernel; an edited test cell beside a wrong answer). Each run is the command an
instructor types (`python -m wmlib.grading ...`), timed from start to the written gradebook, kernel
start-ups included. The machine's load average is recorded beside each run: the rates are only
comparable on an otherwise idle machine.
"""
import argparse
import copy
import csv
import importlib.util
import os
import pathlib
import subprocess
import sys
import tempfile
import time

from common import write

REPO = pathlib.Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "tests"))
import grading_battery as battery  # noqa: E402

CHAPTER = battery.CHAPTER


def wrong_answers() -> dict[str, str]:
    spec = importlib.util.spec_from_file_location("wrong", REPO / "tests" / "wrong_answers" / f"{CHAPTER}.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module.WRONG


def write_class(folder: pathlib.Path, students: int) -> dict[str, str]:
    """Chapter-1 submissions in nbgrader's layout; returns student -> what kind of submission it is."""
    honest = battery.honest(REPO, CHAPTER)
    wrong = wrong_answers()
    kinds = {}
    for i in range(students):
        nb, student = copy.deepcopy(honest), f"s{i:03d}"
        if i % 5 in (1, 3):  # partly wrong: one exercise, a different one each time
            gid = sorted(wrong)[(i // 2) % len(wrong)]
            battery.cell_of(nb, gid).source = wrong[gid]
            kinds[student] = f"wrong {gid}"
        elif i % 10 == 4:
            battery.prepend(nb, "ex3_wam", "import os\nos._exit(3)")
            kinds[student] = "hostile: ends the kernel in ex3_wam"
        elif i % 10 == 9:
            battery.cell_of(nb, "ex1_validator").source = wrong["ex1_validator"]
            battery.cell_of(nb, "ex1_validator_tests").source = "print('all good')"
            kinds[student] = "hostile: edited test ex1_validator_tests, wrong ex1_validator"
        else:
            kinds[student] = "honest"
        battery.write(nb, folder / student / CHAPTER / f"{CHAPTER}.ipynb")
    return kinds


def grade(*args) -> dict:
    """Run the grader; returns its wall time, the load average around it and its output's last line."""
    load_before = os.getloadavg()[0]
    start = time.perf_counter()
    result = subprocess.run([sys.executable, "-m", "wmlib.grading", *map(str, args)], cwd=REPO,
                            capture_output=True, text=True)
    seconds = time.perf_counter() - start
    if result.returncode != 0:
        raise SystemExit(f"grading {args} failed:\n{result.stdout[-3000:]}\n{result.stderr[-3000:]}")
    graded = next((line for line in result.stdout.splitlines() if line.startswith("graded ")), "")
    return {"seconds": round(seconds, 1), "load_average_1min_before": round(load_before, 2),
            "load_average_1min_after": round(os.getloadavg()[0], 2), "said": graded}


def gradebook(out: pathlib.Path) -> list[dict]:
    """grades.csv without its seconds column (the one that differs between runs)."""
    with open(out / "grades.csv") as f:
        return [{k: v for k, v in row.items() if k != "seconds"} for row in csv.DictReader(f)]


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--students", type=int, default=10)
    parser.add_argument("--out", default=None)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="wmr-grading-bench-") as tmp:
        tmp = pathlib.Path(tmp)
        kinds = write_class(tmp / "class", args.students)
        runs = {}
        for jobs in (1, 2):
            runs[f"jobs_{jobs}"] = run = grade(tmp / "class", "--out", tmp / f"jobs{jobs}", "--jobs", jobs)
            run["notebooks_per_hour"] = round(args.students / run["seconds"] * 3600, 1)
            print(f"JOBS={jobs}: {run}", flush=True)
        for k in range(2):
            runs[f"shard_{k}_of_2"] = grade(tmp / "class", "--out", tmp / f"shard{k}", "--shard", f"{k}/2")
        runs["merge"] = grade("--merge", tmp / "shard0", tmp / "shard1", "--out", tmp / "merged")
        whole, parallel, merged = gradebook(tmp / "jobs1"), gradebook(tmp / "jobs2"), gradebook(tmp / "merged")
        scores = {row["student"]: {"kind": kinds[row["student"]], "score": float(row["score"]), "flags": row["flags"]}
                  for row in whole}
    assert all(s["score"] == battery.FULL and not s["flags"] for s in scores.values() if s["kind"] == "honest")
    assert all(s["score"] < battery.FULL for s in scores.values() if s["kind"] != "honest"), scores
    assert parallel == whole, "JOBS=2 graded the class differently from JOBS=1"
    assert merged == whole, "two shards merged graded the class differently from one run"
    write("grading", {
        "assignment": CHAPTER, "students": args.students,
        "notebooks_per_hour": {"jobs_1": runs["jobs_1"]["notebooks_per_hour"],
                               "jobs_2": runs["jobs_2"]["notebooks_per_hour"]},
        "speed_up_jobs_2": round(runs["jobs_1"]["seconds"] / runs["jobs_2"]["seconds"], 2),
        "same_grades_jobs_1_and_2": parallel == whole, "same_grades_whole_and_two_shards_merged": merged == whole,
        "runs": runs, "grades": scores,
        "note": "each run is `python -m wmlib.grading` from start to the written gradebook, kernel start-ups "
                "included; the load average beside each run says how busy the machine was",
    }, args.out)


if __name__ == "__main__":
    main()
