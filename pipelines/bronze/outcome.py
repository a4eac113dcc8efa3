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
    log.seen = set(logged)  # what the log write compares with, to leave out what another run logs meanwhile
    # Files bronze holds that the log does not (a run killed between its bronze commit and its log write): found
    # whether or not they are passed again, so a republished version of one knows what it replaces.
    lost = ingest_log.landed_files(lake, sorted(committed - logged))
    versions = ingest_log.versions_by_file(lake, lost)
    reinstated = published_again(lake, planned, outcome, versions, logged, lost)
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
            landed_now = [
                p.source.content_hash for p in outcome["landed"] if file_identity(p.source.location) == identity
            ]
            replaced = landed_now[-1] if landed_now else previous(versions, identity, content_hash)
            rows, corrupt_rows, _ = again.get(content_hash, (0, 0, None))
            reason = f"content bronze holds published again: it replaces the latest (hash {str(replaced)[:12]})"
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


def published_again(
    lake: Lake,
    planned: list[PlannedFile],
    outcome: dict[str, Any],
    versions: dict[str, list[ingest_log.Version]],
    logged: set[str],
    lost: dict[str, ingest_log.LandedFile],
) -> list[PlannedFile]:
    """Files given again with content bronze holds: an earlier version of theirs (A, B, then A's bytes) or content
    landed under another name. Nothing lands, but the file's current version changes to it (`reinstated`), when the
    place did not hold that content last (passing the same landing folder again publishes nothing), the place is
    this run's latest for the file (a later dated folder), and the content is not the file's latest version
    already, or this run lands another version of the file at an earlier place."""
    landed = {file_identity(p.source.location) for p in outcome["landed"]}
    latest_place: dict[str | None, str] = {}
    for plan in planned:
        identity = file_identity(plan.source.location)
        latest_place[identity] = max(latest_place.get(identity, ""), plan.source.location)
    found = []
    for plan in outcome["skipped"]:
        identity, content_hash = file_identity(plan.source.location), plan.source.content_hash
        known = versions.get(identity, [])
        if content_hash not in logged or not known:
            continue
        if latest_place[identity] == plan.source.location and (max(known)[2] != content_hash or identity in landed):
            found.append(plan)
    held = last_held(lake, lost) if found else {}
    return [p for p in found if held.get(p.source.location) != p.source.content_hash]


def last_held(lake: Lake, lost: dict[str, ingest_log.LandedFile]) -> dict[str, str]:
    """Per place (source_file as given), the content hash it held when last logged, or landed (`lost`: versions a
    crash left unlogged)."""
    latest: dict[str, tuple] = {}
    places = [(r["source_file"], r["logged_at"], r["content_hash"]) for r in ingest_log.ingested(lake, SEEN)]
    places += [(f.source_file, f.landed_at, h) for h, f in lost.items()]
    for place, at, content_hash in places:
        latest[place] = max(latest.get(place, (at, content_hash)), (at, content_hash))
    return {place: content_hash for place, (_, content_hash) in latest.items()}
