"""Turns training run logs into PNG graphs that show a run at a glance and compare runs.

    python3 reward_visualizer.py -f Pong-v0_log.txt -a 50
    python3 reward_visualizer.py -f runs/a/Pong-v0_log.txt runs/b/Pong-v0_log.txt -a 100 -o plots
    python3 reward_visualizer.py -f runs/a/Pong-v0_log.txt runs/b/Pong-v0_log.txt --table 100000
    python3 reward_visualizer.py -f runs/a/Pong-v0_log.txt --table 100000 --no-graphs

Draws score per episode, score against agent steps (with the evaluations from ``<game>_eval.txt``
beside the log, if any), score against the share of greedy actions (1 - epsilon, so it reads left to
right), and loss / mean Q (saying so while the log has no gradient step yet). Each graph shows faint per-episode points under a bold
trailing mean over the last N episodes. ``--table STEPS`` also prints, as a Markdown table, each run's
mean training score over every window of STEPS agent steps: the figure published learning curves
give (Dopamine's iterations are 250,000 agent steps); with ``--no-graphs`` it prints the table alone and
writes no file. Reads the logs only through :mod:`runlog` and never imports
Keras or TensorFlow, so the graphs appear in about a second.
"""
import argparse
import hashlib
import re
import sys
import warnings
from dataclasses import dataclass
from pathlib import Path

import matplotlib
import matplotlib.pyplot as pyplot
import matplotlib.ticker
import numpy as np
from matplotlib.lines import Line2D

from common import arguments, atomic_file, errors, runlog
from common.screen import window_possible

PROG = "reward_visualizer.py"
FIGURE_INCHES = (10, 5)
DPI = 100
# A legend of more entries than this goes beside the axes rather than over the curves.
LEGEND_INSIDE_MAX = 6
MAX_PREFIX = 100  # characters of a joined file-name stem; a file name may have 255
MAX_TABLE_ROWS = 10_000  # windows of --table: a mistyped window or step count, not a table to read


@dataclass(frozen=True)
class Run:
    """One training run to draw: its legend label, game, episodes and evaluations (maybe none)."""

    label: str
    game: str
    episodes: tuple
    evaluations: tuple


def trailing_mean(values, window):
    """Mean of each value and the ``window - 1`` before it; float64[n] -> float64[n].

    The first ``window - 1`` entries average over what there is, so a window longer than the run
    still draws. A NaN spoils only the means whose window holds it.
    """
    values = np.asarray(values, dtype=np.float64)
    if values.size == 0:
        return values
    window = min(window, values.size)  # also keeps a huge window within numpy's integers
    sums = np.convolve(values, np.ones(window))[: values.size]
    counts = np.minimum(np.arange(1, values.size + 1), window)
    return sums / counts


# What the trainer names a log: ``Pong-v0_log.txt``, or ``Pong-v0_log.before-<time>.txt`` once a
# run started with --continue has set it aside.
LOG_NAME = re.compile(r"(?P<game>.+)_log(?P<mark>\.before-[0-9-]+)?\.txt")


def _split_log_name(log_path):
    """(game, mark) of a log's file name; a file not named ``*_log.txt`` gives (its stem, "")."""
    name = Path(log_path).name
    match = LOG_NAME.fullmatch(name)
    return (match["game"], match["mark"] or "") if match else (Path(name).stem, "")


def env_id_of_log(log_path):
    """``runs/Pong-v0_log.txt`` -> ``Pong-v0``; a file not named ``*_log.txt`` gives its stem."""
    return _split_log_name(log_path)[0]


def eval_log_path(log_path):
    """The evaluation log the trainer writes beside a run log: ``Pong-v0_log.txt`` -> ``Pong-v0_eval.txt``,
    ``Pong-v0_log.before-<time>.txt`` -> ``Pong-v0_eval.before-<time>.txt``."""
    game, mark = _split_log_name(log_path)
    return Path(log_path).with_name(f"{game}_eval{mark}.txt")


def run_name(log_path):
    """The game, with the mark of a log set aside by --continue: ``Pong-v0.before-<time>``."""
    return "".join(_split_log_name(log_path))


def run_labels(log_paths):
    """Legend labels that tell the runs apart: the game, else ``folder/game``, else numbered."""
    games = [run_name(path) for path in log_paths]
    for labels in (games, [f"{Path(path).parent.name}/{game}" for path, game in zip(log_paths, games)]):
        if len(set(labels)) == len(labels):
            return labels
    return [f"{game} #{number}" for number, game in enumerate(games, start=1)]


def load_runs(log_paths):
    """Reads each run log and the evaluation log beside it; a bad file raises LogFormatError."""
    runs = []
    for path, label in zip(log_paths, run_labels(log_paths)):
        episodes = tuple(runlog.read_log(path))
        runs.append(Run(_printable(label), _printable(env_id_of_log(path)), episodes,
                        _read_evaluations(eval_log_path(path))))
    return runs


def _printable(text):
    """``text`` with the bytes of a file name that are not UTF-8 shown as U+FFFD, which the fonts can draw."""
    return text.encode("utf-8", "surrogateescape").decode("utf-8", "replace")


def _read_evaluations(path):
    """The evaluations in ``path``; none if it is missing, empty or broken (a warning says which)."""
    if not path.exists():
        return ()
    try:
        return tuple(runlog.read_eval_log(path))
    except runlog.EmptyLogError:
        return ()
    except runlog.LogFormatError as error:
        warnings.warn(f"{error}; the graphs are drawn without these evaluations")
        return ()


def column(records, name):
    """One field of every record as float64[n]; None (no train step yet) becomes NaN."""
    return np.array([np.nan if value is None else value for value in (getattr(r, name) for r in records)],
                    dtype=np.float64)


def plot_score_per_episode(runs, window):
    """Score against episode number: how the game went, one episode after another."""
    figure, axes = _new_figure()
    for color, run in _colored(runs):
        _draw_points_and_mean(axes, column(run.episodes, "episode"), column(run.episodes, "score"), window,
                              color, run.label)
    _finish(axes, _title(runs, "score per episode", window), "episode", "score (points)")
    return figure


def plot_score_per_step(runs, window):
    """Score against agent steps, the axis runs of different episode lengths share; evaluations as markers."""
    figure, axes = _new_figure()
    for color, run in _colored(runs):
        _draw_points_and_mean(axes, column(run.episodes, "step"), column(run.episodes, "score"), window,
                              color, run.label)
        if run.evaluations:
            axes.errorbar(column(run.evaluations, "step"), column(run.evaluations, "mean_score"),
                          yerr=column(run.evaluations, "std_score"), fmt="D", markersize=6, capsize=4,
                          color=color, markeredgecolor="black")
    axes.xaxis.set_major_formatter(matplotlib.ticker.EngFormatter())
    _finish(axes, _title(runs, "score against training time", window), "agent steps (actions chosen)",
            "score (points)")
    return figure


def plot_score_per_greedy_share(runs, window):
    """Score against 1 - epsilon, so the run reads left to right as the network takes over."""
    figure, axes = _new_figure()
    for color, run in _colored(runs):
        _draw_points_and_mean(axes, 1.0 - column(run.episodes, "epsilon"), column(run.episodes, "score"),
                              window, color, run.label)
    axes.set_xlim(-0.02, 1.02)
    _finish(axes, _title(runs, "score as exploration falls", window),
            "share of greedy actions, 1 − ε  (0 = all random  →  1 = all chosen by the network)",
            "score (points)")
    return figure


def plot_loss_and_mean_q(runs, window):
    """Loss and mean Q against agent steps, side by side. Before any run has trained the axes say so:
    the graph is still written, so that one drawn from an earlier run of that name never stays behind."""
    trained = [(color, run) for color, run in _colored(runs)
               if np.isfinite(column(run.episodes, "loss")).any()]
    figure, (loss_axes, q_axes) = _new_figure(columns=2)
    if not trained:
        for axes in (loss_axes, q_axes):
            axes.text(0.5, 0.5, "no gradient step logged yet\n(learning starts after the -pre steps)",
                      ha="center", va="center", transform=axes.transAxes)
    for color, run in trained:
        for axes, name in ((loss_axes, "loss"), (q_axes, "mean_q")):
            values = column(run.episodes, name)
            present = np.isfinite(values)
            _draw_points_and_mean(axes, column(run.episodes, "step")[present], values[present], window, color,
                                  run.label)
    losses = np.concatenate([column(run.episodes, "loss") for _, run in trained] or [[]])
    if trained and (losses[np.isfinite(losses)] > 0).all():
        loss_axes.set_yscale("log")
    for axes in (loss_axes, q_axes):
        axes.xaxis.set_major_formatter(matplotlib.ticker.EngFormatter())
    # A legend too long to sit inside is drawn once, beside the right-hand graph, instead of beside each.
    _finish(loss_axes, "training loss", "agent steps (actions chosen)", "loss (mean per episode)",
            legend=bool(trained) and len(_legend_handles(loss_axes)) <= LEGEND_INSIDE_MAX)
    _finish(q_axes, "mean predicted Q", "agent steps (actions chosen)", "Q (clipped-reward units)",
            legend=bool(trained))
    figure.suptitle(_title(runs, "learning signals", window))
    return figure


GRAPHS = (
    ("score_per_episode", plot_score_per_episode),
    ("score_per_step", plot_score_per_step),
    ("score_per_greedy_share", plot_score_per_greedy_share),
    ("loss_and_mean_q", plot_loss_and_mean_q),
)


def _new_figure(columns=1):
    return pyplot.subplots(1, columns, figsize=FIGURE_INCHES, dpi=DPI, layout="constrained")


def _colored(runs):
    """A colour of its own for each run: matplotlib's ten default colours, then tab20's twenty, then
    colours spread over a continuous map."""
    if len(runs) <= 10:
        colors = [f"C{index}" for index in range(len(runs))]
    elif len(runs) <= 20:
        colors = [matplotlib.colormaps["tab20"](index) for index in range(len(runs))]
    else:
        colors = [matplotlib.colormaps["turbo"](value) for value in np.linspace(0.05, 0.95, len(runs))]
    return list(zip(colors, runs))


def _draw_points_and_mean(axes, x, y, window, color, label):
    axes.scatter(x, y, s=9, color=color, alpha=0.3, linewidths=0)
    axes.plot(x, trailing_mean(y, window), color=color, linewidth=2.2, label=label)


def _finish(axes, title, xlabel, ylabel, legend=True):
    """Titles, grid and the legend: inside the axes while it is short, beside them when longer."""
    axes.set_title(title)
    axes.set_xlabel(xlabel)
    axes.set_ylabel(ylabel)
    axes.grid(True, alpha=0.35)
    if not legend:
        return
    handles = _legend_handles(axes)
    if len(handles) <= LEGEND_INSIDE_MAX:
        axes.legend(handles=handles, loc="best", fontsize="small")
    else:
        axes.legend(handles=handles, loc="upper left", bbox_to_anchor=(1.01, 1.0), borderaxespad=0,
                    fontsize="small")


def _legend_handles(axes):
    """The runs' lines, then what the points and markers are (the markers' colour is their run's)."""
    handles, _ = axes.get_legend_handles_labels()
    handles.append(Line2D([], [], linestyle="", marker="o", markersize=4, color="grey", alpha=0.5,
                          label="single episodes"))
    if axes.containers:  # error bars: the evaluations
        handles.append(Line2D([], [], linestyle="", marker="D", markersize=6, color="grey",
                              markeredgecolor="black", label="evaluations (mean ± std)"))
    return handles


def _title(runs, what, window):
    games = ", ".join(dict.fromkeys(run.game for run in runs))
    return f"{games}: {what}, mean of the last {window} episodes"


def output_prefix(runs, name=None):
    """File-name stem shared by a figure set: ``name`` if given, else the run label, or the labels
    joined by ``+`` while that stays short, else ``runs-`` and a digest of them (so that two
    different overlays in one folder do not overwrite each other)."""
    if name:
        return name
    joined = "+".join(re.sub(r"[^A-Za-z0-9._-]+", "-", run.label).strip("-") for run in runs)
    return joined if len(joined) <= MAX_PREFIX else f"runs-{hashlib.sha1(joined.encode()).hexdigest()[:8]}"


def window_means(episodes, window_steps):
    """Mean score of the episodes that ended in each window of ``window_steps`` agent steps.

    Window k holds the episodes whose last step lies in (k * window_steps, (k + 1) * window_steps].
    Returns float64[w] for the windows up to the one of the last episode, NaN where a window holds
    no episode (one game can outlast a short window); none for a run without episodes.
    """
    steps = column(episodes, "step")
    if steps.size == 0:
        return np.zeros(0)
    windows = (steps.astype(np.int64) - 1) // window_steps
    counts = np.bincount(windows)
    sums = np.bincount(windows, weights=column(episodes, "score"))
    with np.errstate(invalid="ignore", divide="ignore"):
        return sums / counts


def steps_label(steps):
    """A step count as published curves write it: ``250k``, ``1M``, ``1.75M``; other counts in full."""
    if steps >= 1_000_000 and steps % 10_000 == 0:
        return f"{steps / 1_000_000:g}M"
    if steps >= 1_000 and steps % 1_000 == 0:
        return f"{steps // 1_000}k"
    return f"{steps:,}"


def means_table(runs, window_steps):
    """Markdown table of each run's window means, one column per run. A window the log ends inside
    is marked ``*``, and a note under the table gives the step where each log ends."""
    last_step = max((run.episodes[-1].step for run in runs if run.episodes), default=0)
    if last_step // window_steps >= MAX_TABLE_ROWS:
        raise errors.UserError(f"--table {window_steps:,} cuts logs that reach step {last_step:,} into more than "
                               f"{MAX_TABLE_ROWS:,} windows: give a larger window")
    means = [window_means(run.episodes, window_steps) for run in runs]
    lines = ["| agent steps | " + " | ".join(run.label.replace("|", "\\|") for run in runs) + " |",
             "|---|" + "---:|" * len(runs)]
    for index in range(max((len(values) for values in means), default=0)):
        cells = []
        for run, values in zip(runs, means):
            if index >= len(values) or np.isnan(values[index]):
                cells.append("")
                continue
            partial = run.episodes[-1].step < (index + 1) * window_steps
            cells.append(f"{values[index]:.1f}" + ("*" if partial else ""))
        window = f"{steps_label(index * window_steps)}–{steps_label((index + 1) * window_steps)}"
        lines.append(f"| {window} | " + " | ".join(cells) + " |")
    lines.append("")
    lines.append(f"Mean score of the training episodes that ended in each window of {window_steps:,} agent "
                 "steps; * the log ends inside the window.")
    for run in runs:
        end = f"at step {run.episodes[-1].step:,} ({len(run.episodes):,} episodes)" if run.episodes else "empty"
        lines.append(f"- {run.label}: log ends {end}")
    return "\n".join(lines)


def draw_graphs(runs, window):
    """Every graph, as ``[(graph name, pyplot figure)]``; the caller closes them."""
    return [(name, plot(runs, window)) for name, plot in GRAPHS]


def _save(figure, path):
    """Writes the figure atomically: a failed write (a full disk) leaves the earlier graph whole."""
    try:
        with atomic_file.atomic_path(path) as temp:
            figure.savefig(temp, format=Path(path).suffix[1:])
    except OSError as error:
        raise errors.UserError(f"{path}: cannot write: {error.strerror}") from None
    return path


def _ensure_folder(folder):
    folder = Path(folder)
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except OSError as error:
        raise errors.UserError(f"{folder}: cannot use as the output folder: {error.strerror}") from None
    return folder


def _window_size(text):
    try:
        window = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a whole number") from None
    if window < 1:
        raise argparse.ArgumentTypeError(f"must be at least 1 episode, got {window}")
    return window


def _file_stem(text):
    if not re.fullmatch(rf"[A-Za-z0-9._+-]{{1,{MAX_PREFIX}}}", text) or text.startswith("."):
        raise argparse.ArgumentTypeError(
            f"{text!r} is not a plain file name of up to {MAX_PREFIX} letters, digits, '.', '_', '+', '-'")
    return text


def build_parser():
    parser = errors.OneLineErrorParser(prog=PROG, description=__doc__.split("\n\n")[0])
    parser.add_argument("-f", "--file", nargs="+", required=True, type=Path, metavar="LOG",
                        help="run log(s) written by dqn_atari.py; several logs are overlaid, one colour each")
    parser.add_argument("-a", "--average", type=_window_size, default=50, metavar="N",
                        help="moving-average window: mean of the last N episodes (default: 50)")
    parser.add_argument("-o", "--output", type=Path, metavar="DIR",
                        help="folder for the PNGs (default: beside the first log)")
    parser.add_argument("-n", "--name", type=_file_stem, metavar="NAME",
                        help="file names start with NAME (default: the run's label, or the labels "
                             "joined by '+' while short, else 'runs-' and a digest of them)")
    drawing = parser.add_mutually_exclusive_group()
    drawing.add_argument("--show", action="store_true", help="also open the graphs in a window if a display exists")
    parser.add_argument("--table", type=arguments.positive_number, metavar="STEPS",
                        help="also print a Markdown table of each run's mean training score per window of "
                             "STEPS agent steps (100000 gives the means per 100k steps)")
    drawing.add_argument("--no-graphs", dest="graphs", action="store_false",
                         help="with --table: print the table only, and write no PNG")
    return parser


def parse_args(argv=None):
    parser = build_parser()
    args = parser.parse_args(argv)
    if not args.graphs and args.table is None:
        parser.error("--no-graphs leaves nothing to do without --table STEPS")
    return args


def visualize(log_paths, window, out_dir, show, name=None, table_steps=None, graphs=True):
    """Reads the logs, writes ``<prefix>_<graph>_avg<N>.png`` files, prints and returns their paths;
    with ``table_steps``, then prints :func:`means_table` of the runs. With ``graphs=False`` it prints
    the table only and returns no paths.

    Raises errors.UserError for a bad log or an unusable output folder.
    """
    showing = show and window_possible()
    if not showing:
        matplotlib.use("Agg")
    runs = load_runs(log_paths)
    table = means_table(runs, table_steps) if table_steps is not None else None  # refused before any file is written
    if not graphs:
        if table is not None:
            print(table, flush=True)
        return []
    out_dir = _ensure_folder(out_dir if out_dir is not None else Path(log_paths[0]).parent)
    figures = draw_graphs(runs, window)
    try:
        written = [_save(figure, out_dir / f"{output_prefix(runs, name)}_{graph}_avg{window}.png")
                   for graph, figure in figures]
        print(*written, sep="\n", flush=True)
        if table is not None:
            print(f"\n{table}", flush=True)
        if showing:
            pyplot.show()
    finally:
        for _, figure in figures:
            pyplot.close(figure)
    if show and not showing:
        print(f"{PROG}: no display found ($DISPLAY and $WAYLAND_DISPLAY are unset); wrote the PNGs only",
              file=sys.stderr)
    return written


def main(argv=None):
    args = parse_args(argv)
    failure = None
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always", UserWarning)
        try:
            visualize(args.file, args.average, args.output, args.show, args.name, args.table, args.graphs)
        except errors.UserError as error:
            failure = error
    for message in dict.fromkeys(str(warning.message) for warning in caught):
        print(f"{PROG}: warning: {message}", file=sys.stderr)
    if failure is not None:
        print(f"{PROG}: error: {failure}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
