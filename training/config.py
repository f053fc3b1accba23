"""A run's configuration: every setting with its default, the named recipes, the checks, the files.

``Config`` is what a run depends on, saved as ``<env>_config.json`` beside its log; the
command line (``dqn_atari.py``) and the Python API build one the same way.
"""
import dataclasses
import secrets
from pathlib import Path

from common.errors import SettingError, UserError
from common.native_stderr import native_stderr_silenced


@dataclasses.dataclass(frozen=True)
class Config:
    """Everything a run depends on; saved as ``<env>_config.json`` beside the log.

    Defaults follow CleanRL's ``dqn_atari.py`` (Huang et al. 2022), itself the Nature DQN recipe
    (Mnih et al. 2015) with Adam: the README's defaults table gives each source.
    """

    env_id: str = "Pong-v0"
    steps: int = 10_000_000
    pre_steps: int = 80_000
    epsilon_start: float = 1.0
    epsilon_end: float = 0.01
    epsilon_steps: int = 1_000_000
    memory_size: int = 1_000_000
    memory_compression: str = "zstd"
    batch_size: int = 32
    gamma: float = 0.99
    n_step: int = 1
    prioritized: bool = False
    priority_exponent: float = 0.5
    importance_exponent: float = 0.5
    learning_rate: float = 1e-4
    optimizer: str = "adam"
    optimizer_epsilon: float | None = None
    loss: str = "huber"
    dueling: bool = False
    distributional: str = "none"
    quantiles: int = 200
    clip_norm: float | None = None
    target_update: int = 1_000
    train_every: int = 4
    save_every: int = 10
    seed: int | None = None
    threads: int = 0
    learner: str = "thread"
    precision: str = "auto"
    continue_from: str | None = None
    render: bool = False
    out: str = "."
    life_loss_signal: bool = True
    idle_penalty: bool = False
    checkpoint_every: int = 50
    keep_checkpoints: int = 2
    save_memory: bool = True
    eval_every: int = 0
    envs: int = 1
    tensorboard: str | None = None  # a folder for TensorBoard event files (training.tensorboard); None: none
    preset: str | None = None


# One-flag recipes (``--preset NAME``): the Config fields each sets, unless given explicitly.
PRESETS = {
    # Two million agent steps on a 2-core CPU: the defaults' gradient step every 4 agent steps, a
    # 100,000-transition memory, exploration over the first 250,000 steps, an evaluation every 100,000.
    "laptop": dict(steps=2_000_000, pre_steps=10_000, memory_size=100_000, epsilon_steps=250_000,
                   epsilon_end=0.01, learning_rate=1e-4, target_update=1_000, train_every=4,
                   eval_every=100_000, checkpoint_every=20),
}


@dataclasses.dataclass(frozen=True)
class RunFiles:
    """The files of a run, named as the original tool named them (``/`` in an id becomes ``_``)."""

    log: Path
    weights: Path
    config: Path
    evaluations: Path
    checkpoints: Path
    best_weights: Path

    @classmethod
    def for_env(cls, out, env_id):
        stem = Path(out) / env_id.replace("/", "_")
        return cls(*(Path(f"{stem}_{name}") for name in
                     ("log.txt", "weights.h5", "config.json", "eval.txt", "checkpoints", "weights_best.h5")))


def with_drawn_seed(config):
    """The configuration with a seed: the given one, or one drawn now and saved with the run."""
    return config if config.seed is not None else dataclasses.replace(config, seed=secrets.randbits(31))


def with_resolved_precision(config):
    """The configuration with ``--precision auto`` replaced by what it means on this machine."""
    if config.precision != "auto":
        return config
    with native_stderr_silenced():
        from agent import backend

        return dataclasses.replace(config, precision=backend.default_precision())


def with_resolved_optimizer_epsilon(config):
    """The configuration with the optimizer's default epsilon written in, so that a resumed run goes on
    with the epsilon it started with whatever the default becomes."""
    if config.optimizer_epsilon is not None:
        return config
    with native_stderr_silenced():
        from agent.dqn import OPTIMIZER_EPSILON

    return dataclasses.replace(config, optimizer_epsilon=OPTIMIZER_EPSILON[config.optimizer])


def network_head(config):
    """The ``agent.Head`` that ``--dueling``, ``--distributional`` and ``--quantiles`` choose."""
    from agent import Head

    return Head(dueling=config.dueling, quantiles=config.quantiles if config.distributional == "quantile" else 0)


def head_settings(head):
    """The Config fields that build ``head`` (the inverse of ``network_head``)."""
    return dict(dueling=head.dueling, distributional="quantile" if head.quantiles else "none",
                quantiles=head.quantiles or Config.quantiles)


def validate(config, check_weights=True):
    """Refuses a game id or numbers that cannot make a run (a SettingError naming the setting);
    before any folder is made or TensorFlow is imported."""
    from preprocessing import resolve_env_id

    resolve_env_id(config.env_id)
    if config.memory_size < config.batch_size:
        raise SettingError(f"{{memory_size}} {config.memory_size} is smaller than {{batch_size}} {config.batch_size}")
    if config.envs > 64:
        raise SettingError(f"{{envs}} {config.envs}: at most 64 copies of the game")
    if config.envs > 1 and config.memory_size // config.envs < 1_000:
        raise SettingError(f"{{memory_size}} {config.memory_size} leaves {config.memory_size // config.envs} "
                           f"transitions to each of the {{envs}} {config.envs} copies: at least 1,000 each")
    if config.batch_size > 4096:
        raise SettingError(f"{{batch_size}} {config.batch_size} is absurdly large (at most 4096)")
    if check_weights and config.continue_from and not Path(config.continue_from).is_file():
        raise UserError(f"weights file not found: {config.continue_from}")
    from memory import ReplayMemory

    fewest = ReplayMemory.min_capacity(config.n_step)
    if config.memory_size < fewest:
        raise SettingError(f"{{memory_size}} {config.memory_size} is too small: a transition of {{n_step}} "
                           f"{config.n_step} needs at least {fewest}")
    ReplayMemory.ensure_fits(config.memory_size, config.memory_compression)


def pre_fill_warnings(config, name=str):
    """What the pre-fill would waste with these settings, one line each, the settings named by
    ``name(field)`` (the command line: its flags)."""
    warnings = []
    if config.pre_steps >= config.steps:
        warnings.append(f"{{pre_steps}} {config.pre_steps:,} >= {{steps}} {config.steps:,}: this run will not "
                        f"learn, only fill its memory")
    if config.pre_steps > config.memory_size:
        warnings.append(f"{{pre_steps}} {config.pre_steps:,} > {{memory_size}} {config.memory_size:,}: the first "
                        f"{config.pre_steps - config.memory_size:,} steps played before learning starts are "
                        f"overwritten before any is learned from")
    return [SettingError(warning).worded(name) for warning in warnings]
