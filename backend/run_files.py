"""The files a run leaves in the var dir: its best model and its per-epoch checkpoint."""

from __future__ import annotations

import shutil
from pathlib import Path

from backend.contract import CHECKPOINTS_FOLDER

MODELS_FOLDER = "models"


def checkpoint_dir(var_dir: Path, run_id: str) -> Path:
    """Where the run's checkpoint lives: ``<var dir>/checkpoints/<run id>``."""
    if not run_id or any(character in run_id for character in "/\\") or run_id.startswith("."):
        raise ValueError(
            f"The run id {run_id!r} cannot name a checkpoint folder; use letters, digits and "
            "dashes."
        )
    return var_dir / CHECKPOINTS_FOLDER / run_id


def remove_checkpoint(var_dir: Path, run_id: str) -> None:
    """Deletes the run's checkpoint folder, if there is one."""
    folder = checkpoint_dir(var_dir, run_id)
    if folder.is_dir():
        shutil.rmtree(folder, ignore_errors=True)


def remove_run_files(var_dir: Path, run_id: str, model_path: str) -> None:
    """Deletes the run's model file (the summary's, else the default name) and checkpoint.

    A worker that lost its run may have saved a model without a summary naming it, so the
    default name is removed too.
    """
    remove_checkpoint(var_dir, run_id)
    root = var_dir.resolve()
    for relative in {model_path, f"{MODELS_FOLDER}/{run_id}.keras"} - {""}:
        path = (root / relative).resolve()
        # A tampered summary must not make a delete reach outside the var dir.
        if path.is_relative_to(root) and path.is_file():
            path.unlink()
