"""run.py's stage functions: the run dir check before anything is written, and the loop
settings derived from the config (gd's full batch, batch norm's last batch of one)."""

from __future__ import annotations

import pytest
from conftest import make_rc

from torchprac.errors import ConfigError
from torchprac.run import build_loop, check_run_dir


def test_run_dir_that_is_a_file_is_refused_before_anything_is_written(tmp_path):
    f = tmp_path / "file"
    f.write_text("x")
    with pytest.raises(ConfigError) as e:
        check_run_dir(f, resume=False, overwrite=False)
    assert e.value.key == "paths.run_dir" and "this path is a file" in e.value.allowed
    assert f.read_text() == "x"
    check_run_dir(tmp_path / "new" / "run", resume=False, overwrite=False)  # to be created: fine


def test_loop_follows_the_config():
    loop = build_loop(make_rc(["trainer.batch_size=64", "trainer.epochs=3"]), n_train=1000)
    assert (loop.epochs, loop.batch_size, loop.drop_last, loop.full_batch) == (3, 64, False, False)
    assert build_loop(make_rc(["trainer.batch_size=64"]), n_train=40).batch_size == 40  # clamped to the split
    gd = build_loop(make_rc(["optimizer=gd"]), n_train=1000)
    assert gd.full_batch and gd.batch_size == 1000


def test_batch_norm_drops_a_last_batch_of_one_and_refuses_batches_of_one():
    rc = make_rc(["trainer.batch_size=64"])
    assert build_loop(rc, n_train=129, batch_norm=True).drop_last  # 64 + 64 + 1
    assert not build_loop(rc, n_train=130, batch_norm=True).drop_last
    assert not build_loop(rc, n_train=129, batch_norm=False).drop_last
    with pytest.raises(ConfigError) as e:
        build_loop(make_rc(["trainer.batch_size=1"]), n_train=100, batch_norm=True)
    assert e.value.key == "trainer.batch_size"
