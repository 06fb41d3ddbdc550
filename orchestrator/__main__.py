from orchestrator.cli.app import entrypoint

entrypoint()
