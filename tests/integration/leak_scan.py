"""Search everything an Airflow stack wrote for secrets.

Sources: every file under the stack's home (task, trigger and component logs, the raw SQLite file with
its free pages), every cell of every table of the metadata database, and JSON the REST API serves. A
cell is searched as stored, Fernet-decrypted when it is a Fernet token (Variables, connection passwords
and extras, trigger kwargs), and inflated when it is zlib-compressed (serialized DAGs).

A scan that finds nothing proves little unless it can find something: callers check a canary (the
client secret must turn up in exactly one place, the decrypted password of the connection row).
"""

from __future__ import annotations

import sqlite3
import zlib
from collections.abc import Collection, Iterable, Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path

from cryptography.fernet import Fernet, InvalidToken

from airflow_provider_odc.cache.stores import variable_key_for
from airflow_provider_odc.emulator.server import OdcEmulator
from airflow_provider_odc.hooks.odc import envelope_codec_for
from airflow_provider_odc.settings import OdcConnectionSettings
from devtools.stack import AirflowStack

#: Where a piece of text came from, and the text.
Source = tuple[str, str]


@dataclass(frozen=True)
class Hit:
    needle: str
    where: str


def cell_forms(value: object, fernet: Fernet) -> Iterator[tuple[str, str]]:
    """A database cell as text: as stored, and decrypted or inflated when it is encrypted or compressed."""
    if value is None:
        return
    raw = value if isinstance(value, bytes) else str(value).encode()
    yield "stored", raw.decode("utf-8", "replace")
    if raw.startswith(b"gAAAAA") and (decrypted := _fernet_decrypt(fernet, raw)) is not None:
        yield "decrypted", decrypted.decode("utf-8", "replace")
    if isinstance(value, bytes) and (inflated := _inflate(value)) is not None:
        yield "inflated", inflated.decode("utf-8", "replace")


def _fernet_decrypt(fernet: Fernet, raw: bytes) -> bytes | None:
    """``gAAAAA`` is the version byte 0x80 of every Fernet token, base64-encoded; not every such text is one."""
    try:
        return fernet.decrypt(raw)
    except InvalidToken:
        return None


def _inflate(raw: bytes) -> bytes | None:
    try:
        return zlib.decompress(raw)
    except zlib.error:
        return None


def database_cells(db_path: Path, fernet: Fernet, tables: Collection[str] | None = None) -> Iterator[Source]:
    """Every cell of every table (or of ``tables``), read-only, labelled ``db <table>.<column> row <n> (<form>)``."""
    with sqlite3.connect(f"file:{db_path}?mode=ro", uri=True, timeout=30) as db:
        names = [row[0] for row in db.execute("SELECT name FROM sqlite_master WHERE type = 'table' ORDER BY name")]
        for table in names:
            if tables is not None and table not in tables:
                continue
            cursor = db.execute(f'SELECT * FROM "{table}"')
            columns = [description[0] for description in cursor.description]
            for number, row in enumerate(cursor):
                for column, value in zip(columns, row, strict=True):
                    for form, text in cell_forms(value, fernet):
                        yield f"db {table}.{column} row {number} ({form})", text


def home_files(home: Path) -> Iterator[Source]:
    """Every file under the stack's home, the raw database file included, as text."""
    for path in sorted(home.rglob("*")):
        if path.is_file():
            yield f"file {path.relative_to(home)}", path.read_bytes().decode("utf-8", "replace")


def find(needles: Mapping[str, str], sources: Iterable[Source]) -> list[Hit]:
    """Every (needle, place) where a needle's value occurs in a source's text."""
    return [Hit(name, where) for where, text in sources for name, value in needles.items() if value in text]


def token_needles(tokens: Iterable[str]) -> dict[str, str]:
    """Each access token, and each token's signature alone (a token cut short or split still leaks it)."""
    needles: dict[str, str] = {}
    for number, token in enumerate(tokens, start=1):
        needles[f"access token {number}"] = token
        needles[f"access token {number} (signature)"] = token.rsplit(".", 1)[-1]
    return needles


def cached_token(stack: AirflowStack, emulator: OdcEmulator, conn_id: str = "odc_default") -> tuple[str, str]:
    """The connection's token Variable as the hook wrote it (read from the SQLite DB, Fernet-decrypted),
    and the token that envelope opens to with the connection's secret."""
    key = variable_key_for(conn_id)
    assert stack.sqlite_path is not None, "reads the SQLite metadata database"
    with sqlite3.connect(f"file:{stack.sqlite_path}?mode=ro", uri=True) as db:
        value, is_encrypted = db.execute("SELECT val, is_encrypted FROM variable WHERE key = ?", (key,)).fetchone()
    stored = Fernet(stack.fernet_key().encode()).decrypt(value.encode()).decode() if is_encrypted else value
    settings = OdcConnectionSettings(conn_id, emulator.base_url, emulator.client_id, emulator.client_secret)
    return stored, envelope_codec_for(settings).open(stored).token.value
