"""Training a DQN agent: the configuration, the loop and what it keeps, checkpoints and resume.

- ``config``: ``Config`` (every setting, its default), the named recipes (``PRESETS``), the checks;
- ``runs``: starting a run in a folder or resuming the one there (``train``, ``resume``);
- ``build``: a run's parts from its Config (backend, game copies, agent, replay memory);
- ``loop``: the training loop (``run_training``); ``learner``: its gradient steps, in a thread;
  ``state``: where a run stands (step, counters, frame stacks); ``status_line``: the terminal;
- ``periodic_evaluation``: ``--eval-every``; ``checkpoints``: crash-safe checkpoints, exact
  restore and the rules of a resume.
"""
# Checkpoints pickle RunTally and EpisodeTally; those written before this package existed name
# them ``training.RunTally`` and ``training.EpisodeTally``.
from training.state import EpisodeTally, RunTally

__all__ = ["EpisodeTally", "RunTally"]
