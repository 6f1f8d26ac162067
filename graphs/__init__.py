"""Multi-scale icosahedral grid/mesh graphs (GraphCast, OneForecast) as PyG HeteroData."""

from graphs.build import GraphSpec, build_graph, graph_cache, load_graph, save_graph, spec_hash

__all__ = ["GraphSpec", "build_graph", "graph_cache", "load_graph", "save_graph", "spec_hash"]
