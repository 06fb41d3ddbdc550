"""The training bench: heads over frozen embeddings, calibration, encoder fine-tuning,
clause models. Imported only by the commands that train; a run never loads it."""
