"""`lake train` and `lake score`: the trip-duration model and its batch inference."""

from __future__ import annotations

import argparse
import json

from cli.main import open_lake


def _train(args: argparse.Namespace) -> int:
    from pipelines.train import run_train  # imports MLflow: slow, so only when the command runs

    result = run_train(open_lake(args), promote=args.promote, reproduce_run_id=args.reproduce)
    print(result.summary_markdown())
    print(json.dumps(result.details, indent=2, default=str))
    return 0


def _score(args: argparse.Namespace) -> int:
    from pipelines.score import run_score  # imports MLflow: slow, so only when the command runs

    result = run_score(open_lake(args))
    print(result.summary_markdown())
    print(json.dumps(result.details, indent=2, default=str))
    return 0


def register(subparsers: argparse._SubParsersAction) -> None:
    train = subparsers.add_parser(
        "train", help="train the trip-duration model on gold.trip_features and log it to MLflow"
    )
    train.add_argument(
        "--promote",
        action="store_true",
        help="move the 'champion' alias to the new version if it beats the champion on the same test window",
    )
    train.add_argument(
        "--reproduce",
        metavar="RUN_ID",
        default=None,
        help="retrain from the Delta versions, parameters and split recorded in MLflow run RUN_ID and compare metrics",
    )
    train.set_defaults(handler=_train)
    score = subparsers.add_parser("score", help="predict durations of unscored trips with the champion model")
    score.set_defaults(handler=_score)
