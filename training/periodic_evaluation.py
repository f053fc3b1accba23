"""``--eval-every``: the protocol's games played every N training steps, and the best weights kept."""
from training.loop import save_online_weights, warn_on_failure


class _EvaluationStopped(Exception):
    """Raised between the games of a periodic evaluation when the run is asked to stop."""


class PeriodicEvaluation:
    """``--eval-every``: a short protocol evaluation every N steps, appended to ``<env>_eval.txt``.

    The weights that scored the best mean so far (over the whole evaluation log, so a resumed run
    competes with its past) are kept in ``<env>_weights_best.h5``: the agent at the
    end of a run is not always its best one.
    """

    def __init__(self, config, files, env, game):
        self.every = config.eval_every
        self.seed = config.seed
        self.path = files.evaluations
        self.best_weights = files.best_weights
        self.env = env
        self.game = game

    def due(self, step):
        return step % self.every == 0

    def run(self, step, agent, stop=None, tensorboard=None):
        """Evaluates ``agent`` for ``step``; returns False, logging nothing, if ``stop()`` turned true
        before its last game (Ctrl-C or SIGTERM: the run then stops without waiting for the rest,
        and a resumed run plays this evaluation again first). ``tensorboard`` (a TensorBoardLog)
        receives the evaluation's points too."""
        import evaluation

        games = evaluation.TRAINING_EVAL_EPISODES

        def stop_between_games(number, game):
            if stop is not None and number < games and stop():
                raise _EvaluationStopped(number)

        try:
            summary = evaluation.evaluate(self.env, evaluation.greedy_policy(agent), episodes=games,
                                          seed=self.seed, on_episode=stop_between_games)
        except _EvaluationStopped as stopped:
            print(f"evaluation at step {step:,} stopped after {stopped.args[0]} of {games} games; "
                  f"a resumed run plays it again")
            return False
        best_before = self._best_mean()
        message = f"evaluation at step {step:,}: {summary.describe()}"
        # The weights before the row: a kill between the two never leaves a logged best unsaved.
        if (best_before is None or summary.mean > best_before) and warn_on_failure(
                save_online_weights, self.best_weights, agent, self.game):
            message += f"; best so far, saved to {self.best_weights.name}"
        evaluation.log_evaluation(self.path, summary, step)
        if tensorboard is not None:
            tensorboard.evaluation(step, summary)
        print(message)
        return True

    def _best_mean(self):
        from common.runlog import read_eval_log

        if not self.path.exists() or self.path.stat().st_size == 0:
            return None
        records = read_eval_log(self.path, allow_no_rows=True)
        return max((record.mean_score for record in records), default=None)
