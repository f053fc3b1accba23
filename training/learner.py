"""The learner: the agent's gradient steps, in a thread of their own or in the loop's."""


class Learner:
    """Runs the agent's gradient steps: in a second thread (``--learner thread``, the default), so
    that the emulator, the replay memory and the action choice go on while the network learns, or
    in the loop's own thread (``--learner main``).

    ``start(batch)`` hands the actor the current weights (see ``DQNAgent``) and starts one step;
    ``finish()`` waits for the step in flight. Both return the steps that finished meanwhile, as
    (batch, ``Learned``) pairs. The batch is drawn in the loop's thread, the actor is only copied
    while no step is in flight, and the loop finishes the step before anything reads the online
    network, so both modes compute the same thing; the thread only changes when it is computed.
    """

    def __init__(self, agent, *, threaded):
        import concurrent.futures

        self.agent = agent
        self._pool = concurrent.futures.ThreadPoolExecutor(1, thread_name_prefix="learner") if threaded else None
        self._in_flight = None  # (batch, Future)

    def start(self, batch):
        finished = self.finish()
        self.agent.sync_actor()
        if self._pool is None:
            return [*finished, (batch, self.agent.learn(batch))]
        self._in_flight = (batch, self._pool.submit(self.agent.learn, batch))
        return finished

    def finish(self):
        if self._in_flight is None:
            return []
        (batch, learned), self._in_flight = self._in_flight, None
        return [(batch, learned.result())]

    def __enter__(self):
        return self

    def __exit__(self, *exc_info):
        if self._pool is not None:
            self._pool.shutdown(wait=True)
