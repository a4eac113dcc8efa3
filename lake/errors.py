"""One family of errors a user can act on. The CLI prints these as one line (exit 2); anything else is a bug and
keeps its traceback. Each subclass also keeps the builtin base it always had, so `except ValueError` still works."""

from __future__ import annotations


class UserError(Exception):
    """Something the user can fix: the message names the file, table, rule, key or statement, and what to do."""

    exit_code = 2


class ConfigError(UserError, ValueError):
    """A configuration file or value is wrong; the message names it."""


class SetupError(UserError, RuntimeError):
    """The machine lacks something the lake needs (Java, JARs, a server); the message says how to get it."""


class UnknownTableError(UserError, KeyError):
    """A table name that is not in the catalog (conf/tables.yaml)."""

    def __str__(self) -> str:
        return str(self.args[0])


class TableMissingError(UserError, LookupError):
    """A catalog table that has not been written yet."""


class QueryError(UserError, ValueError):
    """A `lake query` statement that cannot run: refused by the guard, or wrong SQL."""


class InputError(UserError, ValueError):
    """A bad argument or input file (a path, a date, a version that does not exist)."""


class RuleError(UserError, ValueError):
    """An expectation rules file is wrong; the message names the file and the rule."""


class StageError(UserError, RuntimeError):
    """A stage stopped on purpose; the message says why (file, row or rule). Exit code 1: the run failed."""

    exit_code = 1


class MissingInputError(UserError, FileNotFoundError):
    """A file, folder or table the user named (or a stage needs first) does not exist; the message says which."""
