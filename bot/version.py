"""The installed quizbot's version, from the package metadata (pyproject.toml's `version`)."""
from __future__ import annotations

from importlib.metadata import PackageNotFoundError, version as _metadata_version


def package_version() -> str:
    try:
        return _metadata_version("quizbot")
    except PackageNotFoundError:  # run from a checkout that was never installed
        return "0+unknown"
