"""Exploration schedules as functions of the absolute agent step."""
from dataclasses import dataclass


@dataclass(frozen=True)
class LinearSchedule:
    """Moves linearly from ``start`` to ``end`` over ``steps`` steps, then stays at ``end``.

    A function of the absolute step rather than a counter that is decremented, so a resumed
    run continues exactly where it stopped.
    """

    start: float
    end: float
    steps: int

    def __call__(self, step):
        if self.steps <= 0:
            return self.end
        fraction = min(max(step, 0) / self.steps, 1.0)
        return self.start + fraction * (self.end - self.start)
