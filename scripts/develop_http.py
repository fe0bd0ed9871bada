"""Write the development server's HTTP settings: loopback only, on the given port.

Run by scripts/develop inside the environment, before Home Assistant starts. Home Assistant
2026.10 reads its HTTP settings from `.storage/http` only (a YAML `http:` is migrated once, then
ignored), so that is where they go; the rest of each setting is Home Assistant's own default.
"""

from __future__ import annotations

import json
from pathlib import Path
import sys

from homeassistant.components.http.config import (
    HTTP_CONFIG_CREATED_AT,
    HTTP_CONFIG_ERROR,
    HTTP_CONFIG_ERROR_MESSAGE,
    HTTP_STORAGE_SCHEMA,
    KEY_PENDING,
    KEY_STABLE,
    KEY_YAML_MIGRATION_DONE,
    STORAGE_KEY,
    STORAGE_MINOR_VERSION,
    STORAGE_VERSION,
)
from homeassistant.components.http.const import CONF_SERVER_HOST, CONF_SERVER_PORT
from homeassistant.util import dt as dt_util

LOOPBACK = "127.0.0.1"


def main(config: Path, port: int) -> None:
    """Replace config/.storage/http with settings that listen on LOOPBACK:port."""
    stable = HTTP_STORAGE_SCHEMA({CONF_SERVER_HOST: [LOOPBACK], CONF_SERVER_PORT: port})
    stable |= {
        HTTP_CONFIG_CREATED_AT: dt_util.utcnow().isoformat(),
        HTTP_CONFIG_ERROR: None,
        HTTP_CONFIG_ERROR_MESSAGE: None,
    }
    store = {
        "version": STORAGE_VERSION,
        "minor_version": STORAGE_MINOR_VERSION,
        "key": STORAGE_KEY,
        "data": {KEY_STABLE: stable, KEY_PENDING: None, KEY_YAML_MIGRATION_DONE: True},
    }
    storage = config / ".storage"
    storage.mkdir(exist_ok=True)
    (storage / STORAGE_KEY).write_text(json.dumps(store, indent=2) + "\n")


if __name__ == "__main__":
    main(Path(sys.argv[1]), int(sys.argv[2]))
