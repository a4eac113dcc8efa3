"""What an ingestion run logs for each file it was given: landed, a new version of a file landed before, a duplicate,
reinstated (an earlier version's content published again), failed; and the files a crash left unlogged."""

from __future__ import annotations

from typing import Any

from lake import Lake
from pipelines.bronze import ingest_log
from pipelines.bronze.files import file_identity
from pipelines.bronze.rows import PlannedFile

SEEN = (*ingest_log.LIVE, "duplicate")  # statuses of log entries that say what a place held


def log_outcome(
    lake: Lake, log: ingest_log.RunLog, planned: list[PlannedFile], outcome: dict[str, Any], committed: set[str]
) -> None:
    """Adds a log entry per planned file, and one per file bronze holds that the log does not (`committed`: the
    content hashes in bronze before the run)."""
    run_id = log.run_id
    logged = ingest_log.ingested_hashes(lake)
    # Files bronze holds that the log does not (a run killed between its bronze commit and its log write): found
    # whether or not they are passed again, so a republished version of one knows what it replaces.
    lost = ingest_log.landed_files(lake, sorted(committed - logged))
    versions = ingest_log.versions_by_file(lake, lost)
    earlier = [p for p in outcome["skipped"] if p.source.content_hash in logged and is_earlier(p, versions)]
    held = last_held(lake) if earlier else {}
    reinstated = [p for p in earlier if held.get(p.source.location) != p.source.content_hash]
    unlogged = [p.source.content_hash for p in outcome["skipped"] if p.source.content_hash not in logged]
    in_bronze = {h: (f.rows, f.corrupt_rows, f.run_id) for h, f in lost.items()}
    in_bronze.update(ingest_log.counts_in_bronze(lake, [h for h in unlogged if h not in lost]))
    in_bronze.update(ingest_log.landed_counts(lake, outcome["commits"], run_id))
    again = ingest_log.counts_in_bronze(lake, [p.source.content_hash for p in reinstated]) if reinstated else {}
    for plan in planned:
        content_hash = plan.source.content_hash
        identity = file_identity(plan.source.location)
        rows, corrupt_rows, landed_by = in_bronze.get(content_hash, (0, 0, None))
        if content_hash in outcome["failed"]:
            log.add(plan.source.location, plan.source, "failed", outcome["failed"][content_hash])
        elif plan in outcome["empty"]:
            log.add(plan.source.location, plan.source, "failed", "no data rows (empty or header only)")
        elif plan in reinstated:
            replaced = previous(versions, identity, content_hash)
            rows, corrupt_rows, _ = again.get(content_hash, (0, 0, None))
            reason = f"an earlier version published again: it replaces the latest (hash {replaced[:12]})"
            log.add(
                plan.source.location,
                plan.source,
                "reinstated",
                reason,
                plan.mapping.taxi_type,
                rows,
                corrupt_rows,
                replaced,
            )
        elif content_hash not in in_bronze:
            log.add(plan.source.location, plan.source, "duplicate", "same content already ingested")
        else:
            replaced = previous(versions, identity, content_hash)
            notes = [f"new version of a file ingested before (previous hash {replaced[:12]})"] if replaced else []
            if landed_by != run_id:
                notes.append(f"recovered: landed in bronze by run {landed_by}, whose log entry was lost")
            log.add(
                plan.source.location,
                plan.source,
                "ingested",
                "; ".join(notes) or None,
                plan.mapping.taxi_type,
                rows,
                corrupt_rows,
                replaced,
                lost.get(content_hash),
            )
    passed = {p.source.content_hash for p in planned}
    for content_hash, landed in sorted(lost.items(), key=lambda item: item[1].landed_at):
        if content_hash not in passed:
            reason = f"recovered: landed in bronze by run {landed.run_id}, whose log entry was lost"
            log.add(
                landed.source_file,
                None,
                "ingested",
                reason,
                landed.taxi_type,
                landed.rows,
                landed.corrupt_rows,
                None,
                landed,
                content_hash,
            )


def previous(versions: dict[str, list[ingest_log.Version]], identity: str | None, content_hash: str) -> str | None:
    """The latest version of a file other than `content_hash` (what a new or reinstated version replaces)."""
    others = [v for v in versions.get(identity, []) if v[2] != content_hash]
    return max(others)[2] if others else None


def is_earlier(plan: PlannedFile, versions: dict[str, list[ingest_log.Version]]) -> bool:
    """The plan's content is a version of its file, but not the latest."""
    known = versions.get(file_identity(plan.source.location), [])
    return (
        bool(known)
        and max(known)[2] != plan.source.content_hash
        and any(v[2] == plan.source.content_hash for v in known)
    )


def last_held(lake: Lake) -> dict[str, str]:
    """Per place (source_file as given), the content hash it held when last logged.

    An earlier version given again is published again (A, B, then A's bytes: `reinstated`) only when its place did
    not hold it last: passing the same landing folder again (2019-04-01/ still holding A) publishes nothing."""
    latest: dict[str, tuple] = {}
    for row in ingest_log.ingested(lake, SEEN):
        key = (row["logged_at"], row["content_hash"])
        latest[row["source_file"]] = max(latest.get(row["source_file"], key), key)
    return {place: content_hash for place, (_, content_hash) in latest.items()}
