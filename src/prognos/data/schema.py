"""The reading contract shared by files, REST, gRPC and ingestion.

A *reading* is one engine's snapshot at one operating cycle: ``cycle``, the three operational
settings ``setting_1``..``setting_3`` and the 21 sensors ``s1``..``s21`` (NASA C-MAPSS units:
temperatures in °R, pressures in psia, speeds in rpm, ...).
"""

from __future__ import annotations

from typing import NamedTuple

__all__ = [
    "CHANNELS",
    "CMAPSS_COLUMNS",
    "MEASUREMENT_FIELDS",
    "READING_FIELDS",
    "SENSOR_FIELDS",
    "SETTING_FIELDS",
    "Channel",
]

SETTING_FIELDS: tuple[str, ...] = ("setting_1", "setting_2", "setting_3")
SENSOR_FIELDS: tuple[str, ...] = tuple(f"s{i}" for i in range(1, 22))
#: The 24 numeric channels of a reading, in C-MAPSS column order (after unit and cycle).
MEASUREMENT_FIELDS: tuple[str, ...] = SETTING_FIELDS + SENSOR_FIELDS
#: Every field a reading may carry.
READING_FIELDS: tuple[str, ...] = ("cycle", *MEASUREMENT_FIELDS)
#: The 26 whitespace-separated columns of a C-MAPSS text file.
CMAPSS_COLUMNS: tuple[str, ...] = ("unit", "cycle", *MEASUREMENT_FIELDS)


class Channel(NamedTuple):
    """How a reading field is shown to people: its display name and unit ("" when dimensionless)."""

    name: str
    unit: str

    @property
    def label(self) -> str:
        return f"{self.name} ({self.unit})" if self.unit else self.name


#: The one table of display names (C-MAPSS physical names, Saxena et al. 2008) until machine
#: profiles carry their own; a field missing here is shown by its field name.
CHANNELS: dict[str, Channel] = {
    "setting_1": Channel("setting_1", ""), "setting_2": Channel("setting_2", ""), "setting_3": Channel("setting_3", ""),
    "s1": Channel("T2", "°R"), "s2": Channel("T24", "°R"), "s3": Channel("T30", "°R"), "s4": Channel("T50", "°R"),
    "s5": Channel("P2", "psia"), "s6": Channel("P15", "psia"), "s7": Channel("P30", "psia"),
    "s8": Channel("Nf", "rpm"), "s9": Channel("Nc", "rpm"), "s10": Channel("epr", ""),
    "s11": Channel("Ps30", "psia"), "s12": Channel("phi", "pps/psi"), "s13": Channel("NRf", "rpm"),
    "s14": Channel("NRc", "rpm"), "s15": Channel("BPR", ""), "s16": Channel("farB", ""),
    "s17": Channel("htBleed", ""), "s18": Channel("Nf_dmd", "rpm"), "s19": Channel("PCNfR_dmd", "rpm"),
    "s20": Channel("W31", "lbm/s"), "s21": Channel("W32", "lbm/s"),
}
