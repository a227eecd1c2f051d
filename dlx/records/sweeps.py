"""How many members a sweep asked for, read back from its ``multirun.yaml``, so that an
interrupted sweep lists as ``4 of 7 completed`` rather than ``4 completed``."""

from __future__ import annotations

from pathlib import Path

from dlx.records.files import MULTIRUN


def _load(sweep_dir: Path) -> dict | None:
    import yaml

    try:
        data = yaml.safe_load((Path(sweep_dir) / MULTIRUN).read_text(encoding="utf-8"))
    except (OSError, yaml.YAMLError, UnicodeDecodeError):
        return None
    return data if isinstance(data, dict) else None


def _config_loader(hydra_cfg: dict):
    """Hydra's config loader over the sweep's own config sources (for ``glob()``)."""
    from hydra._internal.config_loader_impl import ConfigLoaderImpl
    from hydra._internal.config_search_path_impl import ConfigSearchPathImpl
    from hydra.core.plugins import Plugins

    Plugins.instance()  # registers the config sources (pkg://, file://)
    search_path = ConfigSearchPathImpl()
    for source in (hydra_cfg.get("runtime") or {}).get("config_sources") or []:
        if source.get("schema") in ("pkg", "file") and source.get("path"):
            search_path.append(source.get("provider", "dlx"),
                               f"{source['schema']}://{source['path']}")
    return ConfigLoaderImpl(config_search_path=search_path)


def basic_sweep_size(params: dict | None, task: list[str], config_loader=None) -> int:
    """Jobs Hydra's basic sweeper launches for the experiment's ``hydra.sweeper.params`` and
    the command line's overrides (which win over params of the same key): the product of the
    sweeps' lengths (``a,b``, ``range()``, ``glob()``)."""
    from hydra._internal.core_plugins.basic_sweeper import BasicSweeper
    from hydra.core.override_parser.overrides_parser import OverridesParser

    arguments = [f"{k}={v}" for k, v in (params or {}).items()] + list(task)
    parser = OverridesParser.create(config_loader=config_loader)
    batches = BasicSweeper.split_arguments(parser.parse_overrides(arguments), None)
    return sum(len(batch) for batch in batches)


def expected_members(sweep_dir: Path) -> int | None:
    """The number of members the sweep was started for: the basic sweeper's combinations, or
    the Optuna sweeper's ``n_trials``; None when unknown (another sweeper, an unreadable file)."""
    data = _load(sweep_dir)
    hydra_cfg = (data or {}).get("hydra")
    if not isinstance(hydra_cfg, dict):
        return None
    sweeper = hydra_cfg.get("sweeper") or {}
    target = str(sweeper.get("_target_", ""))
    try:
        if "optuna" in target.lower():
            n = sweeper.get("n_trials")
            return int(n) if isinstance(n, int) else None
        if not target.endswith("BasicSweeper"):
            return None
        task = (hydra_cfg.get("overrides") or {}).get("task") or []
        params = sweeper.get("params") or {}
        text = " ".join(map(str, task)) + " ".join(map(str, params.values()))
        loader = _config_loader(hydra_cfg) if "glob(" in text else None
        return basic_sweep_size(params, [str(t) for t in task], loader)
    except Exception:  # noqa: BLE001 - a listing never fails on one sweep's odd file
        return None
