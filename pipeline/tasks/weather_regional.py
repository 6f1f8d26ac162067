"""OneForecast's neural nested grid: a regional model driven by a frozen global model.

Grid. The regional grid is the synthetic atmosphere's native T42 Gauss–Legendre grid (2.8125°)
inside the domain D = ``regional.box`` extended by ``regional.margin`` degrees (the box alone
without boundary). Nodes inside the box are the interior I; the others are the margin M (the
boundary zone). The graph is the limited-area one of ``graphs.regional`` on D.

Step (Δt = 6 h), for a state x_t [C, h, w] on D and the global forecast g_{t+Δt} valid at
t + Δt, interpolated onto D (`pipeline.boundary`):

    input_n  = [ (x_t,n − μ)/σ ,  (g_{t+Δt},n − μ)/σ ,  forcings_n(t),  1[n ∈ I] ]
    x̂_{t+Δt},n = b_n + σ_Δ ⊙ f_θ(input)_n        for n ∈ I     (residual target)
    x̂_{t+Δt},n = g_{t+Δt},n                     for n ∈ M

where the residual's base b is, by ``regional.residual_base``, the state x_t (as the global
model) or the global forecast g_{t+Δt} itself: f_θ then learns the regional correction to g
(what the native grid resolves and the coarse global model does not, and g's error at its
lead), and a network that outputs 0 forecasts g. ``gated``: the network has C more outputs,
a gate per node and variable between the two,

    b_n = x_t,n + γ_n ⊙ (g_{t+Δt},n − x_t,n),    γ_n = sigmoid(h_θ(input)_n)  [C]

so each variable leans on the global forecast where it is good and keeps its own state where
it is not (the global q700 is worse than persistence past two days), and may lean differently
with g's lead (an input). ``tendency``: 2C more outputs, two gates per node and variable, and
g_t, the global forecast valid at the step's start (R[m, j] of step j; the interpolated global
analysis at the first step),

    b_n = x_t,n + α_n ⊙ (g_{t+Δt},n − g_t,n) + γ_n ⊙ (g_t,n − x_t,n)
        = (1 − γ_n) x_t,n + γ_n g_t,n + α_n (g_{t+Δt},n − g_t,n),     α_n, γ_n ∈ (0, 1)^C

the state relaxed towards g by γ, then carried by α of g's own change over the step. With
α = γ it is ``gated``; its new corner α = 1, γ = 0 keeps the regional state's fine structure
and adds the global model's tendency (the diurnal change of t2m at the 12 → 18 UTC step, which
the one-state regional model does not see; ``gated`` had to take g's field, coarse structure
and all, to get it). The ablation has no g: b = x_t.

``regional.tendency_input`` adds g's change over the step to the input, C more channels
(g_{t+Δt},n − g_t,n) / σ_Δ after g's: the network otherwise sees where g ends, not how far it
moves, and a gate on that move (α) cannot tell where it is poor.

with μ, σ, σ_Δ the regional store's own statistics (the domain over the training period). So
the margin always holds the global forecast, never the regional model's own state: the
information that enters the box through its sides is the global model's. The rollout feeds the
regional model its previous state and each new global forecast.

Without boundary (``regional.boundary: false``, the ablation) D is the box, the input has no g
channels and no flag, and every node is interior: the model sees nothing of the world outside.

Loss: the weather task's area-weighted MSE (GraphCast's channel weights), over the interior
only: node weights ∝ cell area (Δ sin φ) on I, 0 on M, mean 1 over D.

Training (``regional.train_boundary``). ``one_step``: samples pair x_t (truth) with the
one-step global forecasts B: the margin of x_t is B[t], the g channels of step j are
B[t + j + 1]. ``rollout``: training runs as a forecast does. A sample is a whole forecast from
an initial time T_i: the truth there and after, and R[m, 0..L], the global rollout from T_i
(`pipeline.boundary`). Each batch draws a start lead k0 ∈ 0..L − 1; the regional model is rolled
out k0 steps from the analysis without gradient (its own forecast, each step with the global
forecast of its lead), then trained on the k steps after (fewer where they would pass lead L),
step j reading g = R[m, j + 1] of lead
ℓ = j + 1. So state and boundary have the age they have in a forecast; the input also carries
that age,

    lead_n = ℓ / L      (L = ``regional.boundary_leads``; the same value at every node)

so the network can learn how far to trust g as it degrades. (The ablation without boundary
trains from the same initial times, without g and without the lead channel.) Evaluation rolls
the global model out from the global analysis at each initial time (step k reads g of lead
k + 1) and scores, inside the box, the regional model against the global forecast
interpolated, persistence and the climatology.
"""

from __future__ import annotations

import dataclasses
import tempfile
from pathlib import Path

import numpy as np
import torch
from torch.utils.data import Dataset

from graphs import load_graph
from graphs.regions import box_indices
from pipeline.datasets import WeatherWindows
from pipeline.errors import DataError
from pipeline.ingest import open_prepared
from pipeline.tasks.weather import WeatherGlobalTask, rollout_steps

# the network's outputs per variable by ``regional.residual_base``: f, and one gate (gated) or
# two (tendency); one (f) otherwise
OUTPUTS_PER_VARIABLE = {"gated": 2, "tendency": 3}


class RegionalWindows(Dataset):
    """(x [1, C, h, w], targets [K, C, h, w], time_ns, boundary [1 + K, C, h, w], lead [1 + K])
    per window: the regional truth on the domain (``rows``/``cols`` of the store) and, when
    ``boundary`` is a store path, its one-step global forecasts valid at t .. t + K (else an
    empty tensor); lead: their leads in steps, all 1 (the store's first times, lead 0 there, are
    before any training period).
    """

    def __init__(self, regional, boundary, period, lead_steps: int, rows, cols):
        self.truth = WeatherWindows(regional, period, history=1, lead_steps=lead_steps)
        self.boundary = None
        if boundary is not None:
            self.boundary = WeatherWindows(boundary, period, history=1, lead_steps=lead_steps)
            if not np.array_equal(self.boundary.times, self.truth.times):
                raise DataError(boundary, "time", f"the regional store's times ({regional})",
                                "other times")
        self.rows, self.cols = torch.as_tensor(rows), torch.as_tensor(cols)

    def __len__(self) -> int:
        return len(self.truth)

    def _crop(self, x: torch.Tensor) -> torch.Tensor:
        return x.index_select(-2, self.rows).index_select(-1, self.cols)

    def __getitem__(self, i: int):
        x, y, t = self.truth[i]
        if self.boundary is None:
            b = torch.zeros(0)
        else:
            bx, by, _ = self.boundary[i]
            b = self._crop(torch.cat([bx, by]))
        return self._crop(x), self._crop(y), t, b, torch.ones(1 + y.shape[0], dtype=torch.long)

    @property
    def times(self) -> np.ndarray:
        return self.truth.times


class RegionalRolloutWindows(Dataset):
    """One sample per initial time T_i of a forecast (module docstring): (x [1, C, h, w] the
    truth at T_i, targets [L, C, h, w] the truth at the L steps after, time_ns, boundary
    [1 + L, C, h, w] = R[m, 0 .. L] the global rollout from T_i (empty without ``rollouts``),
    lead [1 + L] = 0 .. L), for every initial time whose L steps lie inside ``period``: the
    rollout store's, or without one (the ablation) every ``init_stride``-th time as
    `pipeline.boundary.rollout_inits` picks them for the store."""

    def __init__(self, regional, rollouts, period, leads: int, init_stride: int, rows, cols):
        from pipeline.boundary import rollout_inits

        self.truth = RegionalWindows(regional, None, period, leads, rows, cols)
        position = {int(t): i for i, t in enumerate(self.truth.times.astype(np.int64))}
        self.rollouts, self.leads = rollouts and str(rollouts), leads
        if self.rollouts is None:
            store = open_prepared(regional)
            idx = rollout_inits(store.times, [period], 1, leads, init_stride)
            init_times = store.times[idx].astype(np.int64)
        else:
            import zarr

            group = zarr.open_group(self.rollouts, mode="r")
            if group.attrs.get("layout") != "rollouts":
                raise DataError(rollouts, "layout", "a boundary store of global rollouts "
                                "(regional.train_boundary: rollout)",
                                repr(group.attrs.get("layout")))
            if group["data"].shape[1] != leads + 1:
                raise DataError(rollouts, "lead", f"leads 0..{leads} (regional.boundary_leads)",
                                f"0..{group['data'].shape[1] - 1}")
            init_times = np.asarray(group["init_time"][:], np.int64)
        # (row of the rollout store, window of the truth) per sample
        self.samples = np.asarray([(m, position[t]) for m, t in enumerate(init_times.tolist())
                                   if t in position], dtype=np.int64).reshape(-1, 2)
        if self.samples.size == 0:
            raise DataError(rollouts or regional, "init_time", f"an initial time with {leads} "
                            f"steps inside {list(period)}", "none")
        self._reader = None

    def __len__(self) -> int:
        return len(self.samples)

    def __getitem__(self, i: int):
        m, window = (int(v) for v in self.samples[i])
        x, y, t, _, _ = self.truth[window]
        if self.rollouts is None:
            r = torch.zeros(0)
        else:
            if self._reader is None:  # per process: Zarr v3 is not fork-safe
                import zarr

                from pipeline.datasets import ChunkReader

                self._reader = ChunkReader(zarr.open_array(f"{self.rollouts}/data", mode="r"))
            r = self.truth._crop(torch.from_numpy(self._reader.read(m, m + 1)[0]))
        return x, y, t, r, torch.arange(self.leads + 1)

    @property
    def times(self) -> np.ndarray:
        return self.truth.times[self.samples[:, 1]]


@dataclasses.dataclass
class EvaluationWindows:
    """Where a regional evaluation's forecasts start (`WeatherRegionalTask.forecast_windows`):
    the frozen global model, the global and regional windows of the period, regional index by
    time (ns), the initial times (indices into ``glob``) and the leads K."""
    driver: object
    glob: WeatherWindows
    reg: RegionalWindows
    position: dict[int, int]
    inits: list[int]
    k_max: int


class WeatherRegionalTask(WeatherGlobalTask):
    name = "weather_regional"
    collate_fn = None  # torch's default_collate: stacks the four parts of each sample
    lead_scale = None  # E_ℓ [L] of ``regional.lead_loss: persistence``, on its first loss

    def __init__(self, cfg: dict, inputs: dict[str, str]):
        store = open_prepared(inputs["regional"])
        lat, lon = self._domain(cfg, store.lat, store.lon)
        if self.use_boundary and "boundary" not in inputs:
            raise DataError(inputs["regional"], "boundary", "the boundary stage's store of "
                            "global forecasts (regional.boundary is true)", "none given")
        self._bind(cfg, inputs, channels=list(store.channels), lat=lat, lon=lon,
                   step_hours=store.time_step_hours,
                   stats={k: getattr(store, k) for k in ("mean", "std", "diff_std")},
                   graph=load_graph(inputs["graph"]), static=((), None),
                   where=f"graph {inputs['graph']}, regional data {inputs['regional']}")

    def _domain(self, cfg: dict, lat: np.ndarray, lon: np.ndarray):
        """The domain's rows/columns of a grid (lat [H], lon [W]), the box inside it, the
        interior mask [h, w]; returns the domain's (lat [h], lon [w])."""
        from pipeline.config import RegionalConfig

        self.regional_cfg = RegionalConfig.model_validate(cfg["regional"])
        self.use_boundary = self.regional_cfg.boundary
        # the boundary's age as an input channel: only when training saw boundaries of all ages
        self.lead_channel = self.use_boundary and self.regional_cfg.train_boundary == "rollout"
        # without g there is only the state to add to
        self.base = self.regional_cfg.residual_base if self.use_boundary else "state"
        self.tendency_input = self.use_boundary and self.regional_cfg.tendency_input
        self.rows, self.cols = box_indices(lat, lon, self.regional_cfg.domain())
        lat, lon = lat[self.rows], lon[self.cols]
        self.box_rows, self.box_cols = box_indices(lat, lon, self.regional_cfg.box)
        self.interior = np.zeros((lat.size, lon.size), dtype=bool)
        self.interior[np.ix_(self.box_rows, self.box_cols)] = True
        return lat, lon

    @classmethod
    def from_checkpoint_meta(cls, meta: dict, graph) -> WeatherRegionalTask:
        """The task of a regional checkpoint from its meta.json (grid = the domain) and graph:
        what `pipeline.regional_forecast` steps, with no prepared store."""
        missing = [k for k in ("grid", "time_step_hours", "normalisation", "channels",
                               "regional") if k not in meta]
        if missing:
            raise DataError("checkpoint meta.json", ", ".join(missing), "a weather_regional "
                            "checkpoint's grid, step, normalisation and region", "absent")
        task = cls.__new__(cls)
        lat, lon = task._domain(meta["config"], np.asarray(meta["grid"]["latitude"]),
                                np.asarray(meta["grid"]["longitude"]))
        task._bind(meta["config"], {}, channels=list(meta["channels"]), lat=lat, lon=lon,
                   step_hours=float(meta["time_step_hours"]), stats=meta["normalisation"],
                   graph=graph, static=((), None), where="checkpoint meta.json and its graph")
        return task

    # -- inputs ----------------------------------------------------------------------------------
    @property
    def forcings(self) -> list[str]:
        names = [n for n in super().forcings if not n.startswith("static:")]
        return (names + (["interior"] if self.use_boundary else [])
                + (["boundary_lead"] if self.lead_channel else []))

    def _tensors(self, device) -> None:
        super()._tensors(device)
        interior = torch.as_tensor(self.interior.reshape(-1), dtype=torch.float32,
                                   device=device)  # [N], grid node order lat-major
        w = self.node_weight * interior
        self.node_weight = w * (w.numel() / w.sum())  # area on the interior, mean 1 over D
        self.interior_nodes = interior
        self.interior_mask = torch.as_tensor(self.interior, device=device)  # [h, w]
        if self.use_boundary:
            self.grid_forcing = torch.cat([self.grid_forcing, interior[:, None]], dim=1)

    def model_config(self):
        c = len(self.channels)
        return dataclasses.replace(super().model_config(),
                                   in_channels=(c * (1 + self.use_boundary + self.tendency_input)
                                                + len(self.forcings)),
                                   out_channels=c * OUTPUTS_PER_VARIABLE.get(self.base, 1))

    def _normalised(self, x: torch.Tensor) -> torch.Tensor:
        """[B, C, h, w] physical → [B, N, C] normalised by the regional statistics."""
        b, c = x.shape[:2]
        return ((x - self.mean[:, None, None]) / self.std[:, None, None]).reshape(b, c, -1
                                                                                  ).transpose(1, 2)

    def network_output(self, model, x0: torch.Tensor, time_ns: torch.Tensor,
                       boundary_next: torch.Tensor | None = None,
                       lead: torch.Tensor | None = None,
                       boundary_now: torch.Tensor | None = None) -> torch.Tensor:
        """x0 [B, C, h, w] (margin = the global forecast valid at time_ns), boundary_next the
        global forecast valid one step later [B, C, h, w] (boundary only), lead [B] its lead in
        steps (the lead channel only), boundary_now the global forecast valid at time_ns
        (``regional.tendency_input`` only) → [B, N, C]."""
        parts = [self._normalised(x0)]
        if self.use_boundary:
            if boundary_next is None or boundary_next.shape != x0.shape:
                raise ValueError(f"regional.boundary: the step needs the global forecast "
                                 f"{tuple(x0.shape)} valid one step ahead")
            parts.append(self._normalised(boundary_next))
        if self.tendency_input:
            if boundary_now is None or boundary_now.shape != x0.shape:
                raise ValueError(f"regional.tendency_input: the step needs the global forecast "
                                 f"{tuple(x0.shape)} valid at its start (g_t)")
            change = (boundary_next - boundary_now) / self.diff_std[:, None, None]
            parts.append(change.reshape(*x0.shape[:2], -1).transpose(1, 2))  # [B, N, C]
        parts.append(self.forcing(time_ns).to(x0.device))
        if self.lead_channel:
            if lead is None or lead.shape != x0.shape[:1]:
                raise ValueError("regional.train_boundary rollout: the step needs the lead of "
                                 f"its global forecast, one per sample ({x0.shape[0]})")
            age = lead.to(x0.device, torch.float32) / self.regional_cfg.boundary_leads
            parts.append(age[:, None, None].expand(-1, parts[0].shape[1], 1))
        return model(torch.cat(parts, dim=-1), self.device_graph)

    def with_margin(self, x: torch.Tensor, boundary: torch.Tensor | None) -> torch.Tensor:
        """x [B, C, h, w] with its margin replaced by ``boundary`` (no-op without boundary)."""
        if not self.use_boundary:
            return x
        return torch.where(self.interior_mask, x, boundary)

    def residual_base(self, output: torch.Tensor, x: torch.Tensor,
                      boundary_next: torch.Tensor | None,
                      boundary_now: torch.Tensor | None = None,
                      ) -> tuple[torch.Tensor, torch.Tensor]:
        """The network's output [B, N, C (+ C or 2C gate logits)] on x [B, C, h, w] → (f [B, N,
        C], b [B, C, h, w]): b of the residual target (module docstring) is g_{t+Δt} with
        ``regional.residual_base: boundary``, x_t + γ ⊙ (g_{t+Δt} − x_t) with ``gated``,
        x_t + α ⊙ (g_{t+Δt} − g_t) + γ ⊙ (g_t − x_t) with ``tendency`` (``boundary_now`` = g_t,
        the global forecast valid at t, [B, C, h, w]), else the state x_t."""
        output = output.float()
        if self.base == "boundary":
            return output, boundary_next
        if self.base == "state":
            return output, x
        c = x.shape[1]
        # [B, N, kC] → k gates [B, C, h, w] each
        gates = torch.sigmoid(output[..., c:]).transpose(1, 2).reshape(
            x.shape[0], -1, *x.shape[1:]).unbind(1)
        if self.base == "gated":
            return output[..., :c], x + gates[0] * (boundary_next - x)
        if boundary_now is None or boundary_now.shape != x.shape:
            raise ValueError(f"regional.residual_base tendency: the step needs the global "
                             f"forecast {tuple(x.shape)} valid at its start (g_t)")
        alpha, gamma = gates
        return output[..., :c], (x + alpha * (boundary_next - boundary_now)
                                 + gamma * (boundary_now - x))

    def forecast(self, model, x0: torch.Tensor, time_ns: torch.Tensor,
                 boundary_next: torch.Tensor | None = None,
                 lead: torch.Tensor | None = None,
                 boundary_now: torch.Tensor | None = None) -> torch.Tensor:
        """One regional step in physical units on D: [B, C, h, w] (``boundary_now``, g_t, for
        the ``tendency`` base only)."""
        output = self.network_output(model, x0, time_ns, boundary_next, lead, boundary_now)
        f, base = self.residual_base(output, x0, boundary_next, boundary_now)
        return self.with_margin(self.to_physical(f, base), boundary_next)

    def rollout(self, model, x0: torch.Tensor, margin0: torch.Tensor, g: torch.Tensor,
                t0: torch.Tensor) -> torch.Tensor:
        """The regional rollout of a forecast (module docstring): x0 [B, C, h, w] the regional
        analysis at t0 [B], margin0 [B, C, h, w] the interpolated global analysis there (its
        margin), g [B, K, C, h, w] the interpolated global rollout (leads 1..K) → the regional
        forecasts [B, K, C, h, w]."""
        dt = round(self.step_hours * 3.6e12)
        x, out = self.with_margin(x0, margin0), []
        for k in range(g.shape[1]):
            lead = torch.full(t0.shape, k + 1)
            now = (g[:, k - 1] if k else margin0) if self.use_boundary else None  # g_t
            x = self.forecast(model, x, t0 + k * dt, g[:, k] if self.use_boundary else None,
                              lead, now).float()
            out.append(x)
        return torch.stack(out, dim=1)

    # -- training --------------------------------------------------------------------------------
    def _windows(self, split: str, lead_steps: int) -> RegionalWindows | RegionalRolloutWindows:
        period = tuple(str(t) for t in self.cfg["data"]["periods"][split])
        r = self.regional_cfg
        if r.train_boundary == "rollout":  # whole forecasts: every lead, whatever lead_steps
            return RegionalRolloutWindows(
                self.inputs["regional"], self.inputs["boundary"] if self.use_boundary else None,
                period, r.boundary_leads, r.boundary_init_stride, self.rows, self.cols)
        return RegionalWindows(self.inputs["regional"],
                               self.inputs["boundary"] if self.use_boundary else None,
                               period, lead_steps, self.rows, self.cols)

    def start_lead(self, step: int, leads: int) -> int:
        """k0 of a forecast-mode batch, drawn from (seed, step): the same on a resumed run, and
        on every rank (DDP ranks wait for the slowest: one k0 for all keeps the step's cost
        that of one k0, not of the largest). Uniform on 0 .. leads − 1; with
        ``regional.analysis_start_fraction`` p, k0 = 0 (train from the analysis) with
        probability p, else uniform on 1 .. leads − 1.

        The batch then trains steps k0 .. min(k0 + k, leads) − 1 (`trained_steps`): a start
        near the end trains fewer steps rather than none of the last leads, so with rollout k
        every lead from k + 1 on is trained from k starts, the last one included (drawing k0 on
        0 .. leads − k instead trained lead 12 half as often as leads 3–11 at k = 2)."""
        g = torch.Generator().manual_seed(int(self.cfg["seed"]) * 1_000_003 + step)
        p = self.regional_cfg.analysis_start_fraction
        if p is None or leads == 1:
            return int(torch.randint(0, leads, (1,), generator=g))
        if float(torch.rand(1, generator=g)) < p:
            return 0
        return int(torch.randint(1, leads, (1,), generator=g))

    def trained_steps(self, step: int, k: int, leads: int) -> range:
        """The steps j (leads j + 1) a batch trains at optimizer step ``step`` with rollout k:
        k0 .. min(k0 + k, leads) − 1 in forecast mode (`start_lead`), else 0 .. k − 1."""
        if self.regional_cfg.train_boundary != "rollout":
            return range(k)
        k0 = self.start_lead(step, leads)
        return range(k0, min(k0 + k, leads))

    def persistence_loss(self, leads: int) -> torch.Tensor:
        """E [leads]: the training objective of persistence at leads ℓ = 1 .. leads, over every
        window of the training period (T of them):

            E_ℓ = (1/T) Σ_t  mean_{n,c} a_n w_c ((x_{t+ℓ,n,c} − x_{t,n,c}) / σ_Δ,c)²

        with this task's node weights a (the box's cell areas, 0 on the margin) and channel
        weights w: the objective of predicting no change. σ_Δ is the std of one-step changes
        over the same period, so E_1 ≈ mean_c w_c; E_ℓ then grows (~ℓ² while changes are
        coherent, towards 2σ²/σ_Δ² as the state decorrelates). Computed from the regional
        store on every rank alike (the same bytes give the same E)."""
        import zarr

        from pipeline.datasets import ChunkReader, window_starts

        path = self.inputs["regional"]
        store = open_prepared(path)
        period = tuple(str(t) for t in self.cfg["data"]["periods"]["train"])
        starts = window_starts(store.times, period, 1, leads)
        lo, hi = int(starts[0]), int(starts[-1]) + leads + 1
        block = torch.from_numpy(ChunkReader(zarr.open_array(f"{path}/data", mode="r"))
                                 .read(lo, hi))  # [T + leads, C, H, W]
        block = block.index_select(-2, torch.as_tensor(self.rows)).index_select(
            -1, torch.as_tensor(self.cols)).to(self.diff_std.device)
        rows, e = torch.as_tensor(starts - lo), []
        for ell in range(1, leads + 1):
            total = 0.0
            for t in rows.split(256):
                change = self.normalised_target(block[t], block[t + ell])
                total += float(self.objective(torch.zeros_like(change), change)) * len(t)
            e.append(total / len(rows))
        print(f"[weather_regional] lead_loss persistence: E_1..{leads} = "
              + " ".join(f"{v:.4g}" for v in e), flush=True)
        return torch.tensor(e)

    def loss(self, model, batch, device, step: int = 0):
        """Mean over k(step) rollout steps of the interior-weighted one-step loss; each step's
        margin and g channels (and their leads) from the boundary store (module docstring).

        ``train_boundary: rollout``: the batch holds whole forecasts from initial times; the
        model is first rolled out k0 = `start_lead` steps without gradient (its own forecast,
        as a forecast's state at lead k0), then trained on steps k0 .. min(k0 + k, L) − 1.

        ``lead_loss: persistence``: step j's loss (its target is the truth at lead ℓ = j + 1
        from the analysis) is divided by E_ℓ (`persistence_loss`), so it is the MSE skill
        score's complement 1 − SS_ℓ, on the same scale at every lead. Uniform weights would
        let the aged states of long leads (σ_Δ-normalised errors tens of times the first
        step's) set the gradient, and the first day of a forecast learns little."""
        inputs, targets, t, boundary, lead = (part.to(device) for part in batch)
        k = rollout_steps(self.schedule, step)
        if k > targets.shape[1]:
            raise ValueError(f"rollout of {k} steps at step {step}, but the batch carries "
                             f"{targets.shape[1]} targets")
        step_ns = round(self.step_hours * 3.6e12)
        nxt = (lambda j: boundary[:, j] if self.use_boundary else None)  # noqa: E731
        x, losses = self.with_margin(inputs[:, -1], nxt(0)), []
        trained = self.trained_steps(step, k, targets.shape[1])
        with torch.no_grad():
            for j in range(trained.start):
                x = self.forecast(model, x, t + j * step_ns, nxt(j + 1), lead[:, j + 1],
                                  nxt(j)).float()
        scale = None
        if self.regional_cfg.lead_loss == "persistence":
            if self.lead_scale is None or len(self.lead_scale) < targets.shape[1]:
                self.lead_scale = self.persistence_loss(targets.shape[1])
            scale = self.lead_scale
        for j in trained:
            args = (model, x, t + j * step_ns, nxt(j + 1), lead[:, j + 1], targets[:, j],
                    nxt(j))
            term, x = self.rollout_call(self._trained_step, args, len(trained))
            losses.append(term if scale is None else term / float(scale[j]))
        loss = torch.stack(losses).mean()
        return loss, {"rollout_steps": torch.tensor(float(len(trained)), device=loss.device)}

    def _trained_step(self, model, x, time_ns, boundary_next, lead, target, boundary_now):
        """One trained step: (its objective against ``target``, the next state with margin)."""
        output = self.network_output(model, x, time_ns, boundary_next, lead, boundary_now)
        f, base = self.residual_base(output, x, boundary_next, boundary_now)
        # the gate's gradient flows through the base: the term is x̂'s error in σ_Δ units
        term = self.objective(f, self.normalised_target(base, target))
        return term, self.with_margin(self.to_physical(f, base), boundary_next)

    def checkpoint_meta(self) -> dict:
        meta = super().checkpoint_meta()
        meta["regional"] = {"box": list(self.regional_cfg.box),
                            "domain": list(self.regional_cfg.domain()),
                            "boundary": self.use_boundary,
                            "train_boundary": self.regional_cfg.train_boundary,
                            "lead_loss": self.regional_cfg.lead_loss,
                            "residual_base": self.regional_cfg.residual_base,
                            "global_checkpoint": self.regional_cfg.global_checkpoint}
        return meta

    # -- evaluation ------------------------------------------------------------------------------
    def forecast_windows(self, split: str, max_samples: int) -> EvaluationWindows:
        """The initial times of ``data.periods[split]`` ("test", "val": every
        ``evaluate.init_stride``-th global window with ``evaluate.lead_steps`` leads inside the
        period that is also a regional time, at most ``max_samples``) and the frozen global
        model that drives them."""
        from pipeline.boundary import GlobalDriver

        k_max = self.cfg["evaluate"]["lead_steps"]
        period = tuple(str(t) for t in self.cfg["data"]["periods"][split])
        with tempfile.TemporaryDirectory() as cache:  # the global graph, rebuilt from its spec
            driver = GlobalDriver(self.regional_cfg.global_checkpoint, self.inputs["prepared"],
                                  self.lat, self.lon, cache)
        history = driver.forecaster.task.input_states
        glob = WeatherWindows(self.inputs["prepared"], period, history=history,
                              lead_steps=k_max)
        reg = RegionalWindows(self.inputs["regional"], None, period, k_max, self.rows, self.cols)
        position = {int(t): i for i, t in enumerate(reg.times.astype(np.int64))}
        inits = [i for i in range(0, len(glob), self.cfg["evaluate"].get("init_stride", 1))
                 if int(glob.times[i].astype(np.int64)) in position][:max_samples]
        if not inits:
            raise DataError(self.inputs["regional"], f"periods.{split}", f"an initial time with "
                            f"{k_max} lead steps inside {list(period)}", "none")
        return EvaluationWindows(driver, glob, reg, position, inits, k_max)

    @torch.no_grad()
    def forecast_batches(self, model, windows: EvaluationWindows, batch: int = 8):
        """The forecasts from ``windows``' initial times, ``batch`` at a time: yields (t0 [B]
        int64 ns, x0 [B, C, h, w] the regional analysis, truth [B, K, C, h, w], g [B, K, C, h,
        w] the global rollout interpolated to the domain, forecasts [B, K, C, h, w] the
        regional model's rollout driven by g), K = ``evaluate.lead_steps``, on the domain."""
        model.eval()
        w = windows
        for a in range(0, len(w.inits), batch):
            states = [w.glob[i] for i in w.inits[a:a + batch]]
            g_states = torch.stack([s[0] for s in states])  # [B, S, C, H, W]
            t0 = torch.stack([s[2] for s in states])  # [B]
            samples = [w.reg[w.position[int(t)]] for t in t0.tolist()]
            x0 = torch.stack([s[0][-1] for s in samples])  # [B, C, h, w]
            truth = torch.stack([s[1] for s in samples])  # [B, K, C, h, w]
            g = w.driver.rollout_on_region(g_states, t0, w.k_max)  # [B, K, C, h, w]
            forecasts = self.rollout(model, x0, w.driver.interpolate(g_states[:, -1]), g, t0)
            yield t0, x0, truth, g, forecasts

    def box_fields(self, model, windows: EvaluationWindows, clim):
        """What the evaluation scores, per batch and lead k inside the box (numpy [B, C,
        h_box, w_box]): yields (k, the truth o, the climatology c at the valid time,
        {"model", "global_interpolated", "persistence": the forecasts})."""
        dt = round(self.step_hours * 3.6e12)
        for t0, x0, truth, g, forecasts in self.forecast_batches(model, windows):
            persistence = self.box(x0).numpy()
            for k in range(windows.k_max):
                yield (k, self.box(truth[:, k]).numpy(),
                       self.box_climatology(clim, (t0 + (k + 1) * dt).numpy()),
                       {"model": self.box(forecasts[:, k]).numpy(),
                        "global_interpolated": self.box(g[:, k]).numpy(),
                        "persistence": persistence})

    def box(self, a):
        """The box inside the domain: [..., h, w] → [..., h_box, w_box]."""
        return a[..., self.box_rows, :][..., self.box_cols]

    def box_climatology(self, clim, valid_ns: np.ndarray) -> np.ndarray:
        """The climatology at valid times [B] inside the box: [B, C, h_box, w_box]."""
        rows, cols = self.rows[self.box_rows], self.cols[self.box_cols]
        return clim.at(valid_ns, self.channels)[..., rows, :][..., cols]

    @torch.no_grad()
    def evaluate(self, model, out_dir: Path, max_samples: int) -> dict:
        """Rollouts from every ``init_stride``-th test time: the regional model (driven by the
        global model's rollout from the same analysis), the global forecast interpolated,
        persistence and the regional climatology, scored inside the box per lead."""
        from pipeline.climatology import open_climatology
        from pipeline.metrics import LeadTimeScores
        from pipeline.scorecard import Scores, write_scorecard

        out_dir = Path(out_dir)
        test = tuple(str(t) for t in self.cfg["data"]["periods"]["test"])
        windows = self.forecast_windows("test", max_samples)
        k_max, glob, inits, driver = windows.k_max, windows.glob, windows.inits, windows.driver
        clim = open_climatology(self.inputs["regional_climatology"])
        names = ["model", "global_interpolated", "persistence", "climatology"]
        box_lat = self.lat[self.box_rows]
        scores = {n: LeadTimeScores(box_lat, k_max, len(self.channels)) for n in names}
        for k, o, c, fields in self.box_fields(model, windows, clim):
            for name, f in {**fields, "climatology": c}.items():
                scores[name].add(k, f, o, c)
        stack = lambda m: np.stack([getattr(scores[n], m)() for n in names])  # noqa: E731
        to_str = lambda i: str(glob.times[i])  # noqa: E731
        result = Scores(
            forecasters=names, channels=list(self.channels),
            lead_hours=[self.step_hours * (k + 1) for k in range(k_max)],
            rmse=stack("rmse"), acc=stack("acc"), bias=stack("bias"), n_forecasts=len(inits),
            init_times=[to_str(inits[0]), to_str(inits[-1])],
            descriptions={
                "model": "the regional model" + (" driven by the global model's forecasts"
                                                 if self.use_boundary else
                                                 " without the global boundary channels"),
                "global_interpolated": "the frozen global model's rollout, bilinearly "
                                       "interpolated to the regional grid",
                "persistence": "the regional analysis at the initial time",
                "climatology": "the regional day-of-year x hour climatology of the training "
                               "period"},
            climatology={"path": str(self.inputs["regional_climatology"])})
        meta = {"task": self.name, "test_period": list(test), "box": list(
            self.regional_cfg.box), "domain": list(self.regional_cfg.domain()),
            "boundary": self.use_boundary, "global_checkpoint_sha256": driver.sha256}
        write_scorecard(out_dir, result, meta)
        return result.to_json(meta)
