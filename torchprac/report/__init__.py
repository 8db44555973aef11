"""What a run reports: the metrics.json body, the HParams row, the printed summary, and the
sweep summary. Above train/ and diagnose/: it reads their results, never the reverse."""
