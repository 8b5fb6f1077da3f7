"""A Jepsen-style audit of a finished run: what users were told was saved against what every data
center holds (``blackout audit RUN_DIR``; the engine runs it after every run)."""
