import orchestrator


def test_public_names_are_pinned() -> None:
    # Adding to or removing from the public API is a deliberate decision: update this list.
    assert orchestrator.__all__ == [
        "CheckpointerKind",
        "ConfigurationError",
        "DeclaredSubtask",
        "Escalation",
        "FieldProvenance",
        "FrontierModel",
        "GraphFileError",
        "GraphIssue",
        "GraphSpec",
        "InProcessToolset",
        "InvalidArgumentError",
        "LocalPlanner",
        "Orchestrator",
        "OrchestratorError",
        "Plan",
        "PlanStep",
        "Planner",
        "Prediction",
        "PriceTable",
        "ResultField",
        "RunError",
        "RunEvent",
        "RunRequest",
        "RunResult",
        "SentenceEncoder",
        "Specialist",
        "SpecialistError",
        "SpecialistResult",
        "Subtask",
        "SubtaskReport",
        "ThreadBusyError",
        "ThreadLeases",
        "ToolInfo",
        "ToolOutput",
        "ToolTimeoutError",
        "ToolTransportError",
        "Toolset",
        "UnknownSpecialistError",
        "UsageError",
        "Verdict",
        "__version__",
        "configure_logging",
        "default_registry",
        "graph_json_schema",
        "register_specialist",
    ]
    assert orchestrator.__all__ == sorted(orchestrator.__all__)
    for name in orchestrator.__all__:
        assert hasattr(orchestrator, name), name


def test_public_objects_come_from_the_package() -> None:
    for name in orchestrator.__all__:
        obj = getattr(orchestrator, name)
        if not callable(obj) or name == "CheckpointerKind":
            continue
        module = getattr(obj, "__module__", "orchestrator")
        assert module.startswith("orchestrator"), (name, module)
