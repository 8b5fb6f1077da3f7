"""The scenario engine: a scenario is plain data (load, hypothesis, timeline); running it writes a journal and
a verdict."""
