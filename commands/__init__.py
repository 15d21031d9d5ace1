"""The ``newsradar`` command: one module per area's commands, assembled in ``main.py``. The top
layer: it may import every area, the web UI and the local stack; nothing imports it."""
