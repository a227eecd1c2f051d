"""The record a run leaves: run directory, metrics CSV, summary, log; and reading them back."""
