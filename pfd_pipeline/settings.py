"""Where things are and how the pipeline is tuned: flags > environment variables > defaults."""

from __future__ import annotations

import datetime as dt
import os
import re
from dataclasses import asdict, dataclass, field
from decimal import Decimal, InvalidOperation
from pathlib import Path
from typing import Any

import yaml

from pfd_pipeline.errors import PfdError
from pfd_pipeline.sources import ISO_CURRENCIES

PROJECT_ROOT = Path(__file__).resolve().parent.parent
DEFAULT_LANDING_DIR = PROJECT_ROOT / "data" / "landing"
DEFAULT_WAREHOUSE_DIR = PROJECT_ROOT / "data" / "warehouse"
DEFAULT_CONFIG = PROJECT_ROOT / "data" / "config" / "pfd.yaml"

ENV_LANDING = "PFD_LANDING_DIR"
ENV_WAREHOUSE = "PFD_WAREHOUSE_DIR"
ENV_CONFIG = "PFD_CONFIG"


class ConfigError(PfdError, ValueError):
    """The configuration file is missing, unreadable or holds a value out of its domain."""


@dataclass(frozen=True)
class ValidationSettings:
    max_reject_share: float = 0.05
    min_date: dt.date = dt.date(2000, 1, 1)
    max_future_days: int = 1
    batch_rows: int = 500_000
    # Ledger currencies accepted; the demo generator writes USD. Without fx_rates, amounts in
    # several currencies cannot be added up, so a line in any other currency is rejected.
    currencies: tuple[str, ...] = ("USD",)


@dataclass(frozen=True)
class MartSettings:
    """How tiers, trends and segment trends are cut; see the `marts` section of pfd.yaml."""

    window_months: int = 12
    top_share: Decimal = Decimal("0.20")
    bottom_share: Decimal = Decimal("0.10")
    slope_months: int = 6
    stable_slope_pp: Decimal = Decimal("1.0")
    declining_months: int = 3
    growth_months: int = 3
    erosion_pp: Decimal = Decimal("1.0")
    # customer lifetime value (marts.clv)
    clv_horizon_months: int = 12
    clv_annual_discount_rate: Decimal = Decimal("0.10")
    clv_calibration_months: int = 24
    clv_min_customers: int = 30
    # advocacy from survey scores (marts.advocacy)
    advocacy_window_months: int = 12
    promoter_min_score: int = 9
    detractor_max_score: int = 6
    # rising stars (marts.rising_stars)
    rising_max_tenure_months: int = 12
    rising_clv_percentile: Decimal = Decimal("0.50")

    def fingerprint(self) -> str:
        """Changes whenever a setting changes, so that every month is rebuilt with it."""
        return ";".join(f"{k}={v}" for k, v in sorted(asdict(self).items()))


@dataclass(frozen=True)
class PublishSettings:
    duckdb_file: str = "pfd.duckdb"
    parquet_dir: str = "parquet"
    storage_version: str = "v1.4.0"


@dataclass(frozen=True)
class Settings:
    landing_dir: Path = DEFAULT_LANDING_DIR
    warehouse_dir: Path = DEFAULT_WAREHOUSE_DIR
    config_path: Path = DEFAULT_CONFIG
    partitions_start: dt.date = dt.date(2020, 1, 1)
    schedule_cron: str = "0 6 * * *"
    schedule_timezone: str = "UTC"
    validation: ValidationSettings = field(default_factory=ValidationSettings)
    duckdb_memory_limit: str = "4GB"
    duckdb_threads: int = 2
    duckdb_temp_directory: Path | None = None  # None: DuckDB's own (work.duckdb.tmp beside it)
    cost_model_path: Path = DEFAULT_CONFIG.parent / "cost_model.yaml"
    close_after_days: int = 5
    marts: MartSettings = field(default_factory=MartSettings)
    publish: PublishSettings = field(default_factory=PublishSettings)

    @property
    def published_db(self) -> Path:
        """The DuckDB file BI tools read (schema `marts`), replaced whole by each run."""
        return self.warehouse_dir / self.publish.duckdb_file

    @property
    def parquet_dir(self) -> Path:
        """Parquet copies of the published tables, one folder per table."""
        return self.warehouse_dir / self.publish.parquet_dir

    @property
    def reports_dir(self) -> Path:
        """The HTML profitability reports, one per month (pfd_report_YYYY-MM.html)."""
        return self.warehouse_dir / "reports"

    @property
    def work_db(self) -> Path:
        """The pipeline's own DuckDB store: raw, audit and intermediate tables."""
        return self.warehouse_dir / "work.duckdb"

    @property
    def lock_file(self) -> Path:
        return self.warehouse_dir / ".pfd.lock"

    @classmethod
    def load(
        cls,
        landing_dir: str | os.PathLike[str] | None = None,
        warehouse_dir: str | os.PathLike[str] | None = None,
        config_path: str | os.PathLike[str] | None = None,
    ) -> Settings:
        """Resolve each path from its flag, else its environment variable, else the default."""
        config = Path(config_path or os.environ.get(ENV_CONFIG) or DEFAULT_CONFIG)
        landing = Path(landing_dir or os.environ.get(ENV_LANDING) or DEFAULT_LANDING_DIR)
        warehouse = Path(warehouse_dir or os.environ.get(ENV_WAREHOUSE) or DEFAULT_WAREHOUSE_DIR)
        raw = _read_yaml(config)
        return cls(
            landing_dir=landing.resolve(),
            warehouse_dir=warehouse.resolve(),
            config_path=config.resolve(),
            **_parse_config(raw, config),
        )


def _read_yaml(path: Path) -> dict[str, Any]:
    if not path.is_file():
        raise ConfigError(f"config file {path} does not exist (set --config or {ENV_CONFIG})")
    try:
        loaded = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
    except yaml.YAMLError as exc:
        raise ConfigError(f"config file {path} is not valid YAML: {exc}") from exc
    if not isinstance(loaded, dict):
        raise ConfigError(f"config file {path} must hold a mapping at the top level")
    return loaded


_KNOWN_KEYS = {
    "partitions_start",
    "schedule",
    "validation",
    "duckdb",
    "cost_model",
    "marts",
    "publish",
}


def _parse_config(raw: dict[str, Any], path: Path) -> dict[str, Any]:
    unknown = set(raw) - _KNOWN_KEYS
    if unknown:
        raise ConfigError(
            f"config file {path}: unknown key(s) {sorted(unknown)}; expected {sorted(_KNOWN_KEYS)}"
        )
    schedule = raw.get("schedule") or {}
    duck = raw.get("duckdb") or {}
    return {
        "partitions_start": _date(
            raw.get("partitions_start", "2020-01-01"), "partitions_start", path
        ),
        "schedule_cron": str(schedule.get("cron", "0 6 * * *")),
        "schedule_timezone": str(schedule.get("timezone", "UTC")),
        "validation": _validation(raw.get("validation") or {}, path),
        **_cost_model(raw.get("cost_model") or {}, path),
        **_duckdb(duck, path),
        "marts": _marts(raw.get("marts") or {}, path),
        "publish": _publish(raw.get("publish") or {}, path),
    }


def _duckdb(section: Any, path: Path) -> dict[str, Any]:
    """Engine settings: memory cap, threads, and where DuckDB spills what does not fit."""
    _unknown_keys(section, {"memory_limit", "threads", "temp_directory"}, "duckdb", path)
    temp = section.get("temp_directory")
    if temp is not None:
        temp = Path(str(temp))
        temp = temp if temp.is_absolute() else PROJECT_ROOT / temp
    return {
        "duckdb_memory_limit": str(section.get("memory_limit", "4GB")),
        "duckdb_threads": int(section.get("threads", 2)),
        "duckdb_temp_directory": temp,
    }


_VALIDATION_KEYS = {"max_reject_share", "min_date", "max_future_days", "batch_rows", "currencies"}


def _validation(section: Any, path: Path) -> ValidationSettings:
    """The `validation` section; a misspelt key is an error, not a silently used default."""
    _unknown_keys(section, _VALIDATION_KEYS, "validation", path)
    share = float(section.get("max_reject_share", 0.05))
    if not 0 <= share <= 1:
        raise ConfigError(f"config file {path}: validation.max_reject_share must be in [0, 1]")
    batch_rows = int(section.get("batch_rows", 500_000))
    if batch_rows < 1:
        raise ConfigError(f"config file {path}: validation.batch_rows must be positive")
    return ValidationSettings(
        max_reject_share=share,
        min_date=_date(section.get("min_date", "2000-01-01"), "validation.min_date", path),
        max_future_days=int(section.get("max_future_days", 1)),
        batch_rows=batch_rows,
        currencies=_currencies(section.get("currencies", ["USD"]), path),
    )


def _currencies(value: Any, path: Path) -> tuple[str, ...]:
    """A non-empty list of ISO 4217 codes (upper case, as the ledger must write them)."""
    if isinstance(value, str) or not isinstance(value, list) or not value:
        raise ConfigError(
            f"config file {path}: validation.currencies must be a non-empty list of ISO 4217 "
            f"codes, e.g. [USD], got {value!r}"
        )
    bad = [c for c in value if not isinstance(c, str) or c not in ISO_CURRENCIES]
    if bad:
        raise ConfigError(
            f"config file {path}: validation.currencies: {bad} not ISO 4217 code(s) "
            "(three upper-case letters, e.g. USD, EUR)"
        )
    return tuple(dict.fromkeys(value))


_MART_KEYS = {
    "tiers": {"window_months", "top_share", "bottom_share"},
    "trends": {"slope_months", "stable_slope_pp", "declining_months", "growth_months"},
    "segments": {"erosion_pp"},
    "clv": {"horizon_months", "annual_discount_rate", "calibration_months", "min_customers"},
    "advocacy": {"window_months", "promoter_min_score", "detractor_max_score"},
    "rising_stars": {"max_tenure_months", "clv_percentile"},
}


def _unknown_keys(section: Any, allowed: set[str], prefix: str, path: Path) -> None:
    """A misspelt key is an error, not a silently used default."""
    if not isinstance(section, dict):
        raise ConfigError(f"config file {path}: {prefix} must be a mapping")
    unknown = set(section) - allowed
    if unknown:
        raise ConfigError(
            f"config file {path}: unknown key(s) {sorted(f'{prefix}.{k}' for k in unknown)}; "
            f"expected {sorted(allowed)}"
        )


def _marts(section: dict[str, Any], path: Path) -> MartSettings:
    """Tier cuts and trend thresholds, each checked against its domain."""
    _unknown_keys(section, set(_MART_KEYS), "marts", path)
    for name, keys in _MART_KEYS.items():
        _unknown_keys(section.get(name) or {}, keys, f"marts.{name}", path)
    tiers = section.get("tiers") or {}
    trends = section.get("trends") or {}
    segments = section.get("segments") or {}
    clv = section.get("clv") or {}
    advocacy = section.get("advocacy") or {}
    rising = section.get("rising_stars") or {}
    default = MartSettings()

    def number(group: dict[str, Any], key: str, name: str, fallback: Any, low: Any, high: Any):
        value = group.get(key, fallback)
        try:
            parsed = type(fallback)(str(value))
        except (ValueError, InvalidOperation) as exc:
            raise ConfigError(f"config file {path}: marts.{name} must be a number") from exc
        if not low <= parsed <= high:
            raise ConfigError(f"config file {path}: marts.{name} must be in [{low}, {high}]")
        return parsed

    top = number(tiers, "top_share", "tiers.top_share", default.top_share, 0, 1)
    bottom = number(tiers, "bottom_share", "tiers.bottom_share", default.bottom_share, 0, 1)
    if top + bottom > 1:
        raise ConfigError(
            f"config file {path}: marts.tiers.top_share + bottom_share must not exceed 1"
        )
    promoter = number(advocacy, "promoter_min_score", "advocacy.promoter_min_score", 9, 1, 10)
    detractor = number(advocacy, "detractor_max_score", "advocacy.detractor_max_score", 6, 0, 9)
    if detractor >= promoter:
        raise ConfigError(
            f"config file {path}: marts.advocacy.detractor_max_score must be below "
            "promoter_min_score"
        )
    return MartSettings(
        window_months=number(tiers, "window_months", "tiers.window_months", 12, 1, 120),
        top_share=top,
        bottom_share=bottom,
        slope_months=number(trends, "slope_months", "trends.slope_months", 6, 3, 12),
        stable_slope_pp=number(
            trends, "stable_slope_pp", "trends.stable_slope_pp", default.stable_slope_pp, 0, 100
        ),
        declining_months=number(trends, "declining_months", "trends.declining_months", 3, 1, 12),
        growth_months=number(trends, "growth_months", "trends.growth_months", 3, 1, 12),
        erosion_pp=number(
            segments, "erosion_pp", "segments.erosion_pp", default.erosion_pp, 0, 100
        ),
        clv_horizon_months=number(clv, "horizon_months", "clv.horizon_months", 12, 1, 120),
        clv_annual_discount_rate=number(
            clv,
            "annual_discount_rate",
            "clv.annual_discount_rate",
            default.clv_annual_discount_rate,
            0,
            1,
        ),
        clv_calibration_months=number(
            clv, "calibration_months", "clv.calibration_months", 24, 3, 120
        ),
        clv_min_customers=number(clv, "min_customers", "clv.min_customers", 30, 10, 1_000_000),
        advocacy_window_months=number(
            advocacy, "window_months", "advocacy.window_months", 12, 1, 120
        ),
        promoter_min_score=promoter,
        detractor_max_score=detractor,
        rising_max_tenure_months=number(
            rising, "max_tenure_months", "rising_stars.max_tenure_months", 12, 1, 120
        ),
        rising_clv_percentile=number(
            rising,
            "clv_percentile",
            "rising_stars.clv_percentile",
            default.rising_clv_percentile,
            0,
            1,
        ),
    )


def _publish(section: dict[str, Any], path: Path) -> PublishSettings:
    """Published file and folder names, which must stay inside the warehouse folder."""
    _unknown_keys(section, {"duckdb_file", "parquet_dir", "storage_version"}, "publish", path)
    names = {}
    for key, fallback in (("duckdb_file", "pfd.duckdb"), ("parquet_dir", "parquet")):
        name = str(section.get(key, fallback))
        if not name or Path(name).name != name or name in (".", ".."):
            raise ConfigError(
                f"config file {path}: publish.{key} must be a plain name inside the warehouse "
                f"folder, got {name!r}"
            )
        names[key] = name
    version = str(section.get("storage_version", PublishSettings.storage_version))
    if not re.fullmatch(r"v\d+\.\d+\.\d+", version):
        raise ConfigError(
            f"config file {path}: publish.storage_version must look like v1.4.0, got {version!r}"
        )
    return PublishSettings(storage_version=version, **names)


def _cost_model(section: dict[str, Any], path: Path) -> dict[str, Any]:
    """The cost model file (kept inside the config folder) and when a month closes."""
    name = str(section.get("file", "cost_model.yaml"))
    folder = path.resolve().parent
    model = (folder / name).resolve()
    if folder not in model.parents:
        raise ConfigError(f"config file {path}: cost_model.file {name!r} must be inside {folder}")
    days = int(section.get("close_after_days", 5))
    if days < 0:
        raise ConfigError(f"config file {path}: cost_model.close_after_days must be >= 0")
    return {"cost_model_path": model, "close_after_days": days}


def _date(value: Any, key: str, path: Path) -> dt.date:
    if isinstance(value, dt.date):
        return value
    try:
        return dt.date.fromisoformat(str(value))
    except ValueError as exc:
        raise ConfigError(
            f"config file {path}: {key} must be a date YYYY-MM-DD, got {value!r}"
        ) from exc
