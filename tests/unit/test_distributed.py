"""torchrun helpers that work without a process group."""

from __future__ import annotations

from pathlib import Path

from torchprac.distributed import DistContext, quiet_rank_overrides


def test_quiet_overrides_only_for_nonzero_ranks(monkeypatch):
    monkeypatch.setenv("WORLD_SIZE", "2")
    monkeypatch.setenv("RANK", "0")
    assert quiet_rank_overrides() == []
    monkeypatch.setenv("RANK", "1")
    assert "hydra/job_logging=none" in quiet_rank_overrides()
    monkeypatch.delenv("WORLD_SIZE")
    assert quiet_rank_overrides() == []


def test_single_process_context_is_a_no_op():
    d = DistContext()
    assert d.is_main and not d.enabled
    assert d.share_run_dir(Path("/x")) == Path("/x")
    assert d.logger(lambda: "logger") == "logger"
    assert DistContext(rank=1, world_size=2).logger(lambda: "logger").text("a", "b") is None  # silent on rank 1
