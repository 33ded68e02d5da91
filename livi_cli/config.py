"""Settings: defaults → config TOML (user config dir) → LIVI_* environment → CLI flags.

Each layer overrides the one before; `load_settings(**flags)` takes CLI flags whose value is
not None. Keys in the TOML file are the field names below (e.g. ``device = "cpu"``).
"""
from __future__ import annotations

import os
import tomllib
from dataclasses import dataclass, fields, replace
from pathlib import Path

from livi_cli import constants as C
from livi_cli.errors import ConfigError

APP_NAME = "livi"


@dataclass(frozen=True)
class Settings:
    home: Path  # root of livi's data: models/, library/
    library: Path  # catalog + index folder
    whisper: str = "openai/whisper-large-v3-turbo"  # hub id or local directory
    head: str | None = None  # head checkpoint file; None → the installed one under models/
    device: str = "auto"  # auto | cpu | cuda | cuda:N | mps
    precision: str = "auto"  # auto | fp32 | bf16 | fp16
    batch_size: int = 8  # windows per encoder batch
    vocal_detector: str = "default"
    vocal_threshold: float = C.VOCAL_THRESHOLD
    instrumental_threshold: float = C.INSTRUMENTAL_THRESHOLD
    max_windows: int = C.MAX_WINDOWS_PER_TRACK
    include_instrumental: bool = False

    @property
    def models_dir(self) -> Path:
        return self.home / "models"


_ENV = {  # field → environment variable
    "whisper": "LIVI_WHISPER",
    "head": "LIVI_HEAD",
    "device": "LIVI_DEVICE",
    "precision": "LIVI_PRECISION",
    "batch_size": "LIVI_BATCH_SIZE",
    "vocal_detector": "LIVI_VOCAL_DETECTOR",
    "library": "LIVI_LIBRARY",
}


def default_home() -> Path:
    env = os.environ.get("LIVI_HOME")
    if env:
        return Path(env).expanduser()
    import platformdirs

    return Path(platformdirs.user_data_dir(APP_NAME, appauthor=False))


def config_file() -> Path:
    env = os.environ.get("LIVI_CONFIG")
    if env:
        return Path(env).expanduser()
    import platformdirs

    return Path(platformdirs.user_config_dir(APP_NAME, appauthor=False)) / "config.toml"


def _coerce(name: str, value, source: str):
    kinds = {f.name: f.type for f in fields(Settings)}
    kind = kinds[name]
    try:
        if "Path" in kind:
            return Path(str(value)).expanduser()
        if kind == "int":
            return int(value)
        if kind == "float":
            return float(value)
        if kind == "bool":
            if isinstance(value, str):
                return value.strip().lower() in ("1", "true", "yes", "on")
            return bool(value)
        return str(value)
    except (TypeError, ValueError) as exc:
        raise ConfigError(f"{source}: invalid value {value!r} for '{name}'") from exc


def load_settings(**flags) -> Settings:
    home = default_home()
    values: dict = {}
    path = config_file()
    if path.is_file():
        try:
            data = tomllib.loads(path.read_text(encoding="utf-8"))
        except (OSError, tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
            raise ConfigError(f"{path}: cannot read config: {exc}") from exc
        known = {f.name for f in fields(Settings)}
        for key, value in data.items():
            if key not in known:
                raise ConfigError(f"{path}: unknown setting '{key}'")
            values[key] = _coerce(key, value, str(path))
    for name, var in _ENV.items():
        if os.environ.get(var):
            values[name] = _coerce(name, os.environ[var], var)
    for name, value in flags.items():
        if value is not None:
            values[name] = _coerce(name, value, f"--{name.replace('_', '-')}")
    home = values.pop("home", home)
    library = values.pop("library", home / "library")
    settings = Settings(home=home, library=library)
    return replace(settings, **values)
