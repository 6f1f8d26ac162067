"""``sluice``: run a pipeline or one stage of it.

    sluice run CONFIG [key.sub=value ...] [--run-dir DIR] [--address ADDR]
    sluice ingest|graph|train|evaluate CONFIG [...]   (runs that stage and any stale inputs)
    sluice graph plot CONFIG [...] [--out PNG]        (builds the graph if stale, then draws it;
                                                       also spelt `sluice graph-plot`)

Exit codes: 0 ok, 2 bad config or input, 1 any other failure.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from pipeline.errors import UserError

STAGE_COMMANDS = ("ingest", "graph", "train", "evaluate")


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="sluice", formatter_class=argparse.RawDescriptionHelpFormatter,
        description="Run a Sluice pipeline, or one stage of it, on Ray.",
        epilog="exit codes: 0 ok, 2 bad config or input, 1 any other failure")
    add_stage_commands(p.add_subparsers(dest="command", required=True, metavar="COMMAND"))
    return p


def add_stage_commands(sub) -> None:
    """The pipeline's subcommands (run and one per stage) on an argparse subparsers object;
    `workflows.cli` adds the forecast workflow's beside them."""
    helps = {"run": "run the whole pipeline (skipping stages whose outputs are current)",
             "ingest": "prepare the weather Zarr (writes the synthetic source if configured)",
             "graph": "build the multi-scale grid/mesh graph",
             "boundary": "the frozen global model's forecasts on the regional grid "
                         "(weather_regional)",
             "train": "train the task's model with Ray Train (DDP)",
             "evaluate": "score the trained model on the test period",
             "graph-plot": "build the graph if needed and draw it to a PNG (also: graph plot)"}
    for name, text in helps.items():
        sp = sub.add_parser(name, help=text, description=text)
        if name == "graph-plot":
            sp.add_argument("--out", type=Path, default=None,
                            help="PNG to write (default: RUN_DIR/graph/graph.png)")
        sp.add_argument("config", help="YAML experiment config (see configs/)")
        sp.add_argument("overrides", nargs="*", metavar="key.sub=value",
                        help="config overrides, e.g. train.max_steps=50")
        sp.add_argument("--run-dir", default=None,
                        help="where artifacts go: a directory, or an fsspec URL such as "
                             "s3://bucket/runs/NAME (default: <storage_path>/<config name>, "
                             "storage_path from the config, 'runs' unless set)")
        sp.add_argument("--address", default=None,
                        help="Ray cluster to attach to (default: $RAY_ADDRESS, else an embedded "
                             "local cluster)")


def normalise_argv(argv: list[str]) -> list[str]:
    """``graph plot ...`` is ``graph-plot ...`` (unless ``plot`` is a config file)."""
    if argv[:2] == ["graph", "plot"] and not Path("plot").is_file():
        return ["graph-plot", *argv[2:]]
    return argv


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(normalise_argv(list(sys.argv[1:] if argv is None else argv)))
    return run_command(args)


def run_command(args) -> int:
    """Run a parsed stage command; UserError → exit 2 with its message on stderr."""
    from rich.console import Console

    console = Console()
    try:
        return _run(args, console)
    except UserError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130


def _run(args, console) -> int:
    from pipeline.config import load_config

    # Validate everything before Ray starts or any directory is made.
    cfg = load_config(args.config, args.overrides)
    cfg_dict = cfg.model_dump(mode="json")
    from pipeline.publish import local_path
    from pipeline.runstore import join, run_url

    run_dir = args.run_dir or join(cfg.storage_path, cfg.name)
    if run_url(run_dir) is None:
        run_dir = local_path(run_dir)
        if run_dir.exists() and not run_dir.is_dir():
            raise UserError(f"--run-dir {run_dir}: exists and is not a directory")
    elif args.command == "graph-plot" and args.out is None:
        raise UserError(f"graph plot: --out PNG is needed for a run on an object store "
                        f"({run_dir})")

    from pipeline.cluster import connect
    from pipeline.runner import run_stages, summary_table
    from pipeline.stages import pipeline_stages

    stages = pipeline_stages(cfg_dict)
    stage_name = "graph" if args.command == "graph-plot" else args.command
    targets = list(stages) if args.command == "run" else [stage_name]
    if targets[0] not in stages:
        raise UserError(f"stage '{args.command}' is not part of a '{cfg.train.task}' pipeline; "
                        f"its stages are {list(stages)}")
    cluster = connect(args.address, cfg.ray.num_cpus)
    console.print(f"Ray cluster {cluster['gcs_address']} "
                  f"({'embedded' if cluster['embedded'] else 'attached'}); run dir {run_dir}")
    manifest = run_stages(stages, cfg_dict, run_dir, targets, cluster, console)
    ran = [s for s in stages if s in manifest["stages"]]
    root = str(run_dir if run_url(run_dir) else run_dir.resolve())
    console.print(summary_table(manifest, root, ran))
    _print_results(console, root, ran)
    if args.command == "graph-plot":
        from pipeline.stages import GRAPH, graph_plot

        if run_url(root):
            from pipeline.runstore import localize

            graph_dir = localize(join(root, "graph"), manifest["stages"]["graph"]["fingerprint"])
        else:
            graph_dir = Path(root) / "graph"
        png = graph_plot(graph_dir / GRAPH, args.out or graph_dir / "graph.png")
        console.print(f"graph plot: {png}")
    return 0


def _print_results(console, root: str, ran: list[str]) -> None:
    from pipeline.runstore import join, read_json, run_url

    if "train" in ran:
        console.print(f"checkpoint: {join(root, 'train', 'checkpoint')}")
    scores = join(root, "evaluate", "scores.json")
    s = read_json(scores) if "evaluate" in ran else None
    if s is not None:
        console.print(f"scores:     {scores}")
        png = join(root, "evaluate", "scores.png")
        if run_url(root) or Path(png).is_file():
            console.print(f"plot:       {png}")
        for name, v in s.get("variables", {}).items():
            r = v["rmse"]
            console.print(f"  {name:<26} RMSE model {r['model']:10.4g}  persistence "
                          f"{r['persistence']:10.4g}  skill {v['skill_vs_persistence']:+.3f}")
        if "test_accuracy" in s:
            console.print(f"  test accuracy {s['test_accuracy']:.3f} (chance {s['chance']})")
        for kind, v in s.get("by_type", {}).items():
            console.print(f"    {kind:<24} {v['accuracy']:.3f}  ({v['questions']} questions)")


if __name__ == "__main__":
    raise SystemExit(main())
