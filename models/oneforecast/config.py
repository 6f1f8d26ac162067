"""Configuration of the gated GNN (OneForecast-style encoder, processor, decoder)."""

from dataclasses import asdict, dataclass, fields

PROCESSORS = ("gated", "interaction")
GATE_MODES = ("mean", "streams")


@dataclass
class GatedGNNConfig:
    in_channels: int  # input channels per grid node (e.g. normalised state at t)
    out_channels: int  # predicted channels per grid node (e.g. normalised 6-hour change)
    hidden: int = 64  # latent width D of every node and edge
    processor_layers: int = 4
    node_features: int = 3  # static features per grid/mesh node in the HeteroData
    edge_features: int = 4  # static features per edge in the HeteroData
    dropout: float = 0.0
    gradient_checkpointing: bool = False
    # "gated": OneForecast's layer (gated edge update + multi-head attention node update);
    # "interaction": GraphCast's ungated interaction network, for the gated-vs-ungated ablation.
    processor: str = "gated"
    # "mean": one scalar gate per edge, the mean of the edge/source/destination gates, scales the
    # edge MLP's output (the released code); "streams": each gate scales its own input stream
    # (the paper's figure).
    gate_mode: str = "mean"
    heads: int = 4  # H: gate heads and attention heads
    gate_hidden: int | None = None  # None: max(16, D/8), as released
    attention_hidden: int = 64

    def __post_init__(self):
        # models/ has no pydantic; the pipeline validates YAML before it gets here, but a direct
        # caller still gets told what is allowed.
        if self.processor not in PROCESSORS:
            raise ValueError(f"processor '{self.processor}': expected one of {PROCESSORS}")
        if self.gate_mode not in GATE_MODES:
            raise ValueError(f"gate_mode '{self.gate_mode}': expected one of {GATE_MODES}")
        for name in ("hidden", "processor_layers", "heads", "attention_hidden"):
            if getattr(self, name) < 1:
                raise ValueError(f"{name} must be >= 1, got {getattr(self, name)}")
        if self.gate_hidden is not None and self.gate_hidden < 1:
            raise ValueError(f"gate_hidden must be >= 1 or None, got {self.gate_hidden}")

    @property
    def gate_width(self) -> int:
        """Hidden width of the gate MLP: gate_hidden, else max(16, D // 8) (released code)."""
        return self.gate_hidden if self.gate_hidden is not None else max(16, self.hidden // 8)

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, values: dict) -> "GatedGNNConfig":
        known = {f.name for f in fields(cls)}
        unknown = sorted(set(values) - known)
        if unknown:
            raise ValueError(f"unknown GatedGNNConfig keys {unknown}; allowed: {sorted(known)}")
        return cls(**values)
