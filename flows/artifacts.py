"""What a user sees in the Prefect UI after a flow run: markdown summaries, a counts table, the MLflow run link."""

from __future__ import annotations

from typing import Any

from prefect.artifacts import create_link_artifact, create_markdown_artifact, create_table_artifact

from flows.policy import IngestFailed
from pipelines.common import ExpectationFailed, StageResult
from pipelines.train.evaluate import metrics_markdown

WEB_SCHEMES = ("http://", "https://")


def summary_key(name: str) -> str:
    """Artifact key of a stage's or a flow's summary (keys allow lowercase letters, digits and dashes only)."""
    return f"{name}-summary".lower().replace("_", "-")


def quarantine_markdown(result: StageResult) -> str:
    by_rule: dict[str, int] = result.details.get("quarantined_by_rule") or {}
    if not by_rule:
        return ""
    lines = ["", "| quarantined by rule | rows |", "|---|---:|"]
    lines += [f"| {rule} | {rows:,} |" for rule, rows in sorted(by_rule.items())]
    return "\n".join(lines)


def web_link(details: dict[str, Any]) -> str | None:
    """The run's page: the tracking server's own URL, else the MLflow UI's (`make mlflow-ui`) for local stores."""
    urls = (str(details.get(key) or "") for key in ("mlflow_run_url", "mlflow_ui_url"))
    return next((url for url in urls if url.startswith(WEB_SCHEMES)), None)


def mlflow_link(details: dict[str, Any]) -> str:
    """The MLflow run as a markdown link when it has a web page, and where it is stored when that is not a URL."""
    run_id = details.get("mlflow_run_id")
    if not run_id:
        return ""
    stored = str(details.get("mlflow_run_url") or "")
    where = "" if stored.startswith(WEB_SCHEMES) or not stored else f" (tracking store: `{stored}`)"
    url = web_link(details)
    return (f"[MLflow run {run_id}]({url})" if url else f"MLflow run `{run_id}`") + where


def model_markdown(result: StageResult) -> str:
    details = result.details
    metrics: dict[str, float] = details.get("metrics") or {}
    lines = []
    table = metrics_markdown(metrics)
    if table:
        lines += ["", "Test metrics over the windows (model and baselines):", "", table]
    if metrics:
        lines += ["", "| metric | value |", "|---|---:|"]
        lines += [f"| {name} | {value:.4g} |" for name, value in metrics.items() if isinstance(value, (int, float))]
    if details.get("model_name"):
        model = f"Model `{details['model_name']}` version {details.get('model_version')}"
        if "promoted" in details:
            model += " (promoted)" if details["promoted"] else " (not promoted)"
        lines += ["", model + "."]
    link = mlflow_link(details)
    if link:
        lines += ["", link]
    return "\n".join(lines)


def ingest_markdown(result: StageResult) -> str:
    """The files ingest could not land, with the reason for each."""
    failed = [entry for entry in result.details.get("files") or [] if entry.get("status") == "failed"]
    if not failed:
        return ""
    lines = ["", "| file not ingested | reason |", "|---|---|"]
    lines += [f"| {entry['source_file']} | {entry.get('reason') or 'failed'} |" for entry in failed]
    return "\n".join(lines)


def stage_markdown(result: StageResult) -> str:
    """The stage's own summary plus what matters for it: failed files, quarantine per rule, model and MLflow run."""
    if result.status == "skipped":
        return f"### {result.stage}: skipped\n\n{result.details.get('reason', '')}"
    reason = result.details.get("train_reason")
    why = f"\n\nTrained because: {reason}." if reason else ""
    return (
        result.summary_markdown() + ingest_markdown(result) + quarantine_markdown(result) + model_markdown(result) + why
    )


def failure_markdown(stage: str, error: BaseException, not_run: list[str] | None = None) -> str:
    """Names the rule (or error) that stopped the stage, and the stages that did not run because of it."""
    if isinstance(error, ExpectationFailed):
        headline = f"**{stage} failed: expectation `{error.rule}` (action: fail) failed on {error.failed:,} row(s).**"
    elif isinstance(error, IngestFailed):
        files = "\n".join(f"- {problem}" for problem in error.problems)
        headline = (
            f"**{stage} {error.status}: file(s) not ingested (orchestration.on_ingest_failure: fail).**\n\n{files}"
        )
    else:
        headline = f"**{stage} failed: {type(error).__name__}: {error}**"
    skipped = f"Not run: {', '.join(not_run)}." if not_run else "The flow run stops here; no later stage runs."
    return f"### {stage}: failed\n\n{headline}\n\n{skipped}"


def run_markdown(title: str, results: list[StageResult], failure: str = "") -> str:
    """The whole chain on one page: a line per stage, then each stage's summary, then the failure if any."""
    status = "failed" if failure else "completed"
    lines = [f"## {title}: {status}", "", "| stage | status | run id |", "|---|---|---|"]
    lines += [f"| {r.stage} | {r.status} | `{r.run_id}` |" for r in results]
    sections = [stage_markdown(r) for r in results] + ([failure] if failure else [])
    return "\n".join(lines) + "\n\n" + "\n\n".join(sections)


def counts_table(results: list[StageResult]) -> list[dict[str, Any]]:
    """One row per stage and count, plus one per Delta version written: the numbers to compare across runs."""
    rows = [{"stage": r.stage, "measure": name, "value": value} for r in results for name, value in r.counts.items()]
    rows += [
        {"stage": r.stage, "measure": f"version {table}", "value": version}
        for r in results
        for table, version in r.versions.items()
    ]
    return rows


def publish_stage(result: StageResult) -> None:
    create_markdown_artifact(
        stage_markdown(result), key=summary_key(result.stage), description=f"{result.stage} run {result.run_id}"
    )
    url = web_link(result.details)
    if url and result.details.get("mlflow_run_id"):
        create_link_artifact(url, link_text=f"MLflow run {result.details.get('mlflow_run_id', '')}", key="mlflow-run")


def publish_skipped(result: StageResult) -> None:
    reason = str(result.details.get("reason", ""))
    create_markdown_artifact(stage_markdown(result), key=summary_key(result.stage), description=reason)


def publish_failure(stage: str, error: BaseException) -> None:
    create_markdown_artifact(failure_markdown(stage, error), key=summary_key(stage), description=str(error))


def publish_run(flow_name: str, title: str, results: list[StageResult], failure: str = "") -> None:
    create_markdown_artifact(run_markdown(title, results, failure), key=summary_key(flow_name), description=title)
    if results:
        create_table_artifact(counts_table(results), key=f"{flow_name}-counts", description=f"{title}: counts")
