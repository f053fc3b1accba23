"""The training loop: act, store, learn, log, save.

``training.runs`` builds a run's parts from its configuration and hands them to ``run_training``;
the end-to-end test hands it a tiny game instead of an Atari one.
"""
import sys

from training.checkpoints import write_checkpoint
from training.learner import Learner
from training.state import Progress, game_copies, memory_streams
from training.status_line import StatusLine
from training.tensorboard import TensorBoardLog


def run_training(config, env, agent, memory, files, *, game, checkpoints=None, progress=None,
                 evaluation=None):
    """The training loop: act, store, learn, log; returns the run's Progress where it stopped.
    Shared by the command line, the Python API and the end-to-end test.

    ``env`` is one game, or a list of copies of it played side by side (``--envs N``): each
    round the agent chooses an action for every copy in one forward pass, then the copies take
    their steps one after the other, each an agent step of its own (epsilon, learning, target
    syncs and evaluations count agent steps). ``memory`` is then a ``ReplayStreams`` with one
    stream per copy. ``progress`` continues a resumed run; ``checkpoints`` (a CheckpointStore)
    receives a checkpoint every ``config.checkpoint_every`` episodes (at the end of that round),
    on SIGINT/SIGTERM, and at the end; ``evaluation`` (a PeriodicEvaluation) runs every
    ``config.eval_every`` steps (``run(step, agent, stop, tensorboard)``). With ``config.tensorboard``
    the episodes and evaluations are also written as TensorBoard events (``training.tensorboard``).
    """
    from common.runlog import RunLogWriter

    envs, streams = game_copies(env), memory_streams(memory)
    policy_epsilon = epsilon_policy(config)
    resumed = progress is not None
    progress = progress or Progress.start(config, envs, streams)
    tally = progress.tally

    def count(finished_steps):
        for batch, learned in finished_steps:
            tally.add_learning(learned.loss, learned.mean_q)
            memory.update_priorities(batch.positions, learned.td_errors)

    def evaluate(step):
        count(learner.finish())
        finished = evaluation.run(step, agent, stop=lambda: stop.requested, tensorboard=tensorboard)
        progress.pending_evaluation = None if finished else step

    def checkpoint():
        tensorboard.flush()  # the points up to the checkpoint's step reach the disk before it does
        return write_checkpoint(checkpoints, config, agent, memory, envs, progress, game)

    # TensorBoard's folder first: a new run that it refuses has not started its log.
    with TensorBoardLog(config.tensorboard, first_step=progress.step, resumed=resumed,
                        own_files=progress.tensorboard_files) as tensorboard, \
            RunLogWriter(files.log) as log, StatusLine(config.steps, progress.step) as status, \
            StopRequest() as stop, Learner(agent, threaded=config.learner == "thread") as learner:
        progress.tensorboard_files = tensorboard.files  # recorded by each checkpoint
        if evaluation and progress.pending_evaluation is not None:  # cut short by the stop that ended a sitting
            evaluate(progress.pending_evaluation)
        while progress.step < config.steps and not stop.requested:
            epsilon = policy_epsilon(progress.step)
            actions = agent.act_batch(progress.states, epsilon)
            checkpoint_due = False
            for index, (game_env, stream, action) in enumerate(zip(envs, streams, actions)):
                if progress.step >= config.steps:
                    break
                step = progress.step = progress.step + 1
                frame, reward, terminated, truncated, info = game_env.step(action)
                learning_terminal = terminated or (config.life_loss_signal and info.get("life_lost", False))
                learning_reward = reward + info.get("idle_penalty", 0.0)
                stream.add(action, learning_reward, frame, learning_terminal, truncated)
                progress.states[index] = progress.stacks[index].append(frame)
                tally.open_episodes[index].add_step(reward, learning_reward)
                if learning_due(config, step, progress.learning_starts, memory):
                    if memory.prioritized:  # the step in flight sets its priorities before the next draw
                        count(learner.finish())
                    count(learner.start(memory.sample(config.batch_size, config.importance_exponent)))
                # Whatever reads the online network waits for the step in flight.
                if step % config.target_update == 0:
                    count(learner.finish())
                    agent.sync_target()
                if evaluation and evaluation.due(step):
                    evaluate(step)
                if terminated or truncated:
                    count(learner.finish())  # each episode's row counts the gradient steps taken while it ran
                    record = tally.finish_episode(index, step, epsilon)
                    log.append(record)
                    tensorboard.episode(record)
                    status.episode_done(record, tally)
                    if record.episode % config.save_every == 0:
                        warn_on_failure(save_online_weights, files.weights, agent, game)
                    progress.new_episode(index, game_env, stream)
                    checkpoint_due |= record.episode % config.checkpoint_every == 0
                status.update(step, epsilon, tally)
            if checkpoints and checkpoint_due:
                count(learner.finish())  # a later copy of the round may have started one
                warn_on_failure(checkpoint)
        count(learner.finish())
        save_online_weights(files.weights, agent, game)
        if checkpoints:
            folder = checkpoint()
            if stop.requested:
                print(f"stopped at step {progress.step:,}; checkpoint {folder}; continue with --resume")
    return progress


def warn_on_failure(save, *args):
    """A periodic save that fails (disk full, say) is reported and training goes on (returns False);
    the save at the end of the run reports the same failure as an error."""
    from common.errors import UserError

    try:
        save(*args)
    except UserError as error:
        print(f"warning: {error}", file=sys.stderr)
        return False
    return True


class StopRequest:
    """Turns SIGINT (Ctrl-C) and SIGTERM into a flag the loop checks after each step."""

    SIGNALS = ("SIGINT", "SIGTERM")

    def __init__(self):
        self.requested = False
        self._previous = {}

    def __enter__(self):
        import signal
        import threading

        if threading.current_thread() is threading.main_thread():
            for name in self.SIGNALS:
                self._previous[name] = signal.signal(getattr(signal, name), self._request)
        return self

    def __exit__(self, *exc_info):
        import signal

        for name, handler in self._previous.items():
            signal.signal(getattr(signal, name), handler)

    def _request(self, signum, frame):
        if self.requested:
            raise KeyboardInterrupt
        self.requested = True


def epsilon_policy(config):
    """epsilon as a function of the absolute step: the pre-fill phase first, then the linear schedule."""
    from agent import LinearSchedule

    schedule = LinearSchedule(config.epsilon_start, config.epsilon_end, config.epsilon_steps)
    # The loaded agent fills the memory as it will start to learn, at --start's epsilon: played greedily
    # it can repeat one state until the game's time limit (Breakout's agent not serving the ball).
    prefill_epsilon = config.epsilon_start if config.continue_from else 1.0

    def epsilon(step):
        return prefill_epsilon if step < config.pre_steps else schedule(step - config.pre_steps)

    return epsilon


def learning_due(config, step, learning_starts, memory):
    """Whether a gradient step is due after ``step``; the memory is measured only when one could be."""
    return step > learning_starts and step % config.train_every == 0 and len(memory) >= config.batch_size


def save_online_weights(path, agent, game):
    from agent import save_weights as write

    write(path, agent.online, game=game)
