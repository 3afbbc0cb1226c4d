"""Gives each worker process on a GPU host a GPU of its own.

Docker compose hands every scaled replica the same device reservation, so the
replicas see all GPUs and would all train on GPU 0. Instead each worker claims
the lowest free slot of its host in Redis before TensorFlow is imported, pins
itself to that GPU through CUDA_VISIBLE_DEVICES, and renews the claim while it
lives; a dead worker's slot frees itself when its claim expires.
"""

from __future__ import annotations

import logging
import os
import shutil
import subprocess
import threading
import uuid
from dataclasses import dataclass, field

import redis

from backend.contract import gpu_slot_key

logger = logging.getLogger(__name__)

CLAIM_SECONDS = 30


@dataclass
class GpuClaim:
    """A GPU this worker holds; its claim is renewed until released or the process ends."""

    index: int
    key: str
    owner: str
    stopped: threading.Event = field(default_factory=threading.Event)

    def release(self, client: redis.Redis | None = None) -> None:
        self.stopped.set()
        if client is not None and client.get(self.key) in (self.owner, self.owner.encode()):
            client.delete(self.key)


def count_host_gpus() -> int:
    """Counts the NVIDIA GPUs this process can see, without importing TensorFlow."""
    nvidia_smi = shutil.which("nvidia-smi")
    if nvidia_smi is None:
        return 0
    try:
        listing = subprocess.run(
            [nvidia_smi, "-L"], capture_output=True, text=True, timeout=20, check=True
        ).stdout
    except (OSError, subprocess.SubprocessError):
        return 0
    return sum(1 for line in listing.splitlines() if line.startswith("GPU "))


def claim_slot(client: redis.Redis, node: str, gpu_count: int, owner: str) -> int | None:
    """Claims the lowest free GPU slot of the node, or returns None when all are taken."""
    for index in range(gpu_count):
        if client.set(gpu_slot_key(node, index), owner, nx=True, ex=CLAIM_SECONDS):
            return index
    return None


def _renew_forever(client: redis.Redis, key: str, owner: str, stop: threading.Event) -> None:
    while not stop.wait(CLAIM_SECONDS / 3):
        try:
            if client.get(key) in (owner.encode(), None):
                client.set(key, owner, ex=CLAIM_SECONDS)
        except redis.RedisError as error:
            logger.warning("Could not renew the GPU claim %s: %s", key, error)


def pin_to_free_gpu(redis_url: str, node: str) -> GpuClaim | None:
    """Sets CUDA_VISIBLE_DEVICES to a GPU no other worker of this node holds.

    A CUDA_VISIBLE_DEVICES chosen by the operator is respected as it is, and a
    host with at most one GPU needs no claim.
    """
    if os.environ.get("CUDA_VISIBLE_DEVICES"):
        return None
    gpu_count = count_host_gpus()
    if gpu_count <= 1:
        return None
    client = redis.Redis.from_url(redis_url)
    owner = uuid.uuid4().hex
    index = claim_slot(client, node, gpu_count, owner)
    if index is None:
        raise RuntimeError(
            f"All {gpu_count} GPUs of node {node!r} are held by other workers: start at most "
            f"{gpu_count} workers on this host, or give each host its own CURVELAB_NODE_NAME."
        )
    os.environ["CUDA_VISIBLE_DEVICES"] = str(index)
    claim = GpuClaim(index, gpu_slot_key(node, index), owner)
    threading.Thread(
        target=_renew_forever,
        args=(client, claim.key, owner, claim.stopped),
        name="gpu-slot-renewal",
        daemon=True,
    ).start()
    logger.info("Worker pinned to GPU %d of node %s.", index, node)
    return claim
