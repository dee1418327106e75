"""The certification matrix (TOML -> runs, in a fixed order) and `--shard i/n` (an exact split)."""

from __future__ import annotations

from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from harness.errors import UsageError
from harness.matrix import Matrix, MatrixError, RunSpec, list_matrices, load_matrix
from harness.shard import Shard


def test_default_matrix_is_six_seeds_by_five_profiles() -> None:
    matrix = load_matrix()
    assert matrix.iterations == 50
    assert len(matrix.seeds) == 6
    assert matrix.profiles == ("default", "latency", "drops", "partition", "storm")
    runs = matrix.runs()
    assert len(runs) == len(matrix) == 30
    assert runs[0] == RunSpec("sc1-1", "default", 50) and runs[1] == RunSpec("sc1-1", "latency", 50)
    assert len({r.id for r in runs}) == 30 and len({r.dirname for r in runs}) == 30


@pytest.mark.parametrize("name", list_matrices())
def test_every_shipped_matrix_loads(name: str) -> None:
    assert len(load_matrix(name)) > 0


def test_expansion_is_seed_major_and_stable(tmp_path: Path) -> None:
    path = tmp_path / "m.toml"
    path.write_text('iterations = 7\nseeds = ["b", "a"]\nprofiles = ["storm", "calm"]\n')
    matrix = load_matrix(path)
    assert [r.id for r in matrix.runs()] == ["b/storm", "b/calm", "a/storm", "a/calm"]
    assert load_matrix(path).hash == matrix.hash
    path.write_text('description = "other words"\niterations = 7\nseeds = ["b", "a"]\nprofiles = ["storm", "calm"]\n')
    assert load_matrix(path).hash == matrix.hash  # the description is not what is run


@pytest.mark.parametrize("text, fragment", [
    ('seeds = ["a"]\nprofiles = ["nope"]', "unknown profile 'nope'"),
    ('seeds = []\nprofiles = ["calm"]', "seeds: must be a non-empty list"),
    ('seeds = ["a", "a"]\nprofiles = ["calm"]', "duplicates a"),
    ('seeds = ["a"]\nprofiles = ["calm"]\niterations = 0', "iterations: must be an integer >= 1"),
    ('seeds = ["a"]\nprofiles = ["calm"]\nseed = "x"', "seed: unknown key"),
    ('seeds = ["a"', "invalid TOML"),
])
def test_bad_matrix_is_a_one_line_usage_error(tmp_path: Path, text: str, fragment: str) -> None:
    path = tmp_path / "bad.toml"
    path.write_text(text)
    with pytest.raises(MatrixError) as err:
        load_matrix(path)
    assert fragment in str(err.value) and "\n" not in str(err.value)
    assert isinstance(err.value, UsageError)


def test_unknown_shipped_matrix() -> None:
    with pytest.raises(MatrixError, match="unknown matrix 'nope'"):
        load_matrix("nope")


@pytest.mark.parametrize("text", ["0/2", "3/2", "1/0", "a/b", "1", "1/2/3", "-1/2"])
def test_bad_shard(text: str) -> None:
    with pytest.raises(UsageError, match="--shard"):
        Shard.parse(text)


def test_shard_parse() -> None:
    assert Shard.parse("2/4") == Shard(2, 4) and str(Shard.parse(" 1 / 3 ")) == "1/3"


names = st.text(alphabet="abcdefgh-0123456789", min_size=1, max_size=6)


@settings(max_examples=300, deadline=None)
@given(seeds=st.lists(names, min_size=1, max_size=9, unique=True),
       profiles=st.lists(st.sampled_from(["calm", "default", "storm", "latency", "drops", "partition",
                                          "jitter", "timeouts", "resets"]), min_size=1, max_size=9, unique=True),
       count=st.integers(min_value=1, max_value=40))
def test_shards_split_the_matrix_exactly(seeds: list[str], profiles: list[str], count: int) -> None:
    matrix = Matrix("m", tuple(seeds), tuple(profiles), 10)
    runs = matrix.runs()
    shards = [Shard(i, count).select(runs) for i in range(1, count + 1)]
    flat = [run for shard in shards for run in shard]
    assert sorted(flat) == sorted(runs)  # the union is the matrix ...
    assert len(flat) == len(set(flat)) == len(runs)  # ... and the shards are disjoint
    sizes = [len(s) for s in shards]
    assert max(sizes) - min(sizes) <= 1  # balanced
    # Deterministic: the same matrix and n give the same shards, each in matrix order.
    assert shards == [Shard(i, count).select(matrix.runs()) for i in range(1, count + 1)]
    for shard in shards:
        assert list(shard) == sorted(shard, key=runs.index)
