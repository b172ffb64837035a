"""From a claimed alert (or incident group) to a checked answer: prompt, model call, guards."""
