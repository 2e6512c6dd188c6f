"""Building blocks of the OTLP Error Summary agent; `main.py` is the entry point."""
