"""Weather lookups (Google-style docstrings).

The data is made up and deterministic, so the examples work offline.
"""

from __future__ import annotations

import zlib
from enum import Enum

from qasdk import tool


class Unit(str, Enum):
    """Temperature units."""

    CELSIUS = "celsius"
    FAHRENHEIT = "fahrenheit"


@tool(timeout=10, tags=["weather", "demo"])
def get_weather(city: str, unit: Unit = Unit.CELSIUS) -> dict:
    """Get the current weather of a city.

    Args:
        city: Name of the city, for example "Hangzhou".
        unit: Temperature unit, celsius or fahrenheit.

    Returns:
        The city, its temperature in the requested unit, and a condition.
    """
    seed = zlib.crc32(city.strip().lower().encode())
    celsius = seed % 35
    conditions = ["sunny", "cloudy", "rainy", "windy"]
    temperature = celsius if Unit(unit) is Unit.CELSIUS else round(celsius * 9 / 5 + 32, 1)
    return {
        "city": city,
        "temperature": temperature,
        "unit": Unit(unit).value,
        "condition": conditions[seed % len(conditions)],
    }


@tool(name="get_forecast", tags=["weather"])
async def forecast(city: str, days: int = 3) -> list[dict]:
    """Forecast the weather for the next days.

    Args:
        city: Name of the city.
        days: How many days ahead, 1 to 7.
    """
    if not 1 <= days <= 7:
        raise ValueError("days must be between 1 and 7")
    today = get_weather(city)
    return [{**today, "day": day, "temperature": today["temperature"] + day} for day in range(days)]
