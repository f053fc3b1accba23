"""What a terminal shows while a run trains: a progress bar and one line per finished episode."""
import sys
import time


class StatusLine:
    """A progress bar on a terminal (tqdm) and one printed line per finished episode."""

    def __init__(self, total_steps, first_step=0):
        from tqdm import tqdm

        self.bar = tqdm(total=total_steps, initial=first_step, unit="step", dynamic_ncols=True,
                        disable=None, file=sys.stderr)
        self.last_step = first_step
        self.last_time = time.monotonic()
        self.steps_per_second = 0.0

    def __enter__(self):
        return self

    def __exit__(self, *exc_info):
        self.bar.close()

    def update(self, step, epsilon, tally):
        self.bar.update(step - self.bar.n)
        now = time.monotonic()
        if now - self.last_time >= 2.0:
            self.steps_per_second = (step - self.last_step) / (now - self.last_time)
            self.last_step, self.last_time = step, now
            self.bar.set_postfix(eps=f"{epsilon:.3f}", mean100=f"{tally.mean_recent_score:.1f}",
                                 sps=f"{self.steps_per_second:.0f}", refresh=False)

    def episode_done(self, record, tally):
        loss = "-" if record.loss is None else f"{record.loss:.4f}"
        self.bar.write(f"episode {record.episode:5d}  step {record.step:10,d}  score {record.score:6.1f}  "
                       f"mean100 {tally.mean_recent_score:6.1f}  eps {record.epsilon:.3f}  "
                       f"sps {self.steps_per_second:5.0f}  loss {loss}", file=sys.stdout)
