import subprocess
import sys

import numpy as np

from graphs import GraphSpec, build_graph
from graphs.plot import orthographic, plot_graph


def test_orthographic_centre_and_far_side():
    xyz = np.array([[1.0, 0, 0], [-1.0, 0, 0], [0, 0, 1.0], [0, 1.0, 0]])
    uv, visible = orthographic(xyz, 0.0, 0.0)
    np.testing.assert_allclose(uv, [[0, 0], [0, 0], [0, 1], [1, 0]], atol=1e-15)
    np.testing.assert_array_equal(visible, [True, False, False, False])


def test_plot_graph_writes_a_png(tmp_path):
    lat = tuple(90 - (np.arange(16) + 0.5) * 180 / 16)
    spec = GraphSpec(lat=lat, lon=tuple(np.arange(32) * 11.25), mesh_levels=1,
                     regions=((40.0, 70.0, 350.0, 20.0),), region_levels=1)
    path = tmp_path / "graph.png"
    plot_graph(build_graph(spec), path)
    assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and 10_000 < path.stat().st_size < 300_000


def test_only_the_plot_module_imports_matplotlib():
    code = ("import sys, graphs, graphs.build, graphs.regions, graphs.features, "
            "graphs.connectivity, graphs.icosahedral; print('matplotlib' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"
