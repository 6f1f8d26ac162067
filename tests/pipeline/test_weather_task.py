"""The global weather task's arithmetic: targets, forcings, loss weights, rollout curriculum.

A small real prepared store (8 x 16 synthetic ERA5, z500, z850, t850, t2m) and its graph; stub
networks that return a known answer check the task's own arithmetic, the real GatedGNN checks
gradient checkpointing and DDP.
"""

import shutil

import numpy as np
import pytest
import torch
import torch.distributed as dist
import zarr
from torch import nn
from torch.nn.parallel import DistributedDataParallel
from torch.utils.data import default_collate

from graphs import GraphSpec, build_graph, save_graph
from pipeline.config import Config
from pipeline.errors import DataError
from pipeline.ingest import open_prepared, prepare_weather
from pipeline.metrics import lat_weights
from pipeline.synthetic import write_synthetic_era5
from pipeline.tasks.weather import (
    AVG_SECONDS_PER_YEAR,
    WeatherGlobalTask,
    channel_loss_weights,
    channel_variable_level,
    local_solar_time_features,
    relative_l2,
    rollout_steps,
    year_progress_features,
)

SPECS = ["geopotential@500", "geopotential@850", "temperature@850", "2m_temperature"]
PERIODS = {"train": ["2020-01-01", "2020-01-02T18"], "val": ["2020-01-03", "2020-01-03T18"],
           "test": ["2020-01-04", "2020-01-04T18"]}
CPU = torch.device("cpu")
HOUR_NS = 3_600_000_000_000


def ns(time: str) -> int:
    return int(np.datetime64(time, "ns").astype(np.int64))


@pytest.fixture(scope="module")
def inputs(tmp_path_factory):
    root = tmp_path_factory.mktemp("weather_task")
    source = write_synthetic_era5(root / "era5.zarr", start="2020-01-01", end="2020-01-04T18",
                                  n_lat=8, n_lon=16, levels=(500, 850))
    prepare_weather(source, root / "prepared.zarr", variables=SPECS,
                    train_period=tuple(PERIODS["train"]))
    store = open_prepared(root / "prepared.zarr")
    save_graph(build_graph(GraphSpec(lat=tuple(store.lat), lon=tuple(store.lon), mesh_levels=1)),
               root / "graph.pt")
    return {"prepared": str(root / "prepared.zarr"), "graph": str(root / "graph.pt")}


def weather_cfg(*, target="residual", loss="mse", schedule=((0, 1),), checkpointing=True,
                dropout=0.0, variable_weights=None, input_states=1,
                forcings=("local_time", "year_progress", "latitude", "static")) -> dict:
    return Config.model_validate({
        "data": {"variables": SPECS, "periods": PERIODS},
        "model": {"hidden": 8, "processor_layers": 1, "heads": 2, "attention_hidden": 8,
                  "dropout": dropout},
        "train": {"target": target, "loss": loss, "forcings": list(forcings),
                  "input_states": input_states,
                  "variable_weights": variable_weights or {},
                  "rollout": {"schedule": [list(e) for e in schedule],
                              "gradient_checkpointing": checkpointing}},
    }).model_dump(mode="json")


def batch_of(dataset, n: int = 2):
    return default_collate([dataset[i] for i in range(n)])


class Replay(nn.Module):
    """A stub network: returns the given outputs [B, N, C] in turn and records its inputs."""

    def __init__(self, outputs):
        super().__init__()
        self.outputs, self.seen = list(outputs), []
        self.scale = nn.Parameter(torch.ones(()))  # something for backward to reach

    def forward(self, x, graph):
        self.seen.append(x.detach().clone())
        return self.outputs[len(self.seen) - 1] * self.scale


class AddConstant(nn.Module):
    """A stub network that moves the physical state by c [C] per step, seen through the task's
    normalisation: it reads its own normalised input, so only a fed-back forecast moves on."""

    def __init__(self, task, c):
        super().__init__()
        self.task, self.c, self.seen = task, torch.as_tensor(c, dtype=torch.float32), []

    def forward(self, x, graph):
        n_ch = len(self.task.channels)
        self.seen.append(x.detach().clone())
        if self.task.target == "residual":  # the change, normalised by σ_Δ
            return (self.c / self.task.diff_std).expand(x.shape[0], x.shape[1], n_ch)
        return x[..., :n_ch] + self.c / self.task.std  # the next state, normalised by μ, σ


# -- loss weights --------------------------------------------------------------------------------
def test_channel_names_give_variable_and_level():
    assert channel_variable_level("geopotential_500") == ("geopotential", 500.0)
    assert channel_variable_level("temperature_62.5") == ("temperature", 62.5)
    assert channel_variable_level("2m_temperature") == ("2m_temperature", None)
    assert channel_variable_level("10m_u_component_of_wind") == ("10m_u_component_of_wind", None)
    assert channel_variable_level("total_precipitation_6hr") == ("total_precipitation_6hr", None)


def test_channel_weights_by_hand_pressure_levels_and_surface_variables():
    channels = ["geopotential_500", "geopotential_850", "temperature_850", "2m_temperature",
                "10m_u_component_of_wind", "mean_sea_level_pressure"]
    # GraphCast: z averaged over its levels with p / mean(p): 500/675 / 2 = 10/27, 850/675 / 2
    # = 17/27; t850 1; t2m 1; u10, msl 0.1. Sum 16/5 over 6 channels: mean 8/15.
    expected = np.array([10 / 27, 17 / 27, 1, 1, 0.1, 0.1]) * 15 / 8
    np.testing.assert_allclose(channel_loss_weights(channels), expected, rtol=1e-12)
    np.testing.assert_allclose(expected, [25 / 36, 85 / 72, 15 / 8, 15 / 8, 3 / 16, 3 / 16])
    # variable_weights update GraphCast's: msl back to 1 → sum 4.1, mean 4.1/6
    raw = np.array([10 / 27, 17 / 27, 1, 1, 0.1, 1.0])
    np.testing.assert_allclose(
        channel_loss_weights(channels, {"mean_sea_level_pressure": 1.0}), raw / raw.mean())


def test_mse_loss_weights_one_error_by_cell_area_and_channel(inputs):
    task = WeatherGlobalTask(weather_cfg(), inputs)
    np.testing.assert_allclose(task.channel_weights, [10 / 27, 17 / 27, 1, 1] / np.mean(
        [10 / 27, 17 / 27, 1, 1]))
    # WB2 cell areas by hand: edges halfway between the 8 latitudes (90 .. -90) and at ±90
    lat = np.deg2rad(task.lat)
    edges = np.concatenate([[np.pi / 2], (lat[1:] + lat[:-1]) / 2, [-np.pi / 2]])
    area = np.sin(edges[:-1]) - np.sin(edges[1:])
    np.testing.assert_allclose(lat_weights(task.lat), area / area.mean(), rtol=1e-12)

    batch = batch_of(task.train_dataset(), 1)
    x0, x1 = batch[0][:, -1], batch[1][:, 0]
    exact = task.normalised_target(x0, x1)  # [1, N, C]
    n_nodes, n_ch = exact.shape[1:]
    for i_lat, c in ((0, 0), (3, 2), (7, 3)):  # a pole row, a tropical row; z500, t850, t2m
        node = i_lat * 16 + 5
        wrong = exact.clone()
        wrong[0, node, c] += 0.5
        loss, _ = task.loss(Replay([wrong]), batch, CPU)
        expected = area[i_lat] / area.mean() * task.channel_weights[c] * 0.25 / (n_nodes * n_ch)
        assert loss.item() == pytest.approx(expected, rel=1e-4)


def test_relative_l2_by_hand_and_through_the_task(inputs):
    target = torch.tensor([[[3.0, 0.0], [4.0, 2.0]]])  # [B=1, N=2, C=2]
    pred = torch.tensor([[[0.0, 0.0], [0.0, 1.0]]])
    # channel 0: ||(3, 4)|| / ||(3, 4)|| = 1; channel 1: ||(0, 1)|| / ||(0, 2)|| = 0.5
    assert relative_l2(pred, target).item() == pytest.approx(0.75)
    task = WeatherGlobalTask(weather_cfg(target="direct", loss="relative_l2"), inputs)
    batch = batch_of(task.train_dataset())
    exact = task.normalised_target(batch[0][:, -1], batch[1][:, 0])
    loss, _ = task.loss(Replay([1.1 * exact]), batch, CPU)
    assert loss.item() == pytest.approx(0.1, rel=1e-5)  # ||0.1 y|| / ||y|| in every channel


def test_unknown_variable_weight_is_refused(inputs):
    with pytest.raises(ValueError, match="mean_sea_level_pressure"):
        WeatherGlobalTask(weather_cfg(variable_weights={"mean_sea_level_pressure": 1.0}), inputs)


# -- targets -------------------------------------------------------------------------------------
@pytest.mark.parametrize("target", ["residual", "direct"])
def test_forecast_returns_the_truth_when_the_network_gives_the_exact_answer(inputs, target):
    task = WeatherGlobalTask(weather_cfg(target=target), inputs)
    x0, targets, t = batch_of(task.train_dataset())
    x0, x1 = x0[:, -1], targets[:, 0]
    mean, std, diff_std = (torch.from_numpy(task.stats[k])[:, None, None]
                           for k in ("mean", "std", "diff_std"))
    answer = (x1 - x0) / diff_std if target == "residual" else (x1 - mean) / std  # [B, C, H, W]
    answer = answer.flatten(2).transpose(1, 2)  # [B, N, C], grid node = i_lat * W + i_lon
    torch.testing.assert_close(task.normalised_target(x0, x1), answer)
    forecast = task.forecast(Replay([answer]), x0, t)
    torch.testing.assert_close(forecast, x1, rtol=2e-6, atol=0)
    loss, _ = task.loss(Replay([answer]), (x0[:, None], x1[:, None], t), CPU)
    assert loss.item() < 1e-10


# -- rollout ---------------------------------------------------------------------------------------
def test_curriculum_schedule():
    schedule = [(0, 1), (100, 2), (150, 4)]
    assert [rollout_steps(schedule, s) for s in (0, 1, 99, 100, 149, 150, 10**6)] == [
        1, 1, 1, 2, 2, 4, 4]
    assert rollout_steps([(0, 3)], 0) == 3


@pytest.mark.parametrize("target", ["residual", "direct"])
def test_rollout_feeds_each_forecast_back(inputs, target):
    task = WeatherGlobalTask(weather_cfg(target=target, schedule=((0, 1), (5, 3))), inputs)
    dataset = task.train_dataset()
    assert dataset.lead_steps == 3 and task.val_dataset().lead_steps == 3
    x0, _, t = batch_of(dataset)
    x0 = x0[:, -1]
    c = torch.tensor([30.0, -20.0, 0.5, -1.0])  # per channel, physical units
    # the truth is exactly what the stub does: x0 + j c after j steps
    truth = torch.stack([x0 + j * c[:, None, None] for j in (1, 2, 3)], dim=1)
    model = AddConstant(task, c)
    loss, metrics = task.loss(model, (x0[:, None], truth, t), CPU, step=7)
    assert metrics["rollout_steps"].item() == 3 and len(model.seen) == 3
    assert loss.item() < 1e-8
    n_ch = len(task.channels)
    for j, seen in enumerate(model.seen):  # step j saw (x0 + j c − μ)/σ at t + 6 j hours
        state = (x0 + j * c[:, None, None] - task.mean[:, None, None]) / task.std[:, None, None]
        torch.testing.assert_close(seen[..., :n_ch], state.flatten(2).transpose(1, 2),
                                   rtol=0, atol=1e-5)
        torch.testing.assert_close(seen[..., n_ch:], task.forcing(t + j * 6 * HOUR_NS))
    after = x0
    for _ in range(3):
        after = task.forecast(model, after, t)
    torch.testing.assert_close(after, x0 + 3 * c[:, None, None], rtol=1e-6, atol=1e-3)
    model.seen.clear()  # before step 5 the curriculum is at one step
    task.loss(model, (x0[:, None], truth, t), CPU, step=4)
    assert len(model.seen) == 1


def test_two_input_states_feed_the_previous_state_and_roll_it_forward(inputs):
    """input_states 2 (GraphCast): the network sees [x_{t-1}, x_t, forcings]; in a rollout
    the state it was given becomes the previous state of the next step."""
    task = WeatherGlobalTask(weather_cfg(schedule=((0, 3),), input_states=2), inputs)
    n = len(task.channels)
    assert task.model_config().in_channels == 2 * n + len(task.forcings)
    dataset = task.train_dataset()
    assert dataset.history == 2 and task.val_dataset().history == 2
    x, _, t = batch_of(dataset)  # [B, 2, C, H, W]
    x_prev, x0 = x[:, 0], x[:, 1]
    c = torch.tensor([30.0, -20.0, 0.5, -1.0])[:, None, None]
    truth = torch.stack([x0 + j * c for j in (1, 2, 3)], dim=1)
    model = AddConstant(task, c.flatten())
    loss, _ = task.loss(model, (x, truth, t), CPU, step=0)
    assert loss.item() < 1e-8 and len(model.seen) == 3
    norm = lambda s: ((s - task.mean[:, None, None]) / task.std[:, None, None]  # noqa: E731
                      ).flatten(2).transpose(1, 2)
    states = [x_prev, x0, x0 + c, x0 + 2 * c]
    for j, seen in enumerate(model.seen):
        torch.testing.assert_close(seen[..., :n], norm(states[j]), rtol=0, atol=1e-5)
        torch.testing.assert_close(seen[..., n:2 * n], norm(states[j + 1]), rtol=0, atol=1e-5)
        torch.testing.assert_close(seen[..., 2 * n:], task.forcing(t + j * 6 * HOUR_NS))
    with pytest.raises(ValueError, match="previous state"):
        task.forecast(model, x0, t)
    assert task.forecast(task.build_model(), x0, t, x_prev).shape == x0.shape


@pytest.mark.parametrize("dropout", [0.0, 0.3])
def test_gradient_checkpointing_per_step_gives_the_same_gradients(inputs, dropout):
    grads, calls = [], []
    for checkpointing in (False, True):
        task = WeatherGlobalTask(weather_cfg(schedule=((0, 3),), checkpointing=checkpointing,
                                             dropout=dropout), inputs)
        torch.manual_seed(0)
        model = task.build_model()
        forwards = []
        model.register_forward_pre_hook(lambda module, args, seen=forwards: seen.append(1))
        batch = batch_of(task.train_dataset())
        torch.manual_seed(1)  # the same dropout masks, recomputed from the stashed RNG state
        loss, _ = task.loss(model, batch, CPU, step=0)
        loss.backward()
        grads.append({k: p.grad for k, p in model.named_parameters()})
        calls.append(len(forwards))
    assert calls == [3, 6]  # checkpointed: each step's forward runs again in backward
    for k in grads[0]:
        torch.testing.assert_close(grads[1][k], grads[0][k], rtol=1e-5, atol=1e-7, msg=k)


def test_checkpointed_rollout_under_ddp(inputs, tmp_path):
    """DDP around a rollout whose steps are checkpointed: the recomputed forward passes (DDP's
    forward run again inside backward) leave the reducer's accounting intact."""
    task = WeatherGlobalTask(weather_cfg(schedule=((0, 3),)), inputs)
    torch.manual_seed(0)
    model = task.build_model()
    batch = batch_of(task.train_dataset())
    loss, _ = task.loss(model, batch, CPU)
    loss.backward()
    reference = {k: p.grad.clone() for k, p in model.named_parameters()}
    model.zero_grad()
    dist.init_process_group("gloo", init_method=f"file://{tmp_path / 'pg'}", rank=0,
                            world_size=1)
    try:
        ddp = DistributedDataParallel(model)
        for _ in range(2):  # a second iteration fails if the first left a reduction pending
            model.zero_grad()
            loss, _ = task.loss(ddp, batch, CPU)
            loss.backward()
    finally:
        dist.destroy_process_group()
    for k, p in model.named_parameters():
        torch.testing.assert_close(p.grad, reference[k], msg=k)


# -- forcings --------------------------------------------------------------------------------------
def test_local_solar_time_and_year_progress_at_known_times():
    lon = torch.tensor([0.0, 90.0, 180.0, 270.0])
    day = local_solar_time_features(torch.tensor([ns("2020-01-01T12")]), lon)[0]  # [4, 2]
    # 12 UTC: local noon at 0° (phase 1/2), 18 h at 90°E, midnight at 180°, 06 h at 270°E
    expected = torch.tensor([[0.0, -1.0], [-1.0, 0.0], [0.0, 1.0], [1.0, 0.0]])
    torch.testing.assert_close(day, expected, rtol=0, atol=1e-6)

    quarter = int((50 + 0.25) * AVG_SECONDS_PER_YEAR * 1e9)  # 50¼ mean years after 1970
    half = int((50 + 0.5) * AVG_SECONDS_PER_YEAR * 1e9)
    year = year_progress_features(torch.tensor([quarter, half, ns("2020-01-01T00")]))
    torch.testing.assert_close(year[:2], torch.tensor([[1.0, 0.0], [0.0, -1.0]]), rtol=0,
                               atol=1e-6)
    # 1 January 2020 00 UTC is 18262 days after the epoch: progress 18262/365.24219 mod 1
    phase = 2 * np.pi * ((18262 / 365.24219) % 1.0)
    torch.testing.assert_close(year[2], torch.tensor([np.sin(phase), np.cos(phase)],
                                                     dtype=torch.float32), rtol=0, atol=1e-6)
    assert abs(year[2, 0].item()) < 0.002 and year[2, 1].item() > 0.9999  # the year's start


def test_forcing_channels_shape_and_in_channels(inputs):
    task = WeatherGlobalTask(weather_cfg(), inputs)
    assert task.forcings == ["local_time_sin", "local_time_cos", "year_progress_sin",
                             "year_progress_cos", "sin_latitude"]
    assert task.model_config().in_channels == len(SPECS) + 5
    assert task.checkpoint_meta()["forcings"] == task.forcings
    t = torch.tensor([ns("2020-01-01T12"), ns("2020-07-01T00")])
    f = task.forcing(t)  # [B, N, F]
    assert f.shape == (2, 8 * 16, 5) and f.dtype == torch.float32
    lat = np.repeat(task.lat, 16)  # grid node order: lat-major
    lon = np.tile(task.lon, 8)
    torch.testing.assert_close(f[0, :, 4], torch.tensor(np.sin(np.deg2rad(lat)),
                                                        dtype=torch.float32))
    noon = (lat == task.lat[2]) & (lon == 0.0)  # 12 UTC at 0°E: local noon
    torch.testing.assert_close(f[0, noon, :2], torch.tensor([[0.0, -1.0]]), rtol=0, atol=1e-6)
    assert (f[0, :, 2:4] == f[0, :1, 2:4]).all()  # one year phase for the whole globe
    assert f[1, 0, 3] < -0.99  # 1 July: half a year on
    batch = batch_of(task.train_dataset())
    assert task.build_model()(torch.zeros(2, 128, task.model_config().in_channels),
                              task.device_graph).shape == (2, 128, len(SPECS))
    assert task.forecast(task.build_model(), batch[0][:, -1], batch[2]).shape == (2, 4, 8, 16)


def test_static_fields_of_the_store_become_forcing_channels(inputs, tmp_path):
    prepared = tmp_path / "with_static.zarr"
    shutil.copytree(inputs["prepared"], prepared)
    lat = open_prepared(prepared).lat
    land = np.zeros((8, 16), np.float32)
    land[2:5, 3:9] = 1.0
    orography = np.broadcast_to(np.cos(np.deg2rad(lat))[:, None] * 3000, (8, 16))
    group = zarr.open_group(prepared, mode="a")
    static = group.create_array("static", shape=(2, 8, 16), dtype="float32")
    static[:] = np.stack([land, orography])
    static.attrs["channels"] = ["land_sea_mask", "geopotential_at_surface"]

    task = WeatherGlobalTask(weather_cfg(), {**inputs, "prepared": str(prepared)})
    assert task.forcings[-2:] == ["static:land_sea_mask", "static:geopotential_at_surface"]
    assert task.model_config().in_channels == len(SPECS) + 7
    f = task.forcing(torch.tensor([ns("2020-01-01")]))[0, :, 5:].numpy()  # [N, 2]
    w = np.repeat(lat_weights(lat), 16)[:, None]
    np.testing.assert_allclose((w * f).mean(0), 0, atol=1e-6)  # area-weighted mean 0, std 1
    np.testing.assert_allclose((w * f**2).mean(0), 1, rtol=1e-5)
    assert (f[:, 0] > 0).sum() == 18 and f[3 * 16 + 4, 0] > 0  # the land box, lat-major
    batch = batch_of(task.train_dataset())
    loss, _ = task.loss(task.build_model(), batch, CPU)
    assert torch.isfinite(loss)

    del group["static"]
    group.create_array("static", shape=(2, 16, 8), dtype="float32").attrs["channels"] = ["a", "b"]
    without = WeatherGlobalTask(weather_cfg(forcings=("local_time", "latitude")),
                                {**inputs, "prepared": str(prepared)})  # not read at all
    assert without.forcings == ["local_time_sin", "local_time_cos", "sin_latitude"]

    with pytest.raises(DataError, match="static"):
        WeatherGlobalTask(weather_cfg(), {**inputs, "prepared": str(prepared)})


def test_forcing_groups_can_be_left_out(inputs):
    task = WeatherGlobalTask(weather_cfg(forcings=("latitude", "local_time")), inputs)
    assert task.forcings == ["local_time_sin", "local_time_cos", "sin_latitude"]  # fixed order
    assert task.model_config().in_channels == len(SPECS) + 3
    full = WeatherGlobalTask(weather_cfg(), inputs)
    t = torch.tensor([ns("2020-01-01T12")])
    torch.testing.assert_close(task.forcing(t), full.forcing(t)[..., [0, 1, 4]])
    assert WeatherGlobalTask(weather_cfg(forcings=()), inputs).forcing(t).shape == (1, 128, 0)


def test_evaluation_gives_a_two_state_model_the_previous_state(inputs, tmp_path):
    cfg = weather_cfg(input_states=2)
    cfg["evaluate"]["lead_steps"] = 1
    task = WeatherGlobalTask(cfg, inputs)
    model = AddConstant(task, torch.zeros(len(task.channels)))  # forecasts x_t: persistence
    doc = task.evaluate(model, tmp_path, max_samples=10)
    n = len(task.channels)
    for channel, scores in doc["scores"]["model"].items():
        assert scores["6"]["rmse"] == pytest.approx(doc["scores"]["persistence"][channel]["6"]
                                                    ["rmse"], rel=1e-6)
    windows = task._windows("test", 1)
    (x, _, _), seen = windows[0], model.seen[0]
    norm = ((x - task.mean[:, None, None]) / task.std[:, None, None]).flatten(2).transpose(1, 2)
    torch.testing.assert_close(seen[0, :, :n], norm[0], rtol=0, atol=1e-5)  # x_{t-1}
    torch.testing.assert_close(seen[0, :, n:2 * n], norm[1], rtol=0, atol=1e-5)  # x_t
