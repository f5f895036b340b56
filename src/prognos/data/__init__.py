"""Input data: the C-MAPSS loader, the reading schema and validation, the synthetic fleet."""
