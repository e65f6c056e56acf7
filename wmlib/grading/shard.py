"""Shares of a class for several machines: ``--shard K/N`` grades the submissions whose key falls in share K.

A submission's share is a hash of its key ``<student>/<assignment>`` modulo N, so it depends on
nothing else: the same on every machine and every run, and adding or removing one student moves
no one else's submission to another share. The machines are started by an existing batch
scheduler (a Slurm job array, a Kubernetes Indexed Job; see the README), each with its own
``--out`` folder; ``--merge`` then builds one gradebook from their folders.
"""
from __future__ import annotations

import hashlib


def parse(text: str) -> tuple[int, int]:
    """"K/N" -> (K, N) with 0 <= K < N; ValueError naming the text otherwise."""
    try:
        k, n = (int(part) for part in text.split("/"))
    except ValueError:
        raise ValueError(f"--shard {text!r}: expected K/N, e.g. 0/4 (share K of N, counted from 0)") from None
    if n < 1 or not 0 <= k < n:
        raise ValueError(f"--shard {text!r}: K must be 0 to N-1 and N at least 1")
    return k, n


def share_of(student: str, assignment: str, n: int) -> int:
    """The share (0 to n-1) that the submission of student for assignment belongs to."""
    digest = hashlib.sha256(f"{student}/{assignment}".encode()).digest()
    return int.from_bytes(digest[:8], "big") % n


def select(submissions: list, k: int, n: int) -> list:
    """The submissions (anything with .student and .assignment) of share k of n, in their order."""
    return [s for s in submissions if share_of(s.student, s.assignment, n) == k]
