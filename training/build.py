"""A run's parts built from its Config: the Keras backend set up, the game copies, the agent, the memory."""
import os
import sys

from common.errors import SettingError
from common.native_stderr import native_stderr_silenced
from common.screen import window_possible
from training.config import network_head, with_resolved_precision

PROG = "dqn_atari.py"


def setup_backend(config):
    """Keras set up for ``config``: its threads, precision and seed; the devices probed quietly."""
    with native_stderr_silenced():
        from agent import backend  # first: the agent package sets TensorFlow's options before Keras loads it

        import keras

        backend.probe_devices()
    backend.configure_threads(config.threads)
    precision = with_resolved_precision(config).precision
    keras.mixed_precision.set_global_policy("mixed_bfloat16" if precision == "bfloat16" else "float32")
    keras.utils.set_random_seed(config.seed)


def open_envs(config, *, render):
    """``config.envs`` preprocessed copies of the game (seeds seed, seed + 1, ...; ``render``
    shows the first) and its ROM name (recorded in weight files)."""
    from preprocessing import make_env, resolve_env_id, rom_name

    explicit_id = resolve_env_id(config.env_id)
    if explicit_id != config.env_id:
        print(f"using {explicit_id} for {config.env_id}")
    render_mode = "human" if render and window_available() else None
    with native_stderr_silenced():
        envs = [make_env(config.env_id, seed=None if config.seed is None else config.seed + index,
                         render_mode=render_mode if index == 0 else None, idle_penalty=config.idle_penalty)
                for index in range(config.envs)]
    return envs, rom_name(envs[0])


def window_available(suggest_record=False):
    """True where -r can open a window (macOS, Windows, an X11 or Wayland session); else says so."""
    if window_possible():
        os.environ.setdefault("SDL_AUDIODRIVER", "dummy")
        return True
    hint = "; --record FILE.mp4 writes a video instead" if suggest_record else ""
    print(f"{PROG}: no display found, so -r shows no window{hint}", file=sys.stderr)
    return False


def make_agent(config, num_actions):
    """The DQNAgent (online, target and actor networks, optimizer) that ``config`` describes."""
    from agent import build_agent

    return build_agent(num_actions, head=network_head(config), loss=config.loss, optimizer=config.optimizer,
                       learning_rate=config.learning_rate, clip_norm=config.clip_norm,
                       optimizer_epsilon=config.optimizer_epsilon, seed=config.seed)


def make_memory(config):
    """One ReplayMemory, or with ``--envs N`` a ReplayStreams of one stream per game copy."""
    from memory import ReplayMemory, ReplayStreams

    settings = dict(compression=config.memory_compression, n_step=config.n_step, gamma=config.gamma,
                    seed=config.seed, priority_exponent=config.priority_exponent if config.prioritized else None)
    if config.envs > 1:
        return ReplayStreams(config.memory_size, config.envs, **settings)
    return ReplayMemory(config.memory_size, **settings)


def load_into_both_networks(agent, path, rom):
    """``path``'s weights in the online and the target network (``--continue``)."""
    from agent import HeadMismatchError, load_weights

    try:
        load_weights(path, agent.online, game=rom)
    except HeadMismatchError as error:
        raise SettingError(f"{SettingError.literal(error)}: train on them with {head_template(error.recorded)}") from None
    agent.sync_target()
    agent.sync_actor()


def head_template(head):
    """The settings that build ``head``, as a SettingError template: ``{dueling} {distributional} quantile``."""
    words = ["{dueling}"] * head.dueling + [f"{{distributional}} quantile {{quantiles}} {head.quantiles}"] * bool(head.quantiles)
    return " ".join(words) or "neither {dueling} nor {distributional}"
