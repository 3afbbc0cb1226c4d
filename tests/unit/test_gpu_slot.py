"""Workers sharing a GPU host each claim a GPU of their own; a dead worker's GPU frees itself."""

from __future__ import annotations

import os
import stat

import pytest

from worker import gpu_slot


@pytest.fixture
def fake_nvidia_smi(tmp_path, monkeypatch):
    """An nvidia-smi on PATH that lists four GPUs, as on a four-GPU host."""
    script = tmp_path / "nvidia-smi"
    lines = "\n".join(f"GPU {i}: NVIDIA H200 (UUID: GPU-{i})" for i in range(4))
    script.write_text(f"#!/bin/sh\nprintf '%s\\n' '{lines}'\n")
    script.chmod(script.stat().st_mode | stat.S_IEXEC)
    monkeypatch.setenv("PATH", f"{tmp_path}{os.pathsep}{os.environ['PATH']}")
    monkeypatch.delenv("CUDA_VISIBLE_DEVICES", raising=False)


def test_counts_the_gpus_nvidia_smi_lists(fake_nvidia_smi):
    assert gpu_slot.count_host_gpus() == 4


def test_no_nvidia_smi_means_no_gpu(monkeypatch, tmp_path):
    monkeypatch.setenv("PATH", str(tmp_path))
    assert gpu_slot.count_host_gpus() == 0


def test_each_worker_claims_the_lowest_free_gpu_until_none_is_left(redis_server):
    client = redis_server.client()
    client.flushdb()
    claimed = [gpu_slot.claim_slot(client, "host-a", 3, owner=f"w{i}") for i in range(4)]
    assert claimed == [0, 1, 2, None]
    assert gpu_slot.claim_slot(client, "host-b", 3, owner="other-host") == 0
    assert 0 < client.ttl("curvelab:gpu-slot:host-a:0") <= gpu_slot.CLAIM_SECONDS


def test_a_freed_slot_is_claimed_again(redis_server):
    client = redis_server.client()
    client.flushdb()
    assert gpu_slot.claim_slot(client, "host", 2, owner="first") == 0
    client.delete("curvelab:gpu-slot:host:0")  # The claim of a dead worker expires like this.
    assert gpu_slot.claim_slot(client, "host", 2, owner="replacement") == 0


def test_pinning_sets_cuda_visible_devices_per_worker(fake_nvidia_smi, redis_server, monkeypatch):
    client = redis_server.client()
    client.flushdb()
    first = gpu_slot.pin_to_free_gpu(redis_server.url, "node")
    assert first is not None and first.index == 0
    assert os.environ["CUDA_VISIBLE_DEVICES"] == "0"
    monkeypatch.delenv("CUDA_VISIBLE_DEVICES")
    second = gpu_slot.pin_to_free_gpu(redis_server.url, "node")
    assert second is not None and second.index == 1
    assert os.environ["CUDA_VISIBLE_DEVICES"] == "1"
    for claim in (first, second):
        claim.release(client)
    assert client.keys("curvelab:gpu-slot:node:*") == []


def test_an_operator_choice_of_gpu_is_respected(fake_nvidia_smi, redis_server, monkeypatch):
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", "3")
    assert gpu_slot.pin_to_free_gpu(redis_server.url, "node") is None
    assert os.environ["CUDA_VISIBLE_DEVICES"] == "3"


def test_too_many_workers_for_the_gpus_is_a_sentence(fake_nvidia_smi, redis_server, monkeypatch):
    client = redis_server.client()
    client.flushdb()
    for index in range(4):
        gpu_slot.claim_slot(client, "full", 4, owner=f"w{index}")
    with pytest.raises(RuntimeError, match="All 4 GPUs of node 'full' are held by other workers"):
        gpu_slot.pin_to_free_gpu(redis_server.url, "full")
