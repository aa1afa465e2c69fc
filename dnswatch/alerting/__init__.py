"""Alerting rules over stored security events (pure): alert exceptions (`exceptions.py`) and whether an event
is shown (`visibility.py`). See docs/alert-operations.md."""
