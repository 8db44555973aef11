from conftest import run_cfg


def test_default_run_on_digits_reaches_095(tmp_path):
    value, m = run_cfg([], tmp_path)
    assert m["status"] in ("completed", "early_stopped")
    assert m["metrics"]["dev"]["accuracy"] >= 0.95
    assert value == m["objective"]["value"] == m["metrics"]["dev"]["accuracy"]
    assert set(m["metrics"]) == {"train", "dev", "test"}
    assert m["diagnosis"]["verdict"] in ("ok", "high_bias", "high_variance", "high_bias_and_variance")
