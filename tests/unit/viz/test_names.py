"""Run names of a sweep's jobs: what varies, shortened readably, never where or how to run."""

from __future__ import annotations

from torchprac.viz.names import MAX_LEN, named_overrides, run_name


def test_only_the_swept_overrides_name_the_run():
    sweep = ["experiment=overfit_moons", "reg=[],[l2]", "optimizer=adam,sgd", "trainer.epochs=5"]
    job = ["experiment=overfit_moons", "reg=[l2]", "optimizer=adam", "trainer.epochs=5"]
    assert run_name(named_overrides(job, sweep)) == "reg=[l2],optimizer=adam"


def test_common_overrides_are_dropped_however_hydra_spells_them_in_the_job():
    # typed on the command line / as Hydra writes them into each job's overrides
    sweep = ["trainer.seed=0,1", "viz.enabled=false", "optimizer.lr=0.10", "reg=[l2]", "+extra=x"]
    job = ["trainer.seed=1", "viz.enabled=False", "optimizer.lr=0.1", "reg=[l2]", "+extra=x"]
    assert run_name(named_overrides(job, sweep)) == "seed=1"
    # a value that really differs is still named
    assert named_overrides(["trainer.seed=1", "viz.enabled=True"], sweep) == ["trainer.seed=1", "viz.enabled=True"]


def test_resume_and_paths_never_change_the_name():
    sweep = ["optimizer=adam,sgd"]
    a = named_overrides(["optimizer=adam"], sweep)
    b = named_overrides(["optimizer=adam", "trainer.resume=auto", "hydra.sweep.dir=x", "paths.run_dir=y"], sweep)
    assert run_name(a) == run_name(b) == "optimizer=adam"


def test_optuna_keys_and_fallbacks():
    job = ["hparams_search=optuna", "optimizer.lr=0.0123", "trainer.batch_size=32"]
    assert run_name(named_overrides(job, None, ["optimizer.lr", "trainer.batch_size"])) == "lr=0.0123,batch_size=32"
    # no sweep information: every override that says what is trained
    assert named_overrides(["reg=[]", "trainer.resume=auto"]) == ["reg=[]"]
    # a "sweep" of one value per key: nothing varies, the overrides still name it
    assert named_overrides(["optimizer=adam"], ["optimizer=adam"]) == ["optimizer=adam"]


def test_short_keys_stay_unambiguous_and_names_are_folder_safe():
    assert run_name(["trainer.seed=1", "data.seed=2"]) == "trainer.seed=1,data.seed=2"
    assert run_name(["reg.l2.strength=0.01"]) == "l2.strength=0.01"
    assert run_name(["data.root=/a/b"]) == "root=_a_b"
    assert run_name([]) == ""


def test_long_names_are_cut_with_a_distinguishing_hash():
    a = run_name([f"model.hidden=[{','.join(['512'] * 30)}]", "optimizer=adam"])
    b = run_name([f"model.hidden=[{','.join(['512'] * 30)}]", "optimizer=sgd"])
    assert len(a) == len(b) == MAX_LEN and a != b and a.startswith("hidden=[512,512")
