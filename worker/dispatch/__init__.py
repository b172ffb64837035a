"""Redis side of the pipeline: fair queueing, coalescing, incident groups, liveness, crash recovery."""
