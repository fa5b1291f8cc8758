"""Settings read from the environment (prefix ``OTAKU_``); nothing is read at import time."""

from functools import lru_cache
from pathlib import Path

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict


class Settings(BaseSettings):
    """Runtime configuration. Every field can be set as ``OTAKU_<FIELD>``."""

    model_config = SettingsConfigDict(env_prefix="OTAKU_", env_file=".env", extra="ignore")

    home: Path = Field(default=Path(".otaku"), description="Root for local state.")
    data_dir: Path | None = Field(default=None, description="Where dataset files live.")
    mlflow_tracking_uri: str | None = Field(
        default=None, description="MLflow tracking URI; default a SQLite file under home."
    )
    mlflow_experiment: str = "otaku"
    registered_model: str = "otaku-recommender"
    text_model: str = Field(
        default="packaged:all-MiniLM-L6-v2",
        description="sentence-transformers model: 'packaged:all-MiniLM-L6-v2' (offline) "
        "or a hub name such as 'sentence-transformers/all-MiniLM-L12-v2'.",
    )
    seed: int = 42
    preset: str = Field(
        default="fast",
        description="Training preset of train/retrain/evaluate/init (otaku presets lists them).",
    )
    sources_file: Path | None = Field(
        default=None,
        description="A TOML file of [[source]] tables that adds, changes or turns off candidate "
        "sources for training (see docs/extending.md).",
    )
    database_url: str | None = Field(
        default=None,
        description="SQLAlchemy URL; default a SQLite file under home "
        "(PostgreSQL: postgresql+psycopg://user@host:5432/db).",
    )
    database_wait_seconds: float = Field(
        default=60.0,
        ge=0,
        description="How long a process starting up waits for an unreachable database (a "
        "container stack starting together) before it fails.",
    )
    bundle_path: Path | None = Field(
        default=None,
        description="Serve this bundle directory instead of the registry's champion.",
    )
    warm_users: int = Field(
        default=10_000,
        description="Known users whose first page is computed in the background after a model "
        "loads: those who asked lately first, then the most active (0: none; at most the "
        "ranking cache's 50,000).",
    )
    request_threads: int = Field(
        default=4,
        description="Requests computed at once per process; more only interleave on the GIL.",
    )
    api_key: str | None = Field(
        default=None,
        description="When set, write routes require it in the X-API-Key header.",
    )
    allow_open_writes: bool = Field(
        default=False,
        description="Serve writes without an API key on a non-loopback address (refused "
        "otherwise: anyone who reaches the port could write).",
    )
    private_history: bool = Field(
        default=True,
        description="When an API key is set, reading a user's rating history (GET "
        "/v1/users/{id}, the reference route's watched list) needs it too.",
    )
    max_body_bytes: int = Field(
        default=256 * 1024,
        ge=1024,
        description="Largest request body accepted; larger ones get 413.",
    )
    reload_poll_seconds: float = Field(
        default=30.0,
        description="How often the service checks the registry's champion alias (0: never).",
    )
    dask_scheduler: str | None = Field(
        default=None,
        description="Run training's heavy stages on this Dask scheduler (tcp://HOST:8786); "
        "the --cluster option of train, retrain and precompute overrides it.",
    )
    dask_lightgbm_port: int = Field(
        default=12400,
        description="First TCP port LightGBM's Dask workers listen on (worker k of a host: "
        "this + k); open these between the workers.",
    )
    experiment: str | None = Field(
        default=None,
        description='An experiment (JSON: {"name": "ab1", "arms": [{"name": "a", "strategy": '
        '"default", "share": 0.5}, ...]}) the service starts when it starts, unless one by that '
        "name exists or another runs (the admin route and `otaku experiment start` do the same).",
    )
    experiment_poll_seconds: float = Field(
        default=5.0,
        ge=0,
        description="How often each server process reads which experiment runs.",
    )
    impressions: bool = Field(
        default=True, description="Record every recommendation page shown (needs the database)."
    )
    impression_queue: int = Field(
        default=10_000,
        ge=1,
        description="Impressions waiting to be written, per process (with --workers, in the "
        "writer process); more are dropped (counted).",
    )
    impression_retention_days: int = Field(
        default=90, ge=1, description="Impressions older than this are deleted (otaku prune)."
    )
    click_retention_days: int = Field(
        default=365,
        ge=1,
        description='"clicked" feedback older than this is deleted; "not interested" is kept '
        "(it promises the anime never comes back).",
    )
    hit_window_days: float = Field(
        default=7.0,
        gt=0,
        description="A shown anime counts as a hit when rated >= 7 within this many days.",
    )
    api_host: str = "127.0.0.1"
    api_port: int = 8000
    log_json: bool = Field(default=True, description="Structured (JSON) request logs.")
    ui_host: str = "127.0.0.1"
    ui_port: int = 8501
    ui_api_url: str | None = Field(
        default=None,
        description="The REST API the web UI talks to; default http://<api_host>:<api_port>.",
    )

    @property
    def resolved_data_dir(self) -> Path:
        """The data directory, defaulting to ``<home>/data``."""
        return self.data_dir if self.data_dir is not None else self.home / "data"

    @property
    def resolved_ui_api_url(self) -> str:
        """The API base URL the web UI calls."""
        if self.ui_api_url:
            return self.ui_api_url.rstrip("/")
        return f"http://{_reachable(self.api_host)}:{self.api_port}"

    @property
    def ui_url(self) -> str:
        """Where a browser on this machine finds the web UI."""
        return f"http://{_reachable(self.ui_host)}:{self.ui_port}"

    @property
    def cache_dir(self) -> Path:
        """Where derived artefacts (text embeddings) are cached."""
        return self.home / "cache"

    @property
    def bundles_dir(self) -> Path:
        """Where trained bundles are written."""
        return self.home / "bundles"

    @property
    def tracking_uri(self) -> str:
        """MLflow tracking URI: the configured one or a local SQLite database."""
        if self.mlflow_tracking_uri:
            return self.mlflow_tracking_uri
        return f"sqlite:///{(self.home / 'mlflow.db').resolve()}"

    @property
    def artifact_location(self) -> str:
        """Local folder for MLflow artefacts when tracking locally."""
        return (self.home / "mlartifacts").resolve().as_uri()


def _reachable(host: str) -> str:
    """An address to connect to for a server listening on ``host`` (all interfaces → local)."""
    return "127.0.0.1" if host in ("0.0.0.0", "::") else host


@lru_cache(maxsize=1)
def get_settings() -> Settings:
    """The process-wide settings, built on first use."""
    return Settings()
