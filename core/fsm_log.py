"""django-fsm-log's simple backend, minus the transitions a model says its own rows already tell.

Every transition is logged as a StateLog row by default. The pipeline's routine ones are told
elsewhere: a webhook event's processing by its own ``state`` and ``processed_at``, an instruction's
claim, retry and success by its Attempt rows (one per try). Logging them cost one INSERT per event
and two per instruction on the busiest path (issue 14's profile); the transitions people and alerts
read (failures, replays, retries and cancellations by an operator, every business object's moves)
are still logged. A model lists its unlogged transitions in ``FSM_LOG_UNLOGGED``.
"""

from typing import Any

from django_fsm_log.backends import SimpleBackend


class RoutineTransitionsUnlogged(SimpleBackend):
    @staticmethod
    def post_transition_callback(
        sender: type, instance: Any, name: str, source: Any, target: Any, **kwargs: Any
    ) -> None:
        if name in getattr(sender, "FSM_LOG_UNLOGGED", ()):
            return
        SimpleBackend.post_transition_callback(sender, instance, name, source, target, **kwargs)
