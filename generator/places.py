"""Where the retailer's people live: countries, cities, postal codes, phone plans, email domains.

Static reference data only; the sampling lives with the people it describes.
Italy dominates because the fictional retailer is Italian; the rest is its EU reach.
"""

from __future__ import annotations

from dataclasses import dataclass

# Share of people per country (ISO 3166 alpha-2).
COUNTRY_SHARES: dict[str, float] = {"IT": 0.76, "FR": 0.06, "DE": 0.06, "ES": 0.05, "AT": 0.035, "NL": 0.035}


@dataclass(frozen=True)
class City:
    name: str
    weight: float  # roughly the population, in thousands
    postal_base: int  # first postal code of the city
    postal_span: int  # how many consecutive codes it covers


CITIES: dict[str, tuple[City, ...]] = {
    "IT": (
        City("Roma", 2750, 118, 82),
        City("Milano", 1370, 20121, 42),
        City("Napoli", 910, 80121, 27),
        City("Torino", 850, 10121, 36),
        City("Palermo", 630, 90121, 31),
        City("Genova", 560, 16121, 46),
        City("Bologna", 390, 40121, 21),
        City("Firenze", 360, 50121, 21),
        City("Bari", 315, 70121, 11),
        City("Catania", 300, 95121, 11),
        City("Venezia", 255, 30121, 54),
        City("Verona", 255, 37121, 21),
        City("Messina", 220, 98121, 48),
        City("Padova", 208, 35121, 22),
        City("Trieste", 200, 34121, 28),
        City("Brescia", 196, 25121, 16),
        City("Parma", 196, 43121, 5),
        City("Prato", 195, 59100, 1),
        City("Modena", 185, 41121, 5),
        City("Reggio Calabria", 172, 89121, 35),
        City("Reggio nell'Emilia", 170, 42121, 4),
        City("Perugia", 162, 6121, 14),
        City("Ravenna", 156, 48121, 4),
        City("Livorno", 154, 57121, 8),
        City("Cagliari", 149, 9121, 14),
        City("Bergamo", 120, 24121, 8),
        City("Monza", 123, 20900, 1),
        City("Pescara", 119, 65121, 9),
        City("Trento", 118, 38121, 3),
        City("Lecce", 95, 73100, 1),
        City("Como", 83, 22100, 1),
        City("L'Aquila", 69, 67100, 1),
        City("Bolzano", 107, 39100, 1),
        City("Udine", 99, 33100, 1),
        City("Siena", 53, 53100, 1),
        City("San Donà di Piave", 41, 30027, 1),
    ),
    "FR": (
        City("Paris", 2100, 75001, 20),
        City("Marseille", 870, 13001, 16),
        City("Lyon", 520, 69001, 9),
        City("Toulouse", 490, 31000, 500),
        City("Nice", 340, 6000, 300),
        City("Nantes", 320, 44000, 300),
        City("Bordeaux", 260, 33000, 800),
        City("Lille", 235, 59000, 800),
        City("Aix-en-Provence", 145, 13090, 1),
    ),
    "DE": (
        City("Berlin", 3650, 10115, 3085),
        City("Hamburg", 1850, 20095, 2055),
        City("München", 1490, 80331, 1598),
        City("Köln", 1080, 50667, 1268),
        City("Frankfurt am Main", 760, 60306, 243),
        City("Stuttgart", 630, 70173, 456),
        City("Düsseldorf", 620, 40210, 419),
        City("Leipzig", 600, 4103, 257),
    ),
    "ES": (
        City("Madrid", 3300, 28001, 80),
        City("Barcelona", 1620, 8001, 41),
        City("Valencia", 800, 46001, 25),
        City("Sevilla", 690, 41001, 20),
        City("Zaragoza", 670, 50001, 21),
        City("Málaga", 580, 29001, 18),
        City("Palma", 420, 7001, 15),
    ),
    "AT": (
        City("Wien", 1900, 1010, 230),
        City("Graz", 290, 8010, 54),
        City("Linz", 205, 4020, 40),
        City("Salzburg", 155, 5020, 6),
        City("Innsbruck", 131, 6020, 6),
    ),
    "NL": (
        City("Amsterdam", 870, 1011, 98),
        City("Rotterdam", 650, 3011, 78),
        City("Den Haag", 545, 2491, 96),
        City("Utrecht", 360, 3511, 74),
        City("Eindhoven", 235, 5611, 48),
        City("Groningen", 230, 9711, 37),
    ),
}

# Postal code width per country; NL adds two letters ("1011 AB").
POSTAL_DIGITS: dict[str, int] = {"IT": 5, "FR": 5, "DE": 5, "ES": 5, "AT": 4, "NL": 4}


@dataclass(frozen=True)
class PhonePlan:
    country_code: str  # without "+" or "00"
    mobile_prefixes: tuple[str, ...]
    subscriber_digits: int  # digits after the prefix


PHONE_PLANS: dict[str, PhonePlan] = {
    "IT": PhonePlan(
        "39",
        ("320", "324", "327", "328", "329", "330", "331", "333", "334", "335", "336", "337", "338", "339",
         "340", "342", "345", "346", "347", "348", "349", "350", "351", "360", "366", "368", "380", "388",
         "389", "391", "392", "393"),
        7,
    ),
    "FR": PhonePlan("33", ("6", "7"), 8),
    "DE": PhonePlan("49", ("151", "152", "157", "160", "162", "170", "171", "172", "175", "176", "177", "179"), 8),
    "ES": PhonePlan("34", ("6", "7"), 8),
    "AT": PhonePlan("43", ("650", "660", "664", "676", "681", "699"), 7),
    "NL": PhonePlan("31", ("6",), 8),
}

# Consumer email domains per country, with rough market shares.
EMAIL_DOMAINS: dict[str, dict[str, float]] = {
    "IT": {"gmail.com": 0.42, "libero.it": 0.12, "hotmail.it": 0.1, "yahoo.it": 0.08, "outlook.it": 0.06,
           "virgilio.it": 0.05, "alice.it": 0.04, "tiscali.it": 0.03, "icloud.com": 0.06, "live.it": 0.04},
    "FR": {"gmail.com": 0.4, "orange.fr": 0.17, "free.fr": 0.12, "hotmail.fr": 0.12, "laposte.net": 0.07,
           "sfr.fr": 0.06, "icloud.com": 0.06},
    "DE": {"gmail.com": 0.3, "gmx.de": 0.22, "web.de": 0.22, "t-online.de": 0.12, "outlook.de": 0.08,
           "icloud.com": 0.06},
    "ES": {"gmail.com": 0.5, "hotmail.es": 0.2, "yahoo.es": 0.12, "outlook.es": 0.1, "icloud.com": 0.08},
    "AT": {"gmail.com": 0.35, "gmx.at": 0.25, "aon.at": 0.12, "chello.at": 0.08, "outlook.com": 0.12,
           "icloud.com": 0.08},
    "NL": {"gmail.com": 0.38, "ziggo.nl": 0.16, "kpnmail.nl": 0.12, "hotmail.com": 0.16, "outlook.com": 0.1,
           "icloud.com": 0.08},
}

# Top-level domain businesses use per country.
BUSINESS_TLD: dict[str, str] = {"IT": "it", "FR": "fr", "DE": "de", "ES": "es", "AT": "at", "NL": "nl"}
