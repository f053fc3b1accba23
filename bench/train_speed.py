#!/usr/bin/env python3
"""Training speed of the real ``dqn_atari.py`` loop on Pong-v0, learning active.

    python3 bench/train_speed.py                 # the defaults users get
    python3 bench/train_speed.py --precision float32 --threads 1
    python3 bench/train_speed.py --train-every 1 --n-step 3      # a recipe of the README's Results
    python3 bench/train_speed.py --prioritized                   # with prioritized replay
    python3 bench/train_speed.py --envs 4                        # four copies, actions in one batch
    python3 bench/train_speed.py --dueling --distributional quantile   # the stronger heads

Runs ``training.loop.run_training`` (Double DQN, batch 32, train every 4 steps unless
``--train-every`` says otherwise, target sync every 1,000 steps) for ``--warmup`` steps, then for ``--steps`` more, timing the environment, the
action choice (one forward pass per round of the ``--envs`` copies) and the train step through
thin wrappers around the real objects. Prints ``name: value`` lines.
"""
import dataclasses
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import common.arguments  # noqa: E402
import training.build  # noqa: E402
import training.config  # noqa: E402
import training.loop  # noqa: E402
from common.errors import OneLineErrorParser, run_main  # noqa: E402


class Timed:
    """Forwards every attribute to ``inner`` and records the seconds spent in ``method``."""

    def __init__(self, inner, method):
        self._inner, self._method, self.seconds, self.started = inner, method, [], []

    def __getattr__(self, name):
        value = getattr(self._inner, name)
        if name != self._method:
            return value

        def timed(*args, **kwargs):
            start = time.perf_counter()
            self.started.append(start)
            result = value(*args, **kwargs)
            self.seconds.append(time.perf_counter() - start)
            return result

        return timed


def run(config, steps):
    """Trains ``steps`` agent steps; returns the env steps (one Timed per game copy), the action
    choices (``agent.act_batch``: one call per round of the copies) and the gradient steps."""
    envs, game = training.build.open_envs(config, render=False)
    agent = training.build.make_agent(config, envs[0].action_space.n)
    timed_envs, timed_agent_act = [Timed(env, "step") for env in envs], Timed(agent, "act_batch")
    timed_agent = Timed(timed_agent_act, "learn")
    memory = training.build.make_memory(config)
    with tempfile.TemporaryDirectory() as out:
        files = training.config.RunFiles.for_env(out, config.env_id)
        training.loop.run_training(dataclasses.replace(config, steps=steps), timed_envs, timed_agent,
                              memory, files, game=game)
        return timed_envs, timed_agent_act, timed_agent


def median_ms(seconds):
    return statistics.median(seconds) * 1000 if seconds else float("nan")


def main():
    parser = OneLineErrorParser(description=__doc__.splitlines()[0])
    parser.add_argument("--env", default="Pong-v0")
    parser.add_argument("--warmup", type=common.arguments.whole_number, default=1_000, help="steps before timing (learning from step 500)")
    parser.add_argument("--steps", type=common.arguments.positive_number, default=4_000, help="timed steps (at least 2)")
    parser.add_argument("--threads", type=common.arguments.thread_count, default=training.config.Config.threads)
    parser.add_argument("--precision", choices=("auto", "float32", "bfloat16"),
                        default=training.config.Config.precision)
    parser.add_argument("--learner", choices=("thread", "main"), default=training.config.Config.learner)
    parser.add_argument("--memory-compression", default=training.config.Config.memory_compression)
    parser.add_argument("--train-every", type=common.arguments.positive_number, default=training.config.Config.train_every)
    parser.add_argument("--n-step", type=common.arguments.positive_number, default=training.config.Config.n_step)
    parser.add_argument("--prioritized", action="store_true", help="prioritized replay")
    parser.add_argument("--envs", type=common.arguments.positive_number, default=training.config.Config.envs, help="copies of the game side by side")
    parser.add_argument("--dueling", action="store_true", help="the dueling head")
    parser.add_argument("--distributional", choices=("none", "quantile"), default=training.config.Config.distributional)
    parser.add_argument("--quantiles", type=common.arguments.positive_number, default=training.config.Config.quantiles)
    args = parser.parse_args()
    if args.steps < 2:
        parser.error("--steps: the first timed step starts the clock, so time at least 2")
    # Epsilon at its final 0.01 after the pre-fill: nearly every step runs the network, as late in a run.
    config = training.config.Config(env_id=args.env, pre_steps=500, memory_size=100_000, seed=0,
                              epsilon_start=0.01, epsilon_end=0.01,
                              threads=args.threads, precision=args.precision, learner=args.learner,
                              memory_compression=args.memory_compression, out=tempfile.gettempdir(),
                              train_every=args.train_every, n_step=args.n_step, prioritized=args.prioritized,
                              envs=args.envs, dueling=args.dueling, distributional=args.distributional,
                              quantiles=args.quantiles)
    training.build.setup_backend(config)
    envs, act, train = run(config, args.warmup + args.steps)
    # The copies step one after the other in one thread: in time order, one entry per agent step.
    env_started, env_seconds = zip(*sorted((t, s) for env in envs for t, s in zip(env.started, env.seconds)))
    timed_steps = args.steps - 1
    learning_elapsed = env_started[-1] - env_started[args.warmup]
    timed_train = [s for t, s in zip(train.started, train.seconds) if t >= env_started[args.warmup]]
    timed_act = [s for t, s in zip(act.started, act.seconds) if t >= env_started[args.warmup] and s > 5e-5]
    from agent import backend

    print(f"env: {args.env}")
    print(f"backend: {backend.name()}")
    print(f"device: {backend.describe_device()}")
    print(f"precision: {training.config.with_resolved_precision(config).precision} (--precision {args.precision})")
    print(f"threads: --threads {args.threads} ({args.threads or 'all'} of {os.cpu_count()} cores): "
          f"{backend.describe_threads()}")
    print(f"learner: {args.learner}")
    print(f"memory_compression: {args.memory_compression}")
    print(f"train_every: {args.train_every}")
    print(f"n_step: {args.n_step}")
    print(f"prioritized: {args.prioritized}")
    print(f"envs: {args.envs}")
    print(f"head: {training.config.network_head(config).describe()}")
    print(f"timed_steps: {timed_steps}")
    print(f"sps: {timed_steps / max(learning_elapsed, 1e-9):.1f}")
    print(f"train_step_ms: {median_ms(timed_train):.2f}")
    print(f"act_ms: {median_ms(timed_act):.3f}")
    print(f"env_step_ms: {median_ms(env_seconds[args.warmup:]):.3f}")
    print(f"env_share: {sum(env_seconds[args.warmup:-1]) / learning_elapsed:.2f}")
    print(f"train_share: {sum(timed_train) / learning_elapsed:.2f}")


if __name__ == "__main__":
    run_main(main, Path(__file__).name)
