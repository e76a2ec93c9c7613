"""Scale benchmark: generate a workload, build it from an empty warehouse, add one day, and
compare with a DuckDB floor. Prints one table; `--json FILE` keeps the numbers.

    .venv/bin/python benchmarks/bench.py --size S   # 2K customers, about a minute
    .venv/bin/python benchmarks/bench.py --size M   # 20K customers, 5M lines, 10M events
    .venv/bin/python benchmarks/bench.py --size L --repeat 1   # 200K, 50M lines, 100M events

Workloads (24 months of daily files written by `pfd generate`, with `--small-orders 2.5` so that
there are about two activity events per ledger line):

- generate: `pfd generate` of the whole workload (wall time, peak RSS);
- floor: one hand-written DuckDB query (`FLOOR_SQL`) that reads the same landing files and
  computes the per-customer-per-month revenue, COGS and activity-driver totals, written to a
  Parquet file; the same memory limit and threads as the pipeline; run before each full build
  and once after the last (median reported);
- full build: `pfd run` on an empty warehouse with every file but the last `--days` days;
- daily run: those days added back one at a time, `pfd run` after each (median reported);
- the floor once more after the daily runs (not in the ratio): how far the machine's speed moved
  between the build and the daily runs, which moves the daily share.

Every step runs as a child process; its peak RSS is the largest sum of the resident memory of
the child and all its descendants, sampled every 50 ms, as is their CPU time: a run's CPU
seconds over its wall seconds is how many cores it kept busy on average, for the whole run
(exact, from the reaped children's usage) and for each Dagster step (from the samples within the
step's span). Per-stage seconds come from the run's own timings (`last_run_stats.json`). Times
are wall seconds; on a shared machine quote medians.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import resource
import shutil
import statistics
import subprocess
import sys
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
BIN = Path(sys.executable).parent
SIZES = {
    # name: (customers, the target ledger lines, target events)
    "S": (2_000, 500_000, 1_000_000),
    "M": (20_000, 5_000_000, 10_000_000),
    "L": (200_000, 50_000_000, 100_000_000),
}
SMALL_ORDERS = 2.5
PAGE_BYTES = os.sysconf("SC_PAGE_SIZE")
CLOCK_TICKS = os.sysconf("SC_CLK_TCK")  # of /proc/<pid>/stat's utime and stime, per second
DAILY_SOURCES = ("sales_ledger", "activities")
MONTH_OF_FILE = re.compile(r"_(\d{4}-\d{2})(?:-\d{2})?$")  # name_YYYY-MM or name_YYYY-MM-DD

FLOOR_SQL = """
set memory_limit = '{memory_limit}';
set threads = {threads};
set preserve_insertion_order = false;
set temp_directory = '{temp}';
copy (
    with ledger as (
        select customer_id, strftime(posting_date, '%Y-%m') as period,
               sum(gross_amount) as gross_revenue,
               sum(discount_amount) as discounts,
               sum(coalesce(off_invoice_amount, 0)) as off_invoice,
               sum(cogs_amount) as cogs,
               count(*) as lines,
               count(distinct document_id) as documents
        from read_csv('{landing}/sales_ledger/**/*.csv', header = true, auto_detect = false,
            columns = {{
                'line_id': 'varchar', 'document_id': 'varchar', 'document_type': 'varchar',
                'posting_date': 'date', 'customer_id': 'varchar', 'product_id': 'varchar',
                'quantity': 'decimal(18,4)', 'gross_amount': 'decimal(18,2)',
                'discount_amount': 'decimal(18,2)', 'cogs_amount': 'decimal(18,2)',
                'currency': 'varchar', 'channel': 'varchar', 'off_invoice_amount': 'decimal(18,2)'
            }})
        group by all
    ),
    events as (
        select customer_id, strftime(event_date, '%Y-%m') as period, activity,
               count(*) as events,
               sum(coalesce(quantity, 1)) as driver_units,
               sum(minutes) as minutes,
               sum(amount) as amount
        from read_csv('{landing}/activities/**/*.csv', header = true, auto_detect = false,
            columns = {{
                'event_id': 'varchar', 'event_date': 'date', 'customer_id': 'varchar',
                'activity': 'varchar', 'quantity': 'decimal(18,4)', 'channel': 'varchar',
                'minutes': 'decimal(18,2)', 'amount': 'decimal(18,2)', 'flags': 'varchar'
            }})
        group by all
    ),
    drivers as (
        select customer_id, period,
               list(struct_pack(activity, events, driver_units, minutes, amount)) as activities
        from events
        group by all
    )
    select *
    from ledger
    full join drivers using (customer_id, period)
) to '{out}' (format parquet);
"""


@dataclass
class Measure:
    seconds: float
    peak_rss_gb: float
    peak_rss_at: float  # Unix time when the peak was sampled
    peak_rss_step: str = ""  # the Dagster step running then (pipeline runs)
    cpu_seconds: float = 0.0  # user + system CPU of the process tree
    cpu_samples: list[tuple[float, float]] = field(default_factory=list)  # (Unix time, CPU s)
    step_cores: dict[str, float] = field(default_factory=dict)  # Dagster step -> cores busy
    stages: dict[str, float] = field(default_factory=dict)
    ingest_steps: dict[str, float] = field(default_factory=dict)
    steps: dict[str, float] = field(default_factory=dict)  # Dagster step -> seconds
    assets: dict[str, float] = field(default_factory=dict)  # asset -> seconds, where reported
    rows_read: dict[str, int] = field(default_factory=dict)  # source -> landing rows read


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--size", choices=SIZES, default="S")
    parser.add_argument("--workdir", type=Path, help="data folder (default /tmp/pfd-bench-SIZE)")
    parser.add_argument(
        "--repeat", type=int, default=3, help="full builds (3), a floor before each and after"
    )
    parser.add_argument("--days", type=int, default=3, help="daily runs after the build (3)")
    parser.add_argument("--months", type=int, default=24, help="months of history (24)")
    parser.add_argument("--customers", type=int, help="override the size's customers (smoke runs)")
    parser.add_argument("--reuse", action="store_true", help="reuse generated landing data")
    parser.add_argument("--json", type=Path, help="also write the results here")
    parser.add_argument(
        "--history",
        type=month_counts,
        help="instead of the floor and the full build: daily runs after each of these months of "
        "history, e.g. 6,12,24 (built from the first months of the generated files)",
    )
    args = parser.parse_args(argv)

    customers = args.customers or SIZES[args.size][0]
    work = args.workdir or Path(f"/tmp/pfd-bench-{args.size}")
    landing, held, warehouse = work / "landing", work / "held_back", work / "warehouse"
    work.mkdir(parents=True, exist_ok=True)
    print(f"size {args.size}: {customers:,} customers, {args.months} months, in {work}", flush=True)

    generated = None
    if not (args.reuse and landing.is_dir()):
        for folder in (landing, held):
            shutil.rmtree(folder, ignore_errors=True)
        generated = measure(
            [
                str(BIN / "pfd"),
                "generate",
                "--out",
                str(landing),
                "--customers",
                str(customers),
                "--months",
                str(args.months),
                "--small-orders",
                str(SMALL_ORDERS),
            ]
        )
        print(f"  generate: {generated.seconds:.1f} s", flush=True)
    restore_held_back(landing, held)
    if args.history:
        results = history(landing, work, args.history, args.days)
        results |= {"size": args.size, "customers": customers, "cpus": os.cpu_count()}
        print_history(results)
        if args.json:
            args.json.write_text(json.dumps(results, indent=2) + "\n", encoding="utf-8")
        return 0
    volume = {name: count_rows(landing / name) for name in DAILY_SOURCES}
    days = hold_back(landing, held, args.days)
    print(
        f"  {volume['sales_ledger']:,} ledger lines, {volume['activities']:,} events; "
        f"held back {', '.join(days)}",
        flush=True,
    )

    # The floor runs before each full build and once after the last, so that the ratio uses
    # the machine of the builds' hour on both sides: one floor varied 76-112 s between runs on
    # the same files, more than the pipeline's stages did.
    floors = []

    def run_floor() -> None:
        floors.append(floor(landing, work / "floor.parquet"))
        print(
            f"  floor: {floors[-1].seconds:.1f} s, {cores(floors[-1]):.2f} cores busy", flush=True
        )

    builds = []
    for _ in range(args.repeat):
        run_floor()
        shutil.rmtree(warehouse, ignore_errors=True)
        builds.append(pipeline_run(landing, warehouse))
        print(f"  full build: {builds[-1].seconds:.1f} s {builds[-1].stages}", flush=True)
        print(
            f"    peak RSS {builds[-1].peak_rss_gb} GiB in {builds[-1].peak_rss_step}",
            flush=True,
        )
        print(
            f"    cores busy {cores(builds[-1]):.2f}; slowest steps: {slowest(builds[-1])}",
            flush=True,
        )
    run_floor()

    daily = []
    for day in days:
        restore_held_back(landing, held, day)
        daily.append(pipeline_run(landing, warehouse))
        print(f"  daily run {day}: {daily[-1].seconds:.1f} s {daily[-1].stages}", flush=True)
        print(
            f"    cores busy {cores(daily[-1]):.2f}; slowest steps: {slowest(daily[-1])}",
            flush=True,
        )

    # Once more after the daily runs, apart from the ratio's floors: how much the machine's speed
    # moved between the build and the daily runs, which moves the daily share (one round's share
    # went from 4.5% to 6.2% on the same code when the machine slowed by a third meanwhile). It
    # reads the held-back days too (3 of 730 at L), and writes a file of its own, so that
    # floor.parquet stays what the ratio's floors computed.
    late_floor = None
    if daily:
        late_floor = floor(landing, work / "floor_after_daily.parquet")
        print(
            f"  floor after the daily runs: {late_floor.seconds:.1f} s "
            f"({late_floor.seconds / floors[0].seconds - 1:+.0%} against the first floor)",
            flush=True,
        )

    results = summarise(args, customers, volume, generated, floors, builds, daily)
    results["floor_after_daily_seconds"] = late_floor.seconds if late_floor else None
    print_table(results)
    if args.json:
        args.json.write_text(json.dumps(results, indent=2) + "\n", encoding="utf-8")
    return 0


def pipeline_run(landing: Path, warehouse: Path) -> Measure:
    env = {**os.environ, "PFD_LANDING_DIR": str(landing), "PFD_WAREHOUSE_DIR": str(warehouse)}
    env.pop("DAGSTER_HOME", None)
    result = measure([str(BIN / "pfd"), "run"], env=env)
    stats = json.loads((warehouse / "last_run_stats.json").read_text(encoding="utf-8"))
    result.stages = stats["stage_seconds"]
    result.ingest_steps = stats["ingest_step_seconds"]
    result.steps = stats["step_seconds"]
    result.assets = stats["asset_seconds"]
    result.rows_read = stats["rows_read"]
    result.step_cores = {
        step: cores_between(result.cpu_samples, start, end)
        for step, (start, end) in stats["step_spans"].items()
    }
    result.peak_rss_step = next(
        (
            step
            for step, (start, end) in stats["step_spans"].items()
            if start <= result.peak_rss_at <= end
        ),
        "between steps",
    )
    return result


def slowest(run: Measure, n: int = 8) -> str:
    """The n slowest Dagster steps of a run with the cores each kept busy, e.g.
    'marts__customer_trends 4.1 s (1.7 cores), ...'."""
    top = sorted(run.steps.items(), key=lambda item: -item[1])[:n]
    return ", ".join(
        f"{step} {seconds:.1f} s ({run.step_cores.get(step, 0.0):.1f} cores)"
        for step, seconds in top
    )


def cores(run: Measure) -> float:
    """Average cores a run kept busy: its CPU seconds over its wall seconds."""
    return round(run.cpu_seconds / run.seconds, 2) if run.seconds else 0.0


def cores_between(samples: list[tuple[float, float]], start: float, end: float) -> float:
    """Average cores busy from `start` to `end` (Unix times): the CPU seconds the samples show
    spent in between (interpolated at both ends) over the wall seconds; 0 for an empty span."""
    if end <= start or len(samples) < 2:
        return 0.0
    times, seconds = zip(*samples, strict=True)
    low, high = np.interp([start, end], times, seconds)
    return round(float(high - low) / (end - start), 2)


def floor(landing: Path, out: Path) -> Measure:
    """The hand-written DuckDB query, in a child process like the pipeline."""
    from pfd_pipeline.settings import Settings

    settings = Settings.load()
    sql = FLOOR_SQL.format(
        landing=landing,
        out=out,
        temp=out.with_suffix(".tmp"),
        memory_limit=settings.duckdb_memory_limit,
        threads=settings.duckdb_threads,
    )
    code = "import duckdb, sys; duckdb.connect().execute(sys.stdin.read())"
    return measure([sys.executable, "-c", code], stdin=sql)


def measure(command: list[str], env: dict | None = None, stdin: str | None = None) -> Measure:
    """Wall time, peak RSS and CPU of the process tree; a failure stops the benchmark."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    started = time.perf_counter()
    process = subprocess.Popen(
        command,
        env=env,
        stdin=subprocess.PIPE if stdin is not None else subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    peak = [0, 0.0]  # bytes, Unix time
    cpu: list[tuple[float, float]] = [(time.time(), 0.0)]
    done = threading.Event()

    def sample() -> None:
        while not done.wait(0.05):
            rss, seconds = tree_usage(process.pid)
            now = time.time()
            if rss > peak[0]:
                peak[:] = [rss, now]
            if seconds:  # 0 once the process is gone
                cpu.append((now, max(seconds, cpu[-1][1])))

    sampler = threading.Thread(target=sample, daemon=True)
    sampler.start()
    output, _ = process.communicate(stdin)
    elapsed = time.perf_counter() - started
    done.set()
    sampler.join()
    if process.returncode != 0:
        raise SystemExit(f"{' '.join(command)} failed ({process.returncode}):\n{output}")
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    used = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    cpu.append((time.time(), max(used, cpu[-1][1])))
    return Measure(round(elapsed, 2), round(peak[0] / 2**30, 2), peak[1], "", round(used, 2), cpu)


def tree_usage(pid: int) -> tuple[int, float]:
    """Resident bytes and CPU seconds (user + system) of a process and all its descendants
    (0, 0.0 once it is gone)."""
    rss, cpu, todo = 0, 0.0, [pid]
    while todo:
        current = todo.pop()
        try:
            with open(f"/proc/{current}/statm") as statm:
                rss += int(statm.read().split()[1]) * PAGE_BYTES
            with open(f"/proc/{current}/stat") as stat:  # fields after "(comm)": utime is 14th
                fields = stat.read().rpartition(")")[2].split()
            cpu += (int(fields[11]) + int(fields[12])) / CLOCK_TICKS
            for task in os.listdir(f"/proc/{current}/task"):
                with open(f"/proc/{current}/task/{task}/children") as children:
                    todo += [int(c) for c in children.read().split()]
        except (FileNotFoundError, ProcessLookupError, ValueError, IndexError):
            continue
    return rss, cpu


def day_of(path: Path) -> str:
    return path.stem[-10:]


def hold_back(landing: Path, held: Path, days: int) -> list[str]:
    """Move the daily files of the last `days` days out of the landing folder."""
    every = sorted({day_of(p) for s in DAILY_SOURCES for p in (landing / s).glob("*.csv")})
    last = every[-days:] if days else []
    for source in DAILY_SOURCES:
        (held / source).mkdir(parents=True, exist_ok=True)
        for path in (landing / source).glob("*.csv"):
            if day_of(path) in last:
                path.rename(held / source / path.name)
    return last


def restore_held_back(landing: Path, held: Path, day: str | None = None) -> None:
    """Put held-back files (of one day, or all) back into the landing folder."""
    for source in DAILY_SOURCES:
        for path in sorted((held / source).glob("*.csv")) if (held / source).is_dir() else []:
            if day is None or day_of(path) == day:
                path.rename(landing / source / path.name)


def month_counts(text: str) -> list[int]:
    """'6,12,24' -> [6, 12, 24]: months of history, each at least one, in increasing order."""
    counts = [int(part) for part in text.split(",")]
    if not counts or min(counts) < 1 or counts != sorted(set(counts)):
        raise argparse.ArgumentTypeError(f"{text!r}: months of history, increasing, e.g. 6,12,24")
    return counts


def history_landing(landing: Path, folder: Path, months: int, days: int) -> list[list[Path]]:
    """`folder` as a landing folder of the first `months` months of `landing` (hard links to its
    files), less the daily files of the last `days` days of those months, which are returned day
    by day in date order, to be added one day at a time. Monthly files (resource costs,
    feedback) count by their month; the customer master, which covers every customer, is linked
    whole."""
    every = sorted({day_of(p)[:7] for s in DAILY_SOURCES for p in (landing / s).glob("*.csv")})
    if months > len(every):
        raise SystemExit(f"--history {months}: the landing folder has {len(every)} months")
    last_month = every[months - 1]
    shutil.rmtree(folder, ignore_errors=True)
    daily: dict[str, list[Path]] = {}
    for path in sorted(p for p in landing.rglob("*") if p.is_file()):
        month = "" if path.parent.name == "customers" else MONTH_OF_FILE.search(path.stem)[1]
        if month > last_month:
            continue
        if path.parent.name in DAILY_SOURCES:
            daily.setdefault(day_of(path), []).append(path)
        else:
            (folder / path.parent.name).mkdir(parents=True, exist_ok=True)
            os.link(path, folder / path.relative_to(landing))
    held = sorted(daily)[-days:] if days else []
    for day in sorted(daily):
        if day not in held:
            for path in daily[day]:
                (folder / path.parent.name).mkdir(parents=True, exist_ok=True)
                os.link(path, folder / path.relative_to(landing))
    return [daily[day] for day in held]


def history(landing: Path, work: Path, counts: list[int], days: int) -> dict:
    """For each number of months in `counts`: a warehouse built on the first that many months of
    `landing`, then the held-back days added one at a time, `pfd run` after each. The daily runs
    take turns between the histories (day 1 for every history, then day 2, ...), so that the
    machine's hour falls on each alike."""
    runs: dict[int, dict] = {}
    for months in counts:
        folder = work / f"history-{months}" / "landing"
        warehouse = work / f"history-{months}" / "warehouse"
        held = history_landing(landing, folder, months, days)
        shutil.rmtree(warehouse, ignore_errors=True)
        build = pipeline_run(folder, warehouse)
        print(
            f"  {months} months: build {build.seconds:.1f} s, "
            f"{build.rows_read['sales_ledger']:,} ledger lines, "
            f"{build.rows_read['activities']:,} events",
            flush=True,
        )
        runs[months] = dict(folder=folder, warehouse=warehouse, held=held, build=build, daily=[])
    for day in range(days):
        for months, run in runs.items():
            for path in run["held"][day]:
                os.link(path, run["folder"] / path.relative_to(landing))
            daily = pipeline_run(run["folder"], run["warehouse"])
            run["daily"].append(daily)
            print(
                f"  {months} months, daily run {day_of(run['held'][day][0])}: "
                f"{daily.seconds:.1f} s {daily.stages}",
                flush=True,
            )
    return summarise_history(runs)


def summarise_history(runs: dict[int, dict]) -> dict:
    histories = []
    for months, run in runs.items():
        build, daily = run["build"], run["daily"]
        histories.append(
            {
                "months": months,
                "ledger_lines": build.rows_read["sales_ledger"],
                "events": build.rows_read["activities"],
                "build_seconds": build.seconds,
                "daily_runs": [d.seconds for d in daily],
                "daily_rows": [
                    d.rows_read["sales_ledger"] + d.rows_read["activities"] for d in daily
                ],
                "daily_seconds": round(statistics.median(d.seconds for d in daily), 2)
                if daily
                else None,
                "daily_stage_seconds": {
                    stage: round(statistics.median(d.stages[stage] for d in daily), 2)
                    for stage in (daily[0].stages if daily else {})
                },
                "daily_peak_rss_gb": max((d.peak_rss_gb for d in daily), default=None),
            }
        )
    first, last = histories[0], histories[-1]
    growth = (
        round(last["daily_seconds"] / first["daily_seconds"], 3)
        if first["daily_seconds"] and last["daily_seconds"]
        else None
    )
    return {"histories": histories, "daily_growth": growth}


def print_history(r: dict) -> None:
    print()
    print("| months of history | ledger lines | events | build | daily runs | daily (median) |")
    print("|---|---|---|---|---|---|")
    for h in r["histories"]:
        runs = " / ".join(f"{s:.1f}" for s in h["daily_runs"])
        daily = f"{h['daily_seconds']} s" if h["daily_seconds"] is not None else "-"
        print(
            f"| {h['months']} | {h['ledger_lines']:,} | {h['events']:,} | "
            f"{h['build_seconds']} s | {runs} | {daily} |"
        )
    if r["daily_growth"] is not None:
        first, last = r["histories"][0]["months"], r["histories"][-1]["months"]
        print(f"daily run after {last} months / after {first} months: {r['daily_growth']}x")


def count_rows(folder: Path) -> int:
    import duckdb

    return duckdb.sql(
        f"select count(*) from read_csv('{folder}/**/*.csv', header = true, all_varchar = true)"
    ).fetchall()[0][0]


def summarise(args, customers, volume, generated, floors, builds, daily) -> dict:
    def median(values: list[float]) -> float:
        return round(statistics.median(values), 2)

    stage_names = list(builds[0].stages)
    build_s = median([b.seconds for b in builds])
    floor_s = median([f.seconds for f in floors])
    daily_s = median([d.seconds for d in daily]) if daily else None
    rows = volume["sales_ledger"] + volume["activities"]
    stages = {s: median([b.stages[s] for b in builds]) for s in stage_names}
    return {
        "size": args.size,
        "customers": customers,
        "months": args.months,
        "ledger_lines": volume["sales_ledger"],
        "events": volume["activities"],
        "cpus": os.cpu_count(),
        "generate_seconds": generated.seconds if generated else None,
        "generate_peak_rss_gb": generated.peak_rss_gb if generated else None,
        "floor_seconds": floor_s,
        "floor_runs": [f.seconds for f in floors],
        "floor_cores": median([cores(f) for f in floors]),
        "full_build_seconds": build_s,
        "full_build_runs": [b.seconds for b in builds],
        "full_build_peak_rss_gb": max(b.peak_rss_gb for b in builds),
        "full_build_peak_rss_step": max(builds, key=lambda b: b.peak_rss_gb).peak_rss_step,
        "build_to_floor": round(build_s / floor_s, 2),
        "full_build_cores": median([cores(b) for b in builds]),
        "stage_seconds": stages,
        "stage_rows_per_second": {s: round(rows / v) if v else None for s, v in stages.items()},
        "ingest_step_seconds": {
            step: median([b.ingest_steps.get(step, 0.0) for b in builds])
            for step in builds[0].ingest_steps
        },
        # every Dagster step, median over the builds: what a month of each step costs in a
        # build (divide by the months) against what it costs in a daily run
        "full_build_step_seconds": {
            step: median([b.steps.get(step, 0.0) for b in builds]) for step in builds[0].steps
        },
        # seconds per asset where a step reports them (the marts after customer_profitability
        # share one step and may run two at a time; the publications; the report)
        "full_build_step_cores": {
            step: median([b.step_cores.get(step, 0.0) for b in builds]) for step in builds[0].steps
        },
        "full_build_asset_seconds": {
            asset: median([b.assets.get(asset, 0.0) for b in builds]) for asset in builds[0].assets
        },
        "daily_seconds": daily_s,
        "daily_runs": [d.seconds for d in daily],
        "daily_step_seconds": {
            step: median([d.steps.get(step, 0.0) for d in daily])
            for step in (daily[0].steps if daily else {})
        },
        "daily_step_cores": {
            step: median([d.step_cores.get(step, 0.0) for d in daily])
            for step in (daily[0].steps if daily else {})
        },
        "daily_cores": median([cores(d) for d in daily]) if daily else None,
        "daily_asset_seconds": {
            asset: median([d.assets.get(asset, 0.0) for d in daily])
            for asset in (daily[0].assets if daily else {})
        },
        "daily_peak_rss_gb": max((d.peak_rss_gb for d in daily), default=None),
        # each daily run's peak and the step it was reached in, in the order the runs came
        "daily_peak_rss_runs": [[d.peak_rss_gb, d.peak_rss_step] for d in daily],
        "daily_to_build": round(daily_s / build_s, 4) if daily_s else None,
    }


def print_table(r: dict) -> None:
    def line(what: str, value: str) -> None:
        print(f"| {what:<44} | {value:>28} |")

    print()
    print(f"| {'size ' + r['size']:<44} | {'':>28} |")
    print(f"|{'-' * 46}|{'-' * 30}|")
    line("customers / months", f"{r['customers']:,} / {r['months']}")
    line("ledger lines / activity events", f"{r['ledger_lines']:,} / {r['events']:,}")
    if r["generate_seconds"] is not None:
        line(
            "generate (s, peak RSS GiB)", f"{r['generate_seconds']} s, {r['generate_peak_rss_gb']}"
        )
    line("floor: one DuckDB query (median s)", f"{r['floor_seconds']} s")
    line("  cores busy (CPU s / wall s)", f"{r['floor_cores']}")
    line("full build (median s)", f"{r['full_build_seconds']} s")
    line("  cores busy (CPU s / wall s)", f"{r['full_build_cores']}")
    line("full build / floor", f"{r['build_to_floor']}x")
    line("full build peak RSS (GiB, process tree)", f"{r['full_build_peak_rss_gb']}")
    line("  reached in step", r["full_build_peak_rss_step"])
    for stage, seconds in r["stage_seconds"].items():
        rate = r["stage_rows_per_second"][stage]
        line(f"  {stage} (s, input rows/s)", f"{seconds} s, {rate:,}/s" if rate else f"{seconds} s")
    if r["daily_seconds"] is not None:
        line("daily run: one new day (median s)", f"{r['daily_seconds']} s")
        line("daily run / full build", f"{r['daily_to_build']:.1%}")
        line("  cores busy (CPU s / wall s)", f"{r['daily_cores']}")
        line("daily run peak RSS (GiB)", f"{r['daily_peak_rss_gb']}")
    if r.get("floor_after_daily_seconds") is not None:
        line("floor after the daily runs (s)", f"{r['floor_after_daily_seconds']} s")


if __name__ == "__main__":
    sys.exit(main())
