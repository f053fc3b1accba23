"""Where a run stands between two rounds of steps, beyond the networks and the replay memory:
the step count, the counters of episodes and learning, each game copy's frame stack.

Checkpoints pickle these objects (``training.checkpoints``), so their names are kept importable
from ``training`` as well, where checkpoints written before this package existed find them.
"""
import collections
import time

import numpy as np

from preprocessing import clip_reward


def game_copies(env):
    """The game copies of a run as a list: ``env`` itself where it is one."""
    return list(env) if isinstance(env, (list, tuple)) else [env]


def memory_streams(memory):
    """The replay streams of a run, one per game copy: a ``ReplayStreams``'s, or ``[memory]``."""
    return getattr(memory, "streams", [memory])


class Progress:
    """Where a run stands between two rounds of steps, beyond the networks and the replay memory:
    the step count, the counters, and each game copy's frame stack."""

    def __init__(self, step, tally, stacks, learning_starts):
        self.step, self.tally, self.stacks = step, tally, list(stacks)
        self.states = np.stack([stack.state for stack in self.stacks])
        self.learning_starts = learning_starts
        self.pending_evaluation = None  # the step of an evaluation a stop request cut short
        self.tensorboard_files = []  # the names of the run's event files; None: not recorded (older checkpoints)

    @classmethod
    def start(cls, config, envs, streams):
        from preprocessing import FrameStack

        progress = cls(0, RunTally(started=time.monotonic(), games=len(envs)),
                       [FrameStack() for _ in envs], config.pre_steps)
        for index, (env, stream) in enumerate(zip(envs, streams)):
            progress.new_episode(index, env, stream, seed=None if config.seed is None else config.seed + index)
        return progress

    def new_episode(self, index, env, stream, seed=None):
        frame, _ = env.reset(seed=seed)
        self.states[index] = self.stacks[index].reset(frame)
        stream.start_episode(frame)


class EpisodeTally:
    """Sums of one episode: raw score, clipped return, length, and learning statistics."""

    def __init__(self):
        self.score = 0.0
        self.clipped_return = 0.0
        self.length = 0
        self.losses = []
        self.q_values = []

    def add_step(self, reward, learning_reward):
        """``reward``: the raw game score; ``learning_reward``: what the memory stores before clipping."""
        self.score += reward
        self.clipped_return += clip_reward(learning_reward)
        self.length += 1

    def add_learning(self, loss, mean_q):
        self.losses.append(loss)
        self.q_values.append(mean_q)


class RunTally:
    """Counters of the whole run: episodes finished, recent scores, the episode in progress in
    each game copy."""

    def __init__(self, started, episodes=0, games=1):
        self.started = started
        self.episodes = episodes
        self.recent_scores = collections.deque(maxlen=100)
        self.open_episodes = [EpisodeTally() for _ in range(games)]

    def __setstate__(self, state):
        # Checkpoints written before --envs kept the one episode in progress as ``episode``.
        if "episode" in state:
            state["open_episodes"] = [state.pop("episode")]
        self.__dict__.update(state)

    def add_learning(self, loss, mean_q):
        """A gradient step, counted in every episode in progress."""
        for episode in self.open_episodes:
            episode.add_learning(loss, mean_q)

    def finish_episode(self, index, step, epsilon):
        """Closes the episode of game copy ``index``; returns its ``EpisodeRecord``."""
        from common.runlog import EpisodeRecord

        done, self.open_episodes[index] = self.open_episodes[index], EpisodeTally()
        self.episodes += 1
        self.recent_scores.append(done.score)
        return EpisodeRecord(
            step=step, episode=self.episodes, score=done.score, clipped_return=done.clipped_return,
            length=done.length, epsilon=round(epsilon, 6), wall_time=round(time.monotonic() - self.started, 3),
            loss=_mean_or_none(done.losses), mean_q=_mean_or_none(done.q_values))

    @property
    def mean_recent_score(self):
        return sum(self.recent_scores) / len(self.recent_scores) if self.recent_scores else float("nan")


def _mean_or_none(values):
    return sum(values) / len(values) if values else None
