"""Customer lists uploaded on the dashboard (customer_import_uploads): kept, mapped, and their runs' progress."""

from __future__ import annotations

import secrets
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import delete, or_, select, update

from storage.database import Database
from storage.models import CustomerImportUpload

#: Uploads are kept this long, then the next upload removes them (they hold a whole patient list).
KEEP_FOR = timedelta(days=1)
#: A run writes its progress every second; one silent this long ended with its process.
STALE_AFTER = timedelta(seconds=60)
RUNNING = ("checking", "importing")


async def save_upload(
    database: Database,
    *,
    file_name: str,
    content: bytes,
    encoding: str,
    region: str,
    created_by: str,
    now: datetime,
) -> str:
    token = secrets.token_urlsafe(16)
    async with database.sessions() as session:
        await session.execute(
            delete(CustomerImportUpload).where(CustomerImportUpload.created_at < now - KEEP_FOR)
        )
        session.add(
            CustomerImportUpload(
                token=token,
                file_name=file_name[:255],
                content=content,
                size_bytes=len(content),
                encoding=encoding,
                region=region,
                mapping={},
                status="uploaded",
                progress_bytes=0,
                rejected=0,
                created_by=created_by,
                created_at=now,
                updated_at=now,
            )
        )
        await session.commit()
    return token


async def find_upload(database: Database, token: str) -> CustomerImportUpload | None:
    async with database.sessions() as session:
        found: CustomerImportUpload | None = await session.scalar(
            select(CustomerImportUpload).where(CustomerImportUpload.token == token[:32])
        )
        return found


async def change_upload(database: Database, token: str, **values: Any) -> None:
    async with database.sessions() as session:
        await session.execute(
            update(CustomerImportUpload).where(CustomerImportUpload.token == token).values(**values)
        )
        await session.commit()


async def start_run(
    database: Database, token: str, status: str, mapping: dict[str, str], now: datetime
) -> bool:
    """Marks the upload as running `status` (checking/importing) unless a run is already under way."""
    async with database.sessions() as session:
        done = await session.execute(
            update(CustomerImportUpload)
            .where(
                CustomerImportUpload.token == token,
                or_(
                    CustomerImportUpload.status.not_in(RUNNING),
                    CustomerImportUpload.updated_at < now - STALE_AFTER,
                ),
            )
            .values(
                status=status,
                mapping=mapping,
                progress_bytes=0,
                summary=None,
                error_csv=None,
                rejected=0,
                updated_at=now,
            )
        )
        await session.commit()
        return bool(done.rowcount)  # type: ignore[attr-defined]
