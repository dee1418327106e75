"""The certification matrix: seeds x fault profiles, read from a TOML file, expanded in a fixed order.

    description = "..."
    iterations = 50
    seeds = ["sc1-1", "sc1-2"]
    profiles = ["default", "storm"]

Expansion order is seed-major (every profile of the first seed, then the next seed), so the same
file always yields the same run list; `harness.shard` cuts that list.
"""

from __future__ import annotations

import hashlib
import json
import tomllib
from dataclasses import dataclass
from pathlib import Path

from harness.errors import UsageError
from harness.faults import plan_for_profile

MATRIX_DIR = Path(__file__).resolve().parent / "matrices"
_KEYS = ("description", "iterations", "seeds", "profiles", "slots")


class MatrixError(UsageError):
    """A matrix file that cannot be used; one line: `file: key: reason`."""


@dataclass(frozen=True, order=True)
class RunSpec:
    """One cell of the matrix."""

    seed: str
    profile: str
    iterations: int

    @property
    def id(self) -> str:
        return f"{self.seed}/{self.profile}"

    @property
    def dirname(self) -> str:
        """A file-system safe directory name for the run's report."""
        return "".join(c if c.isalnum() or c in "-_." else "_" for c in f"{self.seed}__{self.profile}")


@dataclass(frozen=True)
class Matrix:
    name: str
    seeds: tuple[str, ...]
    profiles: tuple[str, ...]
    iterations: int
    description: str = ""
    slots: int = 1  # independent slots per run (`sc1 --slots`)

    def runs(self) -> tuple[RunSpec, ...]:
        return tuple(RunSpec(s, p, self.iterations) for s in self.seeds for p in self.profiles)

    def __len__(self) -> int:
        return len(self.seeds) * len(self.profiles)

    @property
    def hash(self) -> str:
        """Identity of what is run (not of its description): shards of one matrix share it."""
        what: dict[str, object] = {"iterations": self.iterations, "seeds": list(self.seeds),
                                   "profiles": list(self.profiles)}
        if self.slots != 1:  # one-slot matrices keep the hash they always had
            what["slots"] = self.slots
        canonical = json.dumps(what, separators=(",", ":"))
        return hashlib.sha256(canonical.encode()).hexdigest()[:12]

    def to_json(self) -> dict[str, object]:
        return {"name": self.name, "description": self.description, "iterations": self.iterations,
                "seeds": list(self.seeds), "profiles": list(self.profiles), "slots": self.slots, "hash": self.hash,
                "runs": len(self)}

    @classmethod
    def from_json(cls, obj: object) -> "Matrix":
        if not isinstance(obj, dict):
            raise MatrixError("matrix: expected an object")
        return build_matrix(obj, str(obj.get("name") or "matrix"), "certificate matrix")


def list_matrices() -> tuple[str, ...]:
    return tuple(sorted(p.stem for p in MATRIX_DIR.glob("*.toml")))


def matrix_path(name_or_path: str | Path) -> Path:
    text = str(name_or_path)
    if isinstance(name_or_path, Path) or "/" in text or text.endswith(".toml"):
        return Path(name_or_path)
    if text in list_matrices():
        return MATRIX_DIR / f"{text}.toml"
    raise MatrixError(f"unknown matrix {text!r}; shipped: {', '.join(list_matrices())} (or a .toml path)")


def load_matrix(name_or_path: str | Path = "default") -> Matrix:
    path = matrix_path(name_or_path)
    try:
        with path.open("rb") as handle:
            data = tomllib.load(handle)
    except OSError as exc:
        raise MatrixError(f"{path}: cannot read: {exc.strerror}") from None
    except tomllib.TOMLDecodeError as exc:
        raise MatrixError(f"{path}: invalid TOML: {exc}") from None
    return build_matrix(data, path.stem, str(path))


def build_matrix(data: dict[str, object], name: str, where: str) -> Matrix:
    """A validated matrix: known keys, a positive iteration count, non-empty unique seeds and
    profiles, and every profile one `simcity sc1 --profile` accepts."""
    for key in data:
        if key not in (*_KEYS, "name", "hash", "runs"):
            raise MatrixError(f"{where}: {key}: unknown key; expected one of {', '.join(_KEYS)}")
    iterations = data.get("iterations", 50)
    if isinstance(iterations, bool) or not isinstance(iterations, int) or iterations < 1:
        raise MatrixError(f"{where}: iterations: must be an integer >= 1, got {iterations!r}")
    seeds = _names(data, "seeds", where)
    profiles = _names(data, "profiles", where)
    for profile in profiles:
        try:
            plan_for_profile(profile)
        except UsageError as exc:
            raise MatrixError(f"{where}: profiles: {exc}") from None
    description = data.get("description", "")
    if not isinstance(description, str):
        raise MatrixError(f"{where}: description: must be a string")
    slots = data.get("slots", 1)
    if isinstance(slots, bool) or not isinstance(slots, int) or slots < 1:
        raise MatrixError(f"{where}: slots: must be an integer >= 1, got {slots!r}")
    return Matrix(name, seeds, profiles, iterations, description, slots)


def _names(data: dict[str, object], key: str, where: str) -> tuple[str, ...]:
    values = data.get(key)
    if not isinstance(values, list) or not values or not all(isinstance(v, str) and v for v in values):
        raise MatrixError(f"{where}: {key}: must be a non-empty list of non-empty strings")
    duplicates = sorted({v for v in values if values.count(v) > 1})
    if duplicates:
        raise MatrixError(f"{where}: {key}: duplicates {', '.join(duplicates)}")
    return tuple(values)
