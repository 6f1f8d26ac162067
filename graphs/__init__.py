"""Multi-scale icosahedral grid/mesh graphs (GraphCast, OneForecast) as PyG HeteroData."""

from graphs.build import GraphSpec, build_graph, graph_cache, load_graph, save_graph, spec_hash
from graphs.regional import build_regional_graph

__all__ = [
    "GraphSpec",
    "build_graph",
    "build_regional_graph",
    "graph_cache",
    "load_graph",
    "save_graph",
    "spec_hash",
]
