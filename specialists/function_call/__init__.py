"""The ``function_call`` specialist: which function(s) a request calls, with which arguments.

``specialist`` is the specialist itself; ``arguments`` reads argument values from a request,
``request_parts`` divides a request into calls, ``schema`` checks arguments against a
function's JSON Schema, ``places`` knows city and region names.
"""

from orchestrator.specialists.function_call.specialist import (
    ChatTurn,
    FunctionCallInput,
    FunctionCallOptions,
    FunctionCallOutput,
    FunctionCallSpecialist,
    ToolCall,
)

__all__ = [
    "ChatTurn",
    "FunctionCallInput",
    "FunctionCallOptions",
    "FunctionCallOutput",
    "FunctionCallSpecialist",
    "ToolCall",
]
