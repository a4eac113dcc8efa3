"""The CLI prints the UserError family as one line with its exit code; any other exception is a bug and propagates."""

from __future__ import annotations

import argparse

import pytest

from cli import main as cli_main
from lake.errors import ConfigError, MissingInputError, QueryError, StageError, UserError


def _run_with(monkeypatch: pytest.MonkeyPatch, error: BaseException) -> int:
    def handler(_args: argparse.Namespace) -> int:
        raise error

    real_parse = argparse.ArgumentParser.parse_args

    def parse(self: argparse.ArgumentParser, argv: list[str] | None = None, namespace: object = None) -> object:
        args = real_parse(self, ["tables"])
        args.handler = handler
        return args

    monkeypatch.setattr(argparse.ArgumentParser, "parse_args", parse)
    return cli_main.main(["tables"])


@pytest.mark.parametrize(
    ("error", "code", "word"),
    [
        (ConfigError("conf/base.yaml: bad"), 2, "error"),
        (QueryError("read-only: 'DROP' is not allowed"), 2, "error"),
        (MissingInputError("x.csv: no such file or folder"), 2, "error"),
        (StageError("expectation 'fare' failed"), 1, "failed"),
    ],
)
def test_user_errors_are_one_line(monkeypatch, capsys, error, code, word) -> None:
    assert _run_with(monkeypatch, error) == code
    err = capsys.readouterr().err
    assert err.strip() == f"lake tables: {word}: {error}"


def test_other_errors_keep_their_traceback(monkeypatch) -> None:
    with pytest.raises(ZeroDivisionError):
        _run_with(monkeypatch, ZeroDivisionError("a bug"))
    with pytest.raises(KeyError):  # a plain KeyError from a bug is not a user error
        _run_with(monkeypatch, KeyError("column"))


def test_family_keeps_builtin_bases() -> None:
    assert issubclass(QueryError, ValueError) and issubclass(QueryError, UserError)
    assert issubclass(MissingInputError, FileNotFoundError)
    assert issubclass(StageError, RuntimeError)
