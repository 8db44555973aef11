"""utils.unwrap: the plain module under torch.compile / DDP wrappers."""

from __future__ import annotations

from torch import nn

from torchprac.utils import unwrap


def test_unwrap_strips_nested_wrappers():
    inner = nn.Linear(2, 2)

    class Wrapper(nn.Module):
        def __init__(self, attr: str, m: nn.Module) -> None:
            super().__init__()
            setattr(self, attr, m)

    assert unwrap(inner) is inner
    assert unwrap(Wrapper("_orig_mod", Wrapper("module", inner))) is inner
