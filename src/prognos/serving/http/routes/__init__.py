"""One module per resource: predictions, health, models, metrics."""
