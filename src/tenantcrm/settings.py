"""Process settings read once from the environment."""

from __future__ import annotations

import os
import secrets
from dataclasses import dataclass, field
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[2]
ENVIRONMENTS = ("development", "test", "production")
LOG_FORMATS = ("json", "text")
LOG_LEVELS = ("DEBUG", "INFO", "WARNING", "ERROR")


def _flag(name: str, default: bool) -> bool:
    raw = os.environ.get(name)
    if raw is None or raw == "":
        return default
    return raw.strip().lower() in {"1", "true", "yes", "on"}


def _whole_number(name: str, default: int) -> int:
    raw = os.environ.get(name, "").strip()
    if not raw:
        return default
    if not raw.isdigit():
        raise SystemExit(f"{name} must be a whole number (0 or more)")
    return int(raw)


def _choice(name: str, default: str, choices: tuple[str, ...], *, upper: bool = False) -> str:
    raw = os.environ.get(name, "").strip() or default
    value = raw.upper() if upper else raw.lower()
    if value not in choices:
        raise SystemExit(f"{name} must be one of {', '.join(choices)}")
    return value


@dataclass(frozen=True)
class Settings:
    """Everything the process needs to know about its environment."""

    database_url: str | None = None
    """Admin connection (owns schemas, creates roles). None: start the embedded server."""
    app_database_url: str | None = None
    """Runtime connection; derived from database_url with `app_role` as user when unset."""
    app_role: str = "tenantcrm_app"
    """Login role the application runs as: NOINHERIT member of every tenant role."""
    app_role_password: str | None = None
    """Password given to `app_role` at bootstrap, for servers that do not trust local logins."""
    data_dir: Path = field(default_factory=lambda: REPO_ROOT / "var")
    """Local state: the embedded PostgreSQL cluster and generated dev secrets."""
    environment: str = "development"
    """`development` or `production`; production turns off introspection and GraphiQL."""
    host: str = "127.0.0.1"
    port: int = 8000
    secret_key: str = ""
    """Signs CSRF tokens and keys sealed URL values. Generated per data folder in development."""
    secure_cookies: bool = False
    """Serve cookies as Secure with the __Host- prefix (set when behind HTTPS)."""
    graphql_introspection: bool = True
    """Introspection and GraphiQL; on for the local demo and tests, off in production."""
    web_dir: Path = field(default_factory=lambda: REPO_ROOT / "web")
    pool_size: int = 10
    master_key: str | None = None
    """Base64 of 32 bytes that wraps every tenant's data keys (TENANTCRM_MASTER_KEY).
    Unset: read `master_key_file`; in development a key is generated in `data_dir`."""
    master_key_file: Path | None = None
    previous_master_keys: tuple[str, ...] = ()
    """Older master keys, still able to unwrap until `tenantcrm keys rotate-master` rewraps."""
    run_jobs: bool = False
    """Take background jobs (imports) in the app process itself (TENANTCRM_RUN_JOBS, on unless
    set to 0); `tenantcrm worker` takes them in a process of its own. Tests run jobs explicitly."""
    trusted_proxies: str = ""
    """Addresses of reverse proxies whose X-Forwarded-For is believed (comma-separated).
    Empty: proxy headers are ignored and the peer address is the client's."""
    log_format: str = "text"
    """`json` (one object a line; the production default) or `text` (TENANTCRM_LOG_FORMAT)."""
    log_level: str = "INFO"
    metrics_token: str | None = None
    """Bearer token /metrics asks for (TENANTCRM_METRICS_TOKEN). Unset: /metrics is open in
    development and test, and not found in production."""
    # Requests a minute, per process, for one API token, one signed-in user's pages, and all of
    # one tenant's users and tokens together. 0 is off: the default here, so tests opt in;
    # from_env's defaults are generous limits.
    rate_limit_token: int = 0
    rate_limit_user: int = 0
    rate_limit_tenant: int = 0
    max_body_bytes: int = 1024 * 1024
    """Largest request body; the import upload has its own larger limit."""
    spare_tenants: int = 0
    """Ready tenant schemas kept for fast provisioning (TENANTCRM_SPARE_TENANTS, ADR 0014); 0 keeps none."""

    @property
    def production(self) -> bool:
        return self.environment == "production"

    @classmethod
    def from_env(cls) -> Settings:
        environment = os.environ.get("TENANTCRM_ENV", "development")
        if environment not in ENVIRONMENTS:
            # A typo ("prod") must not quietly run with development defaults.
            raise SystemExit(f"TENANTCRM_ENV must be one of {', '.join(ENVIRONMENTS)}")
        production = environment == "production"
        trusted_proxies = os.environ.get("TENANTCRM_TRUSTED_PROXIES", "").strip()
        if trusted_proxies == "*":
            raise SystemExit("TENANTCRM_TRUSTED_PROXIES must list proxy addresses, not '*'")
        data_dir = Path(os.environ.get("TENANTCRM_DATA_DIR") or REPO_ROOT / "var").resolve()
        secret_key = os.environ.get("TENANTCRM_SECRET_KEY", "")
        if not secret_key:
            if production:
                raise SystemExit("TENANTCRM_SECRET_KEY must be set in production")
            secret_key = _dev_secret(data_dir)
        return cls(
            database_url=os.environ.get("DATABASE_URL") or None,
            app_database_url=os.environ.get("TENANTCRM_APP_DATABASE_URL") or None,
            app_role=os.environ.get("TENANTCRM_APP_ROLE", "tenantcrm_app"),
            app_role_password=os.environ.get("TENANTCRM_APP_ROLE_PASSWORD") or None,
            data_dir=data_dir,
            environment=environment,
            host=os.environ.get("HOST", "127.0.0.1"),
            port=int(os.environ.get("PORT", "8000")),
            secret_key=secret_key,
            secure_cookies=_flag("TENANTCRM_SECURE_COOKIES", production),
            graphql_introspection=_flag("TENANTCRM_GRAPHQL_INTROSPECTION", not production),
            trusted_proxies=trusted_proxies,
            run_jobs=_flag("TENANTCRM_RUN_JOBS", True),
            master_key=os.environ.get("TENANTCRM_MASTER_KEY") or None,
            master_key_file=Path(f) if (f := os.environ.get("TENANTCRM_MASTER_KEY_FILE")) else None,
            log_format=_choice("TENANTCRM_LOG_FORMAT", "json" if production else "text", LOG_FORMATS),
            log_level=_choice("TENANTCRM_LOG_LEVEL", "INFO", LOG_LEVELS, upper=True),
            metrics_token=os.environ.get("TENANTCRM_METRICS_TOKEN") or None,
            rate_limit_token=_whole_number("TENANTCRM_RATE_LIMIT_TOKEN", 1200),
            rate_limit_user=_whole_number("TENANTCRM_RATE_LIMIT_USER", 600),
            rate_limit_tenant=_whole_number("TENANTCRM_RATE_LIMIT_TENANT", 6000),
            max_body_bytes=_whole_number("TENANTCRM_MAX_BODY_BYTES", 1024 * 1024),
            spare_tenants=_whole_number("TENANTCRM_SPARE_TENANTS", 0),
            previous_master_keys=tuple(
                key.strip()
                for key in os.environ.get("TENANTCRM_PREVIOUS_MASTER_KEYS", "").split(",")
                if key.strip()
            ),
        )


def _dev_secret(data_dir: Path) -> str:
    """A per-folder secret so development restarts keep CSRF cookies valid."""
    path = data_dir / "secret_key"
    if path.exists():
        return path.read_text().strip()
    data_dir.mkdir(parents=True, exist_ok=True)
    value = secrets.token_urlsafe(32)
    path.write_text(value)
    path.chmod(0o600)
    return value
