from orchestrator._cli import entrypoint

entrypoint()
