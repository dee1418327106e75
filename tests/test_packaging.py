"""pyproject.toml lists its packages by hand (two live under compose/): a package folder missing
from the list works in the editable install of a checkout and is absent from a wheel."""

from __future__ import annotations

import tomllib
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]


def test_every_package_folder_is_listed() -> None:
    config = tomllib.loads((REPO / "pyproject.toml").read_text())["tool"]["setuptools"]
    listed = set(config["packages"])
    found = set()
    for top, folder in config["package-dir"].items():
        root = REPO / folder
        for init in root.rglob("__init__.py"):
            parts = init.parent.relative_to(root).parts
            found.add(".".join((top, *parts)))
    assert found - listed == set(), "add these to [tool.setuptools] packages"
    for name in listed - found:  # listed without __init__.py: a folder of package data
        top, _, rest = name.partition(".")
        assert (REPO / config["package-dir"][top] / rest.replace(".", "/")).is_dir(), name
        assert config["package-data"].get(name), f"{name} is listed but ships no data"
