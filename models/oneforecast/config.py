"""Configuration of the gated GNN (OneForecast-style encoder, processor, decoder)."""

from dataclasses import asdict, dataclass, fields


@dataclass
class GatedGNNConfig:
    in_channels: int  # input channels per grid node (e.g. normalised state at t)
    out_channels: int  # predicted channels per grid node (e.g. normalised 6-hour change)
    hidden: int = 64
    processor_layers: int = 4
    node_features: int = 3  # static features per grid/mesh node in the HeteroData
    edge_features: int = 4  # static features per edge in the HeteroData
    dropout: float = 0.0
    gradient_checkpointing: bool = False

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, values: dict) -> "GatedGNNConfig":
        known = {f.name for f in fields(cls)}
        unknown = sorted(set(values) - known)
        if unknown:
            raise ValueError(f"unknown GatedGNNConfig keys {unknown}; allowed: {sorted(known)}")
        return cls(**values)
