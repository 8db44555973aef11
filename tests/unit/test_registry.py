"""The registry: each choice's keys are checked against its own rules (type, range, unknown
keys refused with the known ones listed) before its builder runs; a builder that fails on the
user's values is the same kind of ConfigError, naming the group and the choice."""

from __future__ import annotations

import math

import pytest
from conftest import make_rc

from torchprac import registry
from torchprac.errors import ConfigError
from torchprac.registry import Param, flag, int_list, integer, num, num_list, one_of, section, text


def test_unknown_choice_is_refused_listing_the_known_ones():
    with pytest.raises(ConfigError) as e:
        registry.get("optimizer", "adamm", "optimizer.name")
    assert e.value.key == "optimizer.name" and e.value.value == "adamm"
    assert e.value.allowed == "optimizer choices " + ", ".join(registry.names("optimizer"))
    assert {"adam", "nesterov", "sgd"} <= set(registry.names("optimizer"))


def test_unknown_key_is_refused_listing_the_choice_own_keys():
    with pytest.raises(ConfigError) as e:
        registry.build("clip", {"name": "norm", "max_nrom": 1.0})
    assert e.value.key == "clip.max_nrom"
    assert e.value.allowed == "the keys of clip=norm: max_norm, norm_type"
    assert "clip=norm has no key 'max_nrom'" in str(e.value)
    # the same key is known to the choice that has it
    assert registry.build("clip", {"name": "norm", "max_norm": 2.0}).max_norm == 2.0


def test_unknown_key_inside_a_section_names_the_dotted_key():
    with pytest.raises(ConfigError) as e:
        registry.build("trainer", {"name": "default", "early_stopping": {"patince": 3}})
    assert e.value.key == "trainer.early_stopping.patince"
    assert e.value.allowed.endswith("enabled, min_delta, mode, monitor, patience, restore_best")


@pytest.mark.parametrize("section_key", ["early_stopping", "health", "checkpoint"])
def test_section_shorthand_false_switches_the_feature_off(section_key):
    t = make_rc([f"trainer.{section_key}=false"]).trainer
    got = {"early_stopping": t.early_stopping.enabled, "health": t.health.enabled, "checkpoint": t.checkpoint}
    assert got[section_key] is False
    # the rest of the section keeps its defaults
    assert t.early_stopping.patience == 10 and t.health.every_n_steps == 100


def test_section_shorthand_true_and_a_mapping_are_the_same_as_enabled():
    p = section(enabled=flag(), patience=integer(1))
    assert p.check("k", True) == {"enabled": True}
    assert p.check("k", {"patience": 3}) == {"patience": 3}
    with pytest.raises(ConfigError, match="true, false or a mapping with keys enabled, patience"):
        p.check("k", 3)


@pytest.mark.parametrize(
    "param,value,allowed",
    [
        (num(0, lo_open=True), 0, "a number > 0"),
        (num(0, lo_open=True), -1.5, "a number > 0"),
        (num(0, lo_open=True), "fast", "a number > 0"),
        (num(0, lo_open=True), True, "a number > 0"),  # a bool is not a number
        (num(0, lo_open=True), math.inf, "a number > 0"),
        (num(0, 1, hi_open=True), 1.0, "a number >= 0 and < 1"),
        (integer(1), 2.5, "an integer >= 1"),
        (integer(1), 0, "an integer >= 1"),
        (flag(), "yes", "true or false"),
        (text(), 3, "a string"),
        (one_of("min", "max"), "up", "one of 'min', 'max'"),
        (int_list(1), [0, 4], "a list of integers >= 1"),
        (int_list(1, min_len=1), [], "a list of integers >= 1 (at least 1)"),
        (num_list(0, 1, hi_open=True, length=2), [0.9], "a list of 2 numbers >= 0 and < 1"),
        (num_list(0, 1, hi_open=True, length=2), [0.9, 1.2], "a list of 2 numbers >= 0 and < 1"),
        (integer(1), None, "an integer >= 1"),  # null only where optional
    ],
)
def test_type_and_range_errors_say_what_is_allowed(param, value, allowed):
    with pytest.raises(ConfigError) as e:
        param.check("some.key", value)
    assert e.value.key == "some.key" and e.value.allowed == allowed
    assert str(e.value).startswith(f"Invalid config: some.key={value!r}. Allowed: {allowed}.")


@pytest.mark.parametrize(
    "param,value,expected",
    [
        (num(0, lo_open=True), 3, 3.0),  # ints are numbers, normalised to float
        (integer(1), 5, 5),
        (integer(1, optional=True), None, None),
        (one_of("32", "bf16-mixed"), 32, "32"),  # trainer.precision=32 arrives as an int
        (num_list(0, 1, hi_open=True, length=2), (0.9, 0.999), [0.9, 0.999]),
        (Param("any", check_fn=lambda v: None), {"a": 1}, {"a": 1}),
    ],
)
def test_valid_values_are_normalised(param, value, expected):
    got = param.check("k", value)
    assert got == expected and type(got) is type(expected)


def test_an_extra_rule_reports_its_own_allowed_text():
    odd = integer(1, check=lambda k: None if k % 2 else "an odd positive integer")
    assert odd.check("k", 3) == 3
    with pytest.raises(ConfigError, match="Allowed: an odd positive integer"):
        odd.check("k", 4)


@pytest.fixture
def boom_group():
    """A throwaway group whose builder fails the way torch classes do on a bad combination."""

    @registry.register("test_only", "boom", size=integer(1))
    def boom(size: int = 1):
        raise ValueError(f"size {size} does not fit\nsecond line")

    yield
    registry.REGISTRY.pop("test_only", None)


def test_a_builder_failure_is_a_config_error_naming_group_and_choice(boom_group):
    with pytest.raises(ConfigError) as e:
        registry.build("test_only", {"name": "boom", "size": 3})
    assert e.value.key == "test_only" and e.value.value == "boom"
    assert e.value.allowed == "settings that test_only=boom accepts"
    assert "Building it with {'size': 3} failed: size 3 does not fit." in str(e.value)  # its first line
    assert "second line" not in str(e.value)
    with pytest.raises(ConfigError) as e:  # the keys are still checked first
        registry.build("test_only", {"name": "boom", "size": 0})
    assert e.value.key == "test_only.size"


def test_build_calls_the_builder_with_the_checked_values():
    spec = registry.build("optimizer", {"name": "adam", "lr": 1, "betas": [0.8, 0.9]})
    assert spec.name == "adam" and spec.kwargs == {"lr": 1.0, "betas": (0.8, 0.9)}


def test_every_yaml_choice_is_registered():
    from conftest import conf_choices

    for group in ("data", "model", "init", "activation", "optimizer", "scheduler", "clip", "reg"):
        assert set(conf_choices(group)) <= set(registry.names(group)), group
