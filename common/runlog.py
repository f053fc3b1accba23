"""The run log (one CSV row per episode) and the evaluation log (one row per evaluation).

The trainer writes them with :class:`RunLogWriter` and :class:`EvalLogWriter`; reward_visualizer.py
reads them with :func:`read_log` and :func:`read_eval_log`. This module is the only one that knows the
format, and it needs only the standard library, so plotting a run never waits for TensorFlow to load.

Both files are plain CSV with a header line naming the columns. Each row is written with one write
call, then flushed and fsynced, so a run killed at any moment leaves at most its last line torn (no
trailing newline). Readers skip such a line with a warning; writers cut it off before appending.
"""
import dataclasses
import operator
import os
import typing
import warnings
from pathlib import Path

from common import atomic_file, errors


class LogFormatError(errors.UserError):
    """A log that is missing, unreadable, or not in the format this module writes."""


class EmptyLogError(LogFormatError):
    """A log that is empty or holds only its header: the run has not finished a row yet."""


@dataclasses.dataclass(frozen=True)
class EpisodeRecord:
    """One finished episode: one row of the run log.

    Attributes:
      step: global agent step (actions chosen, resumes included) at the episode's end.
      episode: 1-based episode number over the whole run.
      score: raw game score, before reward clipping.
      clipped_return: sum of the clipped rewards the agent learned from.
      length: agent steps in the episode.
      epsilon: probability of a random action at the episode's end.
      wall_time: seconds since the run started.
      loss, mean_q: means over the episode's train steps; None before learning starts.
    """

    step: int
    episode: int
    score: float
    clipped_return: float
    length: int
    epsilon: float
    wall_time: float
    loss: float | None = None
    mean_q: float | None = None


@dataclasses.dataclass(frozen=True)
class EvalRecord:
    """One evaluation of the greedy policy: one row of the evaluation log.

    Attributes:
      step: global agent step of training when the evaluation ran.
      episodes: number of evaluation episodes the statistics cover.
      mean_score, std_score, min_score, max_score: raw game score over those episodes.
      human_normalized: (mean - random) / (human - random), as in the ``--eval`` JSON (0: random
        play, 1: the human tester); None where the game has no baseline.
    """

    step: int
    episodes: int
    mean_score: float
    std_score: float
    min_score: float
    max_score: float
    human_normalized: float | None = None


def _columns(record_type):
    return tuple(field.name for field in dataclasses.fields(record_type))


LOG_COLUMNS = _columns(EpisodeRecord)
EVAL_COLUMNS = _columns(EvalRecord)


def read_log(path):
    """Reads every episode of a run log, in file order. Raises LogFormatError for a bad file."""
    return _read_records(path, EpisodeRecord)


def read_eval_log(path, *, allow_no_rows=False):
    """Reads every evaluation of an evaluation log, in file order. Raises LogFormatError for a bad file."""
    return _read_records(path, EvalRecord, allow_no_rows=allow_no_rows)


def truncate_after_step(path, step):
    """Atomically rewrites a run log keeping only rows with ``row.step <= step``; returns rows dropped.

    A resumed run calls this with its checkpoint's step so that no episode appears twice.
    """
    return _truncate_after_step(path, EpisodeRecord, step)


def truncate_eval_after_step(path, step):
    """Like :func:`truncate_after_step`, for an evaluation log."""
    return _truncate_after_step(path, EvalRecord, step)


class _CsvLogWriter:
    """Appends records of ``record_type`` to a CSV log, one durable line per record."""

    record_type = None

    def __init__(self, path):
        self.path = Path(path)
        self._format_row = _row_formatter(self.record_type)
        try:
            self._file = open(self.path, "a+b")
        except OSError as error:
            raise LogFormatError(f"{self.path}: cannot open for writing: {error.strerror}") from None
        try:
            self._prepare_for_append()
        except BaseException:
            self._file.close()
            raise

    def append(self, record):
        """Writes one row and makes it durable before returning."""
        if not isinstance(record, self.record_type):
            raise TypeError(f"expected {self.record_type.__name__}, got {type(record).__name__}")
        self._write_durably(self._format_row(record) + "\n")

    def close(self):
        self._file.close()

    def __enter__(self):
        return self

    def __exit__(self, *exc_info):
        self.close()

    def _prepare_for_append(self):
        self._file.seek(0)
        content = self._file.read()
        header = _header(self.record_type)
        first_line = content.partition(b"\n")[0]
        if _only_a_torn_header(content, self.record_type):
            self._file.truncate(0)
            self._write_durably(header + "\n")
            atomic_file.fsync_path(self.path.parent)  # a new file's entry in its folder survives a power cut too
            return
        if first_line.rstrip(b"\r") != header.encode():
            raise LogFormatError(
                f"{self.path}: line 1 is {first_line[:120].decode(errors='replace')!r}, expected the header "
                f"{header!r}; choose another file"
            )
        if not content.endswith(b"\n"):
            self._file.truncate(content.rfind(b"\n") + 1)
            warnings.warn(f"{self.path}: cut off a torn last line left by an interrupted run", stacklevel=3)

    def _write_durably(self, line):
        try:
            self._file.write(line.encode("ascii"))
            self._file.flush()
            os.fsync(self._file.fileno())
        except OSError as error:  # a full disk: a run that cannot log stops rather than losing rows
            raise errors.UserError(f"cannot write to {self.path}: {error.strerror or error}") from None


class RunLogWriter(_CsvLogWriter):
    """Appends :class:`EpisodeRecord` rows to a run log; writes the header if the file is new or empty.

    Raises LogFormatError if the file exists with another header. Use as a context manager.
    """

    record_type = EpisodeRecord


class EvalLogWriter(_CsvLogWriter):
    """Appends :class:`EvalRecord` rows to an evaluation log; same rules as :class:`RunLogWriter`."""

    record_type = EvalRecord


def _header(record_type):
    return ",".join(_columns(record_type))


def _only_a_torn_header(content, record_type):
    """True for a log's bytes that are at most the start of its header: a new file, or a kill in the
    middle of writing the header."""
    return b"\n" not in content and _header(record_type).encode().startswith(content)


def _read_records(path, record_type, *, allow_no_rows=False):
    path = Path(path)
    return _parse_records(path, _read_text(path), record_type, allow_no_rows=allow_no_rows)


def _parse_records(path, text, record_type, *, allow_no_rows):
    lines = text.splitlines()
    header = _header(record_type)
    if not lines:
        raise EmptyLogError(f"{path}: the file is empty, expected the header {header!r}")
    if lines[0] != header:
        raise LogFormatError(f"{path}: line 1 is {lines[0][:120]!r}, expected the header {header!r}")
    parse_row = _row_parser(record_type)
    records = []
    for line_number, line in enumerate(lines[1:], start=2):
        try:
            records.append(parse_row(line))
        except ValueError as error:
            if line_number == len(lines) and not text.endswith(("\n", "\r")):
                warnings.warn(f"{path}: line {line_number}: skipped a torn last line ({error})", stacklevel=3)
            else:
                raise LogFormatError(f"{path}: line {line_number}: {error}") from None
    if not records and not allow_no_rows:
        raise EmptyLogError(f"{path}: the log has its header but no rows yet")
    return records


def _read_text(path):
    try:
        return path.read_bytes().decode("ascii")
    except FileNotFoundError:
        raise LogFormatError(f"{path}: no such file") from None
    except OSError as error:
        raise LogFormatError(f"{path}: cannot read: {error.strerror}") from None
    except UnicodeDecodeError:
        raise LogFormatError(f"{path}: not a text log (found non-ASCII bytes)") from None


def _truncate_after_step(path, record_type, step):
    path = Path(path)
    text = _read_text(path)
    if _only_a_torn_header(text.encode("ascii"), record_type):
        records = []  # as the writer repairs it: no rows yet
    else:
        records = _parse_records(path, text, record_type, allow_no_rows=True)
    kept = [record for record in records if record.step <= step]
    format_row = _row_formatter(record_type)
    lines = [_header(record_type)] + [format_row(record) for record in kept]
    try:
        atomic_file.write_text(path, "".join(line + "\n" for line in lines))
    except OSError as error:
        raise LogFormatError(f"{path}: cannot rewrite: {error.strerror or error}") from None
    return len(records) - len(kept)


def _row_parser(record_type):
    """Returns ``parse(line) -> record``; it raises ValueError naming the column that does not parse."""
    names = _columns(record_type)
    hints = typing.get_type_hints(record_type)
    codecs = [_cell_codec(hints[name]) for name in names]

    def parse(line):
        cells = line.split(",")
        if len(cells) != len(names):
            raise ValueError(f"expected {len(names)} comma-separated fields, found {len(cells)}")
        values = {}
        for name, (parse_cell, _, expected), cell in zip(names, codecs, cells):
            try:
                values[name] = parse_cell(cell)
            except ValueError:
                raise ValueError(f"column {name!r}: {cell!r} is not {expected}") from None
        if values["step"] < 1:  # every row is written after an agent step
            raise ValueError(f"column 'step': {values['step']} is not a positive agent step")
        return record_type(**values)

    return parse


def _row_formatter(record_type):
    """Returns ``format(record) -> str``, one CSV line without its newline, floats in round-trip form."""
    hints = typing.get_type_hints(record_type)
    formatters = [(name, _cell_codec(hints[name])[1]) for name in _columns(record_type)]
    return lambda record: ",".join(format_cell(getattr(record, name)) for name, format_cell in formatters)


def _cell_codec(hint):
    """Returns ``(parse(str) -> value, format(value) -> str, what a cell must be)`` for one column type."""
    if hint is int:
        return int, lambda value: str(operator.index(value)), "a whole number"
    if hint is float:
        return float, lambda value: repr(float(value)), "a number"
    if hint == float | None:
        return _parse_optional_float, _format_optional_float, "a number or empty"
    raise TypeError(f"no CSV codec for {hint!r}")


def _parse_optional_float(cell):
    return None if cell == "" else float(cell)


def _format_optional_float(value):
    return "" if value is None else repr(float(value))
