"""``--tensorboard DIR``: a run's curves as TensorBoard event files, under CleanRL's tag names.

The x value of every point is the agent step, resumes included, as in the run log:

    charts/episodic_return   raw game score                    one point per episode, at its last step
    charts/clipped_return    the clipped rewards' sum
    charts/episodic_length   agent steps
    charts/epsilon           epsilon at the episode's end
    losses/td_loss           the episode's mean loss, mean Q    (the run log's columns; from the first
    losses/q_values            over its gradient steps           episode that learned)
    charts/SPS               agent steps a second since the previous episode's end (or the sitting's
                             start), evaluations included
    eval/mean_score          one point per ``--eval-every`` evaluation; eval/human_normalized
    eval/std_score             only for a game with reference scores
    eval/human_normalized

Losses are written per episode rather than every N gradient steps: those values exist already,
cost nothing more, and a resumed run writes them at exactly the steps an uninterrupted run would.

The files are TFRecord streams of ``Event`` protocol buffers, written synchronously with
tensorboardX's record writer and protobuf classes (no TensorFlow: every Keras backend can write
them); not with its SummaryWriter, whose points go through a queue to a thread that its flush
does not wait for, so a checkpoint could not know the points before it were on the disk. A folder holds one run. A new run refuses a folder that holds events. A checkpoint
records the names of the event files its run wrote; a resumed run refuses a folder that holds any
other (another run's, which it must not touch), cuts its own after the checkpoint's step
(rewritten atomically, as the run log is), then writes a file of its own, so that no step appears
twice. The points reach the disk before each checkpoint does, so none up to the checkpoint's step
is lost to a kill.
"""
import os
import socket
import struct
import time
from pathlib import Path

from common.atomic_file import write_bytes
from common.errors import SettingError, UserError

EVENT_FILE_MARK = ".tfevents."  # what TensorBoard looks for in a file name


class TensorBoardLog:
    """Writes a run's scalars to a new event file in ``folder``; does nothing where ``folder`` is None.

    ``first_step``: the agent step this sitting starts from. ``resumed``: whether it continues a
    run, whose event files in ``folder`` are cut after ``first_step``; ``own_files``: the names of
    that run's event files (from its checkpoint; None: every file in ``folder``, as checkpoints
    that did not record them). A folder that holds other event files is refused (``check_folder``).
    ``files``: this run's event file names, this sitting's last. Use as a context manager.
    """

    def __init__(self, folder=None, *, first_step=0, resumed=False, own_files=None):
        self._file = None
        self.files = list(own_files or [])
        if folder is None:
            return
        self.folder = Path(folder)
        check_folder(self.folder, own_files=own_files if resumed else [])
        from tensorboardX.record_writer import RecordWriter

        Event = _event_class()
        try:
            if resumed:
                cut_after_step(self.folder, first_step, only=own_files)
            self.folder.mkdir(parents=True, exist_ok=True)
            self.path = _new_event_path(self.folder)
            self._file = RecordWriter(str(self.path))
            self.files = [name for name in self.files if name != self.path.name] + [self.path.name]
        except OSError as error:
            raise SettingError(f"cannot write to {{tensorboard}} folder "
                               f"{SettingError.literal(f'{self.folder}: {error.strerror or error}')}") from None
        self._write(Event(wall_time=time.time(), file_version="brain.Event:2"))
        self._since = (first_step, time.monotonic())

    def __enter__(self):
        return self

    def __exit__(self, *exc_info):
        self.close()

    def episode(self, record):
        """The points of a finished episode (an ``EpisodeRecord``), its learning and speed among them."""
        if self._file is None:
            return
        self._scalars(record.step, {"charts/episodic_return": record.score,
                                    "charts/clipped_return": record.clipped_return,
                                    "charts/episodic_length": record.length, "charts/epsilon": record.epsilon})
        since_step, since_time = self._since
        self._since = (record.step, time.monotonic())
        sps = (record.step - since_step) / max(self._since[1] - since_time, 1e-9)
        self.learning(record.step, record.loss, record.mean_q, sps)

    def learning(self, step, loss, mean_q, sps):
        """Loss and mean Q (None before learning starts: not written), agent steps per second."""
        self._scalars(step, {"losses/td_loss": loss, "losses/q_values": mean_q, "charts/SPS": sps})

    def evaluation(self, step, summary):
        """The points of an ``--eval-every`` evaluation (an ``evaluation.EvalSummary``) at training step ``step``."""
        record = summary.as_record(step)
        self._scalars(step, {"eval/mean_score": record.mean_score, "eval/std_score": record.std_score,
                             "eval/human_normalized": record.human_normalized})

    def flush(self):
        """Puts every point written so far on the disk (fsynced): called before each checkpoint."""
        if self._file is not None:
            self._guarded(self._file.flush)

    def close(self):
        if self._file is not None:
            self.flush()
            self._file.close()
            self._file = None

    def _scalars(self, step, values):
        if self._file is None:
            return
        from tensorboardX.proto.event_pb2 import Event
        from tensorboardX.proto.summary_pb2 import Summary

        points = [Summary.Value(tag=tag, simple_value=float(value)) for tag, value in values.items() if value is not None]
        self._write(Event(wall_time=time.time(), step=step, summary=Summary(value=points)))

    def _write(self, event):
        self._guarded(self._file.write, event.SerializeToString())

    def _guarded(self, write, *args):
        try:
            write(*args)
        except OSError as error:  # a full disk: as with the run log, the run stops rather than lose points
            raise UserError(f"cannot write to {self.path}: {error.strerror or error}") from None


def check_folder(folder, *, own_files=()):
    """Raises a SettingError naming ``{tensorboard}`` unless tensorboardX is there and ``folder``
    holds no event files but ``own_files`` (the names of the run's own; None: any)."""
    others = [path.name for path in event_files(folder) if own_files is not None and path.name not in own_files]
    if others and not own_files:
        raise SettingError(f"{{tensorboard}} {SettingError.literal(folder)} already holds TensorBoard events: "
                           f"choose an empty folder for each run (their parent shows them side by side), or "
                           f"move those files away")
    if others:
        raise SettingError(f"{{tensorboard}} {SettingError.literal(folder)} holds TensorBoard events of another "
                           f"run ({SettingError.literal(others[0])}): give this run's folder, or an empty one")
    _event_class()


def _event_class():
    try:
        from tensorboardX.proto.event_pb2 import Event
    except ImportError:
        raise SettingError("{tensorboard} writes with tensorboardX: pip install tensorboardX") from None
    return Event


def event_files(folder):
    """The event files directly in ``folder`` (not in its subfolders: other runs), in name order,
    which TensorBoard reads them in; [] where the folder does not exist."""
    folder = Path(folder)
    if not folder.is_dir():
        return []
    return sorted(path for path in folder.iterdir() if EVENT_FILE_MARK in path.name and path.is_file())


def cut_after_step(folder, step, only=None):
    """Atomically rewrites each event file in ``folder`` (those named in ``only``, if given) keeping
    only its events of steps <= ``step`` (its header has step 0) and dropping a torn last record;
    returns how many events it dropped.

    A resumed run calls this with its checkpoint's step: what the run wrote after that step, before
    it stopped, is written again by the resumed run.
    """
    dropped = 0
    for path in event_files(folder):
        if only is not None and path.name not in only:
            continue
        data = path.read_bytes()
        records = list(_records(data, path))
        kept = [record for record, event in records if event.step <= step]
        dropped += len(records) - len(kept)
        if sum(map(len, kept)) != len(data):
            write_bytes(path, b"".join(kept))
    return dropped


def read_scalars(folder):
    """Every scalar point of the event files in ``folder``: ``{tag: [(step, value), ...]}``, in the
    order TensorBoard reads them."""
    scalars = {}
    for path in event_files(folder):
        for _, event in _records(path.read_bytes(), path):
            for value in event.summary.value:
                scalars.setdefault(value.tag, []).append((event.step, value.simple_value))
    return scalars


def _records(data, path):
    """``(record bytes, Event)`` for each whole record of an event file's ``data``, in order.

    A record (TFRecord framing) is ``uint64 length, uint32 masked CRC-32C of the length, payload,
    uint32 masked CRC-32C of the payload``, little-endian. The records end at the first one that
    is cut short or fails its checks: a run killed while writing leaves a torn last record.
    """
    from google.protobuf.message import DecodeError
    from tensorboardX.proto.event_pb2 import Event
    from tensorboardX.record_writer import masked_crc32c

    offset = 0
    while offset + 12 <= len(data):
        length_bytes = data[offset:offset + 8]
        (length,) = struct.unpack("<Q", length_bytes)
        end = offset + 12 + length + 4
        if struct.unpack("<I", data[offset + 8:offset + 12])[0] != masked_crc32c(length_bytes) or end > len(data):
            return
        payload = data[offset + 12:end - 4]
        if struct.unpack("<I", data[end - 4:end])[0] != masked_crc32c(payload):
            return
        try:
            event = Event.FromString(payload)
        except DecodeError:
            return
        yield data[offset:end], event
        offset = end


def _new_event_path(folder):
    """A name TensorBoard recognises (the one tensorboardX gives, with the process id), taken by no file."""
    stem = f"events.out.tfevents.{int(time.time()):010d}.{socket.gethostname()}.{os.getpid()}"
    candidates = (folder / (stem + (f".{number}" if number else "")) for number in range(1000))
    return next(path for path in candidates if not path.exists())
