"""`vigil secrets generate-key|rotate`: the key that encrypts the secrets stored in the database."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Annotated

import typer

from vigil.cli.client import fail, say
from vigil.errors import VigilError
from vigil.settings import Settings
from vigil.store.repo import SealReport

secrets_app = typer.Typer(
    help="The key that encrypts stored secrets (agents' headers, sink secrets).", no_args_is_help=True
)


@secrets_app.command("generate-key")
def generate_key() -> None:
    """Print a new secret key (for VIGIL_SECRET_KEY or the key file)."""
    from vigil.store.sealing import generate_key as new_key

    print(new_key())


@secrets_app.command("rotate")
def rotate(
    data_dir: Annotated[Path | None, typer.Option(help="Data directory (default ./.vigil).")] = None,
) -> None:
    """Re-encrypt every stored secret with the first configured key (and any still in plain text).

    Give the new key first and the old one after it (VIGIL_SECRET_KEY=NEW,OLD, or two lines in the
    key file), restart Vigil, run this, then drop the old key. See docs/security.md."""
    settings = Settings(**({"data_dir": data_dir} if data_dir is not None else {}))  # type: ignore[arg-type]
    try:
        report = asyncio.run(_rotate(settings))
    except VigilError as exc:
        fail(exc.message)
    if report.unreadable:
        fail(
            f"re-encrypted {report.sealed} specs, but none of the keys decrypts "
            f"{len(report.unreadable)}: {'; '.join(report.unreadable)}. Keep the old key until they are fixed."
        )
    say(
        f"[green]re-encrypted {report.sealed} specs[/] with the first key; every stored secret opens with it now"
    )


async def _rotate(settings: Settings) -> SealReport:
    from vigil.store.db import create_engine, upgrade
    from vigil.store.repo import Store
    from vigil.store.sealing import load_secret_box

    configured = settings.secret_key.get_secret_value() if settings.secret_key is not None else None
    box, _ = load_secret_box(configured, settings.secret_key_file, settings.data_dir, create=False)
    url = settings.sqlalchemy_url()
    await upgrade(url)
    store = Store(create_engine(url), box)
    try:
        return await store.seal_secrets(rotate=True)
    finally:
        await store.close()
