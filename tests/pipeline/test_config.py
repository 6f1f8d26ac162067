import os
import subprocess
import sys

import pytest
from pydantic import ValidationError

from pipeline.config import Config, apply_overrides, channel_names, load_config
from pipeline.errors import ConfigError


def write(tmp_path, text, name="c.yaml"):
    p = tmp_path / name
    p.write_text(text)
    return p


def test_defaults_validate_and_overrides_are_typed(tmp_path):
    cfg = load_config(write(tmp_path, "name: t\n"), ["train.max_steps=7", "model.dropout=0.1",
                                                     "data.synthetic.levels=[500]"])
    assert cfg.train.max_steps == 7 and cfg.model.dropout == 0.1
    assert cfg.data.synthetic.levels == (500,)
    assert channel_names(("geopotential@500", "2m_temperature")) == [
        "geopotential_500", "2m_temperature"]


@pytest.mark.parametrize(
    "text, overrides, needle",
    [
        ("train: {max_stepz: 3}\n", [], "train.max_stepz: unknown key; allowed keys here:"),
        ("model: {hidden: big}\n", [], "model.hidden"),
        ("", ["train.lr=-1"], "train.lr"),
        ("", ["train.batch_size=7"], "divisible by num_workers"),
        ("data: {source: /no/such/store.zarr}\n", [], "data.source"),
        ("train: {task: imagenet}\n", [], "train.task"),
        ("evaluate: {plot_variable: rain}\n", [], "not a channel"),
        ("- a\n- b\n", [], "mapping"),
        ("", ["train.max_steps"], "expected key.sub=value"),
        ("model: {hidden: 4}\n", ["model.hidden.deeper=3"], "'hidden' is not a section"),
    ],
)
def test_bad_configs_name_the_key(tmp_path, text, overrides, needle):
    with pytest.raises(ConfigError) as e:
        load_config(write(tmp_path, text), overrides)
    assert needle in str(e.value)
    assert str(tmp_path / "c.yaml") in str(e.value) or "override" in str(e.value)


def test_missing_config_file(tmp_path):
    with pytest.raises(ConfigError, match="not found"):
        load_config(tmp_path / "absent.yaml")


def test_override_builds_nested_sections():
    assert apply_overrides({}, ["a.b.c=1", "a.d=x"]) == {"a": {"b": {"c": 1}, "d": "x"}}


def test_frozen_config_rejects_mutation():
    with pytest.raises(ValidationError, match="frozen"):
        Config().train.max_steps = 3  # type: ignore[misc]


@pytest.mark.parametrize(
    "text, extra, needle",
    [
        ("train: {bogus: 1}\n", [], "train.bogus"),
        ("train: {max_steps: many}\n", [], "train.max_steps"),
        (None, [], "config file not found"),
        ("data: {source: missing.zarr}\n", [], "data.source"),
    ],
)
def test_cli_bad_config_exits_2_and_writes_nothing(tmp_path, text, extra, needle):
    cfg = write(tmp_path, text) if text is not None else tmp_path / "nope.yaml"
    run_dir = tmp_path / "run"
    env = {k: v for k, v in os.environ.items() if k != "RAY_ADDRESS"}
    proc = subprocess.run(
        [sys.executable, "-m", "pipeline.cli", "run", str(cfg), *extra, "--run-dir", str(run_dir)],
        capture_output=True, text=True, env=env, timeout=120,
    )
    assert proc.returncode == 2, proc.stderr
    assert needle in proc.stderr
    assert not run_dir.exists()


def test_times_are_parsed_as_users_write_them(tmp_path):
    cfg = load_config(write(tmp_path, "data: {periods: {test: [2020-02-20, 2020-02-29T18]}}\n"))
    assert str(cfg.data.periods.test[1]) == "2020-02-29 18:00:00"
    with pytest.raises(ConfigError, match="data.periods.val"):
        load_config(write(tmp_path, "data: {periods: {val: [2020-02-20, yesterday]}}\n"))
