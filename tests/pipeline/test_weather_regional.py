"""The neural nested grid (issue 9): regional data, boundary store, task, evaluation.

One small world for the module: the synthetic atmosphere (T42 core, 5.625° global output and a
native-grid crop around 30-50°N 100-130°E, 7 days), a global model trained 4 steps on the global
store, the regional graph and the boundary store, all through the stage functions.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch

from pipeline.config import Config
from pipeline.errors import DataError

SPECS = ["geopotential@500", "temperature@850", "2m_temperature"]
PERIODS = {"train": ["2001-01-01", "2001-01-04T18"], "val": ["2001-01-05", "2001-01-05T18"],
           "test": ["2001-01-06", "2001-01-07T18"]}
DATA = {"source": "synthetic", "variables": SPECS, "periods": PERIODS,
        "synthetic": {"kind": "atmosphere", "n_lat": 32, "n_lon": 64, "start": "2001-01-01",
                      "end": "2001-01-07T18", "spinup_days": 1}}
SMALL = {"hidden": 8, "processor_layers": 1, "heads": 2, "attention_hidden": 8}
TRAIN = {"num_workers": 1, "batch_size": 2, "max_steps": 4, "checkpoint_every": 4,
         "warmup_steps": 1, "loader_workers": 0, "forcings": ["local_time", "latitude"]}
BOX, MARGIN = [30.0, 50.0, 100.0, 130.0], 8.0
STEP_NS = 6 * 3600 * 10**9


def regional_cfg(root, **regional) -> dict:
    return Config.model_validate({
        "data": DATA, "graph": {"mesh_levels": 2, "region_levels": 1}, "model": SMALL,
        "train": {**TRAIN, "task": "weather_regional",
                  "rollout": {"schedule": [[0, 1], [2, 2]]}},
        "evaluate": {"lead_steps": 3, "init_stride": 2},
        "regional": {"box": BOX, "margin": MARGIN,
                     "global_checkpoint": str(root / "gtrain" / "checkpoint_000000004"),
                     **regional}}).model_dump(mode="json")


@pytest.fixture(scope="module")
def world(tmp_path_factory):
    from graphs import build_graph, save_graph
    from pipeline import regional_stages as rs
    from pipeline.ingest import open_prepared
    from pipeline.ingest.regional import ingest_regional
    from pipeline.session import TorchrunSession
    from pipeline.stages import graph_spec, task_inputs
    from pipeline.train import run_training

    root = tmp_path_factory.mktemp("regional")
    cfg = regional_cfg(root)
    ingest_regional(cfg, {}, root / "ingest", root / "work")
    gcfg = Config.model_validate({"data": DATA, "graph": {"mesh_levels": 1}, "model": SMALL,
                                  "train": {**TRAIN, "input_states": 2}}).model_dump(mode="json")
    glob = open_prepared(root / "ingest" / "prepared.zarr")
    save_graph(build_graph(graph_spec(gcfg, glob.lat, glob.lon)), root / "ggraph.pt")
    run_training(gcfg, {"prepared": str(root / "ingest" / "prepared.zarr"),
                        "graph": str(root / "ggraph.pt")}, TorchrunSession(root / "gtrain"))
    work = root / "run" / ".work" / "x"
    for name, fn in (("graph", rs.regional_graph), ("boundary", rs.boundary)):
        (root / name).mkdir()
        fn(cfg, {"ingest": root / "ingest"}, root / name, work)
    inputs = task_inputs({"ingest": root / "ingest", "graph": root / "graph",
                          "boundary": root / "boundary"})
    return {"root": root, "cfg": cfg, "inputs": inputs, "work": work}


def _task(world, **regional):
    from pipeline.tasks.weather_regional import WeatherRegionalTask

    return WeatherRegionalTask(regional_cfg(world["root"], **regional), world["inputs"])


def _global_forecast(world, init_index: int, steps: int = 1) -> np.ndarray:
    """The global model rolled out from the prepared global store at init_index, then
    interpolated onto the regional store's grid, computed here from the parts."""
    from models.oneforecast.nested import BoundaryInterpolator
    from pipeline.forecast import Forecaster
    from pipeline.ingest import open_prepared

    f = Forecaster.from_checkpoint(world["cfg"]["regional"]["global_checkpoint"],
                                   world["root"] / "cache", device="cpu")
    glob = open_prepared(world["inputs"]["prepared"])
    reg = open_prepared(world["inputs"]["regional"])
    states = np.asarray(glob.data[init_index - 1:init_index + 1])
    out = f.rollout(states, int(glob.times[init_index].astype(np.int64)), steps)
    interp = BoundaryInterpolator(glob.lat, glob.lon, reg.lat, reg.lon)
    return interp(torch.from_numpy(out)).numpy()  # [steps, C, h, w]


# -- data ------------------------------------------------------------------------------------
def test_regional_store_is_the_native_grid_on_the_domain_with_its_own_statistics(world):
    from pipeline.atmosphere import AtmosphereConfig
    from pipeline.ingest import open_prepared

    reg = open_prepared(world["inputs"]["regional"])
    glob = open_prepared(world["inputs"]["prepared"])
    native = AtmosphereConfig().grid()
    lat_min, lat_max = BOX[0] - MARGIN, BOX[1] + MARGIN
    inside = (native.latitude >= lat_min) & (native.latitude <= lat_max)
    np.testing.assert_allclose(reg.lat, native.latitude[inside])
    assert np.all((reg.lon >= BOX[2] - MARGIN) & (reg.lon <= BOX[3] + MARGIN))
    assert reg.lon.size == ((native.longitude >= BOX[2] - MARGIN)
                            & (native.longitude <= BOX[3] + MARGIN)).sum()
    np.testing.assert_array_equal(reg.times, glob.times)
    # its own normalisation: the domain's, not the globe's (t2m is colder and less varied here
    # in January than over the globe)
    c = reg.channels.index("2m_temperature")
    assert not np.isclose(reg.mean[c], glob.mean[c], rtol=1e-3)
    data = np.asarray(reg.data[:16], np.float64)  # the training period's first 16 times
    np.testing.assert_allclose(reg.mean[c], data[:, c].mean(), rtol=1e-4)


# -- the boundary store ----------------------------------------------------------------------
def test_boundary_is_the_global_forecast_valid_at_each_time_and_a_shift_is_detectable(world):
    from pipeline.ingest import open_prepared

    bnd = open_prepared(world["inputs"]["boundary"])
    for i in (5, 9):
        expected = _global_forecast(world, i - 1)[0]  # from T_{i-1}: valid at T_i
        np.testing.assert_allclose(bnd.data[i], expected, rtol=1e-5, atol=1e-3)
        # the forecast valid one step later (or earlier) is measurably another field
        later = _global_forecast(world, i)[0]
        assert np.abs(later - expected).max() > 100 * 1e-3 + 1e-5 * np.abs(expected).max()
        assert not np.allclose(bnd.data[i + 1], bnd.data[i], rtol=1e-5, atol=1e-3)
    # the first times, without the analyses the model needs, hold the analysis itself
    assert bnd.attrs["lead0_times"] == 2 and bnd.attrs["lead_hours"] == 6.0


def test_network_sees_the_global_forecast_valid_at_the_target_time(world):
    """The g channels of the step t → t+6h are the boundary store at t+6h, and the margin of
    x_t is the boundary store at t: recorded from the inputs the network receives."""
    from pipeline.ingest import open_prepared

    task = _task(world)
    ds = task.train_dataset()
    seen = {}

    class Recorder(torch.nn.Module):
        def forward(self, inputs, graph):
            seen["inputs"] = inputs
            return torch.zeros(inputs.shape[0], inputs.shape[1], len(task.channels))

    batch = tuple(part[None] for part in ds[3])
    task.loss(Recorder(), batch, "cpu", step=0)
    c = len(task.channels)
    x = seen["inputs"][0, :, :c] * task.std + task.mean  # [N, C] physical
    g = seen["inputs"][0, :, c:2 * c] * task.std + task.mean
    bnd = open_prepared(world["inputs"]["boundary"])
    t = int(np.flatnonzero(bnd.times == ds.times[3])[0])
    crop = lambda a: a[:, task.rows][:, :, task.cols].reshape(c, -1).T  # noqa: E731
    target_time = crop(np.asarray(bnd.data[t + 1]))
    np.testing.assert_allclose(g.numpy(), target_time, rtol=1e-5, atol=1e-2)
    assert not np.allclose(g.numpy(), crop(np.asarray(bnd.data[t])), rtol=1e-5, atol=1e-2)
    margin = ~task.interior.reshape(-1)
    np.testing.assert_allclose(x.numpy()[margin], crop(np.asarray(bnd.data[t]))[margin],
                               rtol=1e-5, atol=1e-2)
    truth = crop(np.asarray(open_prepared(world["inputs"]["regional"]).data[t]))
    np.testing.assert_allclose(x.numpy()[~margin], truth[~margin], rtol=1e-5, atol=1e-2)
    # the interior flag is the last input channel
    np.testing.assert_array_equal(seen["inputs"][0, :, -1].numpy(), (~margin).astype(np.float32))


# -- training with the boundaries of every lead (regional.train_boundary: rollout) --------------
ROLLOUT = {"train_boundary": "rollout", "boundary_leads": 3, "boundary_init_stride": 2}


@pytest.fixture(scope="module")
def rollout_inputs(world):
    """The boundary stage's rollout store beside the module's one-step one."""
    from pipeline import regional_stages as rs

    out = world["root"] / "boundary_rollouts"
    out.mkdir()
    rs.boundary(regional_cfg(world["root"], **ROLLOUT), {"ingest": world["root"] / "ingest"},
                out, world["work"])
    return {**world["inputs"], "boundary": str(out / "boundary.zarr")}


def _rollout_task(world, rollout_inputs):
    from pipeline.tasks.weather_regional import WeatherRegionalTask

    return WeatherRegionalTask(regional_cfg(world["root"], **ROLLOUT), rollout_inputs)


def test_rollout_store_holds_the_global_rollout_from_each_initial_time(world, rollout_inputs):
    import zarr

    from pipeline.ingest import open_prepared

    group = zarr.open_group(rollout_inputs["boundary"], mode="r")
    reg = open_prepared(world["inputs"]["regional"])
    inits = np.asarray(group["init_time"][:], np.int64).view("datetime64[ns]")
    # every 2nd time of train (indices 0-15: the global model needs index 1 too; 3 leads
    # after, so <= 12) and val (16-19: <= 16)
    np.testing.assert_array_equal(inits, reg.times[[2, 4, 6, 8, 10, 12, 16]])
    assert group["data"].shape == (7, 4, len(reg.channels), reg.lat.size, reg.lon.size)
    assert group.attrs["layout"] == "rollouts"
    for m, i in ((1, 4), (6, 16)):
        expected = _global_forecast(world, i, steps=3)  # valid at i+1 .. i+3
        np.testing.assert_allclose(group["data"][m, 1:], expected, rtol=1e-5, atol=1e-3)
    # lead 0 is the global analysis interpolated: not the regional truth, but close to it
    from models.oneforecast.nested import BoundaryInterpolator

    glob = open_prepared(world["inputs"]["prepared"])
    interp = BoundaryInterpolator(glob.lat, glob.lon, reg.lat, reg.lon)
    analysis = interp(torch.from_numpy(np.asarray(glob.data[4:5]))).numpy()[0]
    np.testing.assert_allclose(group["data"][1, 0], analysis, rtol=1e-5, atol=1e-3)


def test_rollout_training_runs_as_a_forecast_from_the_initial_time(world, rollout_inputs):
    """A batch is whole forecasts from initial times T_i: the model runs k0 steps without
    gradient from the analysis, then k with; step j reads R[m, j + 1] and the lead channel
    (j + 1) / L, and its margin is R[m, j] — recorded from the inputs the network receives.
    Feeding another lead's forecast would be visible."""
    import zarr

    from pipeline.ingest import open_prepared

    task = _rollout_task(world, rollout_inputs)
    ds = task.train_dataset()
    assert ds.samples[:, 0].tolist() == [0, 1, 2, 3, 4, 5]  # the six training initial times
    x, y, t, b, lead = ds[2]
    assert y.shape[0] == 3 and b.shape[0] == 4 and lead.tolist() == [0, 1, 2, 3]
    steps = [s for s in range(2, 60) if task.start_lead(s, 3) == 1]
    assert steps and {task.start_lead(s, 3) for s in range(2, 60)} == {0, 1, 2}
    seen = []

    class Recorder(torch.nn.Module):
        def forward(self, inputs, graph):  # zero tendency: the interior stays the analysis
            seen.append((inputs, torch.is_grad_enabled()))
            return torch.zeros(inputs.shape[0], inputs.shape[1], len(task.channels))

    task.loss(Recorder(), tuple(p[None] for p in (x, y, t, b, lead)), "cpu", step=steps[0])
    assert [grad for _, grad in seen] == [False, True, True]  # k0 = 1, then k = 2
    c = len(task.channels)
    rollouts = zarr.open_group(rollout_inputs["boundary"], mode="r")["data"]
    reg = open_prepared(world["inputs"]["regional"])
    crop = lambda a: a[:, task.rows][:, :, task.cols].reshape(c, -1).T  # noqa: E731
    margin = ~task.interior.reshape(-1)
    truth = crop(np.asarray(reg.data[6]))  # the third initial time: index 6
    for j, (inputs, _) in enumerate(seen):
        x_phys = (inputs[0, :, :c] * task.std + task.mean).numpy()
        np.testing.assert_allclose(x_phys[margin], crop(rollouts[2, j])[margin], rtol=1e-5,
                                   atol=1e-2)
        np.testing.assert_allclose(x_phys[~margin], truth[~margin], rtol=1e-5, atol=1e-2)
        g = (inputs[0, :, c:2 * c] * task.std + task.mean).numpy()
        np.testing.assert_allclose(g, crop(rollouts[2, j + 1]), rtol=1e-5, atol=1e-2)
        assert not np.allclose(g, crop(rollouts[2, j]), rtol=1e-5, atol=1e-2)
        np.testing.assert_allclose(inputs[0, :, -1].numpy(), (j + 1) / 3)  # the lead channel
        np.testing.assert_array_equal(inputs[0, :, -2].numpy(), (~margin).astype(np.float32))
    assert task.model_config().in_channels == 2 * c + len(task.forcings)
    assert task.forcings[-2:] == ["interior", "boundary_lead"]
    # the real model: the trained steps reach every parameter
    model = task.build_model()
    loss, metrics = task.loss(model, tuple(p[None] for p in (x, y, t, b, lead)), "cpu",
                              step=steps[0])
    loss.backward()
    assert metrics["rollout_steps"] == 2
    assert not [n for n, p in model.named_parameters() if p.grad is None]
    # train.rollout.gradient_checkpointing recomputes the steps: the same loss and gradients
    assert task.rollout_checkpointing
    grads = [p.grad.clone() for p in model.parameters()]
    task.rollout_checkpointing = False
    model.zero_grad()
    plain, _ = task.loss(model, tuple(p[None] for p in (x, y, t, b, lead)), "cpu",
                         step=steps[0])
    plain.backward()
    assert float(plain.detach()) == pytest.approx(float(loss.detach()), rel=1e-6)
    for g, p in zip(grads, model.parameters(), strict=True):
        torch.testing.assert_close(p.grad, g, rtol=1e-5, atol=1e-7)
    # a start at the last lead trains that lead alone: one step, not none
    seen.clear()
    last = next(s for s in range(2, 200) if task.start_lead(s, 3) == 2)
    _, metrics = task.loss(Recorder(), tuple(p[None] for p in (x, y, t, b, lead)), "cpu",
                           step=last)
    assert [grad for _, grad in seen] == [False, False, True] and metrics["rollout_steps"] == 1
    np.testing.assert_allclose(seen[-1][0][0, :, -1].numpy(), 3 / 3)  # lead 3's channel


def test_a_forecast_step_k_reads_lead_k_plus_one(world, rollout_inputs):
    task = _rollout_task(world, rollout_inputs)
    seen = []

    class Recorder(torch.nn.Module):
        def forward(self, inputs, graph):
            seen.append(inputs[:, :, -1])
            return torch.zeros(inputs.shape[0], inputs.shape[1], len(task.channels))

    x, _, t, b, _ = task.train_dataset()[0]
    g = b[1:][None].repeat(2, 1, 1, 1, 1)  # [2, 3, C, h, w]
    task.rollout(Recorder(), x[-1:].repeat(2, 1, 1, 1), b[:1].repeat(2, 1, 1, 1), g,
                 t[None].repeat(2))
    assert [s.unique().numel() for s in seen] == [1, 1, 1]  # one value at every node
    assert [float(s[0, 0]) for s in seen] == pytest.approx([1 / 3, 2 / 3, 1])
    with pytest.raises(ValueError, match="lead of its global forecast"):
        task.network_output(Recorder(), x[-1:], t[None], b[1:2])


def test_without_boundary_rollout_training_starts_from_the_same_initial_times(world):
    from graphs import build_graph, save_graph
    from pipeline.ingest import open_prepared
    from pipeline.regional_stages import regional_graph_spec
    from pipeline.tasks.weather_regional import WeatherRegionalTask

    cfg = regional_cfg(world["root"], boundary=False, **ROLLOUT)
    reg = open_prepared(world["inputs"]["regional"])
    graph = world["root"] / "box_graph_rollout.pt"
    save_graph(build_graph(regional_graph_spec(cfg, reg.lat, reg.lon)), graph)
    inputs = {k: v for k, v in world["inputs"].items() if k != "boundary"}
    task = WeatherRegionalTask(cfg, {**inputs, "graph": str(graph)})
    ds = task.train_dataset()
    # every 2nd training time with 3 steps after it (no global model: index 0 too)
    np.testing.assert_array_equal(ds.times, reg.times[[0, 2, 4, 6, 8, 10, 12]])
    x, y, t, b, lead = ds[1]
    assert b.numel() == 0 and "boundary_lead" not in task.forcings
    loss, _ = task.loss(task.build_model(), tuple(p[None] for p in (x, y, t, b, lead)), "cpu",
                        step=3)
    assert torch.isfinite(loss)


def test_persistence_loss_of_a_linear_trend_is_lead_squared_times_hand_computed(world,
                                                                                   tmp_path):
    """E_ℓ on a store whose fields change linearly in time, x_t = x_0 + t s_c σ_Δ,c: every
    ℓ-step change is ℓ s_c σ_Δ,c at every node, so E_ℓ = ℓ² mean_c w_c s_c² (node weights
    average 1 over the domain). The training period's windows only: a change past its end
    would break the trend's value (below)."""
    import shutil

    import zarr

    from pipeline.ingest import open_prepared
    from pipeline.tasks.weather_regional import WeatherRegionalTask

    src = open_prepared(world["inputs"]["regional"])
    path = tmp_path / "linear.zarr"
    shutil.copytree(world["inputs"]["regional"], path)
    data = zarr.open_array(f"{path}/data", mode="r+")
    s = np.array([1.0, 2.0, 3.0])
    steps = np.arange(data.shape[0], dtype=np.float64)[:, None, None, None]
    data[:] = (np.asarray(src.data[:1], np.float64)
               + steps * (s * src.diff_std)[None, :, None, None]).astype(np.float32)
    # after the training period (16 windows of 1 + 3 times in 0..15) the trend breaks: a
    # window reaching past it would change E
    data[16:] = data[16:] + 1e3 * src.diff_std[None, :, None, None].astype(np.float32)
    task = WeatherRegionalTask(regional_cfg(world["root"], lead_loss="persistence", **ROLLOUT),
                               {**world["inputs"], "regional": str(path)})
    task._tensors("cpu")
    w = task.channel_weight.numpy().astype(np.float64)
    e1 = float(np.mean(w * s ** 2))
    np.testing.assert_allclose(task.persistence_loss(3).numpy(), e1 * np.array([1, 4, 9]),
                               rtol=1e-4)


def test_lead_loss_divides_each_step_by_persistence_at_its_lead(world, rollout_inputs):
    """With a zero-tendency network the interior stays the analysis, so step j's term is
    persistence's at lead j + 1 for this sample, P_{j+1}; uniform: mean_j P, persistence:
    mean_j P_{j+1} / E_{j+1} (an off-by-one lead would use E_j: detectable, E grows)."""
    from pipeline.tasks.weather_regional import WeatherRegionalTask

    class Zero(torch.nn.Module):
        def forward(self, inputs, graph):
            return torch.zeros(inputs.shape[0], inputs.shape[1], len(task.channels))

    task = WeatherRegionalTask(regional_cfg(world["root"], lead_loss="persistence", **ROLLOUT),
                               rollout_inputs)
    uniform = _rollout_task(world, rollout_inputs)
    batch = tuple(p[None] for p in task.train_dataset()[2])
    x, y, _, b, _ = batch
    step = next(s for s in range(2, 60) if task.start_lead(s, 3) == 1)  # steps 1, 2 trained
    task._tensors("cpu")
    x0 = task.with_margin(x[:, -1], b[:, 0])
    p = [float(task.objective(torch.zeros(1, x0[0, 0].numel(), x0.shape[1]),
                              task.normalised_target(x0, y[:, j]))) for j in (1, 2)]
    e = task.persistence_loss(3).numpy()
    assert e[0] < e[1] < e[2]
    loss_u, _ = uniform.loss(Zero(), batch, "cpu", step=step)
    loss_p, _ = task.loss(Zero(), batch, "cpu", step=step)
    assert float(loss_u) == pytest.approx(np.mean(p), rel=1e-5)
    assert float(loss_p) == pytest.approx(np.mean([p[0] / e[1], p[1] / e[2]]), rel=1e-5)
    assert float(loss_p) != pytest.approx(np.mean([p[0] / e[0], p[1] / e[1]]), rel=1e-3)
    assert task.checkpoint_meta()["regional"]["lead_loss"] == "persistence"


def test_analysis_start_fraction_sets_how_often_training_starts_from_the_analysis(world):
    from pipeline.tasks.weather_regional import WeatherRegionalTask

    def shares(fraction, k=1, leads=12, n=4000):
        task = WeatherRegionalTask(regional_cfg(world["root"], analysis_start_fraction=fraction,
                                                **ROLLOUT), world["inputs"])
        k0 = np.array([task.start_lead(s, leads) for s in range(n)])
        assert [task.start_lead(s, leads) for s in range(5)] == k0[:5].tolist()
        return np.bincount(k0, minlength=leads) / n

    uniform = shares(None)
    np.testing.assert_allclose(uniform, 1 / 12, atol=0.015)  # 0..11 alike
    half = shares(0.5)
    assert half[0] == pytest.approx(0.5, abs=0.03)
    np.testing.assert_allclose(half[1:], 0.5 / 11, atol=0.012)  # 1..11 share the rest
    assert shares(0.0)[0] == 0.0


def test_every_lead_past_the_rollout_length_is_trained_equally_often(world):
    """Rollout k = 2 over L = 12 leads, p = 0.5: lead 1 only from the analysis (share p),
    lead 2 from k0 = 0 and 1 (p + (1 − p)/11), every lead 3..12 from two starts, 2(1 − p)/11
    each — the last lead too (k0 = 11 trains one step, lead 12, rather than never)."""
    from pipeline.tasks.weather_regional import WeatherRegionalTask

    task = WeatherRegionalTask(regional_cfg(world["root"], analysis_start_fraction=0.5,
                                            **ROLLOUT), world["inputs"])
    n, counts = 6000, np.zeros(13)
    for s in range(n):
        trained = task.trained_steps(s, 2, 12)
        assert trained.start == task.start_lead(s, 12) and 1 <= len(trained) <= 2
        assert trained.stop <= 12 and (len(trained) == 2 or trained.start == 11)
        counts[[j + 1 for j in trained]] += 1
    share = counts / n
    assert share[1] == pytest.approx(0.5, abs=0.03)
    assert share[2] == pytest.approx(0.5 + 0.5 / 11, abs=0.03)
    np.testing.assert_allclose(share[3:], 1 / 11, atol=0.015)
    assert share[12] > 0.07  # a draw on 0..L − k left it at 0.5 / 11 ≈ 0.045


def test_a_one_step_store_is_refused_for_rollout_training(world):
    from pipeline.tasks.weather_regional import WeatherRegionalTask

    task = WeatherRegionalTask(regional_cfg(world["root"], **ROLLOUT), world["inputs"])
    with pytest.raises(DataError, match="layout"):
        task.train_dataset()


# -- the task ----------------------------------------------------------------------------------
def test_margin_is_the_global_forecast_and_the_loss_sees_only_the_box(world):
    task = _task(world)
    model = task.build_model()
    x, y, t, b, lead = task.train_dataset()[0]
    with torch.no_grad():
        out = task.forecast(model, x[-1:].clone(), t[None], b[1:2])
    interior = torch.from_numpy(task.interior)
    torch.testing.assert_close(out[0][:, ~interior], b[1][:, ~interior])
    assert not torch.equal(out[0][:, interior], b[1][:, interior])
    batch = (x[None], y[None], t[None], b[None], lead[None])
    base, _ = task.loss(model, batch, "cpu", step=0)
    y_margin = y.clone()
    y_margin[:, :, ~interior] += 1e3  # truth changed in the margin only
    same, _ = task.loss(model, (x[None], y_margin[None], t[None], b[None], lead[None]), "cpu",
                        step=0)
    torch.testing.assert_close(same, base)
    y_box = y.clone()
    y_box[:, :, interior] += 10.0
    moved, _ = task.loss(model, (x[None], y_box[None], t[None], b[None], lead[None]), "cpu",
                         step=0)
    assert moved > base
    # area weights: inside the box ∝ Δ sin φ of each row, zero in the margin, mean 1
    w = task.node_weight.reshape(task.interior.shape)
    assert torch.all(w[~interior] == 0) and torch.isclose(task.node_weight.mean(),
                                                         torch.tensor(1.0))
    rows = w[interior].reshape(len(task.box_rows), len(task.box_cols))[:, 0]
    lat = np.deg2rad(task.lat[task.box_rows])
    ratio = (rows / rows[0]).numpy()
    np.testing.assert_allclose(ratio, np.cos(lat) / np.cos(lat[0]), rtol=2e-3)


def test_residual_base_boundary_adds_the_output_to_the_global_forecast(world):
    """regional.residual_base boundary: x̂ = g_{t+Δt} + σ_Δ f inside the box (x_t + σ_Δ f with
    the default), the margin g either way; the loss is the same f against (y − g)/σ_Δ."""
    on_state, on_g = _task(world), _task(world, residual_base="boundary")
    model = on_state.build_model()
    x, y, t, b, lead = on_g.train_dataset()[0]
    x0 = on_g.with_margin(x[-1:], b[0:1])
    with torch.no_grad():
        f = on_g.network_output(model, x0, t[None], b[1:2]).float()  # [1, N, C]
        a, c = on_state.forecast(model, x0, t[None], b[1:2]), on_g.forecast(model, x0, t[None],
                                                                           b[1:2])
    step = (f[0].T * on_g.diff_std[:, None]).reshape(x0.shape[1:])  # σ_Δ f as [C, h, w]
    interior = torch.from_numpy(on_g.interior)
    torch.testing.assert_close(c[0][:, interior], (b[1] + step)[:, interior])
    torch.testing.assert_close(a[0][:, interior], (x0[0] + step)[:, interior])
    torch.testing.assert_close(c[0][:, ~interior], b[1][:, ~interior])
    with torch.no_grad():
        loss, _ = on_g.loss(model, (x[None], y[None], t[None], b[None], lead[None]), "cpu",
                            step=0)
    err = (f[0] - ((y[0] - b[1]) / on_g.diff_std[:, None, None]).reshape(f.shape[2], -1).T) ** 2
    w_c = on_g.channel_weight
    expected = (err * on_g.node_weight[:, None] * w_c).mean()
    torch.testing.assert_close(loss, expected)
    assert on_g.checkpoint_meta()["regional"]["residual_base"] == "boundary"


def _assert_forecast_on_base(task, xhat, f, base, g_next):
    """x̂ = b + σ_Δ f inside the box (f [N, C], b [C, h, w] float64) and g on the margin."""
    step = (f.T * task.diff_std.numpy()[:, None]).reshape(base.shape)
    interior = task.interior
    np.testing.assert_allclose(xhat[0].numpy()[:, interior], (base + step)[:, interior],
                               rtol=1e-5, atol=1e-5 * np.abs(base).max())
    np.testing.assert_array_equal(xhat[0].numpy()[:, ~interior], g_next.numpy()[:, ~interior])


def _assert_loss_on_base(task, model, sample, f, base):
    """The loss, by hand: area × channel weighted MSE of f against (y − b)/σ_Δ; returns it."""
    x, y, t, b, lead = sample
    loss, _ = task.loss(model, (x[None], y[None], t[None], b[None], lead[None]), "cpu", step=0)
    want = ((y[0].numpy().astype(np.float64) - base) / task.diff_std.numpy()[:, None, None])
    err = (f - want.reshape(f.shape[1], -1).T) ** 2
    expected = (err * task.node_weight.numpy()[:, None] * task.channel_weight.numpy()).mean()
    np.testing.assert_allclose(loss.item(), expected, rtol=1e-4)
    return loss


def test_residual_base_gated_blends_state_and_global_forecast_per_node_and_variable(world):
    """regional.residual_base gated: the network outputs f and gate logits h (2C channels);
    inside the box x̂ = x_t + γ ⊙ (g_{t+Δt} − x_t) + σ_Δ f, γ = 1/(1 + e^−h); the loss is f
    against (y − b)/σ_Δ and its gradient reaches the gate's outputs."""
    task = _task(world, residual_base="gated")
    c = len(task.channels)
    assert task.model_config().out_channels == 2 * c
    model = task.build_model()
    x, y, t, b, lead = task.train_dataset()[0]
    x0 = task.with_margin(x[-1:], b[0:1])
    with torch.no_grad():
        out = task.network_output(model, x0, t[None], b[1:2], lead[1:2]).float()  # [1, N, 2C]
        xhat = task.forecast(model, x0, t[None], b[1:2], lead[1:2])
    f, h = out[0, :, :c].numpy().astype(np.float64), out[0, :, c:].numpy().astype(np.float64)
    gamma = (1.0 / (1.0 + np.exp(-h))).T.reshape(x0.shape[1:])  # [C, h, w]
    assert 0.01 < gamma.min() and gamma.max() < 0.99  # a real blend, not one base
    s0, g1 = x0[0].numpy().astype(np.float64), b[1].numpy().astype(np.float64)
    base = s0 + gamma * (g1 - s0)
    _assert_forecast_on_base(task, xhat, f, base, b[1])
    loss = _assert_loss_on_base(task, model, (x, y, t, b, lead), f, base)
    loss.backward()
    head = model.decoder.head[-1]
    assert head.weight.grad[c:].abs().sum() > 0 and head.bias.grad[c:].abs().sum() > 0
    assert task.checkpoint_meta()["regional"]["residual_base"] == "gated"


def test_residual_base_tendency_relaxes_the_state_and_adds_the_global_change(world):
    """regional.residual_base tendency: the network outputs f and two gate logits (3C); inside
    the box x̂ = x_t + α ⊙ (g_{t+Δt} − g_t) + γ ⊙ (g_t − x_t) + σ_Δ f with g_t the global
    forecast valid at the step's start; the loss is f against (y − b)/σ_Δ, its gradient
    reaches both gates' outputs, and a rollout's step k reads g_t = g of lead k."""
    task = _task(world, residual_base="tendency")
    c = len(task.channels)
    assert task.model_config().out_channels == 3 * c
    model = task.build_model()
    x, y, t, b, lead = task.train_dataset()[0]
    x0 = task.with_margin(x[-1:], b[0:1])
    with torch.no_grad():
        out = task.network_output(model, x0, t[None], b[1:2], lead[1:2]).float()  # [1, N, 3C]
        xhat = task.forecast(model, x0, t[None], b[1:2], lead[1:2], b[0:1])
    out = out[0].numpy().astype(np.float64)
    f = out[:, :c]
    alpha, gamma = ((1.0 / (1.0 + np.exp(-out[:, k * c:(k + 1) * c]))).T.reshape(x0.shape[1:])
                    for k in (1, 2))  # [C, h, w] each
    assert 0.01 < min(alpha.min(), gamma.min()) and max(alpha.max(), gamma.max()) < 0.99
    s0, g0, g1 = (a.numpy().astype(np.float64) for a in (x0[0], b[0], b[1]))
    base = s0 + alpha * (g1 - g0) + gamma * (g0 - s0)
    _assert_forecast_on_base(task, xhat, f, base, b[1])
    with pytest.raises(ValueError, match="valid at its start"):
        task.forecast(model, x0, t[None], b[1:2], lead[1:2])
    loss = _assert_loss_on_base(task, model, (x, y, t, b, lead), f, base)
    loss.backward()
    head = model.decoder.head[-1]
    for gate in (slice(c, 2 * c), slice(2 * c, 3 * c)):
        assert head.weight.grad[gate].abs().sum() > 0 and head.bias.grad[gate].abs().sum() > 0
    # the rollout: step 0 starts from the global analysis (margin0), step 1 from g of lead 1
    with torch.no_grad():
        two = task.rollout(model, x[-1:], b[0:1], b[None, 1:3], t[None])
        x1 = task.forecast(model, x0, t[None], b[1:2], torch.ones(1), b[0:1])
        dt = round(task.step_hours * 3.6e12)
        x2 = task.forecast(model, x1, t[None] + dt, b[2:3], torch.full((1,), 2), b[1:2])
    torch.testing.assert_close(two[:, 0], x1)
    torch.testing.assert_close(two[:, 1], x2)
    assert task.checkpoint_meta()["regional"]["residual_base"] == "tendency"


def test_tendency_input_is_the_global_change_over_the_step_in_sigma_delta_units(world):
    """regional.tendency_input: the input carries C more channels after g's, (g_{t+Δt} −
    g_t)/σ_Δ, with g_t the global forecast valid at the step's start (lead 0 at the first
    step: the interpolated analysis); a step without g_t is refused."""
    task = _task(world, residual_base="tendency", tendency_input=True)
    c, seen = len(task.channels), []
    assert task.model_config().in_channels == 3 * c + len(task.forcings)

    class Recorder(torch.nn.Module):
        def forward(self, inputs, graph):
            seen.append(inputs)
            return torch.zeros(inputs.shape[0], inputs.shape[1], 3 * c)

    x, y, t, b, lead = task.train_dataset()[0]
    task.loss(Recorder(), (x[None], y[None], t[None], b[None], lead[None]), "cpu", step=0)
    change = seen[0][0, :, 2 * c:3 * c].numpy().astype(np.float64)  # [N, C]
    g0, g1 = (a.numpy().astype(np.float64) for a in (b[0], b[1]))
    want = ((g1 - g0) / task.diff_std.numpy()[:, None, None]).reshape(c, -1).T
    np.testing.assert_allclose(change, want, rtol=1e-4, atol=1e-4 * np.abs(want).max())
    # the next channels are the forcings, not more of g
    torch.testing.assert_close(seen[0][0, :, 3 * c:3 * c + 1],
                               task.forcing(t[None])[0, :, :1].to(seen[0].dtype))
    x0 = task.with_margin(x[-1:], b[0:1])
    with pytest.raises(ValueError, match="tendency_input"):
        task.network_output(Recorder(), x0, t[None], b[1:2], lead[1:2])


def test_without_boundary_the_model_sees_the_box_alone(world):
    from graphs import build_graph
    from pipeline.ingest import open_prepared
    from pipeline.regional_stages import regional_graph_spec

    # as the reproduction's ablation: the nested config with boundary off (no g: no gates,
    # no g change)
    cfg = regional_cfg(world["root"], boundary=False, residual_base="tendency",
                       tendency_input=True)
    reg = open_prepared(world["inputs"]["regional"])
    spec = regional_graph_spec(cfg, reg.lat, reg.lon)
    inputs = {**world["inputs"], "graph": str(world["root"] / "box_graph.pt")}
    from graphs import save_graph

    save_graph(build_graph(spec), inputs["graph"])
    from pipeline.tasks.weather_regional import WeatherRegionalTask

    task = WeatherRegionalTask(cfg, {k: v for k, v in inputs.items() if k != "boundary"})
    with_b = _task(world)
    assert task.interior.all() and task.lat.min() >= BOX[0] and task.lat.max() <= BOX[1]
    assert task.model_config().in_channels == len(task.channels) + len(task.forcings)
    assert task.model_config().out_channels == len(task.channels)
    assert with_b.model_config().in_channels == 2 * len(task.channels) + len(task.forcings) + 1
    x, y, t, b, lead = task.train_dataset()[0]
    assert b.numel() == 0 and x.shape[-2:] == task.interior.shape
    loss, _ = task.loss(task.build_model(), (x[None], y[None], t[None], b[None], lead[None]),
                        "cpu")
    assert torch.isfinite(loss)


def test_every_parameter_gets_a_gradient(world):
    """DDP stops on a parameter the loss does not use."""
    task = _task(world)
    model = task.build_model()
    x, y, t, b, lead = task.train_dataset()[0]
    loss, _ = task.loss(model, (x[None], y[None], t[None], b[None], lead[None]), "cpu", step=3)
    loss.backward()
    missing = [n for n, p in model.named_parameters() if p.grad is None]
    assert not missing


def test_rollout_training_steps_with_the_next_boundary(world):
    """k = 2 at step 2 (schedule [[0, 1], [2, 2]]): two steps, each with its own forecast."""
    task = _task(world)
    x, y, t, b, lead = task.train_dataset()[0]
    assert y.shape[0] == 2 and b.shape[0] == 3
    _, metrics = task.loss(task.build_model(), (x[None], y[None], t[None], b[None], lead[None]),
                           "cpu", step=2)
    assert metrics["rollout_steps"] == 2


# -- evaluation --------------------------------------------------------------------------------
def test_evaluation_scores_the_box_against_hand_computed_persistence(world, tmp_path):
    from pipeline.ingest import open_prepared

    task = _task(world)
    doc = task.evaluate(task.build_model(), tmp_path, max_samples=100)
    assert set(doc["scores"]) == {"model", "global_interpolated", "persistence", "climatology"}
    assert doc["lead_time_hours"] == [6.0, 12.0, 18.0]
    assert (tmp_path / "scores.json").exists() and (tmp_path / "scorecard.csv").exists()
    # persistence at 12 h over the box, by hand from the regional store
    reg = open_prepared(world["inputs"]["regional"])
    lat = reg.lat
    rows = np.flatnonzero((lat >= BOX[0]) & (lat <= BOX[1]))
    cols = np.flatnonzero((reg.lon >= BOX[2]) & (reg.lon <= BOX[3]))
    first = int(np.flatnonzero(reg.times == np.datetime64("2001-01-06T06", "ns"))[0])
    inits = list(range(first, reg.times.size - 3, 2))  # 2 global input states, stride 2
    assert doc["n_forecasts"] == len(inits)
    edges = np.sin(np.deg2rad(np.concatenate([[1.5 * lat[rows][0] - 0.5 * lat[rows][1]],
                                              (lat[rows][1:] + lat[rows][:-1]) / 2,
                                              [1.5 * lat[rows][-1] - 0.5 * lat[rows][-2]]])))
    w = np.abs(np.diff(edges))
    w = (w / w.mean())[:, None]
    c = reg.channels.index("geopotential_500")
    sq = [(w * (reg.data[i + 2][c][np.ix_(rows, cols)].astype(np.float64)
                - reg.data[i][c][np.ix_(rows, cols)]) ** 2).mean() for i in inits]
    got = doc["scores"]["persistence"]["geopotential_500"]["12"]["rmse"]
    np.testing.assert_allclose(got, np.sqrt(np.mean(sq)), rtol=1e-5)
    # the interpolated global forecast at 6 h is the boundary store's forecast there
    bnd = open_prepared(world["inputs"]["boundary"])
    sq = [(w * (bnd.data[i + 1][c][np.ix_(rows, cols)].astype(np.float64)
                - reg.data[i + 1][c][np.ix_(rows, cols)]) ** 2).mean() for i in inits]
    got = doc["scores"]["global_interpolated"]["geopotential_500"]["6"]["rmse"]
    np.testing.assert_allclose(got, np.sqrt(np.mean(sq)), rtol=1e-4)


# -- refusals --------------------------------------------------------------------------------
def test_a_global_checkpoint_trained_on_other_data_is_refused(world, tmp_path):
    import json
    import shutil

    from pipeline.boundary import GlobalDriver

    ckpt = tmp_path / "ckpt"
    shutil.copytree(world["cfg"]["regional"]["global_checkpoint"], ckpt)
    meta = json.loads((ckpt / "meta.json").read_text())
    meta["normalisation"]["std"][1] *= 1.01
    (ckpt / "meta.json").write_text(json.dumps(meta))
    task = _task(world)
    with pytest.raises(DataError, match="std") as e:
        GlobalDriver(ckpt, world["inputs"]["prepared"], task.lat, task.lon, tmp_path / "c")
    assert "temperature_850" in str(e.value)
    with pytest.raises(DataError, match="regional.global_checkpoint"):
        GlobalDriver(tmp_path / "nowhere", world["inputs"]["prepared"], task.lat, task.lon,
                     tmp_path / "c")


@pytest.mark.parametrize("change, message", [
    ({"regional": None}, "needs a regional section"),
    ({"train": {"task": "weather_regional", "input_states": 2}}, "input_states 1"),
    ({"data": {**DATA, "synthetic": {"kind": "rossby_haurwitz"}}}, "kind atmosphere"),
    ({"regional": {"box": [30, 20, 0, 10], "global_checkpoint": "x"}}, "lat_min < lat_max"),
    ({"regional": {"box": [0, 10, 0, 350], "margin": 10, "global_checkpoint": "x"}},
     "narrower than the globe"),
    ({"regional": {"box": BOX, "global_checkpoint": "x", **ROLLOUT},
      "train": {"task": "weather_regional", "rollout": {"schedule": [[0, 1], [5, 4]]}}},
     "boundary_leads is 3"),
    ({"regional": {"box": BOX, "global_checkpoint": "x", "analysis_start_fraction": 1.0}},
     "analysis_start_fraction"),
    ({"regional": {"box": BOX, "global_checkpoint": "x", "lead_loss": "persistence"},
      "train": {"task": "weather_regional", "loss": "relative_l2"}}, "expected train.loss mse"),
    ({"regional": {"box": BOX, "global_checkpoint": "x", "residual_base": "boundary"},
      "train": {"task": "weather_regional", "target": "direct"}}, "expected train.target resid"),
    ({"regional": {"box": BOX, "global_checkpoint": "x", "residual_base": "gated"},
      "train": {"task": "weather_regional", "target": "direct"}}, "gated is the base of the"),
])
def test_regional_config_errors_name_the_field(change, message):
    raw = {"data": DATA, "train": {"task": "weather_regional"},
           "regional": {"box": BOX, "global_checkpoint": "x"}}
    raw.update(change)
    with pytest.raises(ValueError, match=message):
        Config.model_validate(raw)


def test_regional_graph_nodes_are_the_domain_points_without_wrap(world):
    from graphs import load_graph
    from graphs.regions import box_indices

    g = load_graph(world["inputs"]["graph"])
    task = _task(world)
    lat, lon = np.meshgrid(task.lat, task.lon, indexing="ij")
    np.testing.assert_allclose(g["grid"].lat.numpy(), lat.reshape(-1), atol=1e-4)
    np.testing.assert_allclose(g["grid"].lon.numpy(), lon.reshape(-1), atol=1e-4)
    assert np.abs(g["mesh"].lat.numpy()).max() < 80  # no pole nodes
    rows, cols = box_indices(task.lat, task.lon, BOX)
    assert rows.size * cols.size == int(task.interior.sum())


# -- sluice forecast: global + regional ----------------------------------------------------------
def _train_regional(world, cfg: dict, inputs: dict, name: str):
    """A regional model trained 4 steps by the training loop, with the global model inside its
    checkpoint as the train stage leaves it (`regional_stages.train_regional`)."""
    import shutil

    from pipeline.regional_stages import GLOBAL
    from pipeline.session import TorchrunSession
    from pipeline.train import run_training

    run_training(cfg, inputs, TorchrunSession(world["root"] / name))
    ckpt = world["root"] / name / "checkpoint_000000004"
    shutil.copytree(cfg["regional"]["global_checkpoint"], ckpt / GLOBAL)
    return ckpt


@pytest.fixture(scope="module")
def regional_checkpoint(world):
    return _train_regional(world, world["cfg"], world["inputs"], "rtrain")


@pytest.fixture(scope="module")
def rollout_checkpoint(world, rollout_inputs):
    return _train_regional(world, regional_cfg(world["root"], **ROLLOUT), rollout_inputs,
                           "rtrain_rollout")


@pytest.mark.parametrize("mode", ["one_step", "rollout"])
def test_forecast_writes_global_and_regional_rollouts_equal_to_the_task_steps(
        world, rollout_inputs, mode, request, tmp_path):
    import xarray as xr

    from models.oneforecast.nested import BoundaryInterpolator
    from pipeline import checkpoint as ck
    from pipeline.ingest import open_prepared
    from workflows.cli import main

    checkpoint = request.getfixturevalue(
        "regional_checkpoint" if mode == "one_step" else "rollout_checkpoint")
    ingest = world["root"] / "ingest"
    out, regional_out = tmp_path / "g.zarr", tmp_path / "r.zarr"
    args = ["forecast", "--init-time", "2001-01-06T06", "--checkpoint", str(checkpoint),
            "--lead", "18h", "--analysis", str(ingest / "raw.zarr"),
            "--regional-analysis", str(ingest / "regional_raw.zarr"), "--out", str(out),
            "--regional-out", str(regional_out), "--graph-cache", str(tmp_path / "cache")]
    assert main(args) == 0
    r = xr.open_zarr(regional_out, consolidated=False)
    assert r.sizes["prediction_timedelta"] == 3 and r.attrs["box"] == BOX
    # by hand: the global rollout from the prepared store, interpolated, drives the task's steps
    task = _task(world) if mode == "one_step" else _rollout_task(world, rollout_inputs)
    assert task.lead_channel == (mode == "rollout")
    model = task.build_model()
    model.load_state_dict(ck.load_state(checkpoint)["model"])
    model.eval()
    reg = open_prepared(world["inputs"]["regional"])
    i = int(np.flatnonzero(reg.times == np.datetime64("2001-01-06T06", "ns"))[0])
    g = torch.from_numpy(_global_forecast(world, i, steps=3))  # on the regional store grid
    crop = lambda a: a[..., task.rows, :][..., task.cols]  # noqa: E731
    glob_store = open_prepared(world["inputs"]["prepared"])
    analysis = BoundaryInterpolator(glob_store.lat, glob_store.lon, reg.lat, reg.lon)(
        torch.from_numpy(np.asarray(glob_store.data[i:i + 1])))  # lead 0 on the margin
    t0 = int(reg.times[i].astype(np.int64))

    def rollout(margin, lead_offset=1):
        x = task.with_margin(torch.from_numpy(crop(np.asarray(reg.data[i])))[None],
                             crop(margin))
        out = []
        with torch.no_grad():
            for k in range(3):
                x = task.forecast(model, x, torch.tensor([t0 + k * STEP_NS]), crop(g[k:k + 1]),
                                  torch.tensor([k + lead_offset]))
                out.append(x[0, task.channels.index("temperature_850")].numpy())
        return np.stack(out)

    t850 = r["temperature"].sel(level=850).values[0][:, ::-1]  # latitude back to descending
    np.testing.assert_array_equal(t850, rollout(analysis))  # the same arithmetic, bit for bit
    # and it tells the margin it starts from (the analysis, lead 0): another margin differs
    assert not np.array_equal(t850, rollout(g[:1]))
    if mode == "rollout":  # and the leads it feeds: step k reads lead k + 1, not k
        assert not np.array_equal(t850, rollout(analysis, lead_offset=0))
    glob = xr.open_zarr(out, consolidated=False)
    assert glob.sizes["latitude"] == 32 and glob.sizes["longitude"] == 64


def test_calibration_rolls_out_the_run_as_its_evaluation_and_fits_on_the_validation_year(
        world, regional_checkpoint, tmp_path):
    """`benchmarks/regional_calibration.py` on a run laid out as the pipeline leaves it: its
    uncalibrated test-period forecasts are the evaluate stage's (same RMSE), and its lines are
    fitted on the period it is told (this world's validation day is too short for a 3-lead
    forecast from 2 input states: the training days; refitting on the test period changes
    them)."""
    import json

    from benchmarks.regional_calibration import calibrated_scores
    from pipeline.evaluate import evaluate_checkpoint
    from pipeline.stages import CHECKPOINT

    run = tmp_path / "run"
    (run / "train").mkdir(parents=True)
    for name in ("ingest", "graph", "boundary"):
        (run / name).symlink_to(world["root"] / name)
    (run / "train" / CHECKPOINT).symlink_to(regional_checkpoint)
    evaluate_checkpoint(regional_checkpoint, world["inputs"], run / "evaluate", max_samples=100)
    out = calibrated_scores(run, fit_split="train")
    assert out["raw_vs_stored"] < 1e-9
    insample = calibrated_scores(run, fit_split="test")  # fitted in-sample: a different line
    slopes = [(out["slope"][c]["18"], insample["slope"][c]["18"]) for c in out["slope"]]
    assert all(np.isfinite(a) and np.isfinite(b) for a, b in slopes)
    assert any(abs(a - b) > 1e-6 for a, b in slopes)
    # fitted on the scored year itself, the line cannot do worse than the forecast on it
    raw = json.loads((run / "evaluate" / "scores.json").read_text())["scores"]
    for c in out["slope"]:
        assert (insample["scores"]["scores"]["model"][c]["18"]["rmse"]
                <= raw["model"][c]["18"]["rmse"] * (1 + 1e-9))


def test_forecast_of_a_regional_checkpoint_needs_both_analyses(world, regional_checkpoint,
                                                                 tmp_path, capsys):
    from workflows.cli import main

    code = main(["forecast", "--init-time", "2001-01-06T06", "--checkpoint",
                 str(regional_checkpoint), "--lead", "6h", "--analysis",
                 str(world["root"] / "ingest" / "raw.zarr"), "--out", str(tmp_path / "g.zarr")])
    assert code == 2 and "--regional-analysis" in capsys.readouterr().err
    assert not (tmp_path / "g.zarr").exists()
