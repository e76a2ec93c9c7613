"""`pfd`: generate demo landing data, run the pipeline through Dagster, or both (`pfd demo`)."""

from __future__ import annotations

import argparse
import atexit
import datetime as dt
import fcntl
import os
import sys
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path

from pfd_pipeline.errors import Busy, RunFailed
from pfd_pipeline.settings import DEFAULT_LANDING_DIR, ConfigError, Settings

EXIT_FAILED = 1
EXIT_BUSY = 75  # EX_TEMPFAIL: another run holds the warehouse


def main(argv: Sequence[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    try:
        return args.handler(args)
    except (ConfigError, RunFailed) as exc:  # noqa: B014 (explicit for readers)
        print(f"pfd: {exc}", file=sys.stderr)
        return EXIT_FAILED
    except Busy as exc:
        print(f"pfd: {exc}", file=sys.stderr)
        return EXIT_BUSY


def console() -> None:
    """The `pfd` command: main(), then the exit handlers, then exit without the rest of the
    interpreter's teardown.

    When main() returns, every connection is closed and every file written (the Dagster
    instance too, disposed by the run). What the interpreter would still do is free the objects
    of every module loaded (Dagster, SQLAlchemy, matplotlib, scipy, ...) one by one: 0.6 s of
    every run, about 3% of a daily run at L. The exit handlers (logging's flush among them) and
    the output streams are run and flushed first; only that freeing is skipped.
    """
    code = main()
    atexit._run_exitfuncs()
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(code)


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="pfd", description=__doc__)
    commands = parser.add_subparsers(required=True, metavar="COMMAND")

    gen = commands.add_parser("generate", help="write realistic demo landing files")
    gen.add_argument("--out", type=Path, required=True, help="landing folder to write into")
    _generator_options(gen)
    gen.set_defaults(handler=_generate)

    run = commands.add_parser("run", help="ingest what is new in the landing folder, and onwards")
    _path_options(run)
    run.set_defaults(handler=_run)

    demo = commands.add_parser(
        "demo", help="generate demo data under data/landing/ if absent, then run"
    )
    _path_options(demo)
    _generator_options(demo)
    demo.set_defaults(handler=_demo)

    summary = commands.add_parser(
        "summary", help="print the whale curve, tiers and top/bottom customers of a month"
    )
    _path_options(summary)
    summary.add_argument("--period", help="month YYYY-MM (default: the latest published)")
    summary.set_defaults(handler=_summary)

    report = commands.add_parser(
        "report", help="write the HTML profitability report of a month (whale curve, tiers, ...)"
    )
    _path_options(report)
    report.add_argument("--period", help="month YYYY-MM (default: the latest published)")
    report.add_argument(
        "--out",
        type=Path,
        metavar="FILE",
        help="where to write it (default: <warehouse>/reports/pfd_report_YYYY-MM.html)",
    )
    report.set_defaults(handler=_report)

    doc = commands.add_parser(
        "schema-doc", help="print the published tables' schema as Markdown (from the catalog)"
    )
    doc.add_argument("--write", type=Path, metavar="README", help="update the block in this file")
    doc.set_defaults(handler=_schema_doc)
    return parser


def _generator_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--customers", type=int, default=2000, help="number of customers (2000)")
    parser.add_argument("--months", type=int, default=24, help="months of history (24)")
    parser.add_argument(
        "--start",
        type=dt.date.fromisoformat,
        default=dt.date(2024, 11, 1),
        help="first day, YYYY-MM-DD (2024-11-01)",
    )
    parser.add_argument("--seed", type=int, default=42, help="random seed (42)")
    parser.add_argument("--with-errors", action="store_true", help="add a few realistic bad rows")
    parser.add_argument(
        "--small-orders",
        type=float,
        default=0.0,
        help="shift ordering towards smaller, more frequent orders (0; the benchmark uses 2.5)",
    )
    parser.add_argument(
        "--format",
        dest="file_format",
        choices=("csv", "parquet"),
        default="csv",
        help="landing file format (csv)",
    )


def _path_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--landing", type=Path, help="landing folder (env PFD_LANDING_DIR)")
    parser.add_argument("--warehouse", type=Path, help="warehouse folder (env PFD_WAREHOUSE_DIR)")
    parser.add_argument("--config", type=Path, help="pipeline config file (env PFD_CONFIG)")


def _generate(args: argparse.Namespace) -> int:
    from pfd_pipeline.generate import generate

    started = time.perf_counter()
    summary = generate(
        args.out,
        customers=args.customers,
        months=args.months,
        start=args.start,
        seed=args.seed,
        with_errors=args.with_errors,
        file_format=args.file_format,
        small_orders=args.small_orders,
    )
    elapsed = time.perf_counter() - started
    print(f"Generated demo landing data in {summary.out_dir} ({elapsed:.1f} s):")
    for name, files in summary.files.items():
        print(f"  {name:<14} {files:>6,} files {summary.rows[name]:>12,} rows")
    if summary.errors_injected:
        injected = ", ".join(f"{n} {kind}" for kind, n in summary.errors_injected.items())
        print(f"  bad rows injected: {injected}")
    return 0


def _settings(args: argparse.Namespace) -> Settings:
    return Settings.load(args.landing, args.warehouse, args.config)


def _run(args: argparse.Namespace) -> int:
    settings = _settings(args)
    with run_lock(settings):
        from pfd_pipeline.startup import startup

        with startup():  # Dagster's imports with the collector off (see pfd_pipeline.startup)
            from pfd_pipeline.progress import Progress, reporting
            from pfd_pipeline.runner import run_pipeline

        with reporting(Progress(sys.stderr)):
            report = run_pipeline(settings)
    print(report)
    return 0


def _summary(args: argparse.Namespace) -> int:
    from pfd_pipeline.summary import commercial_summary

    print(commercial_summary(_settings(args).published_db, args.period))
    return 0


def _report(args: argparse.Namespace) -> int:
    from pfd_pipeline.report import ReportError, write_report

    settings = _settings(args)
    started = time.perf_counter()
    try:
        path = write_report(settings.published_db, settings.reports_dir, args.period, args.out)
    except ReportError as exc:
        print(f"pfd: {exc}", file=sys.stderr)
        return EXIT_FAILED
    print(f"Report written in {time.perf_counter() - started:.1f} s: {path}")
    return 0


def _schema_doc(args: argparse.Namespace) -> int:
    from pfd_pipeline.publish import schema_markdown, write_schema_section

    if args.write:
        changed = write_schema_section(args.write)
        print(f"{args.write}: schema section {'updated' if changed else 'already current'}")
    else:
        print(schema_markdown())
    return 0


def _demo(args: argparse.Namespace) -> int:
    landing = args.landing or (
        Path(os.environ["PFD_LANDING_DIR"])
        if os.environ.get("PFD_LANDING_DIR")
        else DEFAULT_LANDING_DIR
    )
    if not landing.is_dir() or not any(landing.iterdir()):
        args.out = landing
        _generate(args)
    else:
        print(f"Using the landing data already in {landing} (delete it to regenerate).")
    args.landing = landing
    return _run(args)


@contextmanager
def run_lock(settings: Settings) -> Iterator[None]:
    """One run per warehouse at a time: a second `pfd run` stops at once with a clear message."""
    settings.warehouse_dir.mkdir(parents=True, exist_ok=True)
    handle = settings.lock_file.open("a+")
    try:
        fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError as exc:
        handle.seek(0)
        holder = handle.read().strip() or "unknown"
        handle.close()
        raise Busy(
            f"another pfd run ({holder}) is using the warehouse {settings.warehouse_dir}; "
            "nothing was changed. Try again when it has finished."
        ) from exc
    try:
        handle.seek(0)
        handle.truncate()
        handle.write(f"pid {os.getpid()} since {dt.datetime.now():%Y-%m-%d %H:%M:%S}")
        handle.flush()
        yield
    finally:
        handle.truncate(0)
        fcntl.flock(handle, fcntl.LOCK_UN)
        handle.close()


if __name__ == "__main__":
    console()
