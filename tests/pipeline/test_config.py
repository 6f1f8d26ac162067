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


ONEFORECAST_DATA = (
    "data:\n"
    "  pressure_variables: [geopotential, specific_humidity, temperature, u_component_of_wind,"
    " v_component_of_wind]\n"
    "  levels: [50, 100, 150, 200, 250, 300, 400, 500, 600, 700, 850, 925, 1000]\n"
    "  surface_variables: [10m_u_component_of_wind, 10m_v_component_of_wind, 2m_temperature,"
    " mean_sea_level_pressure]\n"
)


def test_compact_selection_expands_to_oneforecasts_69_channels(tmp_path):
    cfg = load_config(write(tmp_path, ONEFORECAST_DATA + "  regrid: {n_lat: 121, n_lon: 240}\n"
                            "  time_step_hours: 6\n  fill_nan: -1.5\n"
                            "evaluate: {plot_variable: specific_humidity_700}\n"))
    v = cfg.data.variables
    assert len(v) == 69 and v[:2] == ("geopotential@50", "geopotential@100")
    assert v[12:14] == ("geopotential@1000", "specific_humidity@50")
    assert v[-4:] == ("10m_u_component_of_wind", "10m_v_component_of_wind", "2m_temperature",
                      "mean_sea_level_pressure")
    assert cfg.data.regrid.n_lat == 121 and cfg.data.time_step_hours == 6
    assert cfg.data.fill_nan == -1.5 and cfg.data.require_global
    # The dumped config (what stages and fingerprints see) validates again unchanged.
    assert Config.model_validate(cfg.model_dump(mode="json")) == cfg


def test_default_data_section_is_unchanged():
    data = Config().data
    assert data.variables[0] == "geopotential@500" and len(data.variables) == 5
    assert (data.regrid, data.time_step_hours, data.fill_nan, data.time_range) == (
        None, None, None, None)
    assert data.dask_scheduler == "threads" and data.name_map == {}


@pytest.mark.parametrize(
    "text, needle",
    [
        (ONEFORECAST_DATA + "  variables: [2m_temperature]\n",
         "variables is mutually exclusive with pressure_variables/levels/surface_variables"),
        ("data: {pressure_variables: [temperature]}\n", "needs levels"),
        ("data: {levels: [500]}\n", "levels needs pressure_variables"),
        ("data: {variables: [t2m]}\n", "write '2m_temperature'"),
        ("data: {regrid: {n_lat: 121}}\n", "data.regrid.n_lon"),
        ("data: {fill_nan: nearest}\n", "data.fill_nan"),
        ("data: {fill_nan: yes}\n", "data.fill_nan"),
        ("data: {dask_scheduler: distributed}\n", "data.dask_scheduler"),
        ("data: {time_step_hours: 0}\n", "data.time_step_hours"),
    ],
)
def test_bad_data_selection_names_the_key(tmp_path, text, needle):
    with pytest.raises(ConfigError) as e:
        load_config(write(tmp_path, text))
    assert needle in str(e.value)
