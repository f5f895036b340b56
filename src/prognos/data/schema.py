"""The reading contract shared by files, REST, gRPC and ingestion.

A *reading* is one engine's snapshot at one operating cycle: ``cycle``, the three operational
settings ``setting_1``..``setting_3`` and the 21 sensors ``s1``..``s21`` (NASA C-MAPSS units:
temperatures in °R, pressures in psia, speeds in rpm, ...).
"""

from __future__ import annotations

__all__ = [
    "CMAPSS_COLUMNS",
    "MEASUREMENT_FIELDS",
    "READING_FIELDS",
    "SENSOR_FIELDS",
    "SETTING_FIELDS",
]

SETTING_FIELDS: tuple[str, ...] = ("setting_1", "setting_2", "setting_3")
SENSOR_FIELDS: tuple[str, ...] = tuple(f"s{i}" for i in range(1, 22))
#: The 24 numeric channels of a reading, in C-MAPSS column order (after unit and cycle).
MEASUREMENT_FIELDS: tuple[str, ...] = SETTING_FIELDS + SENSOR_FIELDS
#: Every field a reading may carry.
READING_FIELDS: tuple[str, ...] = ("cycle", *MEASUREMENT_FIELDS)
#: The 26 whitespace-separated columns of a C-MAPSS text file.
CMAPSS_COLUMNS: tuple[str, ...] = ("unit", "cycle", *MEASUREMENT_FIELDS)
