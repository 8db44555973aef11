"""Name -> builder factories, one per config-group choice (timm's pattern), each owning the
schema of its keys. A choice is registered beside the code that builds it:

    @register("clip", "norm", max_norm=num(0, lo_open=True), norm_type=num(1))
    def clip_norm(max_norm: float, norm_type: float = 2.0) -> Clipper: ...

and `build("clip", node)` checks the node's keys (unknown ones are refused with the list of
known ones) and values (type and range, one paragraph naming the key, the value and what is
allowed), then calls the builder with them. A failure inside the builder (a torch class that
refuses an argument, a dataset that cannot be made) becomes the same kind of ConfigError,
naming the group and choice. YAML files hold the defaults; the rules live here, once.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from torchprac.errors import ConfigError, TorchpracError

_MISSING = object()


# -- parameter rules ---------------------------------------------------------------------
def _is_int(v: Any) -> bool:
    return isinstance(v, int) and not isinstance(v, bool)


def _is_num(v: Any) -> bool:
    return isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v)


def _fmt(x: float) -> str:
    return str(int(x)) if float(x).is_integer() else f"{x:g}"


@dataclass(frozen=True)
class Param:
    """One key's rule. `kind`: number, int, bool, str, choice, int_list, num_list, any."""

    kind: str
    lo: float | None = None
    hi: float | None = None
    lo_open: bool = False
    hi_open: bool = False
    choices: tuple = ()
    optional: bool = False  # null allowed
    min_len: int = 0
    length: int | None = None
    check_fn: Callable[[Any], str | None] | None = None  # extra rule: returns what is allowed, or None
    fields: dict[str, Param] | None = None  # kind "section": a nested mapping with its own keys

    def allowed(self) -> str:
        rng = []
        if self.lo is not None:
            rng.append(f"{'>' if self.lo_open else '>='} {_fmt(self.lo)}")
        if self.hi is not None:
            rng.append(f"{'<' if self.hi_open else '<='} {_fmt(self.hi)}")
        r = (" " + " and ".join(rng)) if rng else ""
        text = {
            "number": f"a number{r}",
            "int": f"an integer{r}",
            "bool": "true or false",
            "str": "a string",
            "choice": "one of " + ", ".join(map(repr, self.choices)),
            "int_list": f"a list of integers{r}" + (f" (at least {self.min_len})" if self.min_len else ""),
            "num_list": (f"a list of {self.length} numbers{r}" if self.length else f"a list of numbers{r}")
            + (f" (at least {self.min_len})" if self.min_len else ""),
            "any": "any value",
            "section": "true, false or a mapping with keys " + ", ".join(sorted(self.fields or {})),
        }[self.kind]
        return text + (" or null" if self.optional else "")

    def _section(self, key: str, v: Any) -> dict:
        """A nested mapping; `false`/`true` mean {enabled: false/true} (switching a feature off
        the obvious way, e.g. trainer.early_stopping=false)."""
        fields = self.fields or {}
        if isinstance(v, bool) and "enabled" in fields:
            v = {"enabled": v}
        if not isinstance(v, Mapping):
            raise ConfigError(key, v, self.allowed())
        out = {}
        for k, x in v.items():
            if k not in fields:
                raise ConfigError(f"{key}.{k}", x, f"the keys of {key}: " + ", ".join(sorted(fields)))
            out[k] = fields[k].check(f"{key}.{k}", x)
        return out

    def _type_hint(self, v: Any) -> str:
        """'Got a str.' when the type is what is wrong (not when only the range is)."""
        right_type = {
            "number": _is_num(v),
            "int": _is_int(v),
            "int_list": isinstance(v, (list, tuple)),
            "num_list": isinstance(v, (list, tuple)),
        }.get(self.kind, True)
        return "" if v is None or right_type else f"Got a {type(v).__name__}."

    def _in_range(self, v: float) -> bool:
        bad_lo = self.lo is not None and (v <= self.lo if self.lo_open else v < self.lo)
        bad_hi = self.hi is not None and (v >= self.hi if self.hi_open else v > self.hi)
        return not (bad_lo or bad_hi)

    def check(self, key: str, v: Any) -> Any:
        """The value, normalised (lists as lists); ConfigError when it breaks the rule."""
        if v is None and self.optional:
            return None
        if self.kind == "section":
            return self._section(key, v)
        ok = True
        if self.kind == "number":
            ok = _is_num(v) and self._in_range(v)
            v = float(v) if ok else v
        elif self.kind == "int":
            ok = _is_int(v) and self._in_range(v)
        elif self.kind == "bool":
            ok = isinstance(v, bool)
        elif self.kind == "str":
            ok = isinstance(v, str)
        elif self.kind == "choice":
            if _is_int(v) and str(v) in self.choices:  # trainer.precision=32 arrives as an int
                v = str(v)
            # True == 1 in Python: `viz.background=1` must not pass as true and then act as false
            ok = any(v == c and isinstance(v, bool) == isinstance(c, bool) for c in self.choices)
        elif self.kind in ("int_list", "num_list"):
            elem = _is_int if self.kind == "int_list" else _is_num
            ok = (
                isinstance(v, (list, tuple))
                and len(v) >= self.min_len
                and (self.length is None or len(v) == self.length)
                and all(elem(x) and self._in_range(x) for x in v)
            )
            v = list(v) if ok else v
        if not ok:
            raise ConfigError(key, v, self.allowed(), self._type_hint(v))
        if self.check_fn is not None:
            extra = self.check_fn(v)
            if extra:
                raise ConfigError(key, v, extra)
        return v


def num(lo=None, hi=None, *, lo_open=False, hi_open=False, optional=False, check=None) -> Param:
    return Param("number", lo, hi, lo_open, hi_open, optional=optional, check_fn=check)


def integer(lo=None, hi=None, *, optional=False, check=None) -> Param:
    return Param("int", lo, hi, optional=optional, check_fn=check)


def flag() -> Param:
    return Param("bool")


def text(*, optional=False) -> Param:
    return Param("str", optional=optional)


def one_of(*choices, optional=False) -> Param:
    return Param("choice", choices=tuple(choices), optional=optional)


def int_list(lo=None, *, min_len=0, optional=False, check=None) -> Param:
    return Param("int_list", lo, min_len=min_len, optional=optional, check_fn=check)


def num_list(lo=None, hi=None, *, hi_open=False, lo_open=False, min_len=0, length=None, optional=False) -> Param:
    return Param("num_list", lo, hi, lo_open, hi_open, min_len=min_len, length=length, optional=optional)


def anything(*, optional=True, check=None) -> Param:
    return Param("any", optional=optional, check_fn=check)


def section(**fields: Param) -> Param:
    return Param("section", fields=fields)


# -- the registry ------------------------------------------------------------------------
@dataclass
class Choice:
    group: str
    name: str
    builder: Callable[..., Any]
    params: dict[str, Param] = field(default_factory=dict)

    def parse(self, node: Mapping[str, Any], prefix: str | None = None, ignore: tuple[str, ...] = ()) -> dict:
        """Checked keyword arguments from a config node (its `name` key and `ignore` dropped)."""
        prefix = self.group if prefix is None else prefix
        out: dict[str, Any] = {}
        for key, value in node.items():
            if key == "name" or key in ignore:
                continue
            if key not in self.params:
                known = ", ".join(sorted(self.params)) or "none"
                raise ConfigError(
                    f"{prefix}.{key}",
                    value,
                    f"the keys of {self.group}={self.name}: {known}",
                    f"{self.group}={self.name} has no key {key!r}.",
                )
            out[key] = self.params[key].check(f"{prefix}.{key}", value)
        return out

    def build(self, node: Mapping[str, Any], prefix: str | None = None, **runtime: Any) -> Any:
        kwargs = self.parse(node, prefix)
        try:
            return self.builder(**kwargs, **runtime)
        except TorchpracError:
            raise
        except (ValueError, TypeError, RuntimeError, OverflowError) as e:
            # e.g. torch.optim refusing a combination of arguments: still the user's input.
            shown = {k: v for k, v in kwargs.items()}
            raise ConfigError(
                prefix or self.group,
                self.name,
                f"settings that {self.group}={self.name} accepts",
                f"Building it with {shown} failed: {str(e).splitlines()[0] if str(e) else type(e).__name__}.",
            ) from None


REGISTRY: dict[str, dict[str, Choice]] = {}


def register(group: str, name: str, **params: Param) -> Callable[[Callable], Callable]:
    """Decorator: register `fn` as the builder of `group=name` with its keys' rules."""

    def deco(fn: Callable) -> Callable:
        REGISTRY.setdefault(group, {})[name] = Choice(group, name, fn, dict(params))
        return fn

    return deco


def load() -> None:
    """Import every module that registers choices (torch is imported here, lazily)."""
    import torchprac.data.images  # noqa: F401
    import torchprac.data.sources  # noqa: F401
    import torchprac.data.tabular  # noqa: F401
    import torchprac.diagnose.bias_variance  # noqa: F401
    import torchprac.nn.activations  # noqa: F401
    import torchprac.nn.init  # noqa: F401
    import torchprac.nn.models  # noqa: F401
    import torchprac.optim.clip  # noqa: F401
    import torchprac.optim.optimizers  # noqa: F401
    import torchprac.optim.schedules  # noqa: F401
    import torchprac.reg  # noqa: F401
    import torchprac.train.settings  # noqa: F401
    import torchprac.train.transfer  # noqa: F401
    import torchprac.tune.lr_find  # noqa: F401
    import torchprac.viz.settings  # noqa: F401


def names(group: str) -> list[str]:
    load()
    return sorted(REGISTRY.get(group, {}))


def get(group: str, name: Any, key: str | None = None) -> Choice:
    load()
    found = REGISTRY.get(group, {}).get(name) if isinstance(name, str) else None
    if found is None:
        raise ConfigError(key or f"{group}.name", name, f"{group} choices " + ", ".join(names(group)))
    return found


def build(group: str, node: Mapping[str, Any], prefix: str | None = None, **runtime: Any) -> Any:
    """Build the choice `node["name"]` of `group` from its config node."""
    return get(group, node.get("name"), f"{prefix or group}.name").build(node, prefix, **runtime)
