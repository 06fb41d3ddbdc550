"""The steps of a run, one module each, over a small shared :class:`StepContext`.

A ``specialists`` node runs ``plan`` -> ``dispatch`` -> ``call`` (one per ready subtask) ->
``verify`` -> ``escalate`` [-> ``review``] -> ``merge``; ``set`` and ``compose`` nodes write
fields (:mod:`.fields`), and :mod:`.route` picks the edge out of a node. Each step is a
function of the context, the node's name and the run state that returns the state update, so
that it can be tested without compiling a graph; :mod:`orchestrator.graph.compiler` wires them.
"""

from orchestrator.steps.context import StepContext

__all__ = ["StepContext"]
